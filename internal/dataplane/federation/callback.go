package federation

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
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
	// No router gives a browser's request an id: this one names the
	// callback's log lines and audit record.
	ctx := wire.WithRequestID(r.Context(), "browser-"+randomToken()[:16])
	q := r.URL.Query()
	sess, bad := s.callbackSession(ctx, q.Get("state"), r.PathValue("provider"))
	if bad != nil {
		s.page(ctx, w, bad.status, bad.title, bad.body)
		return
	}
	// The session's change (its tokens stored, or its failure) commits
	// with this record.
	tr := s.newTrail(ctx, storage.AuditRecord{Operation: "OAuth2Callback", Principal: "browser", RequestID: wire.RequestID(ctx),
		Workload: sess.Workload, User: sess.User, Provider: s.providerName(ctx, sess.ProviderID)})
	returnURL, refused := s.redeem(ctx, tr, sess, q)
	if refused != nil {
		if refused.failReason != "" {
			s.failSession(ctx, tr.change(refused.errType), sess.ID, refused.failReason)
		}
		tr.finish(ctx, refused.errType)
		s.page(ctx, w, refused.status, refused.title, refused.body)
		return
	}
	tr.finish(ctx, "")
	// The return URL is one the workload identity allows
	// (allowedResourceOauth2ReturnUrls), checked when the session started.
	http.Redirect(w, r, returnURL, http.StatusFound) //nolint:gosec // G710: an allow-listed return URL
}

// providerName names a session's provider in a browser page's audit
// record: one that cannot be read is logged, and the page goes on without
// its name rather than failing the person's sign-in.
func (s *Service) providerName(ctx context.Context, id string) string {
	name, err := s.Access.ProviderName(ctx, id)
	if err != nil {
		s.logger().LogAttrs(ctx, slog.LevelError, "provider of a session not read", logging.Err(err))
	}
	return name
}

// refusal is the page a callback shows instead of redirecting.
type refusal struct {
	status      int
	title, body string
	// errType is the error type of the callback's audit record;
	// failReason, when set, ends the session as FAILED.
	errType, failReason string
}

var linkUsed = &refusal{status: http.StatusConflict, title: "This sign-in link was already used", body: "Start again from the application.",
	errType: "AccessDeniedException"}

// callbackSession finds the session a callback's state names.
func (s *Service) callbackSession(ctx context.Context, state, providerID string) (storage.OAuthSession, *refusal) {
	if state == "" || len(state) > 512 {
		return storage.OAuthSession{}, &refusal{status: http.StatusBadRequest, title: "This sign-in link is not valid",
			body: "The provider sent no state. Start again from the application."}
	}
	hash := sha256.Sum256([]byte(state))
	sess, err := s.Store.GetOAuthSessionByState(ctx, hash[:])
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.logger().LogAttrs(ctx, slog.LevelError, "OAuth2 callback: session not read", logging.Err(err))
		return sess, &refusal{status: http.StatusInternalServerError, title: "Sign-in did not complete",
			body: "behalf could not read the sign-in because of an internal error. Try the link again in a moment."}
	}
	if err != nil || sess.ProviderID != providerID {
		return sess, &refusal{status: http.StatusBadRequest, title: "This sign-in link is not valid",
			body: "It is unknown, or was meant for another provider. Start again from the application."}
	}
	return sess, nil
}

// redeem checks the session is still waiting for its code, claims it and
// exchanges the code, storing the tokens with tr's record; it returns where
// to send the browser.
func (s *Service) redeem(ctx context.Context, tr *trail, sess storage.OAuthSession, q url.Values) (string, *refusal) {
	switch {
	case sess.Status != storage.SessionInProgress:
		return "", linkUsed
	case s.Now().After(sess.ExpiresAt):
		s.Metrics.Session(ctx, telemetry.SessionExpired)
		return "", &refusal{status: http.StatusGone, title: "This sign-in link has expired", body: "Start again from the application.",
			errType: "AccessDeniedException"}
	}
	if code := q.Get("error"); code != "" {
		return "", providerRefusal(code, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return "", &refusal{status: http.StatusBadRequest, title: "Sign-in did not complete", errType: "ValidationException",
			body:       "The provider sent no authorization code. Start again from the application.",
			failReason: "the provider sent no authorization code"}
	}
	err := s.claim(ctx, sess.ID)
	if errors.Is(err, storage.ErrConflict) {
		return "", linkUsed
	}
	var returnURL string
	if err == nil {
		// The browser may go away; the exchange and its bookkeeping must not.
		returnURL, err = s.exchangeCode(context.WithoutCancel(ctx), tr, sess, code, q["iss"])
	}
	if err != nil {
		return "", s.exchangeRefusal(ctx, sess.ID, err)
	}
	return returnURL, nil
}

// providerRefusal reports the provider's error response (RFC 6749
// §4.1.2.1): the session fails.
func providerRefusal(code, description string) *refusal {
	reason := "the provider answered " + clip(code, 64)
	if description != "" {
		reason += ": " + clip(description, 256)
	}
	title := "Sign-in did not complete"
	if code == "access_denied" {
		title = "You declined access"
	}
	return &refusal{status: http.StatusOK, title: title, body: strings.ToUpper(reason[:1]) + reason[1:] + ". No access was granted; you can close this tab.",
		errType: "AccessDeniedException", failReason: reason}
}

// claim marks a session as exchanging its code before the code is
// redeemed: a second callback with the same state (a reload, a double
// click, a replay) must not redeem it again — providers that detect reuse
// revoke every token issued for the code (RFC 6749 §4.1.2).
func (s *Service) claim(ctx context.Context, id string) error {
	_, err := s.Store.UpdateOAuthSession(ctx, id, func(cur storage.OAuthSession) (storage.OAuthSession, error) {
		if cur.Status != storage.SessionInProgress {
			return cur, storage.ErrConflict
		}
		cur.Status, cur.UpdatedAt = storage.SessionExchanging, s.Now()
		return cur, nil
	})
	return err
}

// exchangeRefusal shows why the exchange failed, unless the reason is
// internal: then it is logged and the page says only that.
func (s *Service) exchangeRefusal(ctx context.Context, sessionID string, err error) *refusal {
	e := wire.AsError(err)
	status, reason := e.Status, e.Message
	if e.Hidden() {
		status, reason = http.StatusInternalServerError, "behalf could not complete the sign-in because of an internal error"
		s.logger().LogAttrs(ctx, slog.LevelError, "OAuth2 callback failed", slog.String(logging.KeySession, sessionID), logging.Err(err))
	}
	return &refusal{status: status, title: "Sign-in did not complete", body: strings.ToUpper(reason[:1]) + reason[1:] + ". Start again from the application.",
		errType: e.Type, failReason: reason}
}

// exchangeCode redeems the code for a session this request has claimed
// (status EXCHANGING), keeps the tokens sealed in the session (status
// AUTHORIZED), committed with tr's record, and returns where to send the
// browser. Its *wire.Errors are shown to the user and agent unless hidden;
// any other error is internal.
func (s *Service) exchangeCode(ctx context.Context, tr *trail, sess storage.OAuthSession, code string, iss []string) (string, error) {
	var req sessionRequest
	if err := json.Unmarshal(sess.Request, &req); err != nil {
		return "", fmt.Errorf("session %s: corrupt request: %w", sess.ID, err)
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
		return "", fmt.Errorf("credential provider of session %s: %w", sess.ID, err)
	}
	cp, err := s.Access.LoadOAuth2Provider(ctx, p.Name)
	if err != nil {
		return "", fmt.Errorf("OAuth2 credential provider %s: %w", p.Name, err)
	}
	if err := checkIssuer(cp.Config.Resolved, iss); err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.callbackURL(p.ID)}}
	if secrets.Verifier != "" {
		form.Set("code_verifier", secrets.Verifier)
	}
	for _, r := range cp.Config.Resources(req.Resources) {
		form.Add("resource", r)
	}
	tok, err := s.Endpoint.Request(ctx, cp, form)
	if err != nil {
		var pe *oauthclient.ProviderError
		if errors.As(err, &pe) {
			return "", wire.BadGateway("the code could not be exchanged for a token: %s", pe.Error())
		}
		return "", err
	}
	secrets.Tokens = &tokenSet{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Scope: tok.Scope, Issued: s.Now().Unix()}
	if t := s.userTokenExpiry(tok); !t.IsZero() {
		secrets.Tokens.Expiry = t.Unix()
	}
	sealed, err := s.sealSession(ctx, sess, secrets)
	if err != nil {
		return "", fmt.Errorf("seal session %s: %w", sess.ID, err)
	}
	_, err = tr.change("").UpdateOAuthSession(ctx, sess.ID, func(cur storage.OAuthSession) (storage.OAuthSession, error) {
		if cur.Status != storage.SessionExchanging {
			return cur, storage.ErrConflict
		}
		cur.Status, cur.Secrets, cur.UpdatedAt = storage.SessionAuthorized, sealed, s.Now()
		return cur, nil
	})
	if err != nil {
		return "", s.unstored(ctx, sess.ID, cp, *secrets.Tokens, err)
	}
	return returnTo(req.ReturnURL, SessionURIPrefix+sess.ID, secrets.CustomState), nil
}

// checkIssuer applies RFC 9207 §2.4 to an authorization response's iss
// parameters, for a server that promised to send it: exactly one, equal
// to the server's issuer, or the code may be another server's (a mix-up
// attack) and is not redeemed.
func checkIssuer(m provider.Metadata, iss []string) error {
	if !m.AuthorizationResponseIssParameterSupported {
		return nil
	}
	if len(iss) != 1 || iss[0] != m.Issuer {
		return wire.AccessDenied("the authorization response does not name the provider's issuer (RFC 9207); no token was requested")
	}
	return nil
}

// unstored handles tokens the session could not keep (err): no session
// holds them, so they must reach no one and are revoked, best effort.
func (s *Service) unstored(ctx context.Context, sessionID string, p access.OAuth2Provider, ts tokenSet, err error) error {
	if _, rerr := s.revokeTokens(ctx, p, ts); rerr != nil {
		s.logger().LogAttrs(ctx, slog.LevelWarn, "tokens of an ended session not revoked at the provider",
			slog.String(logging.KeySession, sessionID), logging.Err(rerr))
	}
	if errors.Is(err, storage.ErrConflict) {
		// A completion for another user ended the session meanwhile.
		return wire.AccessDenied("the sign-in was ended while it completed; no access was granted")
	}
	return fmt.Errorf("store the authorized session: %w", err)
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

// failSession ends a session that has not been authorized, dropping its
// secrets (the PKCE verifier is of no use once the session failed); st
// commits the callback's record with it.
func (s *Service) failSession(ctx context.Context, st storage.Storage, id, reason string) {
	_, err := st.UpdateOAuthSession(context.WithoutCancel(ctx), id, func(cur storage.OAuthSession) (storage.OAuthSession, error) {
		if cur.Status != storage.SessionInProgress && cur.Status != storage.SessionExchanging {
			return cur, storage.ErrConflict
		}
		cur.Status, cur.FailureReason, cur.Secrets, cur.UpdatedAt = storage.SessionFailed, clip(reason, 512), storage.Sealed{}, s.Now()
		return cur, nil
	})
	switch {
	case err == nil:
		s.Metrics.Session(ctx, telemetry.SessionFailed)
	case !errors.Is(err, storage.ErrConflict):
		s.logger().LogAttrs(ctx, slog.LevelError, "session not marked failed", slog.String(logging.KeySession, id), logging.Err(err))
	}
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
