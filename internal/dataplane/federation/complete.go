package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/storage"
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
// another user — so a stolen session URI completed by someone else binds
// nothing, and leaves the session to its rightful user.
func (s *Service) completeResourceTokenAuth(ctx context.Context, c *wire.Call, in *completeInput) (*struct{}, error) {
	id, _ := strings.CutPrefix(in.SessionURI, SessionURIPrefix)
	sess, err := s.Store.GetOAuthSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, wire.NotFound("session %s does not exist", in.SessionURI)
	}
	if err != nil {
		return nil, wire.Internal(err)
	}
	c.Audit.Workload, c.Audit.Provider = sess.Workload, s.Access.ProviderName(ctx, sess.ProviderID)
	if err := authz.CheckActsFor(c.Caller, sess.Workload); err != nil {
		return nil, err
	}
	var user string
	if u := in.UserIdentifier; u.UserID != nil {
		user = wat.UserFromID(*u.UserID)
	} else {
		w, err := s.Access.Workload(ctx, sess.Workload)
		if err != nil {
			return nil, wire.AccessDenied("workload identity %s no longer exists", sess.Workload)
		}
		ident, err := s.Access.VerifyUser(ctx, *u.UserToken, w.AllowedAuthorizers)
		if err != nil {
			return nil, err
		}
		user = wat.UserFromJWT(ident.Issuer, ident.Subject)
	}
	c.Audit.User = user
	if err := s.bind(ctx, sess, user); err != nil {
		return nil, err
	}
	return nil, nil
}

// bind moves an authorized session's tokens into the user's connection.
func (s *Service) bind(ctx context.Context, sess storage.OAuthSession, user string) error {
	switch {
	case sess.Status == storage.SessionCompleted:
		return wire.AccessDenied("the session was already used; each authorization binds once")
	case sess.Status == storage.SessionFailed:
		return wire.AccessDenied("the session failed: %s", sess.FailureReason)
	case s.Now().After(sess.ExpiresAt):
		return wire.AccessDenied("the session expired at %s; start a new authorization", sess.ExpiresAt.UTC().Format(time.RFC3339))
	case user != sess.User:
		return wire.AccessDenied("the session was started for a different user; it stays open for that user")
	case sess.Status != storage.SessionAuthorized:
		return wire.Validation("the user has not finished consenting at the provider yet (the session is "+string(sess.Status)+")",
			wire.FieldError{Name: "sessionUri", Message: "names a session still in progress"})
	}
	var req sessionRequest
	if err := json.Unmarshal(sess.Request, &req); err != nil {
		return wire.Internal(err)
	}
	secrets, err := s.openSession(ctx, sess)
	if err != nil {
		return err
	}
	if secrets.Tokens == nil {
		return wire.Internal(fmt.Errorf("authorized session %s holds no tokens", sess.ID))
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
	details, _ := json.Marshal(d)
	now := s.Now()
	conn := storage.Connection{ConnectionKey: k, Status: storage.ConnectionActive, Scopes: granted, Details: details,
		Tokens: sealed, ExpiresAt: expiryTime(secrets.Tokens.Expiry), CreatedAt: now, UpdatedAt: now, LastUsedAt: now}
	if err := s.Store.CompleteOAuthSession(ctx, sess.ID, conn); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return wire.AccessDenied("the session was already used; each authorization binds once")
		}
		return wire.Internal(err)
	}
	return nil
}
