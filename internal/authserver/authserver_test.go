package authserver_test

// The authorization server end to end, on SQLite and PostgreSQL: behalf
// serving it, the dev IdP as the organisation's login identity provider,
// golang.org/x/oauth2 as the MCP client, and a cookie-jar http.Client as
// the user's browser.

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

const (
	redirectURI = "http://127.0.0.1:1/callback"
	publicApp   = "mcp-app"
	confApp     = "conf-app"
	confSecret  = "conf-app-secret-0123456789"
	jagApp      = "jag-app"
	jagSecret   = "jag-app-secret-0123456789"
	scopeRead   = "weather.read"
	scopeAdmin  = "weather.admin"
)

type world struct {
	clock    *testclock.Clock
	s        *behalftest.Server
	idp      *devidp.Server
	issuer   string
	resource string
}

func newWorld(t *testing.T, b behalftest.Backend, edits ...func(*config.File)) *world {
	t.Helper()
	w := &world{clock: testclock.Running()}
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	w.s = behalftest.Start(t, b, behalftest.Options{Now: w.clock.Now, Edit: func(f *config.File) {
		f.PublicURL = "http://" + f.Listen
		w.issuer, w.resource = f.PublicURL, "http://127.0.0.1:8788/mcp/weather"
		// The organisation's IdP: behalf's login client, and an agent
		// that may trade users' ID tokens for ID-JAGs for behalf.
		w.idp = behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "behalf", Secret: "behalf-login-secret"},
			{ID: "agent", Secret: "agent-secret", IDJAG: []devidp.IDJAGGrant{{Audience: w.issuer, ClientID: jagApp}}}}})
		f.InboundAuthorizers = []config.InboundAuthorizerFile{{Name: "corp", DiscoveryURL: w.idp.Issuer() + "/.well-known/openid-configuration",
			AllowedClients: []string{"behalf"}}}
		f.AuthorizationServer = &config.AuthorizationServerFile{
			Login:     config.AuthServerLoginFile{Authorizer: "corp", ClientID: "behalf", ClientSecretFile: write("login", "behalf-login-secret")},
			Resources: []config.AuthServerResourceFile{{Resource: w.resource, Scopes: []string{scopeRead, scopeAdmin}}},
			Clients: []config.AuthServerClientFile{
				{ClientID: publicApp, ClientName: "Weather Desktop", RedirectURIs: []string{redirectURI}},
				{ClientID: confApp, RedirectURIs: []string{redirectURI}, ClientSecretFile: write("conf", confSecret)},
				{ClientID: jagApp, ClientSecretFile: write("jag", jagSecret), GrantTypes: []string{config.GrantJWTBearer}},
			},
			IDJag: config.AuthServerIDJagFile{Issuers: []config.AuthServerIDJagIssuerFile{{Issuer: w.idp.Issuer()}}},
		}
		for _, edit := range edits {
			edit(f)
		}
	}})
	return w
}

// oauth is a client's configuration: a public client names itself in
// the form, a confidential one authenticates with HTTP Basic.
func (w *world) oauth(clientID, secret string, scopes ...string) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if secret == "" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: redirectURI, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: w.issuer + "/oauth2/authorize", TokenURL: w.issuer + "/oauth2/token", AuthStyle: style}}
}

// browser is a user's browser: it keeps cookies and stops at the client's
// redirect URI.
type browser struct {
	*http.Client
}

func newBrowser() browser {
	jar, _ := cookiejar.New(nil)
	return browser{&http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirectURI) {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

var (
	devFormToken = regexp.MustCompile(`name="form_token" value="([^"]+)"`)
	consentForm  = regexp.MustCompile(`name="request" value="([^"]+)">\s*<input type="hidden" name="csrf" value="([^"]+)"`)
)

// answer is a response read to its end.
type answer struct {
	StatusCode int
	Header     http.Header
}

// do sends req and returns the response (the client's redirect
// unfollowed) and its body.
func (b browser) do(t *testing.T, req *http.Request) (answer, string) {
	t.Helper()
	res, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header}, string(body)
}

func (b browser) get(t *testing.T, u string) (answer, string) {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	return b.do(t, req)
}

func (b browser) post(t *testing.T, u string, form url.Values) (answer, string) {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

// signIn plays the user: it opens authURL, signs in at the dev IdP as
// alice, and answers behalf's consent page (when one is shown) with
// action; it returns the parameters the client is redirected with, and
// whether a consent page was shown.
func (w *world) signIn(t *testing.T, b browser, authURL, action string) (url.Values, bool) {
	t.Helper()
	res, page := b.get(t, authURL)
	m := devFormToken.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in page at the IdP: %d %s", res.StatusCode, page)
	}
	res, page = b.post(t, w.idp.Issuer()+"/consent", url.Values{"form_token": {m[1]}, "username": {"alice"}, "action": {"allow"}})
	consented := false
	if res.StatusCode == http.StatusOK {
		c := consentForm.FindStringSubmatch(page)
		if c == nil {
			t.Fatalf("no consent page: %s", page)
		}
		checkPageHeaders(t, res)
		consented = true
		res, page = b.post(t, w.issuer+"/oauth2/consent", url.Values{"request": {c[1]}, "csrf": {c[2]}, "action": {action}})
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), redirectURI) {
		t.Fatalf("not sent back to the client: %d %s %s", res.StatusCode, res.Header.Get("Location"), page)
	}
	return loc.Query(), consented
}

func checkPageHeaders(t *testing.T, res answer) {
	t.Helper()
	h := res.Header
	if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("consent page headers: %v", h)
	}
}

// authURL is an authorization request of cfg for resource with PKCE.
func (w *world) authURL(cfg *oauth2.Config, state, verifier string) string {
	return cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", w.resource))
}

// TestAuthorizationCodeFlow: a public client signs alice in, gets a code
// and tokens for the resource; the refresh token rotates, and reusing the
// old one revokes the grant; consent is remembered for the same scopes
// and asked again for more; a confidential client introspects and
// revokes its own tokens and sees no other client's. Every step is
// audited.
func TestAuthorizationCodeFlow(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b)
		ctx := t.Context()
		checkMetadata(t, w)
		cfg := w.oauth(publicApp, "", scopeRead)
		br := newBrowser()
		v := oauth2.GenerateVerifier()
		q, consented := w.signIn(t, br, w.authURL(cfg, "st-1", v), "allow")
		if !consented || q.Get("state") != "st-1" || q.Get("iss") != w.issuer || q.Get("code") == "" {
			t.Fatalf("authorization response %v (consent page shown: %v)", q, consented)
		}
		tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v), oauth2.SetAuthURLParam("resource", w.resource))
		if err != nil {
			t.Fatal(err)
		}
		claims := behalftest.JWTClaims(t, tok.AccessToken)
		wantSub := "jwt:" + w.idp.Issuer() + "#alice"
		if claims["iss"] != w.issuer || claims["aud"] != w.resource || claims["sub"] != wantSub || claims["client_id"] != publicApp ||
			claims["scope"] != scopeRead || tok.RefreshToken == "" || tok.Extra("scope") != scopeRead {
			t.Errorf("access token claims %v, refresh %q", claims, tok.RefreshToken)
		}
		// The code is single-use: a replay is refused and revokes the
		// refresh token it produced.
		if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v)); oauthCode(err) != "invalid_grant" {
			t.Errorf("code replay: %v", err)
		}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthCode(err) != "invalid_grant" {
			t.Errorf("refresh after code replay: %v, want the family revoked", err)
		}

		// A new grant: consent is remembered for the same scopes.
		v = oauth2.GenerateVerifier()
		q, consented = w.signIn(t, br, w.authURL(cfg, "st-2", v), "")
		if consented || q.Get("code") == "" {
			t.Fatalf("remembered consent: %v, consent page shown: %v", q, consented)
		}
		tok, err = cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		next, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
			t.Fatalf("refresh: %v %v", next, err)
		}
		// Reuse of the rotated token revokes the family, the new one too.
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthCode(err) != "invalid_grant" {
			t.Errorf("refresh token reuse: %v", err)
		}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: next.RefreshToken}).Token(); oauthCode(err) != "invalid_grant" {
			t.Errorf("refresh after reuse: %v, want the family revoked", err)
		}

		// More scopes: consent is asked again, and remembered as the union.
		both := w.oauth(publicApp, "", scopeRead, scopeAdmin)
		v = oauth2.GenerateVerifier()
		if q, consented = w.signIn(t, br, w.authURL(both, "st-3", v), "allow"); !consented || q.Get("code") == "" {
			t.Fatalf("step-up: %v, consent page shown: %v", q, consented)
		}
		c, err := w.s.Server.Store().GetConsent(ctx, wantSub, publicApp, w.resource)
		if err != nil || !sameSet(c.Scopes, []string{scopeRead, scopeAdmin}) {
			t.Errorf("consent %+v %v", c, err)
		}
		stepped, err := both.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
		if err != nil || stepped.Extra("scope") != scopeRead+" "+scopeAdmin {
			t.Fatalf("step-up token: %v %v", stepped, err)
		}
		// An admin revokes the consent: its refresh tokens end with it,
		// and the user is asked again.
		del := w.s.Do(t, behalftest.Raw{Path: "/behalf/DeleteOAuthConsent",
			Body: []byte(`{"user":"` + wantSub + `","clientId":"` + publicApp + `","resource":"` + w.resource + `"}`)})
		if del.Status != http.StatusNoContent {
			t.Fatalf("DeleteOAuthConsent: %d %s", del.Status, del.Body)
		}
		if _, err := both.TokenSource(ctx, &oauth2.Token{RefreshToken: stepped.RefreshToken}).Token(); oauthCode(err) != "invalid_grant" {
			t.Errorf("refresh after the consent was revoked: %v", err)
		}
		v = oauth2.GenerateVerifier()
		if _, consented = w.signIn(t, br, w.authURL(cfg, "st-5", v), "deny"); !consented {
			t.Error("no consent asked after the consent was revoked")
		}

		// A confidential client: introspection and revocation.
		conf := w.oauth(confApp, confSecret, scopeRead)
		v = oauth2.GenerateVerifier()
		q, _ = w.signIn(t, br, w.authURL(conf, "st-4", v), "allow")
		ct, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		if got := w.introspect(t, ct.AccessToken); got["active"] != true || got["client_id"] != confApp || got["sub"] != wantSub || got["aud"] != w.resource {
			t.Errorf("introspection of its own token: %v", got)
		}
		if got := w.introspect(t, next.AccessToken); got["active"] != false {
			t.Errorf("introspection of another client's token: %v", got)
		}
		if got := w.introspect(t, ct.RefreshToken); got["active"] != true || got["token_type"] != "refresh_token" {
			t.Errorf("introspection of its refresh token: %v", got)
		}
		w.revoke(t, ct.AccessToken)
		w.revoke(t, ct.RefreshToken)
		w.revoke(t, "not-a-token")
		for _, token := range []string{ct.AccessToken, ct.RefreshToken} {
			if got := w.introspect(t, token); got["active"] != false {
				t.Errorf("introspection after revocation: %v", got)
			}
		}
		w.checkAudit(t, map[string]int{"OAuthAuthorize": 5, "OAuthConsent": 3, "OAuthToken": 7, "OAuthRevoke": 2, "DeleteOAuthConsent": 1})
	})
}

func checkMetadata(t *testing.T, w *world) {
	t.Helper()
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		res, body := newBrowser().get(t, w.issuer+path)
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, res.StatusCode, body)
		}
		if m["issuer"] != w.issuer || m["authorization_endpoint"] != w.issuer+"/oauth2/authorize" || m["authorization_response_iss_parameter_supported"] != true ||
			!slices.Equal(toStrings(m["code_challenge_methods_supported"]), []string{"S256"}) {
			t.Errorf("%s: %v", path, m)
		}
	}
	res, body := newBrowser().get(t, w.issuer+"/oauth2/jwks")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"alg":"ES256"`) || strings.Contains(body, `"d":`) {
		t.Errorf("jwks: %d %s", res.StatusCode, body)
	}
	// behalf's workload JWTs have an issuer and keys of their own beside
	// the authorization server's (package workloadjwt).
	_, doc := newBrowser().get(t, w.issuer+"/workload-identity/.well-known/openid-configuration")
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil || m["issuer"] != w.issuer+"/workload-identity" || m["jwks_uri"] != w.issuer+"/workload-identity/jwks" {
		t.Errorf("workload JWT issuer: %s", doc)
	}
	var asKeys, workloadKeys struct{ Keys []struct{ Kid string } }
	_, wbody := newBrowser().get(t, w.issuer+"/workload-identity/jwks")
	if json.Unmarshal([]byte(body), &asKeys) != nil || json.Unmarshal([]byte(wbody), &workloadKeys) != nil || len(workloadKeys.Keys) == 0 ||
		slices.ContainsFunc(workloadKeys.Keys, func(k struct{ Kid string }) bool {
			return slices.ContainsFunc(asKeys.Keys, func(a struct{ Kid string }) bool { return a.Kid == k.Kid })
		}) {
		t.Errorf("the workload JWT keys %s share a key with the authorization server's %s", wbody, body)
	}
}

func (w *world) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, w.issuer+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(confApp, confSecret)
	res, body := newBrowser().do(t, req)
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %d %s", res.StatusCode, body)
	}
	return m
}

func (w *world) revoke(t *testing.T, token string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, w.issuer+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(confApp, confSecret)
	if res, body := newBrowser().do(t, req); res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
}

// checkAudit: at least want[op] records of each operation, none holding
// a token.
func (w *world) checkAudit(t *testing.T, want map[string]int) []behalfapi.AuditRecord {
	t.Helper()
	res := w.s.Do(t, behalftest.Raw{Path: "/behalf/ListAuditRecords", Body: []byte(`{"maxResults":1000}`)})
	var out behalfapi.ListAuditRecordsOutput
	if err := json.Unmarshal(res.Body, &out); err != nil || res.Status != http.StatusOK {
		t.Fatalf("ListAuditRecords: %d %s", res.Status, res.Body)
	}
	recs := out.Records
	got := map[string]int{}
	for _, r := range recs {
		got[r.Operation]++
		raw, _ := json.Marshal(r)
		if strings.Contains(string(raw), "eyJ") {
			t.Errorf("a record holds a token: %s", raw)
		}
	}
	for op, n := range want {
		if got[op] < n {
			t.Errorf("%d %s records, want at least %d: %v", got[op], op, n, got)
		}
	}
	return recs
}

func oauthCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
