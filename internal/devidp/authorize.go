package devidp

import (
	"bytes"
	"crypto/rand"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// authRequest is an accepted authorization request (RFC 6749 §4.1.1).
type authRequest struct {
	clientID, redirectURI, state, scope, challenge, nonce string
	resource                                              []string
}

// pending is a consent page shown and not yet answered.
type pending struct {
	authRequest
	binding string // hash of the consent cookie
	exp     time.Time
}

// code is an authorization code (RFC 6749 §4.1.2).
type code struct {
	authRequest
	subject  string
	authTime time.Time // when the user signed in on the consent page
	exp      time.Time
	redeemed bool
	family   *family // the refresh tokens it produced, revoked if the code is replayed
}

const consentCookie = "devidp_consent"

var (
	usernamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	maxAgePattern   = regexp.MustCompile(`^[0-9]{1,10}$`)
)

// authorize validates an authorization request and shows the consent page.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ev := Event{Endpoint: "authorize", ClientID: q.Get("client_id")}
	c, ok := s.clients[q.Get("client_id")]
	// RFC 6749 §4.1.2.1: without a known client and one of its redirect
	// URIs, tell the user and do not redirect.
	if !ok || len(q["client_id"]) > 1 || len(q["redirect_uri"]) != 1 || !c.allows(q.Get("redirect_uri")) {
		ev.Error = "invalid_request"
		s.emit(ev)
		http.Error(w, "behalf dev-idp: unknown client_id, or a missing redirect_uri or one this client may not use", http.StatusBadRequest)
		return
	}
	ar := authRequest{clientID: c.ID, redirectURI: q.Get("redirect_uri"), state: q.Get("state"),
		challenge: q.Get("code_challenge"), nonce: q.Get("nonce")}
	e := oauthwire.Single(q)
	if e == nil && q.Get("response_type") != "code" {
		e = oauthwire.Errorf("unsupported_response_type", "response_type must be code")
	}
	if e == nil {
		ar.scope, e = parseScope(q.Get("scope"))
	}
	if e == nil {
		ar.resource, e = parseResources(q["resource"])
	}
	if e == nil {
		e = oauthwire.CheckChallenge(ar.challenge, q.Get("code_challenge_method"))
	}
	if e == nil && q.Has("max_age") && !maxAgePattern.MatchString(q.Get("max_age")) {
		e = oauthwire.Errorf("invalid_request", "max_age must be a non-negative number of seconds")
	}
	if e != nil {
		ev.Error = e.Code
		s.emit(ev)
		s.redirect(w, r, ar, url.Values{"error": {e.Code}, "error_description": {e.Description}})
		return
	}

	binding := s.consentBinding(w, r)
	formToken := rand.Text()
	now := s.now()
	s.mu.Lock()
	s.pruneLocked(now)
	s.pending[hash(formToken)] = &pending{authRequest: ar, binding: hash(binding), exp: now.Add(consentTTL)}
	s.mu.Unlock()
	username := q.Get("login_hint")
	if username == "" {
		username = "alice"
	}
	s.render(w, http.StatusOK, ar, formToken, username, "")
}

// consent receives the consent form. The one-time form token names the
// request; the cookie set with the page proves that this browser is the one
// it was shown to, so another site cannot submit the form for the user.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	ev := Event{Endpoint: "authorize", Error: "invalid_request"}
	form, e := oauthwire.PostForm(w, r)
	if e != nil {
		s.emit(ev)
		http.Error(w, "behalf dev-idp: "+e.Description, http.StatusBadRequest)
		return
	}
	cookie, _ := r.Cookie(consentCookie)
	formToken, username, now := form.Get("form_token"), form.Get("username"), s.now()
	key := hash(formToken)

	s.mu.Lock()
	p := s.pending[key]
	if p == nil || now.After(p.exp) || cookie == nil || hash(cookie.Value) != p.binding {
		s.mu.Unlock()
		s.emit(ev)
		http.Error(w, "behalf dev-idp: this consent form has expired or was already answered; start again from the application", http.StatusBadRequest)
		return
	}
	ev.ClientID = p.clientID
	action := form.Get("action")
	if action != "deny" && (action != "allow" || !usernamePattern.MatchString(username)) {
		s.mu.Unlock()
		s.emit(ev)
		s.render(w, http.StatusBadRequest, p.authRequest, formToken, username, "Choose a username of 1 to 64 letters, digits, '.', '_' or '-', then Allow or Deny.")
		return
	}
	delete(s.pending, key)
	if action == "deny" {
		s.mu.Unlock()
		ev.Error = "access_denied"
		s.emit(ev)
		s.redirect(w, r, p.authRequest, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}})
		return
	}
	c := rand.Text()
	s.codes[hash(c)] = &code{authRequest: p.authRequest, subject: username, authTime: now, exp: now.Add(codeTTL)}
	s.mu.Unlock()
	ev.Error, ev.Subject = "", username
	s.emit(ev)
	s.redirect(w, r, p.authRequest, url.Values{"code": {c}})
}

// consentBinding returns this browser's consent cookie, setting one first
// if it has none.
func (s *Server) consentBinding(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(consentCookie); err == nil && len(c.Value) >= 26 {
		return c.Value
	}
	v := rand.Text()
	// G124: Secure only over https, as the dev IdP normally serves plain http on loopback.
	cookie := &http.Cookie{Name: consentCookie, Value: v, Path: "/", HttpOnly: true, //nolint:gosec // G124: see above
		SameSite: http.SameSiteStrictMode, Secure: strings.HasPrefix(s.issuer, "https:")}
	http.SetCookie(w, cookie)
	return v
}

// redirect sends the user agent back to the client (RFC 6749 §4.1.2) with
// state, and iss per RFC 9207.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, ar authRequest, params url.Values) {
	u, _ := url.Parse(ar.redirectURI) // checked by Client.allows
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if ar.state != "" {
		q.Set("state", ar.state)
	}
	q.Set("iss", s.issuer)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (c Client) allows(redirectURI string) bool {
	if len(c.RedirectURIs) > 0 {
		return slices.Contains(c.RedirectURIs, redirectURI)
	}
	return validRedirect(redirectURI)
}

// validRedirect: absolute, no fragment (RFC 6749 §3.1.2), https or
// loopback http (RFC 8252 §7.3).
func validRedirect(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || strings.Contains(s, "#") {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	return u.Scheme == "http" && (h == "localhost" || ip != nil && ip.IsLoopback())
}

// parseScope checks RFC 6749 §3.3 syntax and drops repeated tokens.
func parseScope(s string) (string, *oauthwire.Error) {
	scopes, e := oauthwire.ParseScope(s)
	return strings.Join(scopes, " "), e
}

// parseResources checks RFC 8707 §2: absolute URIs without a fragment.
func parseResources(vs []string) ([]string, *oauthwire.Error) {
	for _, v := range vs {
		if u, err := url.Parse(v); err != nil || !u.IsAbs() || strings.Contains(v, "#") {
			return nil, oauthwire.Errorf("invalid_target", "resource must be an absolute URI without a fragment")
		}
	}
	return vs, nil
}

type pageData struct {
	Client, Redirect, FormToken, Username, Error string
	Scopes                                       []string
}

// render shows the consent page (oauthwire.WritePage's headers).
func (s *Server) render(w http.ResponseWriter, status int, ar authRequest, formToken, username, problem string) {
	u, _ := url.Parse(ar.redirectURI)
	d := pageData{Client: ar.clientID, Redirect: u.Scheme + "://" + u.Host, FormToken: formToken, Username: username,
		Error: problem, Scopes: strings.Fields(ar.scope)}
	var b bytes.Buffer
	if err := consentPage.Execute(&b, d); err != nil {
		http.Error(w, "behalf dev-idp: cannot render the consent page", http.StatusInternalServerError)
		return
	}
	oauthwire.WritePage(w, status, b.Bytes())
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>behalf dev-idp: sign in</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
.dev{background:#fff3cd;border:1px solid #e5c76b;border-radius:4px;padding:.5rem .75rem;font-size:.9rem}
.err{color:#a00}
code{background:#f0f0f0;border-radius:3px;padding:0 .3rem}
input[type=text]{font:inherit;padding:.25rem .4rem;width:12rem}
button{font:inherit;padding:.35rem 1.2rem;margin-right:.5rem}
</style></head>
<body>
<h1>behalf dev-idp <small>(development only)</small></h1>
<p class="dev">Development only: anyone may sign in as any username, with no password.</p>
<p><strong>{{.Client}}</strong> asks for: {{range .Scopes}}<code>{{.}}</code> {{else}}no scopes{{end}}</p>
<p>You will be sent back to {{.Redirect}}.</p>
{{if .Error}}<p class="err">{{.Error}}</p>
{{end}}<form method="post" action="/consent">
<input type="hidden" name="form_token" value="{{.FormToken}}">
<p><label>Sign in as: <input type="text" name="username" value="{{.Username}}" maxlength="64" required></label></p>
<p><button type="submit" name="action" value="allow">Allow</button><button type="submit" name="action" value="deny" formnovalidate>Deny</button></p>
</form>
</body></html>
`))
