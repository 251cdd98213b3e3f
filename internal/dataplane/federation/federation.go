// Package federation serves USER_FEDERATION, three-legged OAuth as
// AgentCore runs it (the AWS API reference of GetResourceOauth2Token and
// CompleteResourceTokenAuth; docs/user-federation.md):
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
//
// Refreshes of a user's token are coordinated across replicas by a lease
// on the connection (refresh.go). The development completion page
// (/dev/complete) and revocation of a connection at its provider live
// here too.
package federation

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/ratelimit"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Options tune the three-legged flow.
type Options struct {
	// SessionTTL is how long a user has to consent and be bound; default
	// 10 minutes.
	SessionTTL time.Duration
	// CallbackBase is the public URL prefix of the callback route; a
	// provider's callback URL is CallbackBase + its id.
	CallbackBase string
	// CallbackPattern is the ServeMux pattern of the callback route, with
	// a {provider} wildcard.
	CallbackPattern string
	// Development serves the development completion page.
	Development bool
	// NewSessionsPerUser and NewSessionsPerPrincipal limit the consent
	// sessions started a minute for one user of a workload and by one
	// caller; 0 means DefaultNewSessionsPerUser and
	// DefaultNewSessionsPerPrincipal.
	NewSessionsPerUser      int
	NewSessionsPerPrincipal int
}

// Deps are the flow's collaborators.
type Deps struct {
	Access   *access.Checker
	Store    storage.Storage
	Vault    *vault.Vault
	Endpoint tokenflow.Endpoint
	OAuth    *oauthclient.Client
	Now      func() time.Time
	// RecordTTL bounds how long a change made through another replica to
	// a connection takes to be seen; default 2s.
	RecordTTL time.Duration
	// Audit records what happens outside API calls (browser callbacks,
	// the development page, refreshes), each change with its record; nil
	// records nothing.
	Audit wire.AuditLog
	Log   *slog.Logger
	// Metrics counts refreshes, consent sessions, connection cache
	// lookups and new-session rejections; nil counts nothing.
	Metrics *telemetry.Metrics
}

// Service serves USER_FEDERATION.
type Service struct {
	Deps
	opts Options
	// refreshes shares one refresh per connection among this process's
	// callers; leaseOwner names this process to the others.
	refreshes  singleflight.Group
	leaseOwner string
	// releaseFailures counts refresh leases that could not be released;
	// their holders' successors wait for them to run out.
	releaseFailures atomic.Int64
	// touchFailures counts last uses of connections not recorded.
	touchFailures atomic.Int64
	// sessionsPerUser and sessionsPerPrincipal admit new consent sessions.
	sessionsPerUser, sessionsPerPrincipal *ratelimit.Limiter
	// connections keeps the connections whose fresh tokens were just
	// handed out.
	connections *connectionCache
}

// Default limits on new consent sessions, a minute. A session is a row kept
// for up to twice the session TTL, so a caller looping with users' tokens
// must not grow storage at request rate; one person consents to a provider
// a few times a minute at most, and one agent's users far fewer than 120
// times a minute.
const (
	DefaultNewSessionsPerUser      = 10
	DefaultNewSessionsPerPrincipal = 120
)

// New returns the service.
func New(d Deps, opts Options) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.RecordTTL <= 0 {
		d.RecordTTL = 2 * time.Second
	}
	perUser, perPrincipal := cmp.Or(opts.NewSessionsPerUser, DefaultNewSessionsPerUser), cmp.Or(opts.NewSessionsPerPrincipal, DefaultNewSessionsPerPrincipal)
	clock := ratelimit.Options{Now: d.Now}
	return &Service{Deps: d, opts: opts, leaseOwner: uuid.NewString(),
		sessionsPerUser:      ratelimit.New(ratelimit.PerMinute(perUser), clock),
		sessionsPerPrincipal: ratelimit.New(ratelimit.PerMinute(perPrincipal), clock),
		connections:          newConnectionCache(d.RecordTTL, d.Now)}
}

// Forget drops this process's cached copy of a connection; whoever writes
// a connection outside this package calls it after the write.
func (s *Service) Forget(k storage.ConnectionKey) { s.connections.forget(k) }

// ForgetAll drops every cached connection: a provider or workload identity
// changed, and the change may have dropped its connections.
func (s *Service) ForgetAll() { s.connections.forgetAll() }

// Operations lists CompleteResourceTokenAuth; every call is audited.
func (s *Service) Operations() []wire.Operation {
	return wire.Audited(wire.JSON("CompleteResourceTokenAuth", "/identities/CompleteResourceTokenAuth", http.StatusOK, s.completeResourceTokenAuth))
}

// Mount registers the browser routes: the OAuth callback and, in
// development mode, the completion page.
func (s *Service) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET "+s.opts.CallbackPattern, s.Callback)
	if s.opts.Development {
		mux.HandleFunc("GET /dev/complete", s.DevComplete)
		s.logger().Warn("development mode is on: /dev/complete completes sessions of user-id users for anyone who holds their session URI; never use it in production")
	}
}

// LeaseReleaseFailures reports how many refresh leases this process could
// not release.
func (s *Service) LeaseReleaseFailures() int64 { return s.releaseFailures.Load() }

// logger is the service's logger; nil logs nothing.
func (s *Service) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Service) sessionTTL() time.Duration {
	if s.opts.SessionTTL > 0 {
		return s.opts.SessionTTL
	}
	return 10 * time.Minute
}

// SessionURIPrefix starts every session URI (RFC 9126 request_uri form).
const SessionURIPrefix = "urn:ietf:params:oauth:request_uri:"

// Session and connection details, stored as JSON.
type sessionRequest struct {
	Scopes    []string `json:"scopes"`
	Resources []string `json:"resources,omitempty"`
	Audiences []string `json:"audiences,omitempty"`
	ReturnURL string   `json:"returnUrl"`
}

// sessionSecrets are a session's sealed parts. The caller's custom
// parameters are in AuthorizationURL only.
type sessionSecrets struct {
	Verifier         string    `json:"verifier,omitempty"`
	AuthorizationURL string    `json:"authorizationUrl"`
	CustomState      string    `json:"customState,omitempty"`
	Tokens           *tokenSet `json:"tokens,omitempty"`
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

// parseDetails decodes a connection's details.
func parseDetails(conn storage.Connection) (connectionDetails, error) {
	var d connectionDetails
	if err := json.Unmarshal(conn.Details, &d); err != nil {
		return d, fmt.Errorf("the details of a connection do not decode: %w", err)
	}
	return d, nil
}

// readDetails decodes a connection's details, which say what its token was
// granted for (resources, audiences) and when to refresh it. When they do
// not decode, behalf cannot tell whether the token answers a request, so
// it must not hand it out; an internal error would fail every call until
// an operator deleted the connection, whereas treating the connection as
// needing consent (ok false) lets the user's new consent replace it and
// its details. The corruption is logged for the operator.
func (s *Service) readDetails(ctx context.Context, conn storage.Connection) (d connectionDetails, ok bool) {
	d, err := parseDetails(conn)
	if err != nil {
		s.logger().LogAttrs(ctx, slog.LevelError, "corrupt connection: asking the user to consent again",
			slog.String(logging.KeyWorkload, conn.Workload), logging.Err(err))
		return d, false
	}
	return d, true
}

// UserToken serves GetResourceOauth2Token with USER_FEDERATION.
func (s *Service) UserToken(ctx context.Context, c *wire.Call, v access.Verified, p access.OAuth2Provider, in *tokenflow.Request) (*tokenflow.Response, error) {
	if v.Claims.User == "" {
		return nil, wire.Validation("USER_FEDERATION needs a workload access token bound to a user; get one with GetWorkloadAccessTokenForJWT or GetWorkloadAccessTokenForUserId",
			wire.FieldError{Name: "workloadIdentityToken", Message: "is not bound to a user"})
	}
	k := storage.ConnectionKey{ProviderID: p.ID, Workload: v.Workload.Name, User: v.Claims.User}

	if in.SessionURI != nil {
		out, done, err := s.pollSession(ctx, k, *in.SessionURI)
		if err != nil || !done {
			return out, err
		}
	} else if in.ForceAuthentication != nil && *in.ForceAuthentication {
		return s.startSession(ctx, c, v, p, in)
	}

	token, granted, err := s.userToken(ctx, k, p, in)
	switch {
	case err == nil:
		return &tokenflow.Response{AccessToken: token}, nil
	case errors.Is(err, errNeedsConsent):
		return s.startSession(ctx, c, v, p, stepUp(v, p, in, granted))
	}
	return nil, err
}

// stepUp is the request a new authorization of an MCP server provider
// asks for when the user's connection, granted scopes granted, does not
// cover in: the union of both (MCP authorization 2025-11-25, "Scope
// Challenge Handling"), so that an agent passes a 403
// insufficient_scope challenge's scopes as they are and the user keeps
// what they granted. The connection's scopes that the workload's grant no
// longer allows are dropped, as is offline_access, which RefreshScopes
// decides. The union is the session's request: its requestKey, its
// authorization URL and, without a scope in the token response, the
// connection's scopes after completion. Other providers' scopes are not
// known to nest (one scope may replace another, or a new consent may
// narrow what an application holds on purpose), so their requests stay
// as they are.
func stepUp(v access.Verified, p access.OAuth2Provider, in *tokenflow.Request, granted []string) *tokenflow.Request {
	if p.Config.MCP == nil || len(granted) == 0 {
		return in
	}
	scopes := slices.Clone(in.Scopes)
	for _, sc := range granted {
		if sc == provider.OfflineAccess || slices.Contains(scopes, sc) ||
			authz.CheckProviderGrant(v.Workload, p.Name, authz.GrantRequest{Scopes: []string{sc}}) != nil {
			continue
		}
		scopes = append(scopes, sc)
	}
	out := *in
	out.Scopes = scopes
	return &out
}

var errNeedsConsent = errors.New("the user must consent again")

// pollSession answers a call that names a session: still in progress, or
// failed; done means it completed and the token is in the connection.
func (s *Service) pollSession(ctx context.Context, k storage.ConnectionKey, uri string) (*tokenflow.Response, bool, error) {
	id, _ := strings.CutPrefix(uri, SessionURIPrefix)
	sess, err := s.Store.GetOAuthSession(ctx, id)
	if err != nil {
		return nil, false, wire.StorageError(err, "session", uri)
	}
	if sess.ProviderID != k.ProviderID || sess.Workload != k.Workload || sess.User != k.User {
		return nil, false, wire.AccessDenied("session %s belongs to another user, workload identity or provider", uri)
	}
	out := &tokenflow.Response{SessionURI: uri, SessionStatus: string(storage.SessionInProgress)}
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
// refreshing it when it is about to expire. When an active connection
// does not cover the request, it needs consent and granted are the
// connection's scopes.
func (s *Service) userToken(ctx context.Context, k storage.ConnectionKey, p access.OAuth2Provider, in *tokenflow.Request) (token string, granted []string, err error) {
	if token, ok := s.cachedToken(ctx, k, in); ok {
		return token, nil, nil
	}
	gen := s.connections.generation()
	conn, err := s.Store.GetConnection(ctx, k)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil, errNeedsConsent
	}
	if err != nil {
		return "", nil, fmt.Errorf("read connection: %w", err)
	}
	if conn.Status != storage.ConnectionActive {
		return "", nil, errNeedsConsent
	}
	d, ok := s.readDetails(ctx, conn)
	if !ok {
		return "", nil, errNeedsConsent
	}
	if !covers(conn, d, in) {
		return "", conn.Scopes, errNeedsConsent
	}
	if s.fresh(conn, d) {
		ts, err := s.openTokens(ctx, conn)
		if err != nil {
			return "", nil, err
		}
		s.connections.put(gen, s.touch(ctx, conn), d, ts.AccessToken)
		return ts.AccessToken, nil, nil
	}
	ts, err := s.refresh(ctx, k, p)
	if err != nil {
		return "", nil, err
	}
	return ts.AccessToken, nil, nil
}

// cachedToken returns the access token of k's cached connection when it
// answers the request as the stored one would now: it covers the request,
// is fresh by the clock at this call, and its last use was recorded within
// touchEvery (else the storage path records it).
func (s *Service) cachedToken(ctx context.Context, k storage.ConnectionKey, in *tokenflow.Request) (string, bool) {
	e, ok := s.connections.get(k)
	hit := ok && covers(e.conn, e.details, in) && s.fresh(e.conn, e.details) && s.Now().Sub(e.conn.LastUsedAt) < touchEvery
	s.Metrics.CacheLookup(ctx, telemetry.CacheConnection, hit)
	if !hit {
		return "", false
	}
	return e.accessToken, true
}

// fresh reports whether a connection's access token is good for a while
// yet; a token of unknown lifetime is used until the provider refuses it.
func (s *Service) fresh(conn storage.Connection, d connectionDetails) bool {
	t := conn.ExpiresAt
	return t.IsZero() || s.Now().Add(tokenflow.RefreshMargin(time.Duration(d.Lifetime)*time.Second)).Before(t)
}

// freshNow is fresh for a connection re-read while another replica
// refreshes it; details that do not decode make it due, and the refresh
// then finds them corrupt (refreshHeld).
func (s *Service) freshNow(conn storage.Connection) bool {
	d, err := parseDetails(conn)
	return err == nil && s.fresh(conn, d)
}

// covers reports whether a connection's grant answers the request: no
// requested scope missing (MissingScopes), and the same resources and
// audiences.
func covers(conn storage.Connection, d connectionDetails, in *tokenflow.Request) bool {
	return len(MissingScopes(conn.Scopes, in.Scopes)) == 0 && sameSet(d.Resources, in.Resources) && sameSet(d.Audiences, in.Audiences)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// touchEvery bounds how often a connection's last use is written.
const touchEvery = time.Hour

// touch records a connection's use. Last use only feeds the removal of
// idle connections (userFederation.connectionMaxIdle, at least a day), so
// a failure to record it does not fail the call that has its token: it is
// logged and counted, and the next use tries again. It returns conn with
// its last use as recorded.
func (s *Service) touch(ctx context.Context, conn storage.Connection) storage.Connection {
	if s.Now().Sub(conn.LastUsedAt) < touchEvery {
		return conn
	}
	touched, err := s.Store.UpdateConnection(ctx, conn.ConnectionKey, func(c storage.Connection) (storage.Connection, error) {
		c.LastUsedAt = s.Now()
		return c, nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) { // deleted meanwhile: nothing left to touch
		s.touchFailures.Add(1)
		s.logger().LogAttrs(ctx, slog.LevelWarn, "a connection's last use was not recorded",
			slog.String(logging.KeyWorkload, conn.Workload), logging.Err(err))
	}
	if err == nil {
		conn.LastUsedAt = touched.LastUsedAt // only that: the rest stays as read, with the tokens opened from it
	}
	return conn
}

// TouchFailures reports how many connections' last uses this process could
// not record.
func (s *Service) TouchFailures() int64 { return s.touchFailures.Load() }

func (s *Service) openTokens(ctx context.Context, conn storage.Connection) (tokenSet, error) {
	raw, err := s.Vault.Open(ctx, conn.Tokens, vault.ConnectionBinding(conn.ConnectionKey))
	if err != nil {
		return tokenSet{}, fmt.Errorf("open tokens of a connection: %w", err)
	}
	var ts tokenSet
	if err := json.Unmarshal(raw, &ts); err != nil {
		return tokenSet{}, fmt.Errorf("a connection's token set is corrupt: %w", err)
	}
	return ts, nil
}

func (s *Service) openSession(ctx context.Context, sess storage.OAuthSession) (sessionSecrets, error) {
	raw, err := s.Vault.Open(ctx, sess.Secrets, vault.SessionBinding(sess.ID, sess.Workload, sess.User))
	if err != nil {
		return sessionSecrets{}, fmt.Errorf("open session %s: %w", sess.ID, err)
	}
	var secrets sessionSecrets
	if err := json.Unmarshal(raw, &secrets); err != nil {
		return sessionSecrets{}, fmt.Errorf("session %s is corrupt: %w", sess.ID, err)
	}
	return secrets, nil
}

func (s *Service) sealSession(ctx context.Context, sess storage.OAuthSession, secrets sessionSecrets) (storage.Sealed, error) {
	raw, err := json.Marshal(secrets)
	if err != nil {
		return storage.Sealed{}, err
	}
	return s.Vault.Seal(ctx, raw, vault.SessionBinding(sess.ID, sess.Workload, sess.User))
}
