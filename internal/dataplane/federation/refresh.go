package federation

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

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
// as the new access token, before anyone uses either. Each caller counts
// one refresh result: the one that ran it, its outcome; the others that
// got its token, shared.
func (s *Service) refresh(ctx context.Context, k storage.ConnectionKey, p access.OAuth2Provider) (tokenSet, error) {
	key := k.ProviderID + "\x00" + k.Workload + "\x00" + k.User
	ran := false
	v, err, _ := s.refreshes.Do(key, func() (any, error) {
		ran = true
		return s.refreshOnce(context.WithoutCancel(ctx), k, p)
	})
	if err != nil {
		return tokenSet{}, err
	}
	if !ran {
		s.Metrics.Refresh(ctx, telemetry.RefreshShared)
	}
	return v.(tokenSet), nil
}

// refreshOnce takes the connection's lease, or settles for what another
// replica's refresh produced; holding the lease, it refreshes
// (refreshLeased). The lease and the refresh are a span each.
func (s *Service) refreshOnce(ctx context.Context, k storage.ConnectionKey, p access.OAuth2Provider) (tokenSet, error) {
	leaseCtx, span := telemetry.Start(ctx, "federation.refresh_lease")
	conn, held, settled, err := s.acquireLease(leaseCtx, k)
	telemetry.End(span, err, refreshErrorType(err))
	if !held {
		switch {
		case err == nil:
			s.Metrics.Refresh(ctx, telemetry.RefreshLeaseWaited)
		case !errors.Is(err, errNeedsConsent):
			s.Metrics.Refresh(ctx, telemetry.RefreshFailed)
		}
		return settled, err
	}
	ctx, span = telemetry.Start(ctx, "federation.refresh")
	out := s.refreshLeased(ctx, k, p, conn)
	telemetry.End(span, out.err, refreshErrorType(out.err))
	s.Metrics.Refresh(ctx, out.result)
	return out.tokens, out.err
}

// refreshLeased refreshes under the lease conn holds and releases the
// lease in exactly one place, storing the outcome with it and, when the
// provider saw the refresh token, with the refresh's audit record: new
// tokens are never stored without their record.
func (s *Service) refreshLeased(ctx context.Context, k storage.ConnectionKey, p access.OAuth2Provider, conn storage.Connection) refreshOutcome {
	stopKeeping := s.keepLease(ctx, k, conn.LeaseToken)
	out := s.refreshHeld(ctx, p, conn)
	stopKeeping()
	tr, st := s.refreshTrail(ctx, k, p.Name), s.Store
	if out.audited {
		st = tr.change(out.auditType)
	}
	_, err := st.FinishRefresh(ctx, k, s.leaseOwner, conn.LeaseToken, out.update)
	s.connections.forget(k)
	if err != nil {
		s.releaseFailed(ctx, k, err)
		if out.stores {
			// The lease ran out while the provider answered and another
			// replica took over (its result stands), or the record could
			// not be written: ours is dropped.
			out.tokens, out.err = tokenSet{}, fmt.Errorf("refresh result not stored: %w", err)
			out.auditType, out.result = wire.TypeInternal, telemetry.RefreshFailed
		}
	}
	if out.audited {
		// The provider saw the refresh token even when nothing was stored.
		tr.finish(ctx, out.auditType)
	}
	return out
}

// refreshErrorType names a failed refresh or lease in a span.
func refreshErrorType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errNeedsConsent):
		return auditConsentRequired
	}
	return wire.AsError(err).Type
}

// refreshOutcome is what a lease holder's refresh produced.
type refreshOutcome struct {
	tokens tokenSet
	err    error
	// update is applied to the connection as the lease is released;
	// stores reports that it stores new tokens.
	update func(storage.Connection) (storage.Connection, error)
	stores bool
	// audited reports that the provider saw the refresh token, so the
	// trail records the refresh, failed with auditType when not empty.
	audited   bool
	auditType string
	// result is the telemetry.Refresh constant counted.
	result string
}

func keepConnection(c storage.Connection) (storage.Connection, error) { return c, nil }

func needConsent(c storage.Connection) (storage.Connection, error) {
	c.Status = storage.ConnectionNeedsConsent
	return c, nil
}

func refreshFailed(err error) refreshOutcome {
	return refreshOutcome{err: err, update: keepConnection, result: telemetry.RefreshFailed}
}

// consentRequired ends a connection whose refresh token is gone or
// refused (result says which): only the user consenting again can replace
// it.
func consentRequired(result string) refreshOutcome {
	return refreshOutcome{err: errNeedsConsent, update: needConsent, audited: true, auditType: auditConsentRequired, result: result}
}

// refreshHeld refreshes a connection whose lease this process holds.
// Another replica may have refreshed between our first read and the
// lease: then there is nothing to do.
func (s *Service) refreshHeld(ctx context.Context, p access.OAuth2Provider, conn storage.Connection) refreshOutcome {
	if conn.Status != storage.ConnectionActive {
		return refreshFailed(errNeedsConsent)
	}
	d, ok := s.readDetails(ctx, conn)
	if !ok {
		return refreshFailed(errNeedsConsent)
	}
	old, err := s.openTokens(ctx, conn)
	if err != nil {
		return refreshFailed(err)
	}
	if s.fresh(conn, d) {
		return refreshOutcome{tokens: old, update: keepConnection, result: telemetry.RefreshShared}
	}
	if old.RefreshToken == "" {
		return consentRequired(telemetry.RefreshFailed)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old.RefreshToken}}
	for _, r := range p.Config.Resources(d.Resources) {
		form.Add("resource", r) // RFC 8707 §2.2: the refresh asks for the same resources
	}
	tok, err := s.Endpoint.Request(ctx, p, form)
	var pe *oauthclient.ProviderError
	var internal *wire.Error
	switch {
	case errors.As(err, &pe) && refused(pe):
		return consentRequired(telemetry.RefreshInvalidGrant)
	case errors.As(err, &internal):
		return refreshFailed(internal) // the client secret did not open: the provider saw nothing
	case err != nil:
		uerr := tokenflow.UpstreamError(p.Name, err)
		return refreshOutcome{err: uerr, update: keepConnection, audited: true, auditType: wire.AsError(uerr).Type, result: telemetry.RefreshFailed}
	}
	return s.refreshed(ctx, conn.ConnectionKey, old, d, tok)
}

// refused reports a refresh token the provider will not accept
// (invalid_grant, RFC 6749 §5.2; Dex answers invalid_request with 400 for
// one expired or unknown).
func refused(pe *oauthclient.ProviderError) bool {
	return pe.Code == "invalid_grant" || pe.Code == "invalid_request" && pe.Status == http.StatusBadRequest
}

// refreshed seals the provider's answer for storing as the lease is
// released.
func (s *Service) refreshed(ctx context.Context, k storage.ConnectionKey, old tokenSet, d connectionDetails, tok *oauthclient.Token) refreshOutcome {
	next := tokenSet{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Scope: tok.Scope}
	if next.RefreshToken == "" {
		next.RefreshToken = old.RefreshToken // not rotated (RFC 6749 §6)
	}
	if next.Scope == "" {
		next.Scope = old.Scope
	}
	if expiry := s.userTokenExpiry(tok); !expiry.IsZero() {
		next.Expiry = expiry.Unix()
		d.Lifetime = int64(expiry.Sub(s.Now()).Round(time.Second) / time.Second)
	}
	sealed, err := s.sealTokens(ctx, k, next)
	if err != nil {
		return refreshFailed(err)
	}
	newDetails, err := json.Marshal(d)
	if err != nil {
		return refreshFailed(fmt.Errorf("encode connection details: %w", err))
	}
	store := func(c storage.Connection) (storage.Connection, error) {
		c.Tokens, c.ExpiresAt, c.Details, c.LastUsedAt = sealed, expiryTime(next.Expiry), newDetails, s.Now()
		return c, nil
	}
	return refreshOutcome{tokens: next, update: store, stores: true, audited: true, result: telemetry.RefreshRefreshed}
}

// releaseFailed logs and counts a lease this process could not release;
// the next caller waits for it to run out (refreshLeaseTTL).
func (s *Service) releaseFailed(ctx context.Context, k storage.ConnectionKey, err error) {
	s.releaseFailures.Add(1)
	s.logger().LogAttrs(ctx, slog.LevelWarn, "refresh lease not released", slog.String(logging.KeyWorkload, k.Workload), logging.Err(err))
}

// acquireLease takes the connection's refresh lease (held), or waits while
// another replica holds it and settles for its result. ctx's span gets an
// event as the lease is acquired, waited for, and taken over from a
// holder whose lease ran out.
func (s *Service) acquireLease(ctx context.Context, k storage.ConnectionKey) (conn storage.Connection, held bool, settled tokenSet, err error) {
	span := trace.SpanFromContext(ctx)
	start := s.Now()
	for {
		conn, err = s.Store.AcquireRefreshLease(ctx, k, s.leaseOwner, s.Now().Add(refreshLeaseTTL))
		switch {
		case err == nil:
			span.AddEvent(eventLeaseAcquired)
			return conn, true, tokenSet{}, nil
		case errors.Is(err, storage.ErrNotFound):
			return conn, false, tokenSet{}, errNeedsConsent
		case !errors.Is(err, storage.ErrConflict):
			return conn, false, tokenSet{}, fmt.Errorf("acquire refresh lease: %w", err)
		}
		span.AddEvent(eventLeaseWaited)
		ts, done, err := s.awaitLease(ctx, k, conn, start)
		if done {
			return conn, false, ts, err
		}
	}
}

// awaitLease waits, reading, while another replica holds the lease, for
// its result or for the lease to run out; done reports a result (or an
// error) the caller settles for.
func (s *Service) awaitLease(ctx context.Context, k storage.ConnectionKey, conn storage.Connection, start time.Time) (ts tokenSet, done bool, err error) {
	for conn.LeaseOwner != "" && s.Now().Before(conn.LeaseUntil) {
		if ts, done, err := s.settleWhileHeld(ctx, conn, s.Now().Sub(start)); done {
			return ts, true, err
		}
		time.Sleep(refreshPoll())
		if conn, err = s.Store.GetConnection(ctx, k); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return tokenSet{}, true, errNeedsConsent
			}
			return tokenSet{}, true, fmt.Errorf("read connection under another's lease: %w", err)
		}
	}
	if conn.Status != storage.ConnectionActive {
		return tokenSet{}, true, errNeedsConsent
	}
	if s.freshNow(conn) {
		ts, err := s.openTokens(ctx, conn)
		return ts, true, err
	}
	if conn.LeaseOwner != "" {
		trace.SpanFromContext(ctx).AddEvent(eventLeaseTakenOver) // its holder's lease ran out
	}
	return tokenSet{}, false, nil
}

// settleWhileHeld decides, while another replica holds the lease, whether
// to stop waiting: the connection was dropped, its token was refreshed,
// the current token is due but still usable after refreshPatience, or the
// wait has lasted refreshWait.
func (s *Service) settleWhileHeld(ctx context.Context, conn storage.Connection, waited time.Duration) (tokenSet, bool, error) {
	switch {
	case conn.Status != storage.ConnectionActive:
		return tokenSet{}, true, errNeedsConsent
	case s.freshNow(conn):
		ts, err := s.openTokens(ctx, conn)
		return ts, true, err
	case waited > refreshPatience && !conn.ExpiresAt.IsZero() && s.Now().Add(usableFor).Before(conn.ExpiresAt):
		ts, err := s.openTokens(ctx, conn) // due, not expired
		return ts, true, err
	case waited > refreshWait:
		return tokenSet{}, true, wire.Throttling("another server is refreshing this token; retry")
	}
	return tokenSet{}, false, nil
}

// Events of the refresh lease's span.
const (
	eventLeaseAcquired  = "lease.acquired"
	eventLeaseWaited    = "lease.waited"
	eventLeaseTakenOver = "lease.taken_over"
)

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
				s.logger().LogAttrs(ctx, slog.LevelWarn, "refresh lease not renewed; retrying", slog.String(logging.KeyWorkload, k.Workload), logging.Err(err))
			}
		}
	}()
	return func() { cancel(); <-done }
}

// auditConsentRequired is the error type of a refresh the provider
// refused: the connection now needs the user's consent.
const auditConsentRequired = "ConsentRequired"

// refreshTrail is the record of behalf's own use of a user's refresh
// token: the provider saw it, so the trail shows it, whichever call caused
// it.
func (s *Service) refreshTrail(ctx context.Context, k storage.ConnectionKey, provider string) *trail {
	return s.newTrail(ctx, storage.AuditRecord{Operation: "RefreshOAuth2Token", Principal: "behalf", RequestID: "refresh-" + randomToken()[:16],
		Workload: k.Workload, User: k.User, Provider: provider, Flow: "USER_FEDERATION"})
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
	raw, err := json.Marshal(ts) //nolint:gosec // G117: the tokens are sealed next, never stored or sent in clear
	if err != nil {
		return storage.Sealed{}, fmt.Errorf("encode a token set: %w", err)
	}
	sealed, err := s.Vault.Seal(ctx, raw, vault.ConnectionBinding(k))
	if err != nil {
		return storage.Sealed{}, fmt.Errorf("seal the tokens of a connection: %w", err)
	}
	return sealed, nil
}
