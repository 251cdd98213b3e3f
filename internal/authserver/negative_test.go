package authserver_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestRefusals: on SQLite and PostgreSQL, each broken request is refused
// with its RFC error code, before a client's registered redirect URI is
// known on an error page and never by redirect, and audited.
func TestRefusals(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b)
		cfg := w.oauth(publicApp, "", scopeRead)
		v := oauth2.GenerateVerifier()
		challenge := oauth2.S256ChallengeOption(v)
		res := oauth2.SetAuthURLParam("resource", w.resource)
		t.Run("authorize", func(t *testing.T) {
			for _, c := range []struct {
				name string
				url  string
				// page: refused on a page, without redirect; else the
				// error code the client is redirected with.
				page bool
				code string
			}{
				{"unknown client", w.oauth("nobody", "", scopeRead).AuthCodeURL("s", challenge, res), true, ""},
				{"redirect mismatch", cfg.AuthCodeURL("s", challenge, res, oauth2.SetAuthURLParam("redirect_uri", "http://127.0.0.1:2/callback")), true, ""},
				{"no PKCE", cfg.AuthCodeURL("s", res), false, "invalid_request"},
				{"plain PKCE", cfg.AuthCodeURL("s", res, oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")), false, "invalid_request"},
				{"no resource", cfg.AuthCodeURL("s", challenge), false, "invalid_target"},
				{"resource not offered", cfg.AuthCodeURL("s", challenge, oauth2.SetAuthURLParam("resource", "https://elsewhere.example/mcp")), false, "invalid_target"},
				{"scope not offered", w.oauth(publicApp, "", "weather.delete").AuthCodeURL("s", challenge, res), false, "invalid_scope"},
				{"no scope", w.oauth(publicApp, "").AuthCodeURL("s", challenge, res), false, "invalid_scope"},
				{"token response", cfg.AuthCodeURL("s", challenge, res, oauth2.SetAuthURLParam("response_type", "token")), false, "unsupported_response_type"},
			} {
				r, page := newBrowser().noFollow().get(t, c.url)
				loc := r.Header.Get("Location")
				if c.page {
					if r.StatusCode != http.StatusBadRequest || loc != "" || r.Header.Get("X-Frame-Options") != "DENY" {
						t.Errorf("%s: %d Location %q, want an error page", c.name, r.StatusCode, loc)
					}
					continue
				}
				u, _ := url.Parse(loc)
				if q := u.Query(); r.StatusCode != http.StatusFound || !strings.HasPrefix(loc, redirectURI) || q.Get("error") != c.code ||
					q.Get("state") != "s" || q.Get("iss") != w.issuer {
					t.Errorf("%s: %d %s %s, want a redirect with error %s", c.name, r.StatusCode, loc, page, c.code)
				}
			}
		})
		t.Run("token", func(t *testing.T) {
			br := newBrowser()
			code := func() string {
				q, _ := w.signIn(t, br, w.authURL(cfg, "s", v), "allow")
				return q.Get("code")
			}
			for _, c := range []struct {
				name string
				opts []oauth2.AuthCodeOption
				code string
			}{
				{"wrong verifier", []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}, "invalid_grant"},
				{"no verifier", nil, "invalid_grant"},
				{"redirect mismatch", []oauth2.AuthCodeOption{oauth2.VerifierOption(v), oauth2.SetAuthURLParam("redirect_uri", "http://127.0.0.1:2/callback")}, "invalid_grant"},
				{"resource mismatch", []oauth2.AuthCodeOption{oauth2.VerifierOption(v), oauth2.SetAuthURLParam("resource", "https://elsewhere.example/mcp")}, "invalid_target"},
			} {
				if _, err := cfg.Exchange(t.Context(), code(), c.opts...); oauthCode(err) != c.code {
					t.Errorf("%s: %v, want %s", c.name, err, c.code)
				}
			}
			expired := code()
			w.clock.Advance(2 * time.Minute)
			if _, err := cfg.Exchange(t.Context(), expired, oauth2.VerifierOption(v)); oauthCode(err) != "invalid_grant" {
				t.Errorf("expired code: %v", err)
			}
			if _, err := cfg.Exchange(t.Context(), "not-a-code", oauth2.VerifierOption(v)); oauthCode(err) != "invalid_grant" {
				t.Errorf("unknown code: %v", err)
			}
			if _, err := w.oauth(confApp, "wrong-secret", scopeRead).Exchange(t.Context(), "x"); oauthCode(err) != "invalid_client" {
				t.Errorf("wrong client secret: %v", err)
			}
		})
		t.Run("browser binding", func(t *testing.T) {
			// The consent form without the browser's cookie, or with a
			// bad token, is refused.
			br := newBrowser()
			request, csrf := w.toConsent(t, br, w.authURL(cfg, "s", v), "carol")
			if r, _ := newBrowser().post(t, w.issuer+"/oauth2/consent", url.Values{"request": {request}, "csrf": {csrf}, "action": {"allow"}}); r.StatusCode != http.StatusBadRequest {
				t.Errorf("consent without the cookie: %d", r.StatusCode)
			}
			if r, _ := br.post(t, w.issuer+"/oauth2/consent", url.Values{"request": {request}, "csrf": {csrf[:len(csrf)-2] + "AA"}, "action": {"allow"}}); r.StatusCode != http.StatusBadRequest {
				t.Errorf("consent with a bad token: %d", r.StatusCode)
			}
			if r, _ := br.post(t, w.issuer+"/oauth2/consent", url.Values{"request": {request}, "csrf": {csrf}, "action": {"deny"}}); r.StatusCode != http.StatusFound ||
				!strings.Contains(r.Header.Get("Location"), "error=access_denied") {
				t.Errorf("deny: %d %s", r.StatusCode, r.Header.Get("Location"))
			}
			// The login callback is single-use, and bound to the browser.
			callback := w.callbackURL(t, newBrowser(), w.authURL(cfg, "s", v), "dave")
			if r, _ := newBrowser().noFollow().get(t, callback); r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
				t.Errorf("login callback in another browser: %d %s", r.StatusCode, r.Header.Get("Location"))
			}
		})
		recs := w.checkAudit(t, nil)
		refused := map[string]bool{}
		for _, r := range recs {
			if r.Outcome == "failure" {
				refused[r.Operation+" "+r.ErrorType] = true
			}
		}
		for _, want := range []string{"OAuthAuthorize invalid_client", "OAuthAuthorize invalid_request", "OAuthAuthorize invalid_target", "OAuthAuthorize invalid_scope",
			"OAuthAuthorize access_denied", "OAuthToken invalid_grant", "OAuthToken invalid_target", "OAuthToken invalid_client", "OAuthConsent invalid_request"} {
			if !refused[want] {
				t.Errorf("no refusal %s audited: %v", want, refused)
			}
		}
	})
}

// noFollow is the browser that follows no redirect.
func (b browser) noFollow() browser {
	c := *b.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return browser{&c}
}

// toConsent signs user in and stops at behalf's consent page, returning
// its request id and form token.
func (w *world) toConsent(t *testing.T, b browser, authURL, user string) (request, csrf string) {
	t.Helper()
	_, page := b.get(t, authURL)
	m := devFormToken.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in page: %s", page)
	}
	_, page = b.post(t, w.idp.Issuer()+"/consent", url.Values{"form_token": {m[1]}, "username": {user}, "action": {"allow"}})
	c := consentForm.FindStringSubmatch(page)
	if c == nil {
		t.Fatalf("no consent page: %s", page)
	}
	return c[1], c[2]
}

// callbackURL signs user in at the IdP and returns the login callback URL
// it sends the browser to, after the browser has used it once.
func (w *world) callbackURL(t *testing.T, b browser, authURL, user string) string {
	t.Helper()
	_, page := b.get(t, authURL)
	m := devFormToken.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in page: %s", page)
	}
	r, _ := b.noFollow().post(t, w.idp.Issuer()+"/consent", url.Values{"form_token": {m[1]}, "username": {user}, "action": {"allow"}})
	callback := r.Header.Get("Location")
	if !strings.HasPrefix(callback, w.issuer+"/oauth2/login/callback") {
		t.Fatalf("the IdP sent the browser to %q", callback)
	}
	if r, _ := b.noFollow().get(t, callback); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("login callback: %d", r.StatusCode)
	}
	if r, _ := b.noFollow().get(t, callback); r.StatusCode != http.StatusBadRequest {
		t.Errorf("login callback replayed: %d", r.StatusCode)
	}
	return callback
}
