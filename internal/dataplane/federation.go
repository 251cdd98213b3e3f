package dataplane

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Three-legged OAuth (USER_FEDERATION), as AgentCore runs it
// (agentcore-api.md §12.5, agentcore-behaviour.md §5):
//
//  1. GetResourceOauth2Token returns the user's stored token when a fresh
//     one covers the request (refreshing it if need be), or else starts a
//     session: an authorization URL with PKCE and a session URI.
//  2. The provider sends the browser to behalf's callback, which checks
//     the state, exchanges the code and keeps the tokens in the session,
//     unusable, then sends the browser to the workload's return URL with
//     session_id.
//  3. CompleteResourceTokenAuth binds the tokens to the user — only the
//     user the session was started for — and the session is spent.
//  4. The agent calls again (with the session URI, or not) and gets the
//     token.

// SessionURIPrefix starts every session URI (RFC 9126 request_uri form).
const SessionURIPrefix = "urn:ietf:params:oauth:request_uri:"

// Session and connection details, stored as JSON.
type sessionRequest struct {
	Scopes    []string `json:"scopes"`
	Resources []string `json:"resources,omitempty"`
	Audiences []string `json:"audiences,omitempty"`
	ReturnURL string   `json:"returnUrl"`
}

type sessionSecrets struct {
	Verifier         string            `json:"verifier,omitempty"`
	AuthorizationURL string            `json:"authorizationUrl"`
	CustomState      string            `json:"customState,omitempty"`
	CustomParameters map[string]string `json:"customParameters,omitempty"`
	Tokens           *tokenSet         `json:"tokens,omitempty"`
}

// tokenSet is what a connection holds, sealed.
type tokenSet struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken,omitempty"`
	// Expiry is unix seconds; 0 when the provider did not say. Issued is
	// when behalf received the token.
	Expiry int64  `json:"expiry,omitempty"`
	Issued int64  `json:"issued,omitempty"`
	Scope  string `json:"scope,omitempty"`
}

type connectionDetails struct {
	Resources []string `json:"resources,omitempty"`
	Audiences []string `json:"audiences,omitempty"`
	// Lifetime is the access token's lifetime in seconds, as issued; it
	// sets how early the token is refreshed.
	Lifetime int64 `json:"lifetime,omitempty"`
}

func details(conn storage.Connection) connectionDetails {
	var d connectionDetails
	_ = json.Unmarshal(conn.Details, &d)
	return d
}

// sessionBinding ties a session's secrets to its id, workload and user, so
// a row re-pointed at another user or workload no longer opens.
func sessionBinding(sess storage.OAuthSession) vault.Binding {
	return vault.Binding{Kind: storage.SecretSession, Owner: sess.ID, Workload: sess.Workload, User: sess.User}
}

func connectionBinding(k storage.ConnectionKey) vault.Binding {
	return vault.Binding{Kind: storage.SecretConnection, Owner: k.ProviderID, Workload: k.Workload, User: k.User}
}

// FederationOptions tune the three-legged flow.
type FederationOptions struct {
	// SessionTTL is how long a user has to consent and be bound; default
	// 10 minutes.
	SessionTTL time.Duration
	// CallbackBase is the public URL prefix of the callback route; a
	// provider's callback URL is CallbackBase + its id.
	CallbackBase string
}

func (s *Service) sessionTTL() time.Duration {
	if s.Federation.SessionTTL > 0 {
		return s.Federation.SessionTTL
	}
	return 10 * time.Minute
}

// userFederation serves GetResourceOauth2Token with USER_FEDERATION.
func (s *Service) userFederation(ctx context.Context, c *wire.Call, a access, p oauth2Provider, in *oauth2TokenInput) (*oauth2TokenOutput, error) {
	if a.claims.User == "" {
		return nil, wire.Validation("USER_FEDERATION needs a workload access token bound to a user; get one with GetWorkloadAccessTokenForJWT or GetWorkloadAccessTokenForUserId",
			wire.FieldError{Name: "workloadIdentityToken", Message: "is not bound to a user"})
	}
	k := storage.ConnectionKey{ProviderID: p.ID, Workload: a.workload.Name, User: a.claims.User}

	if in.SessionURI != nil {
		out, done, err := s.pollSession(ctx, k, *in.SessionURI)
		if err != nil || !done {
			return out, err
		}
	} else if in.ForceAuthentication != nil && *in.ForceAuthentication {
		return s.startSession(ctx, a, p, in)
	}

	token, err := s.userToken(ctx, k, p, in)
	switch {
	case err == nil:
		return &oauth2TokenOutput{AccessToken: token}, nil
	case errors.Is(err, errNeedsConsent):
		return s.startSession(ctx, a, p, in)
	}
	return nil, err
}

var errNeedsConsent = errors.New("the user must consent again")

// pollSession answers a call that names a session: still in progress, or
// failed; done means it completed and the token is in the connection.
func (s *Service) pollSession(ctx context.Context, k storage.ConnectionKey, uri string) (*oauth2TokenOutput, bool, error) {
	id, _ := strings.CutPrefix(uri, SessionURIPrefix)
	sess, err := s.Store.GetOAuthSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, wire.NotFound("session %s does not exist", uri)
	}
	if err != nil {
		return nil, false, wire.Internal(err)
	}
	if sess.ProviderID != k.ProviderID || sess.Workload != k.Workload || sess.User != k.User {
		return nil, false, wire.AccessDenied("session %s belongs to another user, workload identity or provider", uri)
	}
	out := &oauth2TokenOutput{SessionURI: uri, SessionStatus: string(storage.SessionInProgress)}
	switch {
	case sess.Status == storage.SessionCompleted:
		return nil, true, nil
	case sess.Status == storage.SessionFailed || s.Now().After(sess.ExpiresAt):
		out.SessionStatus = string(storage.SessionFailed)
		return out, false, nil
	}
	secrets, err := s.openSession(ctx, sess)
	if err != nil {
		return nil, false, err
	}
	out.AuthorizationURL = secrets.AuthorizationURL
	return out, false, nil
}

// userToken returns the user's access token from their connection,
// refreshing it when it is about to expire.
func (s *Service) userToken(ctx context.Context, k storage.ConnectionKey, p oauth2Provider, in *oauth2TokenInput) (string, error) {
	conn, err := s.Store.GetConnection(ctx, k)
	if errors.Is(err, storage.ErrNotFound) {
		return "", errNeedsConsent
	}
	if err != nil {
		return "", wire.Internal(err)
	}
	if conn.Status != storage.ConnectionActive || !covers(conn, in) {
		return "", errNeedsConsent
	}
	if s.fresh(conn) {
		ts, err := s.openTokens(ctx, conn)
		if err != nil {
			return "", err
		}
		s.touch(ctx, conn)
		return ts.AccessToken, nil
	}
	ts, err := s.refresh(ctx, k, p, in)
	if err != nil {
		return "", err
	}
	return ts.AccessToken, nil
}

// fresh reports whether a connection's access token is good for a while
// yet; a token of unknown lifetime is used until the provider refuses it.
func (s *Service) fresh(conn storage.Connection) bool {
	t := conn.ExpiresAt
	return t.IsZero() || s.Now().Add(refreshMargin(time.Duration(details(conn).Lifetime)*time.Second)).Before(t)
}

// covers reports whether a connection's grant answers the request: every
// requested scope granted, and the same resources and audiences.
func covers(conn storage.Connection, in *oauth2TokenInput) bool {
	for _, sc := range in.Scopes {
		if !slices.Contains(conn.Scopes, sc) {
			return false
		}
	}
	d := details(conn)
	return sameSet(d.Resources, in.Resources) && sameSet(d.Audiences, in.Audiences)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// touchEvery bounds how often a connection's last use is written.
const touchEvery = time.Hour

func (s *Service) touch(ctx context.Context, conn storage.Connection) {
	if s.Now().Sub(conn.LastUsedAt) < touchEvery {
		return
	}
	_, _ = s.Store.UpdateConnection(ctx, conn.ConnectionKey, func(c storage.Connection) (storage.Connection, error) {
		c.LastUsedAt = s.Now()
		return c, nil
	})
}

func (s *Service) openTokens(ctx context.Context, conn storage.Connection) (tokenSet, error) {
	raw, err := s.Vault.Open(ctx, conn.Tokens, connectionBinding(conn.ConnectionKey))
	if err != nil {
		return tokenSet{}, wire.Internal(fmt.Errorf("open tokens of a connection: %w", err))
	}
	var ts tokenSet
	if err := json.Unmarshal(raw, &ts); err != nil {
		return tokenSet{}, wire.Internal(fmt.Errorf("a connection's token set is corrupt: %w", err))
	}
	return ts, nil
}

func (s *Service) openSession(ctx context.Context, sess storage.OAuthSession) (sessionSecrets, error) {
	raw, err := s.Vault.Open(ctx, sess.Secrets, sessionBinding(sess))
	if err != nil {
		return sessionSecrets{}, wire.Internal(fmt.Errorf("open session %s: %w", sess.ID, err))
	}
	var secrets sessionSecrets
	if err := json.Unmarshal(raw, &secrets); err != nil {
		return sessionSecrets{}, wire.Internal(fmt.Errorf("session %s is corrupt: %w", sess.ID, err))
	}
	return secrets, nil
}

func (s *Service) sealSession(ctx context.Context, sess storage.OAuthSession, secrets sessionSecrets) (storage.Sealed, error) {
	raw, err := json.Marshal(secrets)
	if err != nil {
		return storage.Sealed{}, err
	}
	return s.Vault.Seal(ctx, raw, sessionBinding(sess))
}

// startSession begins a three-legged authorization and returns its URL.
func (s *Service) startSession(ctx context.Context, a access, p oauth2Provider, in *oauth2TokenInput) (*oauth2TokenOutput, error) {
	w := a.workload
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
	case p.cfg.Resolved.AuthorizationEndpoint == "":
		return nil, wire.Validation(fmt.Sprintf("credential provider %s has no authorization endpoint, so it cannot run USER_FEDERATION", p.Name),
			wire.FieldError{Name: "oauth2Flow", Message: "USER_FEDERATION is not supported by this provider"})
	}
	id, state := randomToken(), randomToken()
	secrets := sessionSecrets{CustomParameters: in.CustomParameters}
	if in.CustomState != nil {
		secrets.CustomState = *in.CustomState
	}
	authURL, verifier := s.authorizationURL(p, state, in)
	secrets.AuthorizationURL, secrets.Verifier = authURL, verifier
	request, _ := json.Marshal(sessionRequest{Scopes: in.Scopes, Resources: in.Resources, Audiences: in.Audiences, ReturnURL: *in.ReturnURL})
	now := s.Now()
	stateHash := sha256.Sum256([]byte(state))
	sess := storage.OAuthSession{
		ID: id, StateHash: stateHash[:], ProviderID: p.ID, Workload: w.Name, User: a.claims.User,
		Status: storage.SessionInProgress, Request: request,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.sessionTTL()),
	}
	var err error
	if sess.Secrets, err = s.sealSession(ctx, sess, secrets); err != nil {
		return nil, wire.Internal(err)
	}
	if err := s.Store.CreateOAuthSession(ctx, sess); err != nil {
		return nil, wire.Internal(err)
	}
	return &oauth2TokenOutput{AuthorizationURL: authURL, SessionURI: SessionURIPrefix + id, SessionStatus: string(storage.SessionInProgress)}, nil
}

// authorizationURL builds the authorization request (RFC 6749 §4.1.1) with
// PKCE (RFC 7636) when the provider supports it, the vendor's extra
// parameters, RFC 8707 resources and the caller's custom parameters,
// which never override the standard ones (validation refuses those).
func (s *Service) authorizationURL(p oauth2Provider, state string, in *oauth2TokenInput) (string, string) {
	v := p.cfg.VendorInfo()
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {p.cfg.ClientID},
		"redirect_uri":  {s.callbackURL(p.ID)},
		"state":         {state},
	}
	scopes := in.Scopes
	for _, rs := range v.RefreshScopes {
		if !slices.Contains(scopes, rs) {
			scopes = append(slices.Clone(scopes), rs)
		}
	}
	if len(scopes) > 0 {
		q.Set("scope", v.JoinScopes(scopes))
	}
	verifier := ""
	if p.cfg.PKCE() {
		verifier = oauth2.GenerateVerifier()
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
		q.Set("code_challenge_method", "S256")
	}
	for k, val := range v.AuthorizationParams {
		q.Set(k, val)
	}
	addRequestParameters(q, in)
	endpoint := p.cfg.Resolved.AuthorizationEndpoint
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	return endpoint + sep + q.Encode(), verifier
}

func (s *Service) callbackURL(providerID string) string {
	return s.Federation.CallbackBase + providerID
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// refreshLeaseTTL is how long a refresh lease outlives its holder. The
// holder renews it while the provider answers (keepLease), so only a dead
// holder's lease runs out, and the next caller takes over within this
// long.
const refreshLeaseTTL = 15 * time.Second

// refreshWait bounds how long a caller waits on another replica's refresh
// before a retryable ThrottlingException: longer than a dead holder's
// lease, far shorter than the 60s after which servers and SDKs give up on
// a response.
const refreshWait = refreshLeaseTTL + 5*time.Second

// refreshPatience is how long a caller waits on another replica's refresh
// before it settles for the current access token, if that still has
// usableFor to live.
const (
	refreshPatience = 2 * time.Second
	usableFor       = 5 * time.Second
)

// refresh renews a connection's access token with its refresh token
// (RFC 6749 §6), exactly once however many callers and replicas ask at
// the same time: callers in this process share one attempt
// (singleflight), and replicas coordinate through the connection's lease
// in storage. The rotated refresh token is stored in the same transaction
// as the new access token, before anyone uses either.
func (s *Service) refresh(ctx context.Context, k storage.ConnectionKey, p oauth2Provider, in *oauth2TokenInput) (tokenSet, error) {
	key := k.ProviderID + "\x00" + k.Workload + "\x00" + k.User
	v, err, _ := s.refreshes.Do(key, func() (any, error) {
		return s.refreshOnce(context.WithoutCancel(ctx), k, p, in)
	})
	if err != nil {
		return tokenSet{}, err
	}
	return v.(tokenSet), nil
}

func (s *Service) refreshOnce(ctx context.Context, k storage.ConnectionKey, p oauth2Provider, in *oauth2TokenInput) (tokenSet, error) {
	start := s.Now()
	var conn storage.Connection
	for {
		var err error
		conn, err = s.Store.AcquireRefreshLease(ctx, k, s.leaseOwner, s.Now().Add(refreshLeaseTTL))
		switch {
		case err == nil:
		case errors.Is(err, storage.ErrNotFound):
			return tokenSet{}, errNeedsConsent
		case !errors.Is(err, storage.ErrConflict):
			return tokenSet{}, wire.Internal(err)
		}
		if err == nil {
			break
		}
		// Another replica holds the lease: wait, reading, for its result
		// or for the lease to run out.
		for conn.LeaseOwner != "" && s.Now().Before(conn.LeaseUntil) {
			waited := s.Now().Sub(start)
			switch {
			case conn.Status != storage.ConnectionActive:
				return tokenSet{}, errNeedsConsent
			case s.fresh(conn):
				return s.openTokens(ctx, conn)
			case waited > refreshPatience && !conn.ExpiresAt.IsZero() && s.Now().Add(usableFor).Before(conn.ExpiresAt):
				return s.openTokens(ctx, conn) // due, not expired
			case waited > refreshWait:
				return tokenSet{}, wire.Throttling("another server is refreshing this token; retry")
			}
			time.Sleep(refreshPoll())
			if conn, err = s.Store.GetConnection(ctx, k); err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					return tokenSet{}, errNeedsConsent
				}
				return tokenSet{}, wire.Internal(err)
			}
		}
		if conn.Status != storage.ConnectionActive {
			return tokenSet{}, errNeedsConsent
		}
		if s.fresh(conn) {
			return s.openTokens(ctx, conn)
		}
	}
	// Holding the lease. Another replica may have refreshed between our
	// first read and now: then there is nothing to do.
	defer s.keepLease(ctx, k, conn.LeaseToken)()
	release := func(fn func(storage.Connection) (storage.Connection, error)) (storage.Connection, error) {
		return s.Store.FinishRefresh(ctx, k, s.leaseOwner, conn.LeaseToken, fn)
	}
	keep := func(c storage.Connection) (storage.Connection, error) { return c, nil }
	if conn.Status != storage.ConnectionActive {
		release(keep)
		return tokenSet{}, errNeedsConsent
	}
	old, err := s.openTokens(ctx, conn)
	if err != nil {
		release(keep)
		return tokenSet{}, err
	}
	if s.fresh(conn) {
		release(keep)
		return old, nil
	}
	needsConsent := func(c storage.Connection) (storage.Connection, error) {
		c.Status = storage.ConnectionNeedsConsent
		return c, nil
	}
	if old.RefreshToken == "" {
		release(needsConsent)
		s.auditRefresh(ctx, k, p.Name, auditConsentRequired)
		return tokenSet{}, errNeedsConsent
	}
	secret, err := s.Vault.Open(ctx, p.ClientSecret, vault.Binding{Kind: storage.SecretOAuth2ClientSecret, Owner: p.ID})
	if err != nil {
		release(keep)
		return tokenSet{}, wire.Internal(err)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old.RefreshToken}}
	d := details(conn)
	for _, r := range d.Resources {
		form.Add("resource", r) // RFC 8707 §2.2: the refresh asks for the same resources
	}
	tok, err := s.OAuth.Do(ctx, tokenRequest(p.cfg, string(secret), form))
	clear(secret)
	var pe *oauthclient.ProviderError
	// A refused refresh token (invalid_grant, RFC 6749 §5.2; Dex answers
	// invalid_request with 400 for one expired or unknown) can only be
	// replaced by the user consenting again.
	if errors.As(err, &pe) && (pe.Code == "invalid_grant" || pe.Code == "invalid_request" && pe.Status == http.StatusBadRequest) {
		release(needsConsent)
		s.auditRefresh(ctx, k, p.Name, auditConsentRequired)
		return tokenSet{}, errNeedsConsent
	}
	if err != nil {
		release(keep)
		uerr := upstreamError(p.Name, err)
		s.auditRefresh(ctx, k, p.Name, wire.AsError(uerr).Type)
		return tokenSet{}, uerr
	}
	next := tokenSet{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Scope: tok.Scope}
	if next.RefreshToken == "" {
		next.RefreshToken = old.RefreshToken // not rotated (RFC 6749 §6)
	}
	if next.Scope == "" {
		next.Scope = old.Scope
	}
	expiry := s.userTokenExpiry(tok)
	if !expiry.IsZero() {
		next.Expiry = expiry.Unix()
		d.Lifetime = int64(expiry.Sub(s.Now()).Round(time.Second) / time.Second)
	}
	sealed, err := s.sealTokens(ctx, k, next)
	if err != nil {
		release(keep)
		return tokenSet{}, err
	}
	newDetails, _ := json.Marshal(d)
	_, err = release(func(c storage.Connection) (storage.Connection, error) {
		c.Tokens, c.ExpiresAt, c.Details, c.LastUsedAt = sealed, expiryTime(next.Expiry), newDetails, s.Now()
		return c, nil
	})
	if err != nil {
		// Our lease ran out while the provider answered and another
		// replica took over: its result stands, and ours is dropped.
		return tokenSet{}, wire.Internal(fmt.Errorf("refresh result discarded: the lease was lost: %w", err))
	}
	s.auditRefresh(ctx, k, p.Name, "")
	return next, nil
}

// keepLease renews the lease granted with token, until the returned stop
// is called or the lease is lost, so that a slow provider does not cost a
// live holder its lease.
func (s *Service) keepLease(ctx context.Context, k storage.ConnectionKey, token int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(refreshLeaseTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := s.Store.RenewRefreshLease(ctx, k, s.leaseOwner, token, s.Now().Add(refreshLeaseTTL))
			switch {
			case err == nil, ctx.Err() != nil:
			case errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrNotFound):
				return // released, taken over or deleted: nothing to keep
			default:
				if s.Log != nil {
					s.Log.Warn("refresh lease not renewed; retrying", "workload", k.Workload, "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// auditConsentRequired is the error type of a refresh the provider
// refused: the connection now needs the user's consent.
const auditConsentRequired = "ConsentRequired"

// auditRefresh records behalf's own use of a user's refresh token: the
// provider saw it, so the trail shows it, whichever call caused it.
func (s *Service) auditRefresh(ctx context.Context, k storage.ConnectionKey, provider, errType string) {
	s.audit(ctx, wire.AuditEvent{Operation: "RefreshOAuth2Token", Principal: "behalf", Outcome: "success", RequestID: "refresh-" + randomToken()[:16],
		AuditDetails: wire.AuditDetails{Workload: k.Workload, User: k.User, Provider: provider, Flow: "USER_FEDERATION"}}, errType)
}

// assumedLifetime is the lifetime of a user's token whose provider did not
// say (expires_in is only RECOMMENDED, RFC 6749 §5.1) but that can be
// refreshed: refreshing hourly keeps a dead token from being handed out
// for long. A token with no refresh token is used until the provider
// refuses it, as nothing else can be done.
const assumedLifetime = time.Hour

func (s *Service) userTokenExpiry(tok *oauthclient.Token) time.Time {
	if tok.Expiry.IsZero() && tok.RefreshToken != "" {
		return s.Now().Add(assumedLifetime)
	}
	return tok.Expiry
}

func refreshPoll() time.Duration {
	var b [1]byte
	rand.Read(b[:])
	return 20*time.Millisecond + time.Duration(b[0])*time.Millisecond/8
}

func expiryTime(unix int64) time.Time {
	if unix == 0 {
		return time.Time{}
	}
	return time.Unix(unix, 0)
}

func (s *Service) sealTokens(ctx context.Context, k storage.ConnectionKey, ts tokenSet) (storage.Sealed, error) {
	raw, err := json.Marshal(ts)
	if err != nil {
		return storage.Sealed{}, wire.Internal(err)
	}
	sealed, err := s.Vault.Seal(ctx, raw, connectionBinding(k))
	if err != nil {
		return storage.Sealed{}, wire.Internal(err)
	}
	return sealed, nil
}
