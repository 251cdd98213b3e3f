package behalftest

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/devidp"
)

// DevIDP runs behalf's development identity provider on loopback for a
// test, with the given options (Issuer is set here).
func DevIDP(t testing.TB, opts devidp.Options) *devidp.Server {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Issuer = "http://" + ln.Addr().String()
	idp, err := devidp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ErrServerClosed once the test is done
	t.Cleanup(func() { _ = srv.Close() })
	return idp
}

var formToken = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

// Consent plays a user's browser: it opens authURL at the dev IdP, signs in
// as user and clicks Allow (or Deny), then follows every redirect — to
// behalf's callback and on to the return URL — and returns the last page
// and its status.
func Consent(t testing.TB, authURL, user string, allow bool) (status int, lastPage string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, authURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	m := formToken.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no consent form at %s: %d %s", authURL, res.StatusCode, page)
	}
	action := "deny"
	if allow {
		action = "allow"
	}
	u, _ := url.Parse(authURL)
	form := url.Values{"form_token": {string(m[1])}, "username": {user}, "action": {action}}
	req, err = http.NewRequestWithContext(t.Context(), http.MethodPost, u.Scheme+"://"+u.Host+"/consent", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// DevIDToken signs user in at the dev IdP as the client id (password
// grant, golang.org/x/oauth2) and returns the user's ID token.
func DevIDToken(t testing.TB, idp *devidp.Server, id, secret, user string) string {
	t.Helper()
	conf := &oauth2.Config{ClientID: id, ClientSecret: secret, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{TokenURL: idp.Issuer() + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
	tok, err := conf.PasswordCredentialsToken(t.Context(), user, "pw")
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		t.Fatal("the dev IdP's password grant returned no ID token")
	}
	return idToken
}

// DevIDJAG signs user in at the dev IdP as the client id (DevIDToken) and
// trades the user's ID token for an ID-JAG for the authorization server
// audience (RFC 8693, requested_token_type id-jag), with extra parameters
// (resource, scope).
func DevIDJAG(t testing.TB, idp *devidp.Server, id, secret, user, audience string, extra url.Values) string {
	t.Helper()
	idToken := DevIDToken(t, idp, id, secret, user)
	form := url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:id-jag"},
		"subject_token":        {idToken}, "subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
		"audience": {audience},
	}
	for k, v := range extra {
		form[k] = v
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, idp.Issuer()+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body, _ := io.ReadAll(res.Body)
	var m struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &m); err != nil || res.StatusCode != http.StatusOK || m.AccessToken == "" {
		t.Fatalf("ID-JAG exchange: %d %s", res.StatusCode, body)
	}
	return m.AccessToken
}
