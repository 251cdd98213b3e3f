// Package tokenflow serves GetResourceOauth2Token: one pipeline for every
// OAuth2 flow that obtains a token from a provider's token endpoint on the
// workload's behalf. The grant is the part that varies (client
// credentials for M2M, RFC 8693 token exchange for on-behalf-of); the
// pipeline does the rest: the cache of issued tokens, one upstream request
// however many callers ask at once, the client secret, the token request
// and its errors. USER_FEDERATION, which needs the user's consent first,
// is handed to a UserFlow (package federation).
package tokenflow

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/secretsource"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
	"github.com/behalf-dev/behalf/internal/workloadjwt"
)

// OAuth2 flows (AgentCore's Oauth2FlowType).
const (
	FlowUserFederation = "USER_FEDERATION"
	FlowM2M            = "M2M"
	FlowOnBehalfOf     = "ON_BEHALF_OF_TOKEN_EXCHANGE"
)

// UserFlow serves USER_FEDERATION.
type UserFlow interface {
	UserToken(ctx context.Context, c *wire.Call, v access.Verified, p access.OAuth2Provider, in *Request) (*Response, error)
}

// Deps are the pipeline's collaborators.
type Deps struct {
	Access   *access.Checker
	Store    storage.Storage
	Vault    *vault.Vault
	Endpoint Endpoint
	Now      func() time.Time
	// RecordTTL bounds how long a cached token read from storage is kept
	// in memory.
	RecordTTL time.Duration
	// Log receives what no caller can act on (a cached token that does
	// not open); nil discards it.
	Log *slog.Logger
	// Metrics counts the token cache's hits and misses; nil counts
	// nothing.
	Metrics *telemetry.Metrics
	// WorkloadJWTs signs the actor tokens of actorTokenContent
	// AWS_IAM_ID_TOKEN_JWT; nil refuses them.
	WorkloadJWTs *workloadjwt.Issuer
}

func (s *Service) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Service serves GetResourceOauth2Token.
type Service struct {
	Deps
	users UserFlow
	// inflight shares one upstream request among callers asking for the
	// same token.
	inflight singleflight.Group
	// tokens keeps sealed tokens read from storage, so that a hot entry is
	// not read on every call. Its lookups are not counted: issue counts
	// one m2m_token lookup per call, a hit when the token came from memory
	// or storage rather than the provider.
	tokens *access.Cache[storage.CachedToken]
}

// New returns the service; users serves USER_FEDERATION.
func New(d Deps, users UserFlow) *Service {
	return &Service{Deps: d, users: users, tokens: access.NewCache[storage.CachedToken](d.RecordTTL, d.Now, "", nil)}
}

// Operations lists GetResourceOauth2Token; every call is audited.
func (s *Service) Operations() []wire.Operation {
	return wire.Audited(wire.JSON("GetResourceOauth2Token", "/identities/oauth2/token", http.StatusOK, s.getResourceOAuth2Token))
}

var (
	// SessionURIPattern and ReturnURLPattern are the members' patterns in
	// the AWS API reference of GetResourceOauth2Token.
	SessionURIPattern   = wire.Pattern(`urn:ietf:params:oauth:request_uri:[a-zA-Z0-9-._~]+`)
	returnURLPattern    = wire.Pattern(`\w+:(\/?\/?)[^\s]+`)
	customParamPattern  = wire.Pattern(`[a-zA-Z0-9\-_\.]+`)
	reservedTokenParams = []string{"grant_type", "scope", "resource", "audience", "client_id", "client_secret", "client_assertion",
		"client_assertion_type", "code", "code_verifier", "redirect_uri", "refresh_token", "state", "subject_token",
		"subject_token_type", "actor_token", "actor_token_type", "requested_token_type", "response_type", "code_challenge",
		"code_challenge_method", "nonce", "request_uri"}
)

// Request is GetResourceOauth2Token's input.
type Request struct {
	Token               string            `json:"workloadIdentityToken"`
	Provider            string            `json:"resourceCredentialProviderName"`
	Scopes              []string          `json:"scopes"`
	Flow                string            `json:"oauth2Flow"`
	SessionURI          *string           `json:"sessionUri,omitempty"`
	ReturnURL           *string           `json:"resourceOauth2ReturnUrl,omitempty"`
	ForceAuthentication *bool             `json:"forceAuthentication,omitempty"`
	CustomParameters    map[string]string `json:"customParameters,omitempty"`
	CustomState         *string           `json:"customState,omitempty"`
	Resources           []string          `json:"resources,omitempty"`
	Audiences           []string          `json:"audiences,omitempty"`
}

// Validate implements wire.Validator.
func (in *Request) Validate(c *wire.Checker) {
	c.String("workloadIdentityToken", in.Token, 1, 131072, nil)
	c.String("resourceCredentialProviderName", in.Provider, 1, 128, access.ProviderNamePattern)
	c.Required("scopes", in.Scopes != nil)
	c.Strings("scopes", in.Scopes, 0, 100, 1, 128, nil)
	c.Enum("oauth2Flow", in.Flow, true, FlowUserFederation, FlowM2M, FlowOnBehalfOf)
	c.OptString("sessionUri", in.SessionURI, 1, 1024, SessionURIPattern)
	c.OptString("resourceOauth2ReturnUrl", in.ReturnURL, 1, 2048, returnURLPattern)
	c.OptString("customState", in.CustomState, 1, 4096, nil)
	c.Strings("resources", in.Resources, 0, 20, 1, 2048, nil)
	c.Strings("audiences", in.Audiences, 0, 20, 1, 2048, nil)
	validateCustomParameters(c, in.CustomParameters)
}

// Bounds of customParameters. GetResourceOauth2Token's API reference
// bounds each key (256) and value (2048) but not the map; behalf takes
// the bound AgentCore documents for customParameters elsewhere
// (OAuthCredentialProvider: 10 entries) and bounds the total, which ends
// up in an authorization URL that browsers and servers cap near 8 KB.
const (
	maxCustomParameters     = 10
	maxCustomParameterBytes = 4096
)

func validateCustomParameters(c *wire.Checker, params map[string]string) {
	if len(params) > maxCustomParameters {
		c.Failf("customParameters", "must have at most %d entries", maxCustomParameters)
		return
	}
	total := 0
	for k, v := range params {
		total += len(k) + len(v)
	}
	if total > maxCustomParameterBytes {
		c.Failf("customParameters", "must total at most %d bytes of keys and values", maxCustomParameterBytes)
		return
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.String("customParameters key", k, 1, 256, customParamPattern)
		c.String("customParameters["+k+"]", params[k], 1, 2048, nil)
		if slices.Contains(reservedTokenParams, strings.ToLower(k)) {
			c.Failf("customParameters["+k+"]", "may not override the standard OAuth parameter %s", k)
		}
	}
}

// grantRequest is what the workload's grant for the provider must allow.
func (in *Request) grantRequest() authz.GrantRequest {
	return authz.GrantRequest{Scopes: in.Scopes, Resources: in.Resources, Audiences: in.Audiences, CustomParameters: in.CustomParameters}
}

// Response is GetResourceOauth2Token's output.
type Response struct {
	AccessToken      string `json:"accessToken,omitempty"`
	AuthorizationURL string `json:"authorizationUrl,omitempty"`
	SessionURI       string `json:"sessionUri,omitempty"`
	SessionStatus    string `json:"sessionStatus,omitempty"`
}

func (s *Service) getResourceOAuth2Token(ctx context.Context, c *wire.Call, in *Request) (*Response, error) {
	c.Audit.Flow = in.Flow
	v, err := s.Access.Authorize(ctx, c, in.Token, in.Provider, in.grantRequest())
	if err != nil {
		return nil, err
	}
	p, err := s.Access.OAuth2Provider(ctx, in.Provider)
	if err != nil {
		return nil, err
	}
	if ref := p.ExternalSecret; ref != nil {
		c.Audit.Resource = secretsource.AuditName(*ref)
	}
	if scopes := p.Config.Scopes(in.Scopes); len(scopes) != len(in.Scopes) {
		// No scopes asked of an MCP server provider: its selection made at
		// discovery. Authorize let an empty request through only for a
		// grant that does not limit scopes, which allows these.
		selected := *in
		selected.Scopes, c.Audit.Scopes = scopes, scopes
		in = &selected
	}
	var g Grant
	switch {
	case in.Flow == FlowM2M:
		g = clientCredentials{}
	case in.Flow == FlowOnBehalfOf:
		g = s.onBehalfOf(v, p)
	case p.Config.MCP != nil && p.Config.MCP.IdentityProvider != "":
		idp, err := s.Access.OAuth2Provider(ctx, p.Config.MCP.IdentityProvider)
		switch we := (*wire.Error)(nil); {
		case errors.As(err, &we) && we.Type == wire.TypeNotFound:
			return nil, wire.NotFound("credential provider %s names the enterprise IdP's provider %s, which does not exist", p.Name, p.Config.MCP.IdentityProvider)
		case err != nil:
			return nil, err
		}
		g = newIDJAG(s.Endpoint, p, idp, in.Scopes)
	default:
		return s.users.UserToken(ctx, c, v, p, in)
	}
	token, err := s.issue(ctx, g, v, p, in)
	if err != nil {
		return nil, err
	}
	return &Response{AccessToken: token}, nil
}
