// Package authz decides which principals may call which operations. The
// policy is data, one row per operation, and anything not in it is denied.
//
// Admin principals may call every operation, control and data plane, as an
// AWS administrator can. Runtime principals may call only the data plane —
// every data-plane operation, or those listed on the principal, as AWS
// grants bedrock-agentcore actions one by one — and only for the workload
// identities they are granted. The workload is in the request body, so a
// workload-scoped operation establishes it with wire.Call.ActFor, which
// checks ActsFor; the router refuses success to one that did not.
package authz

import (
	"maps"
	"slices"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Rule is one row of the policy.
type Rule struct {
	Roles []storage.Role
	// WorkloadScoped marks operations whose handler must establish the
	// workload it acts for with wire.Call.ActFor.
	WorkloadScoped bool
}

var (
	adminOnly = Rule{Roles: []storage.Role{storage.RoleAdmin}}
	dataPlane = Rule{Roles: []storage.Role{storage.RoleAdmin, storage.RoleRuntime}, WorkloadScoped: true}
)

// policy maps operation names to rules. It is never written after
// initialization: read it through RuleFor and Operations.
var policy = map[string]Rule{
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
	"ResetTokenVaultKeyMaterial":     adminOnly,
	"TagResource":                    adminOnly,
	"UntagResource":                  adminOnly,
	"ListTagsForResource":            adminOnly,
	"CreateConsentPortal":            adminOnly,
	"GetConsentPortal":               adminOnly,
	"UpdateConsentPortal":            adminOnly,
	"DeleteConsentPortal":            adminOnly,
	"ListConsentPortals":             adminOnly,

	// behalf extensions to the control plane.
	"CreatePrincipal": adminOnly,
	"GetPrincipal":    adminOnly,
	"ListPrincipals":  adminOnly,
	"UpdatePrincipal": adminOnly,
	"DeletePrincipal": adminOnly,
	"CreateVaultKey":  adminOnly,
	// The keys' rotation: ids and dates, never material (docs/console.md).
	"GetKeyRotationStatus": adminOnly,
	"ListAuditRecords":     adminOnly,
	"VerifyAuditLog":       adminOnly,
	"ListConnections":      adminOnly,
	"RevokeConnection":     adminOnly,
	"DeleteConnection":     adminOnly,
	// The authorization server's consents (docs/authorization-server.md).
	"ListOAuthConsents":  adminOnly,
	"DeleteOAuthConsent": adminOnly,
	// Discovering a remote MCP server's authorization (docs/mcp-client.md):
	// behalf calls the URL named, under its egress policy.
	"DiscoverMcpServer":                 adminOnly,
	"CreateMcpServerCredentialProvider": adminOnly,
	"UpdateMcpServerCredentialProvider": adminOnly,

	// Data plane.
	"GetWorkloadAccessToken":          dataPlane,
	"GetWorkloadAccessTokenForJWT":    dataPlane,
	"GetWorkloadAccessTokenForUserId": dataPlane,
	"GetResourceOauth2Token":          dataPlane,
	"GetResourceApiKey":               dataPlane,
	"CompleteResourceTokenAuth":       dataPlane,

	// behalf extension to the data plane: identity chains, an agent
	// calling another through behalf gateway. The callee is established
	// with ActFor; the caller's workload is checked too (MayActFor).
	"GetWorkloadAccessTokenForChain": dataPlane,

	// behalf extension to the data plane: a caller signing with SigV4
	// whose request behalf gateway passes on. The workload is established
	// with ActFor; the signing caller's permissions are checked too.
	"GetWorkloadAccessTokenForSignedCaller": dataPlane,

	// behalf extension to the data plane: a JWT of behalf's own naming the
	// workload of a workload access token (GetWebIdentityToken's
	// analogue). The workload is established with ActFor.
	"GetWorkloadJWT": dataPlane,

	// behalf extension to the data plane: the gateway's record of a call.
	// A route's workload, when it has one, is checked with ActFor.
	"RecordGatewayCall": {Roles: []storage.Role{storage.RoleAdmin, storage.RoleRuntime}},
}

// RuleFor returns the policy row of an operation.
func RuleFor(op string) (Rule, bool) {
	r, ok := policy[op]
	r.Roles = slices.Clone(r.Roles)
	return r, ok
}

// Operations lists the operations the policy names, sorted.
func Operations() []string { return slices.Sorted(maps.Keys(policy)) }

// DataPlaneOperations lists the operations a runtime principal may be
// limited to, sorted.
func DataPlaneOperations() []string {
	var ops []string
	for _, op := range Operations() {
		if slices.Contains(policy[op].Roles, storage.RoleRuntime) {
			ops = append(ops, op)
		}
	}
	return ops
}

// Authorizer enforces the policy.
type Authorizer struct{}

// Authorize implements wire.Authorizer. A runtime principal limited to a
// list of operations may call only those.
func (Authorizer) Authorize(op string, c wire.Caller) error {
	rule, ok := policy[op]
	if !ok || !slices.Contains(rule.Roles, c.Role) {
		return wire.AccessDenied("principal %s (role %s) is not allowed to call %s", c.AccessKeyID, roleName(c.Role), op)
	}
	if c.Role == storage.RoleRuntime && len(c.Operations) > 0 && !slices.Contains(c.Operations, op) {
		return wire.AccessDenied("principal %s is not granted operation %s", c.AccessKeyID, op)
	}
	return nil
}

// WorkloadScoped implements wire.Authorizer.
func (Authorizer) WorkloadScoped(op string) bool { return policy[op].WorkloadScoped }

// ActsFor implements wire.Authorizer.
func (Authorizer) ActsFor(c wire.Caller, workload string) error { return CheckActsFor(c, workload) }

func roleName(r storage.Role) string {
	if r == "" {
		return "none"
	}
	return string(r)
}

// AllWorkloads is the grant that lets a runtime principal act for every
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
