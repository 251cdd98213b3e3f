package dextest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Tokens is a successful token response (RFC 6749 §5.1; RFC 8693 §2.2.1 adds
// issued_token_type).
type Tokens struct {
	AccessToken     string `json:"access_token"`
	IDToken         string `json:"id_token"`
	RefreshToken    string `json:"refresh_token"`
	TokenType       string `json:"token_type"` // Dex sends "bearer"
	ExpiresIn       int    `json:"expires_in"`
	IssuedTokenType string `json:"issued_token_type"`
	// Raw is the whole JSON response, for members not listed above.
	Raw map[string]any `json:"-"`
}

// TokenError is a token endpoint answer other than 200 (RFC 6749 §5.2).
type TokenError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"` // or the body, if not JSON
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("dextest: token endpoint answered %d %s: %s", e.Status, e.Code, e.Description)
}

// TokenRequests counts the POSTs the token endpoint received with this
// grant_type, including those a fault answered.
func (d *Dex) TokenRequests(grantType string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests[grantType]
}

// SetTokenFault installs f in front of the token endpoint; nil removes it.
// For every POST f may answer through w and return true, and Dex is then not
// called; returning false passes the request on. The request body can be
// read (r.ParseForm) and is still whole for Dex afterwards. To hang, block
// on r.Context().Done(): it ends when the client gives up or the test ends.
// The fault applies to this package's helpers too.
func (d *Dex) SetTokenFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault = f
}

// serve wraps Dex's handler with the token endpoint's accounting and fault.
func (d *Dex) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == strings.TrimPrefix(d.TokenURL, d.URL) {
		// Read the form without consuming it: Dex parses the body itself.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "dextest: read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))

		d.mu.Lock()
		d.requests[form.Get("grant_type")]++
		fault := d.fault
		d.mu.Unlock()
		if fault != nil && fault(w, r) {
			return
		}
	}
	d.dex.ServeHTTP(w, r)
}

// TokenRequest POSTs form to the token endpoint. A non-empty clientID is
// sent as client_secret_basic; for client_secret_post pass "" and put
// client_id and client_secret in form. An answer other than 200 is returned
// as a *TokenError, not a test failure, so tests can assert on it. Like
// every helper here that takes t, call it from the test's goroutine.
func (d *Dex) TokenRequest(t testing.TB, clientID, secret string, form url.Values) (*Tokens, *TokenError) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, d.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("dextest: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		// RFC 6749 §2.3.1: form-encode, then Basic; Dex decodes both.
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := d.http.Do(req)
	if err != nil {
		t.Fatalf("dextest: token request: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("dextest: read token response: %v", err)
	}

	if resp.StatusCode != http.StatusOK {
		e := &TokenError{Status: resp.StatusCode}
		if json.Unmarshal(body, e) != nil || e.Code == "" {
			e.Description = string(body)
		}
		return nil, e
	}
	var tok Tokens
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatalf("dextest: token response is not JSON: %v: %q", err, body)
	}
	if err := json.Unmarshal(body, &tok.Raw); err != nil {
		t.Fatalf("dextest: token response is not a JSON object: %v: %q", err, body)
	}
	return &tok, nil
}

// PasswordLogin signs the user in with the password grant (Username,
// Password, PasswordConnectorID). scopes default to "openid", which Dex
// requires; add "offline_access" for a refresh token and "email",
// "profile" or "groups" for those claims.
func (d *Dex) PasswordLogin(t testing.TB, clientID, secret string, scopes ...string) *Tokens {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	return d.mustToken(t, clientID, secret, url.Values{
		"grant_type": {"password"},
		"username":   {Username},
		"password":   {Password},
		"scope":      {strings.Join(scopes, " ")},
	})
}

// ClientCredentials gets a machine token for the client itself. Without
// "openid" in scopes Dex returns only an access token; offline_access is
// refused.
func (d *Dex) ClientCredentials(t testing.TB, clientID, secret string, scopes ...string) *Tokens {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return d.mustToken(t, clientID, secret, form)
}

// Refresh redeems a refresh token; scopes, if given, may only narrow the
// original ones.
func (d *Dex) Refresh(t testing.TB, clientID, secret, refreshToken string, scopes ...string) *Tokens {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return d.mustToken(t, clientID, secret, form)
}

func (d *Dex) mustToken(t testing.TB, clientID, secret string, form url.Values) *Tokens {
	t.Helper()
	tok, terr := d.TokenRequest(t, clientID, secret, form)
	if terr != nil {
		t.Fatalf("%s: %v", form.Get("grant_type"), terr)
	}
	return tok
}

// Authorize plays the browser for an authorization request: it GETs authURL
// (on Dex's AuthURL, as built by the client under test), follows Dex's own
// redirects through the mockCallback login, and returns the first redirect
// that leaves Dex, without following it. That is the client's redirect_uri
// with code and state, or with error and error_description when Dex
// redirects an error (RFC 6749 §4.1.2.1). Errors Dex shows instead of
// redirecting (unknown client, unregistered redirect_uri) fail t.
//
// The request needs no connector_id: only the mockCallback connector takes
// part in the browser flow. Without RequirePKCE, PKCE is optional.
func (d *Dex) Authorize(t testing.TB, authURL string) *url.URL {
	t.Helper()
	dex, err := url.Parse(d.Issuer)
	if err != nil {
		t.Fatalf("dextest: %v", err)
	}
	onDex := func(u *url.URL) bool {
		return u.Scheme == dex.Scheme && u.Host == dex.Host && strings.HasPrefix(u.Path, dex.Path+"/")
	}
	next, err := url.Parse(authURL)
	if err != nil || !onDex(next) {
		t.Fatalf("dextest: Authorize: %q is not a URL on %s (err: %v)", authURL, d.Issuer, err)
	}

	// Dex goes /auth → /auth/mock → /callback → /auth?req=… → redirect_uri.
	for range 10 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, next.String(), nil)
		if err != nil {
			t.Fatalf("dextest: %v", err)
		}
		resp, err := d.http.Do(req)
		if err != nil {
			t.Fatalf("dextest: Authorize: GET %s: %v", next, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			t.Fatalf("dextest: Authorize: GET %s answered %d, not a redirect: %s", next, resp.StatusCode, body)
		}
		if next, err = next.Parse(loc); err != nil {
			t.Fatalf("dextest: Authorize: bad Location %q: %v", loc, err)
		}
		if !onDex(next) {
			return next
		}
	}
	t.Fatalf("dextest: Authorize: more than 10 redirects inside Dex, last %s", next)
	return nil
}
