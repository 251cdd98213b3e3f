// Package authz decides which principals may call which operations. The
// policy is data, one row per operation, and anything not in it is denied.
//
// Admin principals may call every operation, control and data plane, as an
// AWS administrator can. Runtime principals may call only the data plane,
// and only for the workload identities they are granted; the data-plane
// handlers enforce that second half with ActsFor, since the workload is in
// the request body.
package authz

import (
	"slices"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Rule is one row of the policy.
type Rule struct {
	Roles []storage.Role
	// WorkloadScoped marks operations whose handler must also check
	// ActsFor for the workload named in the request.
	WorkloadScoped bool
}

var (
	adminOnly = Rule{Roles: []storage.Role{storage.RoleAdmin}}
	dataPlane = Rule{Roles: []storage.Role{storage.RoleAdmin, storage.RoleRuntime}, WorkloadScoped: true}
)

// Policy maps operation names to rules.
var Policy = map[string]Rule{
	// Control plane: workload identity directory.
	"CreateWorkloadIdentity":         adminOnly,
	"GetWorkloadIdentity":            adminOnly,
	"UpdateWorkloadIdentity":         adminOnly,
	"DeleteWorkloadIdentity":         adminOnly,
	"ListWorkloadIdentities":         adminOnly,
	"CreateOauth2CredentialProvider": adminOnly,
	"GetOauth2CredentialProvider":    adminOnly,
	"UpdateOauth2CredentialProvider": adminOnly,
	"DeleteOauth2CredentialProvider": adminOnly,
	"ListOauth2CredentialProviders":  adminOnly,
	"CreateApiKeyCredentialProvider": adminOnly,
	"GetApiKeyCredentialProvider":    adminOnly,
	"UpdateApiKeyCredentialProvider": adminOnly,
	"DeleteApiKeyCredentialProvider": adminOnly,
	"ListApiKeyCredentialProviders":  adminOnly,
	"GetTokenVault":                  adminOnly,
	"SetTokenVaultCMK":               adminOnly,
	"TagResource":                    adminOnly,
	"UntagResource":                  adminOnly,
	"ListTagsForResource":            adminOnly,

	// behalf extensions to the control plane.
	"CreatePrincipal":  adminOnly,
	"GetPrincipal":     adminOnly,
	"ListPrincipals":   adminOnly,
	"UpdatePrincipal":  adminOnly,
	"DeletePrincipal":  adminOnly,
	"CreateVaultKey":   adminOnly,
	"ListAuditRecords": adminOnly,
	"VerifyAuditLog":   adminOnly,
	"ListConnections":  adminOnly,
	"RevokeConnection": adminOnly,
	"DeleteConnection": adminOnly,

	// Data plane.
	"GetWorkloadAccessToken":          dataPlane,
	"GetWorkloadAccessTokenForJWT":    dataPlane,
	"GetWorkloadAccessTokenForUserId": dataPlane,
	"GetResourceOauth2Token":          dataPlane,
	"GetResourceApiKey":               dataPlane,
	"CompleteResourceTokenAuth":       dataPlane,
}

// Authorizer enforces Policy.
type Authorizer struct{}

// Authorize implements wire.Authorizer.
func (Authorizer) Authorize(op string, c wire.Caller) error {
	rule, ok := Policy[op]
	if !ok || !slices.Contains(rule.Roles, c.Role) {
		return wire.AccessDenied("principal %s (role %s) is not allowed to call %s", c.AccessKeyID, roleName(c.Role), op)
	}
	return nil
}

func roleName(r storage.Role) string {
	if r == "" {
		return "none"
	}
	return string(r)
}

// AllWorkloads, granted to a runtime principal, lets it act for every
// workload identity.
const AllWorkloads = "*"

// ActsFor reports whether the caller may act for the workload.
func ActsFor(c wire.Caller, workload string) bool {
	if c.Role == storage.RoleAdmin {
		return true
	}
	return c.Role == storage.RoleRuntime && (slices.Contains(c.Workloads, workload) || slices.Contains(c.Workloads, AllWorkloads))
}

// CheckActsFor returns AccessDeniedException unless ActsFor.
func CheckActsFor(c wire.Caller, workload string) error {
	if !ActsFor(c, workload) {
		return wire.AccessDenied("principal %s is not granted workload identity %s", c.AccessKeyID, workload)
	}
	return nil
}
