// Package control serves the AgentCore Identity control plane: the
// workload identity directory, OAuth2 and API-key credential providers, the
// token vault's key, tags, consent portals, and behalf's own principal and
// key extensions.
// Wire shapes follow the AgentCore Control API reference (docs/api.md);
// every secret is sealed by the vault before it reaches storage and is never
// returned.
package control

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/behalf-dev/behalf/internal/secretsource"
	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Config holds what the control plane needs to know about its deployment.
type Config struct {
	ARNs ARNs
	// PublicURL is the externally reachable base URL of this server; OAuth
	// callback URLs are built from it.
	PublicURL string
	// InboundAuthorizers names the configured inbound JWT authorizers a
	// workload identity may be limited to.
	InboundAuthorizers []string
}

// Deps are the control plane's collaborators.
type Deps struct {
	Store   storage.Storage
	Vault   *vault.Vault
	Keyring *vault.LocalKeyring
	// Keys routes key ids to every configured key-management backend,
	// the local keyring among them.
	Keys *vault.Keys
	// HeldKeys are the signers of the backends' asymmetric keys
	// (signingkeys.NewHeld over Keys), which PRIVATE_KEY_JWT providers'
	// assertions are signed with; nil refuses such providers.
	HeldKeys *signingkeys.Held
	// Secrets says which external secrets can be read (EXTERNAL secret
	// sources); nil reads none.
	Secrets *secretsource.Resolver
	// HTTP fetches OAuth discovery documents.
	HTTP *http.Client
	// Rewrap asks the background re-wrapper to run after the vault key
	// changes; it must not block.
	Rewrap func()
	// PrincipalChanged drops any cached copy of a principal.
	PrincipalChanged func(accessKeyID string)
	// ResourceChanged drops any cached copy of a workload identity or
	// provider that was updated or deleted.
	ResourceChanged func(storage.Resource)
	// Audit verifies the audit chain.
	Audit AuditVerifier
	// Connections revokes users' connections at their providers.
	Connections ConnectionRevoker
	// ClientKeys are behalf's MCP client keys (NewClientKeys), whose JWKS
	// the Client ID Metadata Documents of confidential clients name; nil
	// makes every such client public.
	ClientKeys *signingkeys.Set
	// KeySets are the rotating key sets GetKeyRotationStatus reports.
	KeySets []KeySchedule
	// Now is the clock of the times records are created at; nil means
	// time.Now.
	Now func() time.Time
}

// Service implements the control-plane operations.
type Service struct {
	Deps
	store storage.Storage
	cfg   Config
}

// New returns the control plane.
func New(d Deps, cfg Config) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{Deps: d, store: d.Store, cfg: cfg}
}

// Operations lists the control-plane operations.
func (s *Service) Operations() []wire.Operation {
	reads := []wire.Operation{
		wire.JSON("GetWorkloadIdentity", "/identities/GetWorkloadIdentity", http.StatusOK, s.getWorkloadIdentity),
		wire.JSON("ListWorkloadIdentities", "/identities/ListWorkloadIdentities", http.StatusOK, s.listWorkloadIdentities),
		wire.JSON("GetOauth2CredentialProvider", "/identities/GetOauth2CredentialProvider", http.StatusOK, s.getOAuth2Provider),
		wire.JSON("ListOauth2CredentialProviders", "/identities/ListOauth2CredentialProviders", http.StatusOK, s.listOAuth2Providers),
		wire.JSON("GetApiKeyCredentialProvider", "/identities/GetApiKeyCredentialProvider", http.StatusOK, s.getAPIKeyProvider),
		wire.JSON("ListApiKeyCredentialProviders", "/identities/ListApiKeyCredentialProviders", http.StatusOK, s.listAPIKeyProviders),
		wire.JSON("GetTokenVault", "/identities/get-token-vault", http.StatusOK, s.getTokenVault),
		wire.JSON("GetKeyRotationStatus", "/behalf/GetKeyRotationStatus", http.StatusOK, s.getKeyRotationStatus),
		wire.JSON("GetPrincipal", "/behalf/GetPrincipal", http.StatusOK, s.getPrincipal),
		wire.JSON("ListPrincipals", "/behalf/ListPrincipals", http.StatusOK, s.listPrincipals),
		{Name: "ListTagsForResource", Method: http.MethodGet, Path: "/tags/{resourceArn}", Serve: s.listTags},
	}
	// Every change is audited.
	changes := wire.Audited(
		wire.JSON("CreateWorkloadIdentity", "/identities/CreateWorkloadIdentity", http.StatusCreated, s.createWorkloadIdentity),
		wire.JSON("UpdateWorkloadIdentity", "/identities/UpdateWorkloadIdentity", http.StatusOK, s.updateWorkloadIdentity),
		wire.JSON("DeleteWorkloadIdentity", "/identities/DeleteWorkloadIdentity", http.StatusNoContent, s.deleteWorkloadIdentity),

		wire.JSON("CreateOauth2CredentialProvider", "/identities/CreateOauth2CredentialProvider", http.StatusCreated, s.createOAuth2Provider),
		wire.JSON("UpdateOauth2CredentialProvider", "/identities/UpdateOauth2CredentialProvider", http.StatusOK, s.updateOAuth2Provider),
		wire.JSON("DeleteOauth2CredentialProvider", "/identities/DeleteOauth2CredentialProvider", http.StatusNoContent, s.deleteOAuth2Provider),

		wire.JSON("CreateApiKeyCredentialProvider", "/identities/CreateApiKeyCredentialProvider", http.StatusCreated, s.createAPIKeyProvider),
		wire.JSON("UpdateApiKeyCredentialProvider", "/identities/UpdateApiKeyCredentialProvider", http.StatusOK, s.updateAPIKeyProvider),
		wire.JSON("DeleteApiKeyCredentialProvider", "/identities/DeleteApiKeyCredentialProvider", http.StatusNoContent, s.deleteAPIKeyProvider),

		wire.JSON("SetTokenVaultCMK", "/identities/set-token-vault-cmk", http.StatusOK, s.setTokenVaultCMK),
		wire.JSON("ResetTokenVaultKeyMaterial", "/identities/reset-token-vault-key-material", http.StatusOK, s.resetTokenVaultKeyMaterial),
		wire.JSON("CreateVaultKey", "/behalf/CreateVaultKey", http.StatusCreated, s.createVaultKey),

		wire.JSON("CreatePrincipal", "/behalf/CreatePrincipal", http.StatusCreated, s.createPrincipal),
		wire.JSON("UpdatePrincipal", "/behalf/UpdatePrincipal", http.StatusOK, s.updatePrincipal),
		wire.JSON("DeletePrincipal", "/behalf/DeletePrincipal", http.StatusNoContent, s.deletePrincipal),

		wire.Operation{Name: "TagResource", Method: http.MethodPost, Path: "/tags/{resourceArn}", Serve: s.tagResource},
		wire.Operation{Name: "UntagResource", Method: http.MethodDelete, Path: "/tags/{resourceArn}", Serve: s.untagResource},
	)
	ops := append(append(append(reads, s.auditOperations()...), changes...), s.connectionOperations()...)
	ops = append(append(append(ops, s.oauthConsentOperations()...), s.mcpServerOperations()...), s.mcpProviderOperations()...)
	return append(ops, s.consentPortalOperations()...)
}

// Mount registers the control-plane operations on the router.
func (s *Service) Mount(rt *wire.Router) { rt.Handle(s.Operations()...) }

// Shared member patterns of the AgentCore Control API reference (e.g.
// CreateWorkloadIdentity's name), anchored.
var (
	workloadNamePattern = wire.Pattern(`[A-Za-z0-9_.-]+`)
	providerNamePattern = wire.Pattern(`[a-zA-Z0-9\-_]+`)
	returnURLPattern    = wire.Pattern(`\w+:(\/?\/?)[^\s]+`)
)

// changed reports an updated or deleted resource to the caches, whether
// or not the change succeeded (a failed one may have raced another).
func (s *Service) changed(kind storage.ResourceKind, name string) {
	if s.ResourceChanged != nil {
		s.ResourceChanged(storage.Resource{Kind: kind, Name: name})
	}
}

// pageSize applies a list operation's default and bounds.
func pageSize(maxResults *int, def int) int {
	if maxResults == nil {
		return def
	}
	return *maxResults
}

// paginate trims a listing fetched with limit+1 items and returns the
// cursor for the next page.
func paginate[T any](items []T, limit int, name func(T) string) ([]T, *string) {
	if len(items) <= limit {
		return items, nil
	}
	items = items[:limit]
	return items, wire.NextToken(name(items[len(items)-1]))
}

func epoch(t time.Time) wire.Time { return wire.Time(t) }

// sealFor seals a secret for a record.
func (s *Service) sealFor(ctx context.Context, secret string, b vault.Binding) (storage.Sealed, error) {
	sealed, err := s.Vault.Seal(ctx, []byte(secret), b)
	if err != nil {
		return storage.Sealed{}, fmt.Errorf("seal a secret: %w", err)
	}
	return sealed, nil
}
