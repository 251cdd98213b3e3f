package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/control"
	"github.com/behalf-dev/behalf/internal/logging"
)

// keyPollInterval is how often a replica re-reads which key seals new
// secrets, so that SetTokenVaultCMK on one replica reaches the others.
const keyPollInterval = 30 * time.Second

// rewrapInterval is how often stale secrets are looked for even without a
// key change here: another replica may have changed the key, or a re-wrap
// may have been interrupted.
const rewrapInterval = 10 * time.Minute

// A re-wrap that met an unavailable key (KMS unreachable, a key disabled)
// is retried after rewrapRetryFirst, doubling up to rewrapRetryCap, until
// a pass finds every key it needs.
const (
	rewrapRetryFirst = time.Second
	rewrapRetryCap   = time.Minute
)

// retryAfter is the wait before the retry that follows a wait of d.
func retryAfter(d time.Duration) time.Duration {
	return min(max(2*d, rewrapRetryFirst), rewrapRetryCap)
}

func (s *Server) requestRewrap() {
	select {
	case s.rewrapNow <- struct{}{}:
	default: // one is already pending
	}
}

// maintenanceInterval paces the workload-access-token key rotation check
// and the removal of expired cached tokens.
const maintenanceInterval = 5 * time.Minute

func (s *Server) background(ctx context.Context) {
	poll := time.NewTicker(keyPollInterval)
	defer poll.Stop()
	periodic := time.NewTicker(rewrapInterval)
	defer periodic.Stop()
	maintenance := time.NewTicker(maintenanceInterval)
	defer maintenance.Stop()
	var anchor <-chan time.Time
	if i := s.cfg.Telemetry.AuditAnchorInterval; i > 0 {
		t := time.NewTicker(i)
		defer t.Stop()
		anchor = t.C
	}
	retry := time.NewTimer(0)
	retry.Stop()
	defer retry.Stop()
	var backoff time.Duration
	rewrap := func() {
		retry.Stop()
		if !s.rewrap(ctx, backoff) {
			backoff = 0
			return
		}
		backoff = retryAfter(backoff)
		retry.Reset(backoff)
	}
	s.requestRewrap()
	for {
		select {
		case <-ctx.Done():
			return
		case <-maintenance.C:
			s.maintain(ctx)
		case <-anchor:
			s.publishAnchor(ctx)
		case <-poll.C:
			s.followVaultKey(ctx)
		case <-periodic.C:
			rewrap()
		case <-s.rewrapNow:
			rewrap()
		case <-retry.C:
			rewrap()
		}
	}
}

func (s *Server) maintain(ctx context.Context) {
	if err := s.tokens.Rotate(ctx); err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelError, "rotating workload access token keys", logging.Err(err))
	}
	if err := s.clientKeys.Rotate(ctx); err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelError, "rotating MCP client keys", logging.Err(err))
	}
	if err := s.workloadJWTs.Rotate(ctx); err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelError, "rotating workload JWT keys", logging.Err(err))
	}
	s.maintainAuthServer(ctx)
	now := s.now()
	n, err := s.store.DeleteExpiredCachedTokens(ctx, now)
	s.logCleanup(ctx, "expired cached tokens", n, err)
	// Ended sessions are kept one session lifetime, so that a poll still
	// hears FAILED rather than "no such session" (docs/user-federation.md).
	n, err = s.store.DeleteEndedOAuthSessions(ctx, now.Add(-s.cfg.SessionTTL))
	s.logCleanup(ctx, "expired OAuth sessions", n, err)
	if s.cfg.ConnectionMaxIdle > 0 {
		n, err = s.store.DeleteIdleConnections(ctx, now.Add(-s.cfg.ConnectionMaxIdle))
		s.logCleanup(ctx, "connections unused for "+s.cfg.ConnectionMaxIdle.String(), n, err)
		if n > 0 {
			s.data.Federation.ForgetAll()
		}
	}
	if s.cfg.AuditRetention > 0 {
		n, err := audit.Prune(ctx, s.store, s.auditKey, now.Add(-s.cfg.AuditRetention))
		s.logCleanup(ctx, "audit records older than "+s.cfg.AuditRetention.String(), int(n), err)
	}
}

func (s *Server) logCleanup(ctx context.Context, what string, n int, err error) {
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.LogAttrs(ctx, slog.LevelError, "removing "+what, logging.Err(err))
	case n > 0:
		s.log.LogAttrs(ctx, slog.LevelInfo, "removed "+what, slog.Int(logging.KeyCount, n))
	}
}

func (s *Server) followVaultKey(ctx context.Context) {
	tv, err := s.store.GetTokenVault(ctx, control.DefaultTokenVault)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "read token vault", logging.Err(err))
		return
	}
	if tv.KeyID == s.vault.CurrentKeyID() {
		return
	}
	if err := s.vault.SetCurrent(ctx, tv.KeyID); err != nil {
		// It is current all the same: sealing fails until it can be used.
		s.log.LogAttrs(ctx, slog.LevelError, "token vault key changed to a key this replica cannot use",
			slog.String(logging.KeyKeyID, tv.KeyID), logging.Err(err))
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "token vault key changed", slog.String(logging.KeyKeyID, tv.KeyID))
	s.requestRewrap()
}

// rewrap runs one re-wrap pass and reports whether to retry it soon: it
// failed, or deferred records because a key was unavailable. backoff is
// the wait before this pass, which the next retry doubles.
func (s *Server) rewrap(ctx context.Context, backoff time.Duration) (retry bool) {
	start := time.Now()
	res, err := s.vault.RewrapStale(ctx, s.store, 100)
	for _, skipped := range res.Skipped {
		ref := skipped.Ref
		s.log.LogAttrs(ctx, slog.LevelError, "a stored secret does not open; it stays under its old key",
			slog.Any(logging.KeyKind, ref.Kind), slog.String(logging.KeyOwner, ref.Owner), slog.String(logging.KeyWorkload, ref.Workload),
			slog.String(logging.KeyUser, ref.User), logging.Err(skipped.Err))
	}
	next := retryAfter(backoff)
	for keyID, why := range res.Unavailable {
		s.log.LogAttrs(ctx, slog.LevelWarn, "re-wrap deferred: a key is unavailable; its secrets stay under their old key until it is back",
			slog.String(logging.KeyKeyID, keyID), slog.Int(logging.KeyDeferred, res.Deferred), slog.Duration(logging.KeyRetryIn, next), logging.Err(why))
	}
	if err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelError, "re-wrapping secrets under the current key",
			slog.Int(logging.KeyRewrapped, res.Rewrapped), slog.Int(logging.KeySkipped, len(res.Skipped)),
			slog.Duration(logging.KeyRetryIn, next), logging.Err(err))
		return true
	}
	if res.Rewrapped > 0 || len(res.Skipped) > 0 {
		s.log.LogAttrs(ctx, slog.LevelInfo, "re-wrapped secrets under the current key",
			slog.Int(logging.KeyRewrapped, res.Rewrapped), slog.Int(logging.KeySkipped, len(res.Skipped)),
			slog.String(logging.KeyKeyID, s.vault.CurrentKeyID()), slog.Duration(logging.KeyDuration, time.Since(start)))
	}
	return res.Deferred > 0 && ctx.Err() == nil
}

// Maintain runs the periodic maintenance now — key rotation and the
// removal of expired tokens, sessions and idle connections; for tests and
// tools.
func (s *Server) Maintain(ctx context.Context) { s.maintain(ctx) }

// FollowVaultKey reads which key seals the token vault's secrets now, as
// the background poll does; for tests and tools.
func (s *Server) FollowVaultKey(ctx context.Context) { s.followVaultKey(ctx) }

// Rewrap re-wraps stale secrets now and reports how many it re-wrapped;
// for tests and tools.
func (s *Server) Rewrap(ctx context.Context) (int, error) {
	res, err := s.vault.RewrapStale(ctx, s.store, 100)
	return res.Rewrapped, err
}

// maintainAuthServer rotates the authorization server's signing keys and
// removes its ended requests, expired refresh tokens and token ids.
func (s *Server) maintainAuthServer(ctx context.Context) {
	if s.authServer == nil {
		// Consent portals' sign-ins and sign-outs are one-time token ids too.
		n, err := s.store.DeleteExpiredTokenIDs(ctx, s.now())
		s.logCleanup(ctx, "expired token ids", n, err)
		return
	}
	if err := s.authServer.Rotate(ctx); err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelError, "rotating authorization server signing keys", logging.Err(err))
	}
	requests, refresh, ids, err := s.authServer.Cleanup(ctx)
	s.logCleanup(ctx, "ended OAuth authorization requests, expired refresh tokens and token ids", requests+refresh+ids, err)
}
