package devidp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/behalf-dev/behalf/internal/devidp"
)

func TestDiscovery(t *testing.T) {
	e := start(t, devidp.Options{})
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		res, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(readAll(t, res)), &m); err != nil || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %v, %s", path, err, res.Header.Get("Content-Type"))
		}
		for k, want := range map[string]any{
			"issuer": e.url, "authorization_endpoint": e.url + "/authorize", "token_endpoint": e.url + "/token",
			"jwks_uri": e.url + "/keys", "revocation_endpoint": e.url + "/revoke",
			"response_types_supported": []any{"code"},
			"grant_types_supported": []any{"authorization_code", "refresh_token", "client_credentials", "password",
				"urn:ietf:params:oauth:grant-type:token-exchange"},
			"token_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post"},
			"code_challenge_methods_supported":      []any{"S256"},
			"id_token_signing_alg_values_supported": []any{"RS256"},
		} {
			got, _ := json.Marshal(m[k])
			w, _ := json.Marshal(want)
			if string(got) != string(w) {
				t.Errorf("%s %s = %s, want %s", path, k, got, w)
			}
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string]devidp.Options{
		"no clients":        {Issuer: "http://127.0.0.1:1"},
		"issuer path":       {Issuer: "http://127.0.0.1:1/x", Clients: []devidp.Client{{ID: "a", Secret: "s"}}},
		"issuer scheme":     {Issuer: "ftp://127.0.0.1:1", Clients: []devidp.Client{{ID: "a", Secret: "s"}}},
		"no secret":         {Issuer: "http://127.0.0.1:1", Clients: []devidp.Client{{ID: "a"}}},
		"duplicate client":  {Issuer: "http://127.0.0.1:1", Clients: []devidp.Client{{ID: "a", Secret: "s"}, {ID: "a", Secret: "t"}}},
		"plain http remote": {Issuer: "http://127.0.0.1:1", Clients: []devidp.Client{{ID: "a", Secret: "s", RedirectURIs: []string{"http://example.com/cb"}}}},
		"reserved claim": {Issuer: "http://127.0.0.1:1", Clients: []devidp.Client{{ID: "a", Secret: "s"}},
			UserClaims: map[string]map[string]any{"alice": {"sub": "root"}}},
	} {
		if _, err := devidp.New(opts); err == nil {
			t.Errorf("%s: New accepted %+v", name, opts)
		}
	}
}

func TestAuthorizationCodeFlow(t *testing.T) {
	e := start(t, devidp.Options{})
	conf := e.config("agent", "agent-secret", oauth2.AuthStyleInHeader)
	code, verifier := e.authCode(conf, oauth2.SetAuthURLParam("nonce", "n-1"), oauth2.SetAuthURLParam("resource", "https://api.example.com/"))
	tok, err := conf.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.Extra("scope") != "openid profile" {
		t.Fatalf("token %+v scope %v", tok, tok.Extra("scope"))
	}
	at := e.claims(tok.AccessToken, "at+jwt")
	if at["sub"] != "alice" || at["aud"] != "https://api.example.com/" || at["client_id"] != "agent" || at["azp"] != "agent" ||
		at["scope"] != "openid profile" || at["jti"] == "" || at["exp"].(float64)-at["iat"].(float64) != 3600 {
		t.Fatalf("access token claims %v", at)
	}
	id := e.claims(tok.Extra("id_token").(string), "JWT")
	if id["sub"] != "alice" || id["aud"] != "agent" || id["email"] != "alice@example.com" || id["name"] != "Alice" || id["nonce"] != "n-1" {
		t.Fatalf("ID token claims %v", id)
	}
	if e.count("authorize", "", true) != 1 || e.count("token", "authorization_code", true) != 1 {
		t.Fatalf("events %+v", e.events)
	}
}

func TestAuthorizationCodeRejections(t *testing.T) {
	e := start(t, devidp.Options{})
	conf := e.config("agent", "agent-secret", oauth2.AuthStyleInParams)

	t.Run("wrong verifier", func(t *testing.T) {
		code, _ := e.authCode(conf)
		_, err := conf.Exchange(ctx(t), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		retrieveError(t, err, "invalid_grant")
	})
	t.Run("no verifier", func(t *testing.T) {
		code, _ := e.authCode(conf)
		_, err := conf.Exchange(ctx(t), code)
		retrieveError(t, err, "invalid_grant")
	})
	t.Run("code reuse revokes its tokens", func(t *testing.T) {
		code, verifier := e.authCode(conf)
		tok, err := conf.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		_, err = conf.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
		retrieveError(t, err, "invalid_grant")
		tok.Expiry = time.Now().Add(-time.Minute)
		_, err = conf.TokenSource(ctx(t), tok).Token()
		retrieveError(t, err, "invalid_grant")
	})
	t.Run("redirect_uri mismatch", func(t *testing.T) {
		code, verifier := e.authCode(conf)
		other := *conf
		other.RedirectURL = "http://127.0.0.1:9999/elsewhere"
		_, err := other.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
		retrieveError(t, err, "invalid_grant")
	})
	t.Run("another client's code", func(t *testing.T) {
		code, verifier := e.authCode(conf)
		_, err := e.config("other", "other-secret", oauth2.AuthStyleInHeader).Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
		retrieveError(t, err, "invalid_grant")
	})
	t.Run("expired code", func(t *testing.T) {
		code, verifier := e.authCode(conf)
		e.clock.Add(5*time.Minute + time.Second)
		_, err := conf.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
		retrieveError(t, err, "invalid_grant")
	})
	t.Run("deny", func(t *testing.T) {
		q := e.consent(conf.AuthCodeURL("st-2", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "alice", "deny")
		if q.Get("error") != "access_denied" || q.Get("state") != "st-2" || q.Has("code") {
			t.Fatalf("deny redirect %v", q)
		}
	})
	// Errors about the request itself go back to the client…
	for name, params := range map[string][]oauth2.AuthCodeOption{
		"no PKCE":             nil,
		"plain PKCE":          {oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")},
		"short challenge":     {oauth2.SetAuthURLParam("code_challenge", "abc"), oauth2.SetAuthURLParam("code_challenge_method", "S256")},
		"bad response_type":   {oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("response_type", "token")},
		"bad scope":           {oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("scope", `a"b`)},
		"relative resource":   {oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("resource", "api")},
		"repeated parameters": {oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("state", "x")},
		"negative max_age":    {oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("max_age", "-1")},
		"max_age not seconds": {oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("max_age", "10m")},
	} {
		u := conf.AuthCodeURL("st-3", params...)
		if name == "repeated parameters" {
			u += "&nonce=1&nonce=2"
		}
		res, err := browser(t).Get(u)
		if err != nil {
			t.Fatal(err)
		}
		q := e.location(fetched(t, res))
		if q.Get("error") == "" || q.Has("code") {
			t.Errorf("%s: redirect %v", name, q)
		}
	}
	// …but never to an unknown client or an unregistered redirect URI
	// (RFC 6749 §4.1.2.1).
	for _, u := range []string{
		strings.Replace(conf.AuthCodeURL("s"), "client_id=agent", "client_id=nobody", 1),
		strings.Replace(conf.AuthCodeURL("s"), url.QueryEscape(redirectURL), url.QueryEscape("http://evil.example/cb"), 1),
		strings.Replace(conf.AuthCodeURL("s"), url.QueryEscape(redirectURL), url.QueryEscape(redirectURL+"#frag"), 1),
	} {
		res, err := browser(t).Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if readAll(t, res); res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Errorf("%s: %d, Location %q", u, res.StatusCode, res.Header.Get("Location"))
		}
	}
}

// TestAuthTime: ID tokens carry auth_time (OpenID Connect Core §2), the
// moment the user signed in on the page, which a max_age request always
// shows; refreshed ID tokens keep it; OmitAuthTime leaves it out.
func TestAuthTime(t *testing.T) {
	e := start(t, devidp.Options{})
	conf := e.config("agent", "agent-secret", oauth2.AuthStyleInHeader)
	verifier := oauth2.GenerateVerifier()
	b := browser(t)
	form := e.consentPage(b, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("max_age", "0")))
	e.clock.Add(30 * time.Second)
	signedIn := e.clock.Now()
	q := e.location(e.answer(b, form, "alice", "allow"))
	e.clock.Add(time.Second)
	tok, err := conf.Exchange(ctx(t), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if id := e.claims(tok.Extra("id_token").(string), "JWT"); id["auth_time"] != float64(signedIn.Unix()) {
		t.Fatalf("auth_time %v, want %d", id["auth_time"], signedIn.Unix())
	}
	if at := e.claims(tok.AccessToken, "at+jwt"); at["auth_time"] != nil {
		t.Errorf("an access token with auth_time: %v", at)
	}
	e.clock.Add(10 * time.Minute)
	status, m := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, "agent", "agent-secret")
	if id := e.claims(m["id_token"].(string), "JWT"); status != http.StatusOK || id["auth_time"] != float64(signedIn.Unix()) {
		t.Fatalf("refreshed: %d auth_time %v, want %d", status, id["auth_time"], signedIn.Unix())
	}
	if id := e.claims(e.password()["id_token"].(string), "JWT"); id["auth_time"] != float64(e.clock.Now().Unix()) {
		t.Errorf("password grant auth_time %v", id["auth_time"])
	}

	omit := start(t, devidp.Options{OmitAuthTime: true})
	if id := omit.claims(omit.password()["id_token"].(string), "JWT"); id["auth_time"] != nil {
		t.Errorf("OmitAuthTime: auth_time %v", id["auth_time"])
	}
	if _, err := devidp.New(devidp.Options{Issuer: "http://127.0.0.1:1", UserClaims: map[string]map[string]any{"alice": {"auth_time": 1}}}); err == nil {
		t.Error("UserClaims may set auth_time")
	}
}

func TestRegisteredRedirectURIsAreExact(t *testing.T) {
	e := start(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret", RedirectURIs: []string{redirectURL}}}})
	conf := e.config("agent", "agent-secret", oauth2.AuthStyleInHeader)
	e.authCode(conf)
	conf.RedirectURL = "http://127.0.0.1:9999/callback2"
	res, err := browser(t).Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, res); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("unregistered redirect URI: %d", res.StatusCode)
	}
}

func TestConsentForm(t *testing.T) {
	e := start(t, devidp.Options{})
	authURL := e.config("agent", "agent-secret", oauth2.AuthStyleInHeader).AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))

	b := browser(t)
	tok := e.consentPage(b, authURL)
	// Another browser (a cross-site form post has no consent cookie) cannot answer.
	if res := e.answer(browser(t), tok, "mallory", "allow"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("foreign browser: %d", res.StatusCode)
	}
	// A bad username shows the page again, with the same form still usable.
	res := e.answer(b, tok, "not a name", "allow")
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(res.Body, tok) {
		t.Fatalf("bad username: %d\n%s", res.StatusCode, res.Body)
	}
	if q := e.location(e.answer(b, tok, "bob", "allow")); q.Get("code") == "" {
		t.Fatalf("allow: %v", q)
	}
	// The form is single-use.
	if res := e.answer(b, tok, "bob", "allow"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("second answer: %d", res.StatusCode)
	}
	// It expires.
	tok = e.consentPage(b, authURL)
	e.clock.Add(11 * time.Minute)
	if res := e.answer(b, tok, "bob", "allow"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("expired form: %d", res.StatusCode)
	}
}

func TestConsentPageEscapesEverything(t *testing.T) {
	const hostile = `<script>alert(1)</script>`
	e := start(t, devidp.Options{Clients: []devidp.Client{{ID: hostile, Secret: "s"}}})
	conf := e.config(hostile, "s", oauth2.AuthStyleInHeader)
	conf.Scopes = []string{"<img/src=x/onerror=alert(2)>", "openid"}
	u := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("login_hint", `"><svg onload=alert(3)>`))
	res, err := browser(t).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	for _, raw := range []string{"<script", "<img", "<svg"} {
		if strings.Contains(body, raw) {
			t.Errorf("page contains %q unescaped:\n%s", raw, body)
		}
	}
	for _, esc := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img/src=x/onerror=alert(2)&gt;", "&#34;&gt;&lt;svg onload=alert(3)&gt;"} {
		if !strings.Contains(body, esc) {
			t.Errorf("page lacks %q:\n%s", esc, body)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers %v", res.Header)
	}
}

func TestRefreshRotation(t *testing.T) {
	e := start(t, devidp.Options{})
	conf := e.config("agent", "agent-secret", oauth2.AuthStyleInHeader)
	first, err := conf.PasswordCredentialsToken(ctx(t), "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt string) (*oauth2.Token, error) {
		return conf.TokenSource(ctx(t), &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
	}
	second, err := refresh(first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	third, err := refresh(second.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if rts := []string{first.RefreshToken, second.RefreshToken, third.RefreshToken}; len(slices.Compact(slices.Clone(rts))) != 3 {
		t.Fatalf("refresh tokens did not rotate: %v", rts)
	}
	if id := e.claims(third.Extra("id_token").(string), "JWT"); id["sub"] != "alice" {
		t.Fatalf("refreshed ID token %v", id)
	}
	// Another client cannot use it.
	_, err = e.config("other", "other-secret", oauth2.AuthStyleInHeader).TokenSource(ctx(t), &oauth2.Token{RefreshToken: third.RefreshToken}).Token()
	retrieveError(t, err, "invalid_grant")
	// A rotated-out token fails, and takes the whole family with it.
	_, err = refresh(first.RefreshToken)
	retrieveError(t, err, "invalid_grant")
	_, err = refresh(third.RefreshToken)
	retrieveError(t, err, "invalid_grant")
}

func TestRefreshScopeMayOnlyNarrow(t *testing.T) {
	e := start(t, devidp.Options{})
	rt := e.password()["refresh_token"].(string)
	e.wantError("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"admin"}}, "agent", "agent-secret", 400, "invalid_scope")
	status, m := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"read"}}, "agent", "agent-secret")
	if status != 200 || m["scope"] != "read" || e.claims(m["access_token"].(string), "at+jwt")["scope"] != "read" {
		t.Fatalf("narrowed refresh: %d %v", status, m)
	}
}

func TestRefreshWithoutRotation(t *testing.T) {
	e := start(t, devidp.Options{DisableRefreshRotation: true})
	rt := e.password()["refresh_token"].(string)
	for range 2 {
		status, m := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "agent", "agent-secret")
		if _, has := m["refresh_token"]; status != 200 || has {
			t.Fatalf("refresh: %d %v", status, m)
		}
	}
}

func TestClientCredentials(t *testing.T) {
	e := start(t, devidp.Options{AccessTokenTTL: 90 * time.Second})
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cc := clientcredentials.Config{ClientID: "agent", ClientSecret: "agent-secret", TokenURL: e.url + "/token", AuthStyle: style,
			Scopes: []string{"read", "write"}, EndpointParams: url.Values{"resource": {"https://a.example", "https://b.example"}}}
		tok, err := cc.Token(ctx(t))
		if err != nil {
			t.Fatalf("style %d: %v", style, err)
		}
		if tok.RefreshToken != "" || tok.Extra("id_token") != nil || tok.Extra("expires_in") != 90.0 {
			t.Fatalf("style %d: %+v", style, tok)
		}
		c := e.claims(tok.AccessToken, "at+jwt")
		if aud, _ := json.Marshal(c["aud"]); c["sub"] != "agent" || c["client_id"] != "agent" || c["scope"] != "read write" ||
			string(aud) != `["https://a.example","https://b.example"]` {
			t.Fatalf("style %d: claims %v", style, c)
		}
		cc.ClientSecret = "wrong"
		_, err = cc.Token(ctx(t))
		retrieveError(t, err, "invalid_client")
	}
	if n := e.count("token", "client_credentials", true); n != 2 {
		t.Fatalf("observed %d successful client_credentials requests, want 2", n)
	}
	// RFC 6749 §5.2: 401 with WWW-Authenticate for failed Basic.
	req, _ := http.NewRequest(http.MethodPost, e.url+"/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("agent", "nope")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, res); res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("failed Basic: %d %v", res.StatusCode, res.Header)
	}
}

func TestPasswordGrant(t *testing.T) {
	e := start(t, devidp.Options{})
	tok, err := e.config("agent", "agent-secret", oauth2.AuthStyleInParams).PasswordCredentialsToken(ctx(t), "carol.d", "anything")
	if err != nil {
		t.Fatal(err)
	}
	id := e.claims(tok.Extra("id_token").(string), "JWT")
	if id["sub"] != "carol.d" || id["aud"] != "agent" || id["azp"] != "agent" || id["email"] != "carol.d@example.com" || id["name"] != "Carol.d" {
		t.Fatalf("ID token %v", id)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	for _, bad := range []url.Values{
		{"grant_type": {"password"}, "username": {"alice"}},
		{"grant_type": {"password"}, "username": {"<alice>"}, "password": {"x"}},
		{"grant_type": {"password"}, "password": {"x"}},
	} {
		e.wantError("/token", bad, "agent", "agent-secret", 400, "invalid_grant")
	}
}

// A user's UserClaims are in the ID tokens of that user only, and never
// in access tokens.
func TestUserClaims(t *testing.T) {
	e := start(t, devidp.Options{UserClaims: map[string]map[string]any{"alice": {"groups": []string{"behalf-admins"}, "department": "ops"}}})
	conf := e.config("agent", "agent-secret", oauth2.AuthStyleInParams)
	alice, err := conf.PasswordCredentialsToken(ctx(t), "alice", "x")
	if err != nil {
		t.Fatal(err)
	}
	id := e.claims(alice.Extra("id_token").(string), "JWT")
	if g, _ := id["groups"].([]any); len(g) != 1 || g[0] != "behalf-admins" || id["department"] != "ops" || id["sub"] != "alice" {
		t.Errorf("alice's ID token: %v", id)
	}
	if at := e.claims(alice.AccessToken, "at+jwt"); at["groups"] != nil {
		t.Errorf("alice's access token: %v", at)
	}
	bob, err := conf.PasswordCredentialsToken(ctx(t), "bob", "x")
	if err != nil {
		t.Fatal(err)
	}
	if id := e.claims(bob.Extra("id_token").(string), "JWT"); id["groups"] != nil {
		t.Errorf("bob's ID token: %v", id)
	}
}

func TestTokenExchange(t *testing.T) {
	e := start(t, devidp.Options{})
	user := e.password()
	const grant = "urn:ietf:params:oauth:grant-type:token-exchange"
	for _, subject := range []struct{ token, typ string }{
		{user["access_token"].(string), "urn:ietf:params:oauth:token-type:access_token"},
		{user["id_token"].(string), "urn:ietf:params:oauth:token-type:id_token"},
	} {
		status, m := e.post("/token", url.Values{"grant_type": {grant}, "subject_token": {subject.token}, "subject_token_type": {subject.typ}}, "other", "other-secret")
		if status != 200 || m["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || m["refresh_token"] != nil {
			t.Fatalf("exchange: %d %v", status, m)
		}
		c := e.claims(m["access_token"].(string), "at+jwt")
		if c["sub"] != "alice" || c["aud"] != "other" || c["client_id"] != "other" || c["scope"] != "openid read" {
			t.Fatalf("exchanged claims %v", c)
		}
	}
	status, m := e.post("/token", url.Values{"grant_type": {grant}, "subject_token": {user["access_token"].(string)},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "resource": {"https://api.example"}, "audience": {"billing"}, "scope": {"read"}}, "other", "other-secret")
	if aud, _ := json.Marshal(e.claims(m["access_token"].(string), "at+jwt")["aud"]); status != 200 || string(aud) != `["https://api.example","billing"]` || m["scope"] != "read" {
		t.Fatalf("exchange with resource: %d %v %s", status, m, aud)
	}

	foreign := start(t, devidp.Options{}).password()["access_token"].(string)
	for name, form := range map[string]url.Values{
		"foreign token":   {"subject_token": {foreign}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}},
		"not a JWT":       {"subject_token": {"garbage"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}},
		"refresh token":   {"subject_token": {user["refresh_token"].(string)}, "subject_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}},
		"no type":         {"subject_token": {user["access_token"].(string)}},
		"garbage actor":   {"subject_token": {user["access_token"].(string)}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "actor_token": {"x"}, "actor_token_type": {"urn:ietf:params:oauth:token-type:jwt"}},
		"requested other": {"subject_token": {user["access_token"].(string)}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "requested_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}},
	} {
		form.Set("grant_type", grant)
		t.Run(name, func(*testing.T) { e.wantError("/token", form, "other", "other-secret", 400, "invalid_request") })
	}
	// Expired subject tokens are refused: the injected clock moves past exp.
	e.clock.Add(time.Hour + time.Second)
	e.wantError("/token", url.Values{"grant_type": {grant}, "subject_token": {user["access_token"].(string)},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}, "other", "other-secret", 400, "invalid_request")
}

func TestRevocation(t *testing.T) {
	e := start(t, devidp.Options{})
	user := e.password()
	rt, at := user["refresh_token"].(string), user["access_token"].(string)

	// Only the client the token was issued to may revoke it (RFC 7009 §2.1).
	e.wantError("/revoke", url.Values{"token": {rt}}, "other", "other-secret", 400, "unauthorized_client")
	e.wantError("/revoke", url.Values{"token": {rt}}, "agent", "wrong", 401, "invalid_client")
	e.wantError("/revoke", url.Values{}, "agent", "agent-secret", 400, "invalid_request")

	for _, form := range []url.Values{
		{"token": {rt}, "token_type_hint": {"access_token"}}, // a wrong hint still finds it
		{"token": {at}},
		{"token": {"never-issued"}}, // RFC 7009 §2.2: unknown tokens are fine
		{"token": {rt}},             // and so is revoking twice
	} {
		if status, m := e.post("/revoke", form, "agent", "agent-secret"); status != 200 || m != nil {
			t.Fatalf("revoke %v: %d %v", form, status, m)
		}
	}
	e.wantError("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "agent", "agent-secret", 400, "invalid_grant")
	e.wantError("/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {at},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}, "agent", "agent-secret", 400, "invalid_request")
	// The ID token was not revoked.
	if status, _ := e.post("/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {user["id_token"].(string)},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}, "agent", "agent-secret"); status != 200 {
		t.Fatalf("exchange of the unrevoked ID token: %d", status)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	e := start(t, devidp.Options{})
	for name, c := range map[string]struct {
		form       url.Values
		id, secret string
		status     int
		code       string
	}{
		"no grant_type":     {url.Values{}, "agent", "agent-secret", 400, "invalid_request"},
		"unknown grant":     {url.Values{"grant_type": {"implicit"}}, "agent", "agent-secret", 400, "unsupported_grant_type"},
		"repeated param":    {url.Values{"grant_type": {"client_credentials"}, "scope": {"a", "b"}}, "agent", "agent-secret", 400, "invalid_request"},
		"two auth methods":  {url.Values{"grant_type": {"client_credentials"}, "client_secret": {"agent-secret"}}, "agent", "agent-secret", 400, "invalid_request"},
		"no auth":           {url.Values{"grant_type": {"client_credentials"}}, "", "", 401, "invalid_client"},
		"unknown client":    {url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {""}}, "", "", 401, "invalid_client"},
		"bad resource":      {url.Values{"grant_type": {"client_credentials"}, "resource": {"/relative"}}, "agent", "agent-secret", 400, "invalid_target"},
		"bad scope":         {url.Values{"grant_type": {"client_credentials"}, "scope": {`a\b`}}, "agent", "agent-secret", 400, "invalid_scope"},
		"no refresh token":  {url.Values{"grant_type": {"refresh_token"}}, "agent", "agent-secret", 400, "invalid_request"},
		"unknown refresh":   {url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, "agent", "agent-secret", 400, "invalid_grant"},
		"unknown code":      {url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}}, "agent", "agent-secret", 400, "invalid_grant"},
		"client_id ≠ Basic": {url.Values{"grant_type": {"client_credentials"}, "client_id": {"other"}}, "agent", "agent-secret", 400, "invalid_request"},
	} {
		t.Run(name, func(*testing.T) { e.wantError("/token", c.form, c.id, c.secret, c.status, c.code) })
	}
	if n := e.count("token", "client_credentials", false); n != 7 {
		t.Fatalf("observed %d failed client_credentials requests, want 7", n)
	}
}
