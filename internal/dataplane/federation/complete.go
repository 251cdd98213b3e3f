package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
)

// completeInput is CompleteResourceTokenAuth's input.
type completeInput struct {
	SessionURI     string `json:"sessionUri"`
	UserIdentifier *struct {
		UserToken *string `json:"userToken,omitempty"`
		UserID    *string `json:"userId,omitempty"`
	} `json:"userIdentifier"`
}

func (in *completeInput) Validate(c *wire.Checker) {
	c.String("sessionUri", in.SessionURI, 1, 1024, tokenflow.SessionURIPattern)
	if in.UserIdentifier == nil {
		c.Failf("userIdentifier", "is required")
		return
	}
	u := in.UserIdentifier
	c.OneOf("userIdentifier", u.UserToken != nil, u.UserID != nil)
	c.OptString("userIdentifier.userToken", u.UserToken, 1, 131072, nil)
	c.OptString("userIdentifier.userId", u.UserID, 1, 128, nil)
}

// completeResourceTokenAuth binds an authorized session's tokens to its
// user. It refuses, each with its own message, a session that is unknown,
// not yet authorized, failed, expired, already used, or started for
// another user. A completion for another user also ends the session
// (endForWrongUser): whoever consented at the provider is not the user the
// session was started for, so its tokens must reach no one.
func (s *Service) completeResourceTokenAuth(ctx context.Context, c *wire.Call, in *completeInput) (*struct{}, error) {
	id, _ := strings.CutPrefix(in.SessionURI, SessionURIPrefix)
	sess, err := s.Store.GetOAuthSession(ctx, id)
	if err != nil {
		return nil, wire.StorageError(err, "session", in.SessionURI)
	}
	if c.Audit.Provider, err = s.Access.ProviderName(ctx, sess.ProviderID); err != nil {
		return nil, err
	}
	if err := c.ActFor(sess.Workload); err != nil {
		return nil, err
	}
	var user string
	if u := in.UserIdentifier; u.UserID != nil {
		user = wat.UserFromID(*u.UserID)
	} else {
		w, err := s.Access.Workload(ctx, sess.Workload)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, wire.AccessDenied("workload identity %s no longer exists", sess.Workload)
		}
		if err != nil {
			return nil, fmt.Errorf("workload identity %s: %w", sess.Workload, err)
		}
		ident, err := s.Access.VerifyUser(ctx, *u.UserToken, w.AllowedAuthorizers)
		if err != nil {
			return nil, err
		}
		user = access.UserOf(ident)
	}
	c.Audit.User = user
	change := func(failing error) storage.Storage {
		if failing != nil {
			return c.ChangeFailing(s.Store, failing)
		}
		return c.Change(s.Store)
	}
	if err := s.bind(ctx, change, sess, user); err != nil {
		return nil, err
	}
	return nil, nil
}

// bind moves an authorized session's tokens into the user's connection.
// change returns the store whose write commits the completion's audit
// record with it, the record saying the completion failed with failing
// when that is not nil.
func (s *Service) bind(ctx context.Context, change func(failing error) storage.Storage, sess storage.OAuthSession, user string) error {
	switch {
	case sess.Status == storage.SessionCompleted:
		return wire.AccessDenied("the session was already used; each authorization binds once")
	case sess.Status == storage.SessionFailed:
		return wire.AccessDenied("the session failed: %s", sess.FailureReason)
	case s.Now().After(sess.ExpiresAt):
		s.Metrics.Session(ctx, telemetry.SessionExpired)
		return wire.AccessDenied("the session expired at %s; start a new authorization", sess.ExpiresAt.UTC().Format(time.RFC3339))
	case user != sess.User:
		s.Metrics.Session(ctx, telemetry.SessionWrongUser)
		return s.endForWrongUser(ctx, change(wrongUserEnded()), sess)
	case sess.Status != storage.SessionAuthorized:
		return wire.Validation("the user has not finished consenting at the provider yet (the session is "+string(sess.Status)+")",
			wire.FieldError{Name: "sessionUri", Message: "names a session still in progress"})
	}
	var req sessionRequest
	if err := json.Unmarshal(sess.Request, &req); err != nil {
		return fmt.Errorf("session %s: corrupt request: %w", sess.ID, err)
	}
	secrets, err := s.openSession(ctx, sess)
	if err != nil {
		return err
	}
	if secrets.Tokens == nil {
		return fmt.Errorf("authorized session %s holds no tokens", sess.ID)
	}
	k := storage.ConnectionKey{ProviderID: sess.ProviderID, Workload: sess.Workload, User: sess.User}
	sealed, err := s.sealTokens(ctx, k, *secrets.Tokens)
	if err != nil {
		return err
	}
	granted := req.Scopes
	if secrets.Tokens.Scope != "" {
		granted = strings.Fields(secrets.Tokens.Scope)
	}
	d := connectionDetails{Resources: req.Resources, Audiences: req.Audiences}
	if secrets.Tokens.Expiry != 0 {
		d.Lifetime = secrets.Tokens.Expiry - secrets.Tokens.Issued
	}
	details, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode connection details: %w", err)
	}
	now := s.Now()
	conn := storage.Connection{ConnectionKey: k, Status: storage.ConnectionActive, Scopes: granted, Details: details,
		Tokens: sealed, ExpiresAt: expiryTime(secrets.Tokens.Expiry), CreatedAt: now, UpdatedAt: now, LastUsedAt: now}
	err = change(nil).CompleteOAuthSession(ctx, sess.ID, conn)
	s.connections.forget(k)
	if err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return wire.AccessDenied("the session was already used; each authorization binds once")
		}
		return fmt.Errorf("complete session %s: %w", sess.ID, err)
	}
	s.Metrics.Session(ctx, telemetry.SessionCompleted)
	return nil
}

// wrongUserReason is the failure reason of a session completed for
// another user; polls show it, so it names no one.
const wrongUserReason = "it was completed for a user other than the one it was started for, so its tokens were discarded"

// wrongUserEnded answers a completion for another user that ended the
// session.
func wrongUserEnded() error {
	return wire.AccessDenied("the session was started for a different user; it has been ended and its tokens discarded: start a new authorization")
}

// endForWrongUser ends a session that a completion named another user
// for. The person who consented at the provider is then not the user the
// session was started for (a stolen session URI, or an initiator phishing
// someone else's consent), so neither may ever hold the tokens: the
// session becomes FAILED with its secrets cleared, through st with the
// completion's failure record, and tokens it already held are revoked
// where the provider offers revocation (RFC 7009).
func (s *Service) endForWrongUser(ctx context.Context, st storage.Storage, sess storage.OAuthSession) error {
	ctx = context.WithoutCancel(ctx) // the caller going away must not leave the tokens behind
	defer s.connections.forget(storage.ConnectionKey{ProviderID: sess.ProviderID, Workload: sess.Workload, User: sess.User})
	var held storage.OAuthSession
	_, err := st.UpdateOAuthSession(ctx, sess.ID, func(cur storage.OAuthSession) (storage.OAuthSession, error) {
		if cur.Status == storage.SessionFailed {
			return cur, storage.ErrConflict
		}
		held = cur
		cur.Status, cur.FailureReason, cur.Secrets, cur.UpdatedAt = storage.SessionFailed, wrongUserReason, storage.Sealed{}, s.Now()
		return cur, nil
	})
	switch {
	case errors.Is(err, storage.ErrConflict):
		// Completed or failed meanwhile: nothing is left to discard here.
		return wire.AccessDenied("the session was started for a different user")
	case err != nil:
		return fmt.Errorf("end session %s completed for another user: %w", sess.ID, err)
	}
	if held.Status == storage.SessionAuthorized {
		s.revokeSessionTokens(ctx, held)
	}
	return wrongUserEnded()
}

// revokeSessionTokens revokes, best effort, the tokens a session held
// before it was ended; the session no longer stores them, so a failure is
// logged and the tokens are left to expire at the provider.
func (s *Service) revokeSessionTokens(ctx context.Context, sess storage.OAuthSession) {
	secrets, err := s.openSession(ctx, sess)
	if err == nil && secrets.Tokens == nil {
		return
	}
	var stored storage.OAuth2Provider
	if err == nil {
		stored, err = s.Store.GetOAuth2ProviderByID(ctx, sess.ProviderID)
	}
	var p access.OAuth2Provider
	if err == nil {
		p, err = s.Access.LoadOAuth2Provider(ctx, stored.Name)
	}
	if err == nil {
		_, err = s.revokeTokens(ctx, p, *secrets.Tokens)
	}
	if err != nil {
		s.logger().LogAttrs(ctx, slog.LevelWarn, "tokens of an ended session not revoked at the provider",
			slog.String(logging.KeySession, sess.ID), slog.String(logging.KeyWorkload, sess.Workload), logging.Err(err))
	}
}
