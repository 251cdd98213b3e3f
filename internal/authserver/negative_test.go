package authserver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
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
			docs := newDocuments(t)
			if r, _ := newBrowser().noFollow().get(t, w.oauth(docs.valid, "", scopeRead).AuthCodeURL("s", challenge, res)); r.StatusCode != http.StatusFound ||
				!strings.HasPrefix(r.Header.Get("Location"), w.idp.Issuer()+"/authorize?") {
				t.Fatalf("a valid client metadata document's client: %d %s, want the IdP's sign-in", r.StatusCode, r.Header.Get("Location"))
			}
			for _, c := range []struct {
				name string
				url  string
				// page: refused on a page, without redirect; else the
				// error code the client is redirected with. audit is the
				// refusal's record's error, when not the code.
				page  bool
				code  string
				audit string
			}{
				{"unknown client", w.oauth("nobody", "", scopeRead).AuthCodeURL("s", challenge, res), true, "", "invalid_client"},
				{"redirect mismatch", cfg.AuthCodeURL("s", challenge, res, oauth2.SetAuthURLParam("redirect_uri", "http://127.0.0.1:2/callback")), true, "", "invalid_request"},
				{"metadata document whose client_id is not its URL", w.oauth(docs.mismatched, "", scopeRead).AuthCodeURL("s", challenge, res), true, "", "invalid_client"},
				// Link-local, which the egress policy always refuses: no
				// connection is attempted.
				{"metadata document on a denied address", w.oauth("https://169.254.169.254/client.json", "", scopeRead).AuthCodeURL("s", challenge, res), true, "", "invalid_client"},
				{"no PKCE", cfg.AuthCodeURL("s", res), false, "invalid_request", ""},
				{"plain PKCE", cfg.AuthCodeURL("s", res, oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")), false, "invalid_request", ""},
				{"no resource", cfg.AuthCodeURL("s", challenge), false, "invalid_target", ""},
				{"resource not offered", cfg.AuthCodeURL("s", challenge, oauth2.SetAuthURLParam("resource", "https://elsewhere.example/mcp")), false, "invalid_target", ""},
				{"scope not offered", w.oauth(publicApp, "", "weather.delete").AuthCodeURL("s", challenge, res), false, "invalid_scope", ""},
				{"no scope", w.oauth(publicApp, "").AuthCodeURL("s", challenge, res), false, "invalid_scope", ""},
				{"token response", cfg.AuthCodeURL("s", challenge, res, oauth2.SetAuthURLParam("response_type", "token")), false, "unsupported_response_type", ""},
			} {
				r, page := newBrowser().noFollow().get(t, c.url)
				loc := r.Header.Get("Location")
				if c.audit == "" {
					c.audit = c.code
				}
				u, _ := url.Parse(c.url)
				w.checkLastRecord(t, c.name, "OAuthAuthorize", u.Query().Get("client_id"), c.audit)
				if c.page {
					if r.StatusCode != http.StatusBadRequest || loc != "" || r.Header.Get("X-Frame-Options") != "DENY" {
						t.Errorf("%s: %d Location %q, want an error page", c.name, r.StatusCode, loc)
					}
					continue
				}
				u, _ = url.Parse(loc)
				if q := u.Query(); r.StatusCode != http.StatusFound || !strings.HasPrefix(loc, redirectURI) || q.Get("error") != c.code ||
					q.Get("state") != "s" || q.Get("iss") != w.issuer {
					t.Errorf("%s: %d %s %s, want a redirect with error %s", c.name, r.StatusCode, loc, page, c.code)
				}
			}
			if docs.fetches(docs.mismatched) != 1 {
				t.Errorf("the mismatched document was fetched %d times, want once", docs.fetches(docs.mismatched))
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
				w.checkLastRecord(t, c.name, "OAuthToken", publicApp, c.code)
			}
			replayed := code()
			if _, err := cfg.Exchange(t.Context(), replayed, oauth2.VerifierOption(v)); err != nil {
				t.Fatal(err)
			}
			if _, err := cfg.Exchange(t.Context(), replayed, oauth2.VerifierOption(v)); oauthCode(err) != "invalid_grant" {
				t.Errorf("code replay: %v", err)
			}
			w.checkLastRecord(t, "code replay", "OAuthToken", publicApp, "invalid_grant")
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
			// An answer that names another identity provider than the
			// one the browser was sent to, or none when it promises one,
			// is a mix-up (RFC 9207 §2.4): refused.
			for name, iss := range map[string][]string{"another issuer": {"https://idp.example"}, "no issuer": nil} {
				br := newBrowser()
				_, page := br.get(t, w.authURL(cfg, "s", v))
				m := devFormToken.FindStringSubmatch(page)
				if m == nil {
					t.Fatalf("no sign-in page: %s", page)
				}
				r, _ := br.noFollow().post(t, w.idp.Issuer()+"/consent", url.Values{"form_token": {m[1]}, "username": {"erin"}, "action": {"allow"}})
				u, err := url.Parse(r.Header.Get("Location"))
				if err != nil || u.Query().Get("iss") != w.idp.Issuer() {
					t.Fatalf("the dev IdP's answer %q names no iss", r.Header.Get("Location"))
				}
				q := u.Query()
				q["iss"] = iss
				u.RawQuery = q.Encode()
				if r, _ := br.noFollow().get(t, u.String()); r.StatusCode != http.StatusFound || !strings.Contains(r.Header.Get("Location"), "error=server_error") {
					t.Errorf("login answer with %s: %d %s", name, r.StatusCode, r.Header.Get("Location"))
				}
				w.checkLastRecord(t, name, "OAuthAuthorize", publicApp, "server_error:iss")
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

// checkLastRecord: the last record of operation is a refusal of
// client's request with errorType.
func (w *world) checkLastRecord(t *testing.T, name, operation, client, errorType string) {
	t.Helper()
	for _, r := range slices.Backward(w.checkAudit(t, nil)) {
		if r.Operation == operation {
			if r.Outcome != "failure" || r.ErrorType != errorType || r.Principal != "client:"+client {
				t.Errorf("%s: recorded as %+v, want a refusal %s of client:%s", name, r, errorType, client)
			}
			return
		}
	}
	t.Errorf("%s: no %s record", name, operation)
}

// documents serves client metadata documents on loopback, which the
// test server's egress policy allows: valid is a client's document,
// mismatched one whose client_id is another URL.
type documents struct {
	valid, mismatched string
	mu                sync.Mutex
	hits              map[string]int
}

func newDocuments(t *testing.T) *documents {
	t.Helper()
	d := &documents{hits: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		self := "http://" + r.Host + r.URL.Path
		d.mu.Lock()
		d.hits[self]++
		d.mu.Unlock()
		id := self
		if r.URL.Path == "/mismatched.json" {
			id = "http://" + r.Host + "/someone-else.json"
		}
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(map[string]any{"client_id": id, "client_name": "Document Client", "redirect_uris": []string{redirectURI}})
	}))
	t.Cleanup(srv.Close)
	d.valid, d.mismatched = srv.URL+"/client.json", srv.URL+"/mismatched.json"
	return d
}

func (d *documents) fetches(u string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hits[u]
}
