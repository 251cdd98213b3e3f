package sdk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"golang.org/x/oauth2"
)

// API is the part of the AgentCore data plane this package calls;
// *bedrockagentcore.Client implements it.
type API interface {
	GetResourceOauth2Token(ctx context.Context, in *bedrockagentcore.GetResourceOauth2TokenInput, opts ...func(*bedrockagentcore.Options)) (*bedrockagentcore.GetResourceOauth2TokenOutput, error)
	GetResourceApiKey(ctx context.Context, in *bedrockagentcore.GetResourceApiKeyInput, opts ...func(*bedrockagentcore.Options)) (*bedrockagentcore.GetResourceApiKeyOutput, error)
}

// ErrNoWorkloadToken is returned when a credential is asked for with no
// workload access token given and none in the context.
var ErrNoWorkloadToken = errors.New("sdk: no workload access token: none given and none in the context (is the handler behind sdk.Middleware, and did the runtime send " + HeaderWorkloadToken + "?)")

// The flows of GetResourceOauth2Token this package supports.
const (
	M2M            = types.Oauth2FlowTypeM2m
	UserFederation = types.Oauth2FlowTypeUserFederation
)

// OAuth2 says which OAuth2 token to get: GetResourceOauth2Token's input.
type OAuth2 struct {
	Provider string               // the credential provider's name
	Flow     types.Oauth2FlowType // M2M or UserFederation
	Scopes   []string

	// WorkloadToken defaults to the context's (sdk.WorkloadToken).
	WorkloadToken string
	// ReturnURL (ResourceOauth2ReturnUrl) defaults to the context's
	// callback URL (sdk.CallbackURL).
	ReturnURL        string
	CustomParameters map[string]string
	Audiences        []string
	Resources        []string

	// OnAuthURL, when set, makes a USER_FEDERATION request block: it is
	// called with the consent the user must give, then the token source
	// waits for it (ConsentRequired.Wait). When nil, the token source
	// returns the *ConsentRequired at once.
	OnAuthURL func(ctx context.Context, c *ConsentRequired) error

	// TTL is how long a token whose expiry cannot be read (one that is not
	// a JWT) is reused; default one minute. A JWT is reused until shortly
	// before its exp claim.
	TTL time.Duration
}

// TokenSource is an oauth2.TokenSource for one provider, flow and scopes,
// bound to one workload access token. It reuses a token until shortly
// before it expires, and is safe for concurrent use.
type TokenSource struct {
	api API
	ctx context.Context
	in  bedrockagentcore.GetResourceOauth2TokenInput
	o   OAuth2
	now func() time.Time

	mu    sync.Mutex
	token *oauth2.Token
	force bool
}

// NewTokenSource returns a token source for o. The workload token and the
// return URL default to those of ctx's invocation; ctx is also the context
// of the calls Token makes (TokenContext takes one per call).
func NewTokenSource(ctx context.Context, api API, o OAuth2) (*TokenSource, error) {
	wat := o.WorkloadToken
	if wat == "" {
		wat = WorkloadToken(ctx)
	}
	if wat == "" {
		return nil, ErrNoWorkloadToken
	}
	in := bedrockagentcore.GetResourceOauth2TokenInput{
		WorkloadIdentityToken:          &wat,
		ResourceCredentialProviderName: &o.Provider,
		Oauth2Flow:                     o.Flow,
		Scopes:                         o.Scopes,
		CustomParameters:               o.CustomParameters,
		Audiences:                      o.Audiences,
		Resources:                      o.Resources,
	}
	if o.ReturnURL == "" {
		o.ReturnURL = CallbackURL(ctx)
	}
	if o.ReturnURL != "" {
		in.ResourceOauth2ReturnUrl = &o.ReturnURL
	}
	if o.TTL <= 0 {
		o.TTL = time.Minute
	}
	return &TokenSource{api: api, ctx: ctx, in: in, o: o, now: time.Now}, nil
}

// Token returns a valid token, with the context the source was made with.
func (s *TokenSource) Token() (*oauth2.Token, error) { return s.TokenContext(s.ctx) }

// TokenContext returns a valid token: the cached one, or a new one from
// GetResourceOauth2Token. For USER_FEDERATION, while the user has not
// consented, the error is a *ConsentRequired (unless OAuth2.OnAuthURL is
// set: then it waits for the consent).
func (s *TokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	if t := s.token; t != nil && !s.force && s.now().Before(t.Expiry) {
		s.mu.Unlock()
		return t, nil
	}
	in := s.in
	if s.force {
		in.ForceAuthentication = new(true)
	}
	s.mu.Unlock()

	out, err := s.api.GetResourceOauth2Token(ctx, &in)
	if err != nil {
		return nil, err
	}
	if out.AccessToken == nil {
		c := &ConsentRequired{Provider: s.o.Provider, source: s}
		if out.AuthorizationUrl != nil {
			c.AuthorizationURL = *out.AuthorizationUrl
		}
		if out.SessionUri != nil {
			c.SessionURI = *out.SessionUri
		}
		if s.o.OnAuthURL == nil {
			return nil, c
		}
		if err := s.o.OnAuthURL(ctx, c); err != nil {
			return nil, err
		}
		return c.Wait(ctx)
	}
	return s.keep(*out.AccessToken), nil
}

// Refresh makes the next Token call ask GetResourceOauth2Token again, with
// forceAuthentication: after an API refused the token, for example. For
// USER_FEDERATION this starts a new consent.
func (s *TokenSource) Refresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.force = true
}

// scopes returns the scopes the source asks for.
func (s *TokenSource) scopes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.in.Scopes
}

// stepUp makes the source ask for challenged too, after an API answered
// a token asked for with asked 403 insufficient_scope (RFC 6750 §3.1);
// the next Token call asks GetResourceOauth2Token again, without
// forceAuthentication: a token that covers them may already be there.
// It reports false when asked held them all (the same token would come
// back), or when the scopes would outgrow GetResourceOauth2Token's.
func (s *TokenSource) stepUp(asked, challenged []string) bool {
	if !slices.ContainsFunc(challenged, func(sc string) bool { return !slices.Contains(asked, sc) }) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	scopes := slices.Clone(s.in.Scopes)
	for _, sc := range challenged {
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	switch {
	case len(scopes) > maxScopes:
		return false
	case len(scopes) == len(s.in.Scopes):
		return true // another request stepped up to them already: its token stays
	}
	s.in.Scopes, s.token = scopes, nil
	return true
}

// keep caches a token just obtained and returns it.
func (s *TokenSource) keep(access string) *oauth2.Token {
	now := s.now()
	t := &oauth2.Token{AccessToken: access, TokenType: "Bearer", Expiry: now.Add(s.o.TTL)}
	if exp, ok := jwtExpiry(access); ok {
		t.Expiry = exp.Add(-expiryMargin)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.force = t, false
	return t
}

// expiryMargin is how long before its exp claim a JWT stops being reused,
// so that it does not expire on its way to the API.
const expiryMargin = 30 * time.Second

// jwtExpiry reads the exp claim (RFC 7519 §4.1.4) of a token that looks
// like a JWT, without verifying it: it only decides when to ask again.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > 8192 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}, false
	}
	exp, err := claims.Exp.Int64()
	if err != nil || exp <= 0 {
		return time.Time{}, false
	}
	return time.Unix(exp, 0), true
}
