package authserver

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
)

// bindingCookie binds an authorization request to the browser that made
// it: the login callback and the consent form check it (login CSRF and
// consent CSRF). SameSite=Lax, since it must come back with the identity
// provider's top-level redirect.
const bindingCookie = "behalf_oauth"

// Bounds of an authorization request.
const (
	maxState     = 1024
	loginTTL     = 10 * time.Minute
	consentTTL   = 10 * time.Minute
	minCookieLen = 26
)

// authorize handles the authorization endpoint (RFC 6749 §4.1.1).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	rec := storage.AuditRecord{Operation: opAuthorize, Principal: principal(q.Get("client_id")), Flow: config.GrantAuthorizationCode}
	client, e := s.opts.Clients.Resolve(ctx, q.Get("client_id"))
	redirectURI := q.Get("redirect_uri")
	// RFC 6749 §4.1.2.1: without a known client and one of its redirect
	// URIs, tell the user and never redirect.
	if e != nil || len(q["client_id"]) != 1 || len(q["redirect_uri"]) != 1 || !client.AllowsRedirect(redirectURI) {
		code := "invalid_request"
		if e != nil {
			code = e.Code
		}
		_ = s.record(ctx, rec, code)
		s.errorPage(w, http.StatusBadRequest, "This application's sign-in request is not valid",
			"The application is unknown, or asked to be sent back to an address it has not registered. Nothing was shared with it.")
		return
	}
	ar := storage.AuthRequest{ClientID: client.ID, RedirectURI: redirectURI, State: q.Get("state"), CodeChallenge: q.Get("code_challenge")}
	e = s.checkAuthorizeRequest(q, client, &ar)
	if e != nil {
		rec.Resource = ar.Resource
		_ = s.record(ctx, rec, e.Code)
		s.redirect(w, r, ar, url.Values{"error": {e.Code}, "error_description": {e.Description}})
		return
	}
	cookie := s.browserBinding(w, r)
	ar.ID = rand.Text()
	loginState := s.mac("login-state", ar.ID, cookie)
	ar.LoginStateHash, ar.Status, ar.ExpiresAt = oauthwire.Hash(loginState), storage.AuthRequestLogin, s.now().Add(loginTTL)
	if err := s.opts.Store.CreateAuthRequest(ctx, ar); err != nil {
		s.internalError(ctx, w, "store an authorization request", err)
		return
	}
	to, err := s.login.authCodeURL(ctx, ar.ID, loginState)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "login identity provider unavailable", logging.Err(err))
		s.redirect(w, r, ar, url.Values{"error": {"temporarily_unavailable"}, "error_description": {"the sign-in service is unavailable"}})
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

// checkAuthorizeRequest applies the rules that, broken, are told to the
// client by redirect (RFC 6749 §4.1.2.1), and fills ar.
func (s *Server) checkAuthorizeRequest(q url.Values, client clients.Client, ar *storage.AuthRequest) *oauthwire.Error {
	if e := oauthwire.Single(q); e != nil {
		return e
	}
	if len(ar.State) > maxState {
		ar.State = ""
		return oauthwire.Errorf("invalid_request", "state is longer than %d characters", maxState)
	}
	if q.Get("response_type") != "code" {
		return oauthwire.Errorf("unsupported_response_type", "response_type must be code")
	}
	if !client.AllowsGrant(config.GrantAuthorizationCode) {
		return oauthwire.Errorf("unauthorized_client", "this client may not use the authorization code grant")
	}
	if e := oauthwire.CheckChallenge(ar.CodeChallenge, q.Get("code_challenge_method")); e != nil {
		return e
	}
	res, e := s.resource(q["resource"])
	if e != nil {
		return e
	}
	ar.Resource = res.Resource
	scopes, e := oauthwire.ParseScope(q.Get("scope"))
	if e != nil {
		return e
	}
	if len(scopes) == 0 {
		return oauthwire.Errorf("invalid_scope", "scope is required: name the scopes of %s the client needs", res.Resource)
	}
	if !containsAll(res.Scopes, scopes) {
		return oauthwire.Errorf("invalid_scope", "%s offers only the scopes %s", res.Resource, strings.Join(res.Scopes, " "))
	}
	ar.Scopes = scopes
	return nil
}

// resource picks the one resource of a request (RFC 8707 §2).
func (s *Server) resource(values []string) (config.AuthServerResourceFile, *oauthwire.Error) {
	if len(values) != 1 {
		return config.AuthServerResourceFile{}, oauthwire.Errorf("invalid_target", "name exactly one resource (RFC 8707): the MCP server's URI")
	}
	res, ok := s.cfg.Resource(values[0])
	if !ok {
		return config.AuthServerResourceFile{}, oauthwire.Errorf("invalid_target", "this server issues no tokens for that resource")
	}
	return res, nil
}

// browserBinding returns the browser's binding cookie, setting one first
// when it has none.
func (s *Server) browserBinding(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(bindingCookie); err == nil && len(c.Value) >= minCookieLen && len(c.Value) <= 64 {
		return c.Value
	}
	v := rand.Text()
	// G124: Secure only over https: a loopback development issuer is http.
	http.SetCookie(w, &http.Cookie{Name: bindingCookie, Value: v, Path: "/oauth2/", HttpOnly: true, //nolint:gosec // G124: see above
		SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(s.cfg.Issuer, "https:")})
	return v
}

// boundTo reports whether r carries the browser binding of ar: the
// login state derived from the request id and the cookie must be the one
// stored.
func (s *Server) boundTo(r *http.Request, ar storage.AuthRequest) bool {
	c, err := r.Cookie(bindingCookie)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(oauthwire.Hash(s.mac("login-state", ar.ID, c.Value)), ar.LoginStateHash) == 1
}

// redirect sends the browser back to the client (RFC 6749 §4.1.2) with
// state, and iss (RFC 9207). ar.RedirectURI is one the client registered.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, params url.Values) {
	u, err := url.Parse(ar.RedirectURI)
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "This application's sign-in request is not valid", "Its redirect URI cannot be used.")
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if ar.State != "" {
		q.Set("state", ar.State)
	}
	q.Set("iss", s.cfg.Issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// issueCode moves a request to CODE with a new code, committing rec with
// it, and redirects the browser with the code.
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, rec storage.AuditRecord) {
	ctx := r.Context()
	code := rand.Text() + rand.Text() // 256 bits
	st := s.bind(ctx, rec)
	updated, err := st.UpdateAuthRequest(ctx, ar.ID, func(cur storage.AuthRequest) (storage.AuthRequest, error) {
		if cur.Status != ar.Status {
			return cur, errStale
		}
		cur.Status, cur.CodeHash, cur.User, cur.ExpiresAt = storage.AuthRequestCode, oauthwire.Hash(code), ar.User, s.now().Add(s.cfg.CodeTTL)
		return cur, nil
	})
	if errors.Is(err, errStale) || errors.Is(err, storage.ErrConflict) {
		s.errorPage(w, http.StatusConflict, "This sign-in was already answered", "Start again from the application.")
		return
	}
	if err != nil {
		s.internalError(ctx, w, "issue an authorization code", err)
		return
	}
	s.redirect(w, r, updated, url.Values{"code": {code}})
}

var errStale = errors.New("authserver: the authorization request moved on")

// endRequest ends a request that will not produce a code, committing rec
// (a refusal) with the change, and redirects the browser with the error.
func (s *Server) endRequest(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, rec storage.AuditRecord, e *oauthwire.Error) {
	ctx := r.Context()
	rec.Outcome, rec.ErrorType = audit.OutcomeFailure, e.AuditType()
	_, err := s.bind(ctx, rec).UpdateAuthRequest(ctx, ar.ID, func(cur storage.AuthRequest) (storage.AuthRequest, error) {
		cur.ExpiresAt = s.now()
		return cur, nil
	})
	if err != nil && !errors.Is(err, storage.ErrConflict) {
		s.internalError(ctx, w, "end an authorization request", err)
		return
	}
	s.redirect(w, r, ar, url.Values{"error": {e.Code}, "error_description": {e.Description}})
}

// live reports whether a request read (ar, err) is in status want,
// unexpired and bound to this browser; a storage failure is err.
func (s *Server) live(r *http.Request, ar storage.AuthRequest, err error, want storage.AuthRequestStatus) (bool, error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return ar.Status == want && s.now().Before(ar.ExpiresAt) && s.boundTo(r, ar), nil
}
