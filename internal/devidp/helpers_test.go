package devidp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/devidp"
)

const redirectURL = "http://127.0.0.1:9999/callback"

// clock is an injectable clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	url   string
	clock *clock

	mu     sync.Mutex
	events []devidp.Event
}

// start runs a dev IdP with clients agent and other (any loopback or https
// redirect URI) unless opts names clients.
func start(t *testing.T, opts devidp.Options) *env {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	e := &env{t: t, url: "http://" + hs.Listener.Addr().String(), clock: &clock{t: time.Now().Truncate(time.Second)}}
	opts.Issuer = e.url
	if opts.Clients == nil {
		opts.Clients = []devidp.Client{{ID: "agent", Secret: "agent-secret"}, {ID: "other", Secret: "other-secret"}}
	}
	opts.Now = e.clock.Now
	opts.Observe = func(ev devidp.Event) {
		e.mu.Lock()
		e.events = append(e.events, ev)
		e.mu.Unlock()
	}
	idp, err := devidp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if idp.Issuer() != e.url {
		t.Fatalf("Issuer() = %q, want %q", idp.Issuer(), e.url)
	}
	hs.Config.Handler = idp.Handler()
	hs.Start()
	t.Cleanup(hs.Close)
	return e
}

func (e *env) config(id, secret string, style oauth2.AuthStyle) *oauth2.Config {
	return &oauth2.Config{
		ClientID: id, ClientSecret: secret, RedirectURL: redirectURL, Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: e.url + "/authorize", TokenURL: e.url + "/token", AuthStyle: style},
	}
}

// browser follows no redirects, so the test reads each Location, and keeps
// cookies, as the consent form needs.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var formTokenRE = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

// consentPage opens authURL and returns the page's form token.
func (e *env) consentPage(b *http.Client, authURL string) string {
	e.t.Helper()
	res, err := b.Get(authURL)
	if err != nil {
		e.t.Fatal(err)
	}
	body := readAll(e.t, res)
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", authURL, res.StatusCode, body)
	}
	m := formTokenRE.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("no form token in the consent page:\n%s", body)
	}
	return m[1]
}

// reply is a response read to the end.
type reply struct {
	StatusCode int
	Header     http.Header
	Body       string
}

func fetched(t *testing.T, res *http.Response) reply {
	t.Helper()
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{StatusCode: res.StatusCode, Header: res.Header, Body: string(body)}
}

// answer submits the consent form and returns the response.
func (e *env) answer(b *http.Client, formToken, username, action string) reply {
	e.t.Helper()
	res, err := b.PostForm(e.url+"/consent", url.Values{"form_token": {formToken}, "username": {username}, "action": {action}})
	if err != nil {
		e.t.Fatal(err)
	}
	return fetched(e.t, res)
}

// consent drives the whole page and returns the redirect's query.
func (e *env) consent(authURL, username, action string) url.Values {
	e.t.Helper()
	b := browser(e.t)
	tok := e.consentPage(b, authURL)
	return e.location(e.answer(b, tok, username, action))
}

// location checks for a redirect to redirectURL and returns its query.
func (e *env) location(res reply) url.Values {
	e.t.Helper()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil {
		e.t.Fatalf("want a redirect, got %d %q: %s", res.StatusCode, res.Header.Get("Location"), res.Body)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURL {
		e.t.Fatalf("redirected to %s, want %s", got, redirectURL)
	}
	if iss := loc.Query().Get("iss"); iss != e.url {
		e.t.Fatalf("iss = %q, want %q (RFC 9207)", iss, e.url)
	}
	return loc.Query()
}

// authCode runs the consent flow for agent and returns the code and verifier.
func (e *env) authCode(conf *oauth2.Config, opts ...oauth2.AuthCodeOption) (code, verifier string) {
	e.t.Helper()
	verifier = oauth2.GenerateVerifier()
	q := e.consent(conf.AuthCodeURL("st-1", append(opts, oauth2.S256ChallengeOption(verifier))...), "alice", "allow")
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		e.t.Fatalf("redirect query %v", q)
	}
	return q.Get("code"), verifier
}

// post sends a form to the IdP and decodes the JSON answer.
func (e *env) post(path string, form url.Values, id, secret string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	body := readAll(e.t, res)
	var m map[string]any
	if body != "" {
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			e.t.Fatalf("POST %s: %d, not JSON: %s", path, res.StatusCode, body)
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			e.t.Errorf("POST %s: Cache-Control %q", path, res.Header.Get("Cache-Control"))
		}
	}
	return res.StatusCode, m
}

// wantError checks an RFC 6749 §5.2 error answer.
func (e *env) wantError(path string, form url.Values, id, secret string, status int, code string) {
	e.t.Helper()
	gotStatus, m := e.post(path, form, id, secret)
	if gotStatus != status || m["error"] != code {
		e.t.Fatalf("POST %s %v: %d %v, want %d %s", path, form, gotStatus, m, status, code)
	}
}

// password runs the password grant for alice as the client agent.
func (e *env) password() map[string]any {
	e.t.Helper()
	status, m := e.post("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"pw"}, "scope": {"openid read"}}, "agent", "agent-secret")
	if status != http.StatusOK {
		e.t.Fatalf("password grant: %d %v", status, m)
	}
	return m
}

// claims verifies a JWT against the IdP's JWKS with go-jose, checks its
// typ, and returns its claims.
func (e *env) claims(token, typ string) map[string]any {
	e.t.Helper()
	res, err := http.Get(e.url + "/keys")
	if err != nil {
		e.t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(readAll(e.t, res)), &set); err != nil || len(set.Keys) != 1 {
		e.t.Fatalf("JWKS: %v, %d keys", err, len(set.Keys))
	}
	k := set.Keys[0]
	if k.KeyID == "" || !k.IsPublic() || k.Algorithm != "RS256" || k.Use != "sig" {
		e.t.Fatalf("JWKS key: %+v", k)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		e.t.Fatal(err)
	}
	h := tok.Headers[0]
	if h.KeyID != k.KeyID || h.ExtraHeaders["typ"] != typ {
		e.t.Fatalf("header kid %q typ %v, want %q %q", h.KeyID, h.ExtraHeaders["typ"], k.KeyID, typ)
	}
	var std jwt.Claims
	var m map[string]any
	if err := tok.Claims(k, &std, &m); err != nil {
		e.t.Fatalf("signature: %v", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: e.url, Time: e.clock.Now()}, 0); err != nil {
		e.t.Fatalf("claims: %v", err)
	}
	return m
}

func (e *env) count(endpoint, grant string, ok bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		if ev.Endpoint == endpoint && ev.GrantType == grant && (ev.Error == "") == ok {
			n++
		}
	}
	return n
}

func retrieveError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code {
		t.Fatalf("got %v, want OAuth error %s", err, code)
	}
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ctx(t *testing.T) context.Context { return t.Context() }
