package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Callback serves the route providers send browsers back to
// (GET /identities/oauth2/callback/{provider}): it checks the state,
// exchanges the code with the PKCE verifier (RFC 6749 §4.1.3, RFC 7636
// §4.5), keeps the tokens in the session, unusable until the user is bound
// to them, and sends the browser on to the workload's return URL with
// session_id (and the caller's custom state as state). It is reached by a
// browser, not an SDK, so it answers with pages, not API errors.
func (s *Service) Callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 512 {
		s.page(w, http.StatusBadRequest, "This sign-in link is not valid", "The provider sent no state. Start again from the application.")
		return
	}
	hash := sha256.Sum256([]byte(state))
	sess, err := s.Store.GetOAuthSessionByState(ctx, hash[:])
	if err != nil || sess.ProviderID != r.PathValue("provider") {
		s.page(w, http.StatusBadRequest, "This sign-in link is not valid", "It is unknown, or was meant for another provider. Start again from the application.")
		return
	}
	ev := wire.AuditEvent{Operation: "OAuth2Callback", Principal: "browser", AuditDetails: wire.AuditDetails{Workload: sess.Workload, User: sess.User, Provider: s.providerName(ctx, sess.ProviderID)}, Outcome: "failure"}
	switch {
	case sess.Status != storage.SessionInProgress:
		s.audit(ctx, ev, "AccessDeniedException")
		s.page(w, http.StatusConflict, "This sign-in link was already used", "Start again from the application.")
		return
	case s.Now().After(sess.ExpiresAt):
		s.audit(ctx, ev, "AccessDeniedException")
		s.page(w, http.StatusGone, "This sign-in link has expired", "Start again from the application.")
		return
	}
	if code := q.Get("error"); code != "" {
		reason := "the provider answered " + clip(code, 64)
		if d := q.Get("error_description"); d != "" {
			reason += ": " + clip(d, 256)
		}
		s.failSession(ctx, sess.ID, reason)
		s.audit(ctx, ev, "AccessDeniedException")
		title := "Sign-in did not complete"
		if code == "access_denied" {
			title = "You declined access"
		}
		s.page(w, http.StatusOK, title, strings.ToUpper(reason[:1])+reason[1:]+". No access was granted; you can close this tab.")
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		s.failSession(ctx, sess.ID, "the provider sent no authorization code")
		s.audit(ctx, ev, "ValidationException")
		s.page(w, http.StatusBadRequest, "Sign-in did not complete", "The provider sent no authorization code. Start again from the application.")
		return
	}
	// Claim the session before redeeming the code: a second callback with
	// the same state (a reload, a double click, a replay) must not redeem
	// it again — providers that detect reuse revoke every token issued
	// for the code (RFC 6749 §4.1.2).
	_, err = s.Store.UpdateOAuthSession(ctx, sess.ID, func(cur storage.OAuthSession) (storage.OAuthSession, error) {
		if cur.Status != storage.SessionInProgress {
			return cur, storage.ErrConflict
		}
		cur.Status, cur.UpdatedAt = storage.SessionExchanging, s.Now()
		return cur, nil
	})
	if errors.Is(err, storage.ErrConflict) {
		s.audit(ctx, ev, "AccessDeniedException")
		s.page(w, http.StatusConflict, "This sign-in link was already used", "Start again from the application.")
		return
	}
	var returnURL string
	if err == nil {
		// The browser may go away; the exchange and its bookkeeping must not.
		returnURL, err = s.exchangeCode(context.WithoutCancel(ctx), sess, code)
	}
	if err != nil {
		e := wire.AsError(err)
		status, reason := e.Status, e.Message
		if e.Hidden() {
			status, reason = http.StatusInternalServerError, "behalf could not complete the sign-in because of an internal error"
			if s.Log != nil {
				s.Log.LogAttrs(ctx, slog.LevelError, "OAuth2 callback failed", slog.String("session", sess.ID), slog.String("cause", err.Error()))
			}
		}
		s.failSession(ctx, sess.ID, reason)
		s.audit(ctx, ev, e.Type)
		s.page(w, status, "Sign-in did not complete", strings.ToUpper(reason[:1])+reason[1:]+". Start again from the application.")
		return
	}
	ev.Outcome = "success"
	s.audit(ctx, ev, "")
	http.Redirect(w, r, returnURL, http.StatusFound)
}

// exchangeCode redeems the code for a session this request has claimed
// (status EXCHANGING), keeps the tokens sealed in the session (status
// AUTHORIZED) and returns where to send the browser. Its errors are
// *wire.Error: shown to the user and agent unless hidden.
func (s *Service) exchangeCode(ctx context.Context, sess storage.OAuthSession, code string) (string, error) {
	var req sessionRequest
	if err := json.Unmarshal(sess.Request, &req); err != nil {
		return "", wire.Internal(err)
	}
	secrets, err := s.openSession(ctx, sess)
	if err != nil {
		return "", err
	}
	p, err := s.Store.GetOAuth2ProviderByID(ctx, sess.ProviderID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", wire.NotFound("the credential provider was deleted during the sign-in")
	}
	if err != nil {
		return "", wire.Internal(err)
	}
	cp, err := s.loadOAuth2Provider(ctx, p.Name)
	if err != nil {
		return "", wire.Internal(err)
	}
	secret, err := s.Vault.Open(ctx, p.ClientSecret, vault.Binding{Kind: storage.SecretOAuth2ClientSecret, Owner: p.ID})
	if err != nil {
		return "", wire.Internal(err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.callbackURL(p.ID)}}
	if secrets.Verifier != "" {
		form.Set("code_verifier", secrets.Verifier)
	}
	for _, r := range req.Resources {
		form.Add("resource", r)
	}
	tok, err := s.OAuth.Do(ctx, tokenRequest(cp.cfg, string(secret), form))
	clear(secret)
	if err != nil {
		var pe *oauthclient.ProviderError
		if errors.As(err, &pe) {
			return "", wire.BadGateway("the code could not be exchanged for a token: %s", pe.Error())
		}
		return "", wire.Internal(err)
	}
	secrets.Tokens = &tokenSet{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Scope: tok.Scope, Issued: s.Now().Unix()}
	if t := s.userTokenExpiry(tok); !t.IsZero() {
		secrets.Tokens.Expiry = t.Unix()
	}
	sealed, err := s.sealSession(ctx, sess, secrets)
	if err != nil {
		return "", wire.Internal(err)
	}
	_, err = s.Store.UpdateOAuthSession(ctx, sess.ID, func(cur storage.OAuthSession) (storage.OAuthSession, error) {
		if cur.Status != storage.SessionExchanging {
			return cur, storage.ErrConflict
		}
		cur.Status, cur.Secrets, cur.UpdatedAt = storage.SessionAuthorized, sealed, s.Now()
		return cur, nil
	})
	if err != nil {
		return "", wire.Internal(fmt.Errorf("store the authorized session: %w", err))
	}
	return returnTo(req.ReturnURL, SessionURIPrefix+sess.ID, secrets.CustomState), nil
}

// returnTo adds session_id and the caller's custom state to the return URL.
func returnTo(base, sessionURI, customState string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	q.Set("session_id", sessionURI)
	if customState != "" {
		q.Set("state", customState)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (s *Service) failSession(ctx context.Context, id, reason string) {
	_, _ = s.Store.UpdateOAuthSession(context.WithoutCancel(ctx), id, func(cur storage.OAuthSession) (storage.OAuthSession, error) {
		if cur.Status != storage.SessionInProgress && cur.Status != storage.SessionExchanging {
			return cur, storage.ErrConflict
		}
		cur.Status, cur.FailureReason, cur.UpdatedAt = storage.SessionFailed, clip(reason, 512), s.Now()
		return cur, nil
	})
}

func (s *Service) audit(ctx context.Context, ev wire.AuditEvent, errType string) {
	if s.Audit == nil {
		return
	}
	if errType != "" {
		ev.Outcome, ev.ErrorType = "failure", errType
	}
	if ev.RequestID == "" {
		ev.RequestID = "browser-" + randomToken()[:16]
	}
	if err := s.Audit.Record(context.WithoutCancel(ctx), ev); err != nil && s.Log != nil {
		s.Log.Error("audit record not written", "op", ev.Operation, "err", err)
	}
}

func (s *Service) providerName(ctx context.Context, id string) string {
	p, err := s.Store.GetOAuth2ProviderByID(ctx, id)
	if err != nil {
		return ""
	}
	return p.Name
}

func clip(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}} — behalf</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Body}}</p></body></html>
`))

// page answers a browser. Nothing it shows is secret: titles are fixed and
// bodies hold only provider error codes and descriptions.
func (s *Service) page(w http.ResponseWriter, status int, title, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	pageTemplate.Execute(w, struct{ Title, Body string }{title, body})
}

// completeInput is CompleteResourceTokenAuth's input.
type completeInput struct {
	SessionURI     string `json:"sessionUri"`
	UserIdentifier *struct {
		UserToken *string `json:"userToken,omitempty"`
		UserID    *string `json:"userId,omitempty"`
	} `json:"userIdentifier"`
}

func (in *completeInput) Validate(c *wire.Checker) {
	c.String("sessionUri", in.SessionURI, 1, 1024, sessionURIPattern)
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
	c.Audit.Workload, c.Audit.Provider = sess.Workload, s.providerName(ctx, sess.ProviderID)
	if err := authz.CheckActsFor(c.Caller, sess.Workload); err != nil {
		return nil, err
	}
	var user string
	if u := in.UserIdentifier; u.UserID != nil {
		user = wat.UserFromID(*u.UserID)
	} else {
		w, err := s.workloads.get(ctx, sess.Workload, s.Store.GetWorkloadIdentity)
		if err != nil {
			return nil, wire.AccessDenied("workload identity %s no longer exists", sess.Workload)
		}
		ident, err := s.verifyUser(ctx, *u.UserToken, w.AllowedAuthorizers)
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

// DevComplete serves the development completion page
// (GET /dev/complete?session_id=…), for a userId-based session: it does
// what an application's return-URL endpoint does after checking who is
// signed in — CompleteResourceTokenAuth for the session's own user — so a
// newcomer can run the whole flow without writing one. Anyone holding the
// session URI can complete it here, which is why it exists only with
// development mode on, and never for sessions of JWT users.
func (s *Service) DevComplete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, _ := strings.CutPrefix(r.URL.Query().Get("session_id"), SessionURIPrefix)
	sess, err := s.Store.GetOAuthSession(ctx, id)
	if err != nil || len(id) > 256 {
		s.page(w, http.StatusNotFound, "Unknown session", "No session has that id.")
		return
	}
	userID, ok := strings.CutPrefix(sess.User, "id:")
	if !ok {
		s.page(w, http.StatusForbidden, "Not for this session", "The development page completes only sessions started with GetWorkloadAccessTokenForUserId. A session for a JWT user must be completed by your application with the user's token.")
		return
	}
	provider := s.providerName(ctx, sess.ProviderID)
	ev := wire.AuditEvent{Operation: "CompleteResourceTokenAuth", Principal: "development-page",
		AuditDetails: wire.AuditDetails{Workload: sess.Workload, User: sess.User, Provider: provider}, Outcome: "success"}
	if err := s.bind(ctx, sess, sess.User); err != nil {
		e := wire.AsError(err)
		s.audit(ctx, ev, e.Type)
		s.page(w, http.StatusConflict, "Not completed", e.Message+".")
		return
	}
	s.audit(ctx, ev, "")
	if s.Log != nil {
		s.Log.LogAttrs(ctx, slog.LevelInfo, "development page completed a session", slog.String("workload", sess.Workload), slog.String("user", sess.User))
	}
	s.page(w, http.StatusOK, "Connected", fmt.Sprintf("%s is connected for user %s and workload %s. The agent can fetch its token now; you can close this tab.",
		provider, userID, sess.Workload))
}
