// Package dataplane assembles the AgentCore Identity data plane from its
// parts and mounts it: workload access tokens (workloadtoken), API keys
// (apikey), OAuth2 tokens obtained on the workload's behalf (tokenflow)
// and for users who consented (federation), and behalf's own workload
// JWTs (webidentity), all checked by access.
// Wire shapes follow the AWS API reference of each operation; behaviour
// is described in docs/data-plane.md and docs/user-federation.md.
//
// Every call is checked three ways before a credential leaves: the caller
// (a SigV4 principal) must be granted the workload, the token's minting
// principal must still be granted it, and — beyond AgentCore — the
// workload identity's own grant must permit the provider and scopes.
package dataplane

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/dataplane/apikey"
	"github.com/behalf-dev/behalf/internal/dataplane/federation"
	"github.com/behalf-dev/behalf/internal/dataplane/gatewaycall"
	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/dataplane/webidentity"
	"github.com/behalf-dev/behalf/internal/dataplane/workloadtoken"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/secretsource"
	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
	"github.com/behalf-dev/behalf/internal/workloadjwt"
)

// Deps are the data plane's collaborators.
type Deps struct {
	Store storage.Storage
	Vault *vault.Vault
	// Secrets reads the secrets of providers that keep them outside
	// behalf (EXTERNAL); nil reads none.
	Secrets *secretsource.Resolver
	Tokens  *wat.Issuer
	// Users is nil when no inbound authorizer is configured.
	Users access.UserVerifier
	OAuth *oauthclient.Client
	// ClientKeys signs the client assertions of the MCP server providers
	// whose client is a Client ID Metadata Document's with private_key_jwt
	// (control.NewClientKeys); nil refuses them.
	ClientKeys tokenflow.ClientSigner
	// WorkloadJWTs signs behalf's own workload JWTs: GetWorkloadJWT's,
	// and the on-behalf-of actor tokens of AWS_IAM_ID_TOKEN_JWT.
	WorkloadJWTs *workloadjwt.Issuer
	// HeldKeys sign the client assertions of PRIVATE_KEY_JWT providers
	// (signingkeys.Held); nil refuses them.
	HeldKeys signingkeys.KeySigners
	// Principal looks up a principal, through the authenticator's cache.
	Principal func(ctx context.Context, accessKeyID string) (storage.Principal, error)
	Now       func() time.Time
	// RecordTTL bounds how long a change made through another replica to a
	// workload identity or provider takes to be seen; default 2s.
	RecordTTL time.Duration
	// Audit records what happens outside API calls (browser callbacks,
	// the development page, refreshes), each change with its record.
	Audit      wire.AuditLog
	Log        *slog.Logger
	Federation federation.Options
	// Metrics records the data plane's metrics; nil records nothing.
	Metrics *telemetry.Metrics
	// SignedCallers authenticates the callers signing with SigV4 whose
	// requests behalf gateway passes on: the API's authenticator.
	SignedCallers workloadtoken.PayloadHashAuthenticator
}

// DataPlane is the assembled data plane.
type DataPlane struct {
	access        *access.Checker
	workloadToken *workloadtoken.Service
	apiKey        *apikey.Service
	tokenFlow     *tokenflow.Service
	// Federation serves USER_FEDERATION; the control plane revokes
	// connections through it.
	Federation  *federation.Service
	gatewayCall *gatewaycall.Service
	webIdentity *webidentity.Service
}

// New wires the data plane's parts.
func New(d Deps) *DataPlane {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.RecordTTL <= 0 {
		d.RecordTTL = 2 * time.Second
	}
	checker := access.New(access.Deps{Store: d.Store, Tokens: d.Tokens, Users: d.Users, Principal: d.Principal, Now: d.Now, RecordTTL: d.RecordTTL, Metrics: d.Metrics})
	secrets := access.Secrets{Vault: d.Vault, External: d.Secrets}
	endpoint := tokenflow.Endpoint{Secrets: secrets, OAuth: d.OAuth, ClientKeys: d.ClientKeys, HeldKeys: d.HeldKeys}
	fed := federation.New(federation.Deps{Access: checker, Store: d.Store, Vault: d.Vault, Endpoint: endpoint, OAuth: d.OAuth,
		Now: d.Now, RecordTTL: d.RecordTTL, Audit: d.Audit, Log: d.Log, Metrics: d.Metrics}, d.Federation)
	return &DataPlane{
		access:        checker,
		workloadToken: workloadtoken.New(checker, d.Tokens, d.Metrics, d.SignedCallers),
		apiKey:        apikey.New(checker, secrets),
		tokenFlow: tokenflow.New(tokenflow.Deps{Access: checker, Store: d.Store, Vault: d.Vault, Endpoint: endpoint,
			WorkloadJWTs: d.WorkloadJWTs, Now: d.Now, RecordTTL: d.RecordTTL, Log: d.Log, Metrics: d.Metrics}, fed),
		Federation:  fed,
		gatewayCall: gatewaycall.New(d.Tokens),
		webIdentity: webidentity.New(checker, d.WorkloadJWTs),
	}
}

// Invalidate drops any cached copy of a changed resource. A changed
// provider or workload identity may have had its connections dropped
// (a provider's new endpoints, a deletion), so cached connections go too.
func (dp *DataPlane) Invalidate(r storage.Resource) {
	dp.access.Invalidate(r)
	if r.Kind == storage.KindOAuth2Provider || r.Kind == storage.KindWorkloadIdentity {
		dp.Federation.ForgetAll()
	}
}

// Mount registers the data-plane operations on the router and the
// browser routes (the OAuth callback, the development page) on mux.
func (dp *DataPlane) Mount(rt *wire.Router, mux *http.ServeMux) {
	rt.Handle(dp.workloadToken.Operations()...)
	rt.Handle(dp.apiKey.Operations()...)
	rt.Handle(dp.tokenFlow.Operations()...)
	rt.Handle(dp.Federation.Operations()...)
	rt.Handle(dp.gatewayCall.Operations()...)
	rt.Handle(dp.webIdentity.Operations()...)
	dp.Federation.Mount(mux)
}
