package federation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wire"
)

// startSession answers a request that needs the user's consent with an
// authorization URL: that of an open session for the same request when
// there is one (so that an agent asking again and again stores nothing
// more), else of a new session, which the new-session limits must admit.
// forceAuthentication always starts a new session. The session is stored
// with the call's audit record (Call.Change).
func (s *Service) startSession(ctx context.Context, c *wire.Call, v access.Verified, p access.OAuth2Provider, in *tokenflow.Request) (*tokenflow.Response, error) {
	w := v.Workload
	switch {
	case len(w.AllowedReturnURLs) == 0:
		return nil, wire.Validation(fmt.Sprintf("workload identity %s has no allowedResourceOauth2ReturnUrls: register at least one to use USER_FEDERATION", w.Name),
			wire.FieldError{Name: "resourceOauth2ReturnUrl", Message: "no return URL is registered on the workload identity"})
	case in.ReturnURL == nil:
		return nil, wire.Validation("resourceOauth2ReturnUrl is required to start a USER_FEDERATION authorization",
			wire.FieldError{Name: "resourceOauth2ReturnUrl", Message: "is required"})
	case !slices.Contains(w.AllowedReturnURLs, *in.ReturnURL):
		return nil, wire.Validation(fmt.Sprintf("resourceOauth2ReturnUrl is not one of workload identity %s's allowedResourceOauth2ReturnUrls", w.Name),
			wire.FieldError{Name: "resourceOauth2ReturnUrl", Message: "is not an allowed return URL of the workload identity"})
	case p.Config.Resolved.AuthorizationEndpoint == "":
		return nil, wire.Validation(fmt.Sprintf("credential provider %s has no authorization endpoint, so it cannot run USER_FEDERATION", p.Name),
			wire.FieldError{Name: "oauth2Flow", Message: "USER_FEDERATION is not supported by this provider"})
	case p.ClientSecret.Lost():
		// The code could never be redeemed: do not send the user to consent.
		return nil, access.SecretLost(p.Name, "client credential", p.Config.UpdateOperation())
	}
	sess, authURL, err := s.newSession(ctx, v, p, in)
	if err != nil {
		return nil, err
	}
	admit := func() error { return s.admitSession(ctx, w.Name, v.Claims.User, c.Caller.AccessKeyID, "caller") }
	if in.ForceAuthentication != nil && *in.ForceAuthentication {
		if err := admit(); err != nil {
			return nil, err
		}
		if err := c.Change(s.Store).CreateOAuthSession(ctx, sess); err != nil {
			return nil, fmt.Errorf("create session: %w", err)
		}
		s.Metrics.Session(ctx, telemetry.SessionStarted)
	} else {
		sess.RequestKey = requestKey(p, w, v.Claims.User, in)
		if sess, authURL, err = s.startOrReuse(ctx, c.Change(s.Store), sess, authURL, admit); err != nil {
			return nil, err
		}
	}
	return &tokenflow.Response{AuthorizationURL: authURL, SessionURI: SessionURIPrefix + sess.ID, SessionStatus: string(storage.SessionInProgress)}, nil
}

// newSession builds, without storing it, a session for the request, and
// returns it with its authorization URL. The caller's custom parameters
// are kept only inside that URL: nothing else needs them.
func (s *Service) newSession(ctx context.Context, v access.Verified, p access.OAuth2Provider, in *tokenflow.Request) (storage.OAuthSession, string, error) {
	id, state := randomToken(), randomToken()
	var secrets sessionSecrets
	if in.CustomState != nil {
		secrets.CustomState = *in.CustomState
	}
	authURL, verifier := s.authorizationURL(p, state, in)
	secrets.AuthorizationURL, secrets.Verifier = authURL, verifier
	request, err := json.Marshal(sessionRequest{Scopes: in.Scopes, Resources: in.Resources, Audiences: in.Audiences, ReturnURL: *in.ReturnURL})
	if err != nil {
		return storage.OAuthSession{}, "", fmt.Errorf("encode session request: %w", err)
	}
	now := s.Now()
	stateHash := sha256.Sum256([]byte(state))
	sess := storage.OAuthSession{
		ID: id, StateHash: stateHash[:], ProviderID: p.ID, Workload: v.Workload.Name, User: v.Claims.User,
		Status: storage.SessionInProgress, Request: request,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.sessionTTL()),
	}
	if sess.Secrets, err = s.sealSession(ctx, sess, secrets); err != nil {
		return storage.OAuthSession{}, "", fmt.Errorf("seal session: %w", err)
	}
	return sess, authURL, nil
}

// startOrReuse stores sess, with the record st writes, unless an open
// session for the same request (its RequestKey) has half its lifetime
// left — so that the user is not sent to one about to expire — which it
// returns instead, with its authorization URL. A new session must pass
// admit.
func (s *Service) startOrReuse(ctx context.Context, st storage.Storage, sess storage.OAuthSession, authURL string,
	admit func() error) (storage.OAuthSession, string, error) {
	stored, reused, err := st.StartOAuthSession(ctx, sess, s.Now().Add(s.sessionTTL()/2), admit)
	switch {
	case err != nil:
		return sess, "", err // admit's refusal, or a storage failure
	case !reused:
		s.Metrics.Session(ctx, telemetry.SessionStarted)
		return sess, authURL, nil
	}
	secrets, err := s.openSession(ctx, stored)
	if err != nil {
		return sess, "", err
	}
	return stored, secrets.AuthorizationURL, nil
}

// admitSession applies the limits on new consent sessions: per user of a
// workload, and per principal starting them (who names it: "caller" or
// "portal").
func (s *Service) admitSession(ctx context.Context, workload, user, principal, who string) error {
	if !s.sessionsPerUser.Allow(workload + "\x00" + user) {
		s.Metrics.RateLimited(ctx, telemetry.LimitSessionsPerUser)
		return wire.Throttling("too many new authorization sessions for this user; finish or reuse an open one, or retry in a minute")
	}
	if !s.sessionsPerPrincipal.Allow(principal) {
		s.Metrics.RateLimited(ctx, telemetry.LimitSessionsPerPrincipal)
		return wire.Throttling("too many new authorization sessions for this " + who + "; retry in a minute")
	}
	return nil
}

// requestKey names what makes two requests' authorization URLs and
// outcomes the same: the provider (and its version), the workload, the
// user, the scope set, resources, audiences, custom parameters, return URL
// and custom state. The encoding (netstrings in a fixed order) is
// unambiguous, and order-free where order does not matter.
func requestKey(p access.OAuth2Provider, w storage.WorkloadIdentity, user string, in *tokenflow.Request) []byte {
	var b []byte
	field := func(v string) { // a netstring: length, colon, bytes, comma
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(append(append(b, ':'), v...), ',')
	}
	write := func(label string, items ...string) {
		field(label)
		field(strconv.Itoa(len(items)))
		for _, it := range items {
			field(it)
		}
	}
	set := func(label string, items []string) {
		items = slices.Clone(items)
		slices.Sort(items)
		write(label, slices.Compact(items)...)
	}
	write("provider", p.ID, strconv.FormatInt(p.UpdatedAt.UnixMicro(), 10))
	write("workload", w.Name, user)
	set("scopes", in.Scopes)
	set("resources", in.Resources)
	set("audiences", in.Audiences)
	params := make([]string, 0, len(in.CustomParameters))
	for k, val := range in.CustomParameters {
		params = append(params, k+"\x00"+val)
	}
	set("parameters", params)
	var returnURL, customState []string
	if in.ReturnURL != nil {
		returnURL = []string{*in.ReturnURL}
	}
	if in.CustomState != nil {
		customState = []string{*in.CustomState}
	}
	write("returnUrl", returnURL...)
	write("customState", customState...)
	sum := sha256.Sum256(b)
	return sum[:]
}

// authorizationURL builds the authorization request (RFC 6749 §4.1.1) with
// PKCE (RFC 7636) when the provider supports it, the scopes that ask for
// a refresh token (provider.OAuth2.RefreshScopes), the vendor's extra
// parameters, RFC 8707 resources and the caller's custom parameters,
// which never override the standard ones (validation refuses those).
func (s *Service) authorizationURL(p access.OAuth2Provider, state string, in *tokenflow.Request) (string, string) {
	v := p.Config.VendorInfo()
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {p.Config.ClientID},
		"redirect_uri":  {s.callbackURL(p.ID)},
		"state":         {state},
	}
	scopes := in.Scopes
	for _, rs := range p.Config.RefreshScopes() {
		if !slices.Contains(scopes, rs) {
			scopes = append(slices.Clone(scopes), rs)
		}
	}
	if len(scopes) > 0 {
		q.Set("scope", v.JoinScopes(scopes))
	}
	verifier := ""
	if p.Config.PKCE() {
		verifier = oauth2.GenerateVerifier()
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
		q.Set("code_challenge_method", "S256")
	}
	for k, val := range v.AuthorizationParams {
		q.Set(k, val)
	}
	tokenflow.AddRequestParameters(q, in)
	if rs := p.Config.Resources(in.Resources); len(rs) > 0 {
		q["resource"] = rs
	}
	endpoint := p.Config.Resolved.AuthorizationEndpoint
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	return endpoint + sep + q.Encode(), verifier
}

func (s *Service) callbackURL(providerID string) string {
	return s.opts.CallbackBase + providerID
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
