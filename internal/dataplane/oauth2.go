package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// OAuth2 flows (AgentCore's Oauth2FlowType).
const (
	FlowUserFederation = "USER_FEDERATION"
	FlowM2M            = "M2M"
	FlowOnBehalfOf     = "ON_BEHALF_OF_TOKEN_EXCHANGE"
)

var (
	sessionURIPattern   = wire.Pattern(`urn:ietf:params:oauth:request_uri:[a-zA-Z0-9-._~]+`)
	returnURLPattern    = wire.Pattern(`\w+:(\/?\/?)[^\s]+`)
	customParamPattern  = wire.Pattern(`[a-zA-Z0-9\-_\.]+`)
	reservedTokenParams = []string{"grant_type", "scope", "resource", "audience", "client_id", "client_secret", "client_assertion",
		"client_assertion_type", "code", "code_verifier", "redirect_uri", "refresh_token", "state", "subject_token",
		"subject_token_type", "actor_token", "actor_token_type", "requested_token_type", "response_type", "code_challenge",
		"code_challenge_method", "nonce", "request_uri"}
)

type oauth2TokenInput struct {
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

func (in *oauth2TokenInput) Validate(c *wire.Checker) {
	c.String("workloadIdentityToken", in.Token, 1, 131072, nil)
	c.String("resourceCredentialProviderName", in.Provider, 1, 128, providerNamePattern)
	c.Required("scopes", in.Scopes != nil)
	c.Strings("scopes", in.Scopes, 0, 100, 1, 128, nil)
	c.Enum("oauth2Flow", in.Flow, true, FlowUserFederation, FlowM2M, FlowOnBehalfOf)
	c.OptString("sessionUri", in.SessionURI, 1, 1024, sessionURIPattern)
	c.OptString("resourceOauth2ReturnUrl", in.ReturnURL, 1, 2048, returnURLPattern)
	c.OptString("customState", in.CustomState, 1, 4096, nil)
	c.Strings("resources", in.Resources, 0, 20, 1, 2048, nil)
	c.Strings("audiences", in.Audiences, 0, 20, 1, 2048, nil)
	if len(in.CustomParameters) > 50 {
		c.Failf("customParameters", "must have at most 50 entries")
		return
	}
	keys := make([]string, 0, len(in.CustomParameters))
	for k := range in.CustomParameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.String("customParameters key", k, 1, 256, customParamPattern)
		c.String("customParameters["+k+"]", in.CustomParameters[k], 1, 2048, nil)
		if slices.Contains(reservedTokenParams, strings.ToLower(k)) {
			c.Failf("customParameters["+k+"]", "may not override the standard OAuth parameter %s", k)
		}
	}
}

type oauth2TokenOutput struct {
	AccessToken      string `json:"accessToken,omitempty"`
	AuthorizationURL string `json:"authorizationUrl,omitempty"`
	SessionURI       string `json:"sessionUri,omitempty"`
	SessionStatus    string `json:"sessionStatus,omitempty"`
}

func (s *Service) getResourceOAuth2Token(ctx context.Context, c *wire.Call, in *oauth2TokenInput) (*oauth2TokenOutput, error) {
	c.Audit.Flow = in.Flow
	a, err := s.authorize(ctx, c, in.Token, in.Provider, in.Scopes)
	if err != nil {
		return nil, err
	}
	cp, err := s.oauth2.get(ctx, in.Provider, s.loadOAuth2Provider)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, wire.NotFound("OAuth2 credential provider %s does not exist", in.Provider)
	case err != nil:
		return nil, wire.Internal(err)
	}
	p, cfg := cp.OAuth2Provider, cp.cfg
	switch in.Flow {
	case FlowM2M:
		token, err := s.machineToken(ctx, p, cfg, a.workload, in)
		if err != nil {
			return nil, err
		}
		return &oauth2TokenOutput{AccessToken: token}, nil
	case FlowOnBehalfOf:
		return s.onBehalfOf(ctx, a, cp, in)
	}
	return s.userFederation(ctx, c, a, cp, in)
}

func (s *Service) loadOAuth2Provider(ctx context.Context, name string) (oauth2Provider, error) {
	p, err := s.Store.GetOAuth2Provider(ctx, name)
	if err != nil {
		return oauth2Provider{}, err
	}
	cfg, err := provider.Decode(p.Config)
	return oauth2Provider{OAuth2Provider: p, cfg: cfg}, err
}

// cacheRefreshMargin is how long before expiry a token is replaced: a
// minute, or a tenth of its lifetime when that is shorter, so that a
// provider's short-lived tokens are still used for most of their life.
const cacheRefreshMargin = time.Minute

func refreshMargin(lifetime time.Duration) time.Duration {
	if lifetime > 0 && lifetime/10 < cacheRefreshMargin {
		return lifetime / 10
	}
	return cacheRefreshMargin
}

// defaultTokenLifetime is assumed for a token whose response gave no
// expires_in.
const defaultTokenLifetime = 5 * time.Minute

// machineToken returns a client-credentials token (RFC 6749 §4.4) for the
// workload, from the vault when a fresh one is cached. Concurrent callers
// for the same entry share one upstream request.
func (s *Service) machineToken(ctx context.Context, p storage.OAuth2Provider, cfg provider.OAuth2, w storage.WorkloadIdentity, in *oauth2TokenInput) (string, error) {
	workload := w.Name
	v := cfg.VendorInfo()
	if cfg.Vendor != "CustomOauth2" && !v.SupportsClientCredentials {
		return "", wire.Validation(fmt.Sprintf("credential provider %s (%s) does not support the M2M (client credentials) flow", p.Name, cfg.Vendor),
			wire.FieldError{Name: "oauth2Flow", Message: "M2M is not supported by this vendor"})
	}
	if g := cfg.Resolved.GrantTypesSupported; len(g) > 0 && !slices.Contains(g, "client_credentials") {
		return "", wire.Validation(fmt.Sprintf("credential provider %s does not offer the client_credentials grant", p.Name),
			wire.FieldError{Name: "oauth2Flow", Message: "M2M is not supported by this provider"})
	}
	key := cacheKey(in, p.UpdatedAt, w.CreatedAt)
	binding := vault.Binding{Kind: storage.SecretCachedToken, Owner: p.ID, Workload: workload, User: key}
	if token, ok := s.cachedToken(ctx, p.ID, workload, key, binding); ok {
		return token, nil
	}
	v2, err, _ := s.m2m.Do(p.ID+"\x00"+workload+"\x00"+key, func() (any, error) {
		// Another caller may have filled the cache while this one waited.
		if token, ok := s.cachedToken(ctx, p.ID, workload, key, binding); ok {
			return token, nil
		}
		secret, err := s.Vault.Open(ctx, p.ClientSecret, vault.Binding{Kind: storage.SecretOAuth2ClientSecret, Owner: p.ID})
		if err != nil {
			return nil, wire.Internal(fmt.Errorf("open client secret of %s: %w", p.Name, err))
		}
		form := url.Values{"grant_type": {"client_credentials"}}
		if len(in.Scopes) > 0 {
			form.Set("scope", cfg.VendorInfo().JoinScopes(in.Scopes))
		}
		addRequestParameters(form, in)
		tok, err := s.OAuth.Do(context.WithoutCancel(ctx), tokenRequest(cfg, string(secret), form))
		clear(secret)
		if err != nil {
			return nil, upstreamError(p.Name, err)
		}
		if err := s.putCachedToken(ctx, p.ID, workload, key, binding, tok.AccessToken, tok.Expiry); err != nil {
			return nil, err
		}
		return tok.AccessToken, nil
	})
	if err != nil {
		return "", err
	}
	return v2.(string), nil
}

func (s *Service) cachedToken(ctx context.Context, providerID, workload, key string, b vault.Binding) (string, bool) {
	id := providerID + "\x00" + workload + "\x00" + key
	ct, err := s.tokens.get(ctx, id, func(ctx context.Context, _ string) (storage.CachedToken, error) {
		return s.Store.GetCachedToken(ctx, providerID, workload, key)
	})
	if err != nil || s.Now().Add(refreshMargin(ct.ExpiresAt.Sub(ct.CreatedAt))).After(ct.ExpiresAt) {
		if err == nil {
			s.tokens.invalidate(id)
		}
		return "", false
	}
	token, err := s.Vault.Open(ctx, ct.Token, b)
	if err != nil {
		return "", false
	}
	return string(token), true
}

// putCachedToken keeps a token, sealed, until shortly before it expires.
func (s *Service) putCachedToken(ctx context.Context, providerID, workload, key string, b vault.Binding, token string, expiry time.Time) error {
	if expiry.IsZero() {
		expiry = s.Now().Add(defaultTokenLifetime)
	}
	sealed, err := s.Vault.Seal(ctx, []byte(token), b)
	if err != nil {
		return wire.Internal(err)
	}
	err = s.Store.PutCachedToken(ctx, storage.CachedToken{ProviderID: providerID, Workload: workload, Key: key, Token: sealed, ExpiresAt: expiry, CreatedAt: s.Now()})
	if err != nil {
		return wire.Internal(err)
	}
	s.tokens.invalidate(providerID + "\x00" + workload + "\x00" + key)
	return nil
}

// userDigest separates cache entries per user and per user token.
func userDigest(user, token string) string {
	h := sha256.Sum256([]byte(user + "\x00" + token))
	return hex.EncodeToString(h[:12])
}

// addRequestParameters adds RFC 8707 resource indicators, audiences and
// the caller's custom parameters (which validation keeps from overriding
// standard ones).
func addRequestParameters(form url.Values, in *oauth2TokenInput) {
	for _, r := range in.Resources {
		form.Add("resource", r)
	}
	for _, a := range in.Audiences {
		form.Add("audience", a)
	}
	for k, v := range in.CustomParameters {
		form.Set(k, v)
	}
}

func tokenRequest(cfg provider.OAuth2, secret string, form url.Values) oauthclient.Request {
	v := cfg.VendorInfo()
	return oauthclient.Request{
		Endpoint: cfg.Resolved.TokenEndpoint, AuthMethod: cfg.AuthMethod(), ClientID: cfg.ClientID, ClientSecret: secret, Form: form,
		BodyFormat: v.TokenBodyFormat, Headers: v.TokenRequestHeaders, ErrorsWithStatusOK: v.TokenErrorsWithStatusOK,
	}
}

// cacheKey identifies what a token was requested for: the scope set, the
// resources and audiences, and the custom parameters — and under which
// version of the provider and the workload, so that a token fetched while
// either changed lands where no one looks. Order does not matter and the
// encoding is unambiguous.
func cacheKey(in *oauth2TokenInput, providerVersion, workloadVersion time.Time) string {
	h := sha256.New()
	binary.Write(h, binary.BigEndian, providerVersion.UnixMicro())
	binary.Write(h, binary.BigEndian, workloadVersion.UnixMicro())
	write := func(label string, items []string) {
		items = slices.Clone(items)
		slices.Sort(items)
		items = slices.Compact(items)
		binary.Write(h, binary.BigEndian, uint32(len(label)))
		h.Write([]byte(label))
		binary.Write(h, binary.BigEndian, uint32(len(items)))
		for _, it := range items {
			binary.Write(h, binary.BigEndian, uint32(len(it)))
			h.Write([]byte(it))
		}
	}
	write("scopes", in.Scopes)
	write("resources", in.Resources)
	write("audiences", in.Audiences)
	params := make([]string, 0, len(in.CustomParameters))
	for k, v := range in.CustomParameters {
		params = append(params, k+"\x00"+v)
	}
	write("parameters", params)
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// upstreamError maps a token endpoint failure to an API error that quotes
// the provider's error and description.
func upstreamError(providerName string, err error) error {
	var pe *oauthclient.ProviderError
	if !errors.As(err, &pe) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return wire.BadGateway("credential provider %s: the token request was cancelled", providerName)
		}
		return wire.Internal(err)
	}
	msg := fmt.Sprintf("credential provider %s: %s", providerName, pe.Error())
	switch {
	case pe.Status == 429 || pe.Code == "slow_down" || pe.Code == "temporarily_unavailable":
		return wire.Throttling("%s", msg)
	case slices.Contains([]string{"invalid_scope", "invalid_request", "invalid_target", "unsupported_grant_type"}, pe.Code):
		return wire.Validation(msg, wire.FieldError{Name: "scopes", Message: pe.Error()})
	case pe.Code != "":
		return wire.AccessDenied("%s", msg)
	}
	return wire.BadGateway("%s", msg)
}
