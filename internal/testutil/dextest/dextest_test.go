package dextest_test

// These tests also document Dex's behaviour, at the pinned version, for the
// rest of behalf's tests: which claims each token carries, how the grants
// fail, and how rotation and token exchange behave.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

const (
	clientID     = "agent-svc"
	clientSecret = "agent-secret"
)

func start(t *testing.T, opts dextest.Options) *dextest.Dex {
	t.Helper()
	opts.Clients = append(opts.Clients, dextest.Client{ID: clientID, Secret: clientSecret})
	return dextest.Start(t, opts)
}

// verify checks raw with go-oidc against Dex's discovery and JWKS, as
// behalf's inbound authorizer would, and returns its claims.
func verify(t *testing.T, d *dextest.Dex, audience, raw string) (*oidc.IDToken, map[string]any) {
	t.Helper()
	provider, err := oidc.NewProvider(t.Context(), d.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	tok, err := provider.Verifier(&oidc.Config{ClientID: audience}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("verify %.40s…: %v", raw, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return tok, claims
}

// pick returns the named claims, so that tests compare only the stable ones
// (not exp, iat, jti, at_hash).
func pick(claims map[string]any, names ...string) map[string]any {
	out := map[string]any{}
	for _, n := range names {
		if v, ok := claims[n]; ok {
			out[n] = v
		}
	}
	return out
}

func TestSubjects(t *testing.T) {
	// Dex's sub encodes the connector; the constants are what tokens carry.
	for _, tc := range []struct{ got, want string }{
		{dextest.Subject(dextest.UserID, dextest.PasswordConnectorID), dextest.PasswordSubject},
		{dextest.Subject(dextest.UserID, dextest.CallbackConnectorID), dextest.CallbackSubject},
	} {
		if tc.got != tc.want {
			t.Errorf("Subject = %q, constant says %q", tc.got, tc.want)
		}
	}
	if dextest.PasswordSubject == dextest.CallbackSubject {
		t.Error("one user has one sub per connector")
	}
}

func TestDiscovery(t *testing.T) {
	d := start(t, dextest.Options{TokenExchange: true})

	resp, err := http.Get(d.DiscoveryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer      string   `json:"issuer"`
		Auth        string   `json:"authorization_endpoint"`
		Token       string   `json:"token_endpoint"`
		JWKS        string   `json:"jwks_uri"`
		UserInfo    string   `json:"userinfo_endpoint"`
		Introspect  string   `json:"introspection_endpoint"`
		Grants      []string `json:"grant_types_supported"`
		PKCE        []string `json:"code_challenge_methods_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
		Algs        []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want := doc
	want.Issuer, want.Auth, want.Token, want.JWKS = d.Issuer, d.AuthURL, d.TokenURL, d.KeysURL
	want.UserInfo, want.Introspect = d.Issuer+"/userinfo", d.Issuer+"/token/introspect"
	want.Grants = []string{"authorization_code", "client_credentials", "password", "refresh_token",
		dextest.GrantTypeTokenExchange}
	want.PKCE = []string{"S256", "plain"}
	want.AuthMethods = []string{"client_secret_basic", "client_secret_post"}
	want.Algs = []string{"RS256"}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("discovery (-want +got):\n%s", diff)
	}

	// The JWKS holds the signing key.
	resp, err = http.Get(doc.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jwks struct {
		Keys []struct{ Kty, Alg, Use string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil || len(jwks.Keys) == 0 || jwks.Keys[0].Alg != "RS256" {
		t.Errorf("JWKS = %+v, %v", jwks, err)
	}
}

func TestPasswordLogin(t *testing.T) {
	d := start(t, dextest.Options{})
	tok := d.PasswordLogin(t, clientID, clientSecret, "openid", "email", "profile", "groups", "offline_access")

	if tok.TokenType != "bearer" || tok.ExpiresIn <= 0 || tok.RefreshToken == "" {
		t.Errorf("token_type %q, expires_in %d, refresh_token %q", tok.TokenType, tok.ExpiresIn, tok.RefreshToken)
	}
	idTok, claims := verify(t, d, clientID, tok.IDToken)
	want := map[string]any{
		"iss": d.Issuer, "sub": dextest.PasswordSubject, "aud": clientID,
		"email": dextest.UserEmail, "email_verified": true, "name": dextest.UserName,
	}
	// No azp (only with several audiences), no groups (the mockPassword
	// identity has none), no preferred_username.
	if diff := cmp.Diff(want, pick(claims, "iss", "sub", "aud", "azp", "email", "email_verified", "name", "groups", "preferred_username")); diff != "" {
		t.Errorf("ID token claims (-want +got):\n%s", diff)
	}
	if err := idTok.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}

	// The access token is a JWT too, signed by the same key, with the same
	// claims as the ID token (aud is the client; no scope or client_id claim).
	_, atClaims := verify(t, d, clientID, tok.AccessToken)
	if diff := cmp.Diff(want, pick(atClaims, "iss", "sub", "aud", "azp", "email", "email_verified", "name", "scope", "client_id")); diff != "" {
		t.Errorf("access token claims (-want +got):\n%s", diff)
	}

	// Without offline_access there is no refresh token.
	if tok := d.PasswordLogin(t, clientID, clientSecret); tok.RefreshToken != "" || tok.IDToken == "" {
		t.Errorf("openid only: refresh %q, id_token %q", tok.RefreshToken, tok.IDToken)
	}

	_, terr := d.TokenRequest(t, clientID, clientSecret, url.Values{
		"grant_type": {"password"}, "username": {dextest.Username}, "password": {"wrong"}, "scope": {"openid"},
	})
	if terr == nil || terr.Status != http.StatusUnauthorized || terr.Code != "access_denied" {
		t.Errorf("wrong password: %v", terr)
	}
}

func TestClientCredentials(t *testing.T) {
	d := start(t, dextest.Options{})
	for _, style := range []struct {
		name string
		auth oauth2.AuthStyle
	}{
		{"client_secret_basic", oauth2.AuthStyleInHeader},
		{"client_secret_post", oauth2.AuthStyleInParams},
	} {
		t.Run(style.name, func(t *testing.T) {
			conf := clientcredentials.Config{
				ClientID: clientID, ClientSecret: clientSecret, TokenURL: d.TokenURL,
				AuthStyle: style.auth, Scopes: []string{"openid", "profile"},
			}
			tok, err := conf.Token(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken != "" {
				t.Error("client_credentials issued a refresh token")
			}
			_, claims := verify(t, d, clientID, tok.AccessToken)
			// sub is the client, with an empty connector; profile sets name
			// to the client's name (= its ID here). No email.
			want := map[string]any{"iss": d.Issuer, "sub": dextest.Subject(clientID, ""), "aud": clientID, "name": clientID, "preferred_username": clientID}
			if diff := cmp.Diff(want, pick(claims, "iss", "sub", "aud", "azp", "name", "preferred_username", "email")); diff != "" {
				t.Errorf("access token claims (-want +got):\n%s", diff)
			}
			if idTok, _ := tok.Extra("id_token").(string); idTok == "" {
				t.Error("openid scope: no id_token")
			}

			conf.ClientSecret = "wrong"
			var re *oauth2.RetrieveError
			if _, err := conf.Token(t.Context()); !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" {
				t.Errorf("wrong secret: %v", err)
			}
		})
	}

	// Without openid, only an access token; offline_access is refused.
	if tok := d.ClientCredentials(t, clientID, clientSecret); tok.IDToken != "" || tok.AccessToken == "" {
		t.Errorf("no scope: %+v", tok)
	}
	if _, terr := d.TokenRequest(t, clientID, clientSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"offline_access"}}); terr == nil || terr.Code != "invalid_scope" {
		t.Errorf("offline_access: %v", terr)
	}
}

func TestAudienceOfAnotherClient(t *testing.T) {
	// behalf as a resource server: its own client ID in aud, the caller in azp.
	d := start(t, dextest.Options{Clients: []dextest.Client{{ID: "behalf-api", Secret: "x", TrustedPeers: []string{clientID}}}})
	tok := d.ClientCredentials(t, clientID, clientSecret, "audience:server:client_id:behalf-api")
	_, claims := verify(t, d, "behalf-api", tok.AccessToken)
	want := map[string]any{"aud": []any{"behalf-api", clientID}, "azp": clientID, "sub": dextest.Subject(clientID, "")}
	if diff := cmp.Diff(want, pick(claims, "aud", "azp", "sub")); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}

	// Without trust, the scope is refused.
	d.AddClient(t, dextest.Client{ID: "stranger", Secret: "s"})
	if _, terr := d.TokenRequest(t, "stranger", "s", url.Values{
		"grant_type": {"client_credentials"}, "scope": {"audience:server:client_id:behalf-api"},
	}); terr == nil || terr.Code != "invalid_scope" {
		t.Errorf("untrusted: %v", terr)
	}
}

func TestAuthorizationCodePKCE(t *testing.T) {
	d := dextest.Start(t, dextest.Options{})
	// As with behalf: the client and its callback are known only later.
	const redirect = "http://127.0.0.1:9/oauth2/callback"
	d.AddClient(t, dextest.Client{ID: "web", Secret: "web-secret"})
	d.SetRedirectURIs(t, "web", redirect)
	conf := &oauth2.Config{
		ClientID: "web", ClientSecret: "web-secret", RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: d.AuthURL, TokenURL: d.TokenURL},
		Scopes:   []string{"openid", "email", "groups", "offline_access"},
	}

	verifier := oauth2.GenerateVerifier()
	loc := d.Authorize(t, conf.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier)))
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect || loc.Query().Get("state") != "state-1" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect = %s", loc)
	}
	code := loc.Query().Get("code")

	// A wrong or missing verifier is invalid_grant, and does not spend the
	// code: Dex checks PKCE before it deletes the code.
	var re *oauth2.RetrieveError
	for _, opts := range [][]oauth2.AuthCodeOption{{oauth2.VerifierOption(oauth2.GenerateVerifier())}, nil} {
		if _, err := conf.Exchange(t.Context(), code, opts...); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("bad verifier: %v", err)
		}
	}
	tok, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	// The code is single-use.
	if _, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("second redemption: %v", err)
	}

	raw, _ := tok.Extra("id_token").(string)
	idTok, claims := verify(t, d, "web", raw)
	want := map[string]any{
		"iss": d.Issuer, "sub": dextest.CallbackSubject, "aud": "web",
		"email": dextest.UserEmail, "email_verified": true, "groups": []any{"authors"},
	}
	if diff := cmp.Diff(want, pick(claims, "iss", "sub", "aud", "azp", "email", "email_verified", "groups")); diff != "" {
		t.Errorf("ID token claims (-want +got):\n%s", diff)
	}
	if claims["c_hash"] == nil || claims["auth_time"] == nil || idTok.AccessTokenHash == "" {
		t.Errorf("code flow ID token lacks c_hash, auth_time or at_hash: %v", claims)
	}
	if tok.RefreshToken == "" {
		t.Error("offline_access: no refresh token")
	}

	// connector_id=mock selects the same connector explicitly.
	loc = d.Authorize(t, conf.AuthCodeURL("s", oauth2.SetAuthURLParam("connector_id", dextest.CallbackConnectorID)))
	if loc.Query().Get("code") == "" {
		t.Errorf("connector_id=mock: %s", loc)
	}
}

func TestRequirePKCE(t *testing.T) {
	d := dextest.Start(t, dextest.Options{RequirePKCE: true})
	d.AddClient(t, dextest.Client{ID: "web", Secret: "s", RedirectURIs: []string{"http://127.0.0.1:9/cb"}})
	conf := &oauth2.Config{ClientID: "web", RedirectURL: "http://127.0.0.1:9/cb", Endpoint: oauth2.Endpoint{AuthURL: d.AuthURL}, Scopes: []string{"openid"}}

	// Without a challenge, or with plain, Dex redirects an error to the client.
	for _, opts := range [][]oauth2.AuthCodeOption{nil, {
		oauth2.SetAuthURLParam("code_challenge", "x"), oauth2.SetAuthURLParam("code_challenge_method", "plain"),
	}} {
		loc := d.Authorize(t, conf.AuthCodeURL("st", opts...))
		if q := loc.Query(); q.Get("error") != "invalid_request" || q.Get("state") != "st" || q.Get("code") != "" {
			t.Errorf("redirect = %s", loc)
		}
	}
	if loc := d.Authorize(t, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); loc.Query().Get("code") == "" {
		t.Errorf("S256: %s", loc)
	}
}

func TestRefresh(t *testing.T) {
	refreshForm := func(rt string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	}

	t.Run("rotation", func(t *testing.T) {
		d := start(t, dextest.Options{RotateRefreshTokens: true})
		first := d.PasswordLogin(t, clientID, clientSecret, "openid", "offline_access")
		second := d.Refresh(t, clientID, clientSecret, first.RefreshToken)
		if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
			t.Fatalf("not rotated: %q", second.RefreshToken)
		}
		_, claims := verify(t, d, clientID, second.IDToken)
		if claims["sub"] != dextest.PasswordSubject {
			t.Errorf("refreshed sub = %v", claims["sub"])
		}

		// The old token is dead. Dex answers invalid_request, not the
		// invalid_grant of RFC 6749 §5.2.
		_, terr := d.TokenRequest(t, clientID, clientSecret, refreshForm(first.RefreshToken))
		if terr == nil || terr.Status != http.StatusBadRequest || terr.Code != "invalid_request" {
			t.Errorf("reused refresh token: %v", terr)
		}

		// The chain goes on (a second rotation once deadlocked Dex's memory
		// storage; see serializeRefreshUpdates).
		third := d.Refresh(t, clientID, clientSecret, second.RefreshToken)
		fourth := d.Refresh(t, clientID, clientSecret, third.RefreshToken)
		if fourth.RefreshToken == third.RefreshToken {
			t.Error("not rotated")
		}

		// Another client cannot redeem it: that one is invalid_grant.
		d.AddClient(t, dextest.Client{ID: "other", Secret: "other-secret"})
		if _, terr := d.TokenRequest(t, "other", "other-secret", refreshForm(fourth.RefreshToken)); terr == nil || terr.Code != "invalid_grant" {
			t.Errorf("other client: %v", terr)
		}
		// Nor may a refresh widen the scopes.
		if _, terr := d.TokenRequest(t, clientID, clientSecret, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {fourth.RefreshToken}, "scope": {"openid email"},
		}); terr == nil || terr.Code != "invalid_request" {
			t.Errorf("widened scope: %v", terr)
		}
	})

	t.Run("reuse interval", func(t *testing.T) {
		// Dex measures the window from the token's last use, and a token
		// is not rotated while it is inside its window: LastUsed starts at
		// issue, so refreshes within reuse of the issue return the same token.
		const reuse = 500 * time.Millisecond
		clock := testclock.Running()
		d := start(t, dextest.Options{RotateRefreshTokens: true, RefreshReuseInterval: reuse, Now: clock.Now})
		first := d.PasswordLogin(t, clientID, clientSecret, "openid", "offline_access")
		if tok := d.Refresh(t, clientID, clientSecret, first.RefreshToken); tok.RefreshToken != first.RefreshToken {
			t.Error("rotated inside the reuse window")
		}
		clock.Advance(reuse + 100*time.Millisecond)
		second := d.Refresh(t, clientID, clientSecret, first.RefreshToken)
		if second.RefreshToken == first.RefreshToken {
			t.Fatal("not rotated after the reuse window")
		}
		// Within the window after a rotation, the old token answers with the
		// current one (a retry after a lost response succeeds) …
		if again := d.Refresh(t, clientID, clientSecret, first.RefreshToken); again.RefreshToken != second.RefreshToken {
			t.Errorf("old token in window gave %q, want the current %q", again.RefreshToken, second.RefreshToken)
		}
		// … and after it, the old token is dead.
		clock.Advance(reuse + 100*time.Millisecond)
		if _, terr := d.TokenRequest(t, clientID, clientSecret, refreshForm(first.RefreshToken)); terr == nil || terr.Code != "invalid_request" {
			t.Errorf("old token after window: %v", terr)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		// Two clients racing with one token: exactly one gets the next one.
		// (This is why behalf must single-flight its refreshes.)
		d := start(t, dextest.Options{RotateRefreshTokens: true})
		rt := d.PasswordLogin(t, clientID, clientSecret, "openid", "offline_access").RefreshToken
		conf := &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: d.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
		errs := make(chan error, 2)
		for range 2 {
			go func() { // (the dextest helpers call t.Fatal, so not here)
				_, err := conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: rt}).Token()
				errs <- err
			}()
		}
		var failed []string
		for range 2 {
			var re *oauth2.RetrieveError
			if err := <-errs; errors.As(err, &re) {
				failed = append(failed, re.ErrorCode)
			} else if err != nil {
				t.Error(err)
			}
		}
		if diff := cmp.Diff([]string{"invalid_request"}, failed); diff != "" {
			t.Errorf("failures (-want +got):\n%s", diff)
		}
	})

	t.Run("no rotation", func(t *testing.T) {
		d := start(t, dextest.Options{})
		first := d.PasswordLogin(t, clientID, clientSecret, "openid", "offline_access")
		for range 3 {
			if tok := d.Refresh(t, clientID, clientSecret, first.RefreshToken); tok.RefreshToken != first.RefreshToken {
				t.Errorf("refresh token changed without rotation")
			}
		}
	})

	t.Run("code flow, x/oauth2 TokenSource", func(t *testing.T) {
		d := dextest.Start(t, dextest.Options{RotateRefreshTokens: true})
		d.AddClient(t, dextest.Client{ID: "web", Secret: "web-secret", RedirectURIs: []string{"http://127.0.0.1:9/cb"}})
		conf := &oauth2.Config{
			ClientID: "web", ClientSecret: "web-secret", RedirectURL: "http://127.0.0.1:9/cb",
			Endpoint: oauth2.Endpoint{AuthURL: d.AuthURL, TokenURL: d.TokenURL},
			Scopes:   []string{"openid", "offline_access"},
		}
		tok, err := conf.Exchange(t.Context(), d.Authorize(t, conf.AuthCodeURL("s")).Query().Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			tok.Expiry = time.Now().Add(-time.Minute) // force a refresh
			next, err := conf.TokenSource(t.Context(), tok).Token()
			if err != nil {
				t.Fatal(err)
			}
			if next.RefreshToken == tok.RefreshToken {
				t.Error("not rotated")
			}
			tok = next
		}
		if got := d.TokenRequests("refresh_token"); got != 3 {
			t.Errorf("refresh requests = %d", got)
		}
	})
}

func TestTokenExchange(t *testing.T) {
	d := start(t, dextest.Options{TokenExchange: true})
	d.AddClient(t, dextest.Client{ID: "resource", Secret: "resource-secret"})
	login := d.PasswordLogin(t, clientID, clientSecret, "openid", "email")

	exchange := func(subjectToken, subjectType, requestedType, connector string) (*dextest.Tokens, *dextest.TokenError) {
		form := url.Values{
			"grant_type":         {dextest.GrantTypeTokenExchange},
			"subject_token":      {subjectToken},
			"subject_token_type": {subjectType},
			"scope":              {"openid email"},
			"connector_id":       {connector},
		}
		if requestedType != "" {
			form.Set("requested_token_type", requestedType)
		}
		return d.TokenRequest(t, "resource", "resource-secret", form)
	}

	for _, requested := range []string{"", dextest.TokenTypeAccess, dextest.TokenTypeID} {
		tok, terr := exchange(login.IDToken, dextest.TokenTypeID, requested, dextest.CallbackConnectorID)
		if terr != nil {
			t.Fatalf("requested %q: %v", requested, terr)
		}
		wantType := requested
		if wantType == "" {
			wantType = dextest.TokenTypeAccess // RFC 8693 §2.1 default
		}
		// One token, in access_token whatever its type; no ID or refresh token.
		if tok.IssuedTokenType != wantType || tok.IDToken != "" || tok.RefreshToken != "" || tok.TokenType != "bearer" {
			t.Errorf("requested %q: %+v", requested, tok)
		}
		// The new token is for the exchanging client, and its subject is the
		// identity the connector returned: the mockCallback user, so sub is
		// CallbackSubject although the subject token had PasswordSubject.
		_, claims := verify(t, d, "resource", tok.AccessToken)
		want := map[string]any{"iss": d.Issuer, "sub": dextest.CallbackSubject, "aud": "resource", "email": dextest.UserEmail}
		if diff := cmp.Diff(want, pick(claims, "iss", "sub", "aud", "azp", "email")); diff != "" {
			t.Errorf("requested %q: claims (-want +got):\n%s", requested, diff)
		}
	}

	// The mockCallback connector does not look at the subject token at all:
	// any string is accepted. Only Dex's oidc connector verifies it.
	if _, terr := exchange("not-a-token", dextest.TokenTypeAccess, "", dextest.CallbackConnectorID); terr != nil {
		t.Errorf("garbage subject token: %v", terr)
	}

	for _, tc := range []struct {
		name, subjectType, connector, code string
	}{
		{"jwt subject type", "urn:ietf:params:oauth:token-type:jwt", dextest.CallbackConnectorID, "request_not_supported"},
		{"no connector_id", dextest.TokenTypeID, "", "invalid_request"},
		{"password connector", dextest.TokenTypeID, dextest.PasswordConnectorID, "invalid_request"},
	} {
		if _, terr := exchange(login.IDToken, tc.subjectType, "", tc.connector); terr == nil || terr.Code != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, terr, tc.code)
		}
	}

	// Off unless Options.TokenExchange.
	d2 := start(t, dextest.Options{})
	_, terr := d2.TokenRequest(t, clientID, clientSecret, url.Values{
		"grant_type": {dextest.GrantTypeTokenExchange}, "subject_token": {login.IDToken},
		"subject_token_type": {dextest.TokenTypeID}, "connector_id": {dextest.CallbackConnectorID},
	})
	if terr == nil || terr.Code != "unsupported_grant_type" {
		t.Errorf("disabled: %v", terr)
	}
}

func TestTokenRequestsAndFaults(t *testing.T) {
	d := start(t, dextest.Options{})
	conf := clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: d.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}

	d.ClientCredentials(t, clientID, clientSecret)
	d.PasswordLogin(t, clientID, clientSecret)
	d.PasswordLogin(t, clientID, clientSecret)

	d.SetTokenFault(func(w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return true
	})
	var re *oauth2.RetrieveError
	if _, err := conf.Token(t.Context()); !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("503 fault: %v", err)
	}

	// A fault may look at the request and let others through.
	d.SetTokenFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.PostFormValue("grant_type") != "refresh_token" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant","error_description":"injected"}`))
		return true
	})
	if _, terr := d.TokenRequest(t, clientID, clientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}); terr == nil || terr.Code != "invalid_grant" || terr.Description != "injected" {
		t.Errorf("invalid_grant fault: %v", terr)
	}
	d.ClientCredentials(t, clientID, clientSecret) // passed through; Dex read the whole form

	d.SetTokenFault(func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":`))
		return true
	})
	if _, err := conf.Token(t.Context()); err == nil {
		t.Error("malformed JSON fault: no error")
	}

	// Hang until the client gives up.
	hung := make(chan struct{})
	d.SetTokenFault(func(_ http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		close(hung)
		return true
	})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := conf.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang fault: %v", err)
	}
	select {
	case <-hung:
	case <-time.After(10 * time.Second):
		t.Error("the hanging handler did not see the client go away")
	}

	d.SetTokenFault(nil)
	if _, err := conf.Token(t.Context()); err != nil {
		t.Errorf("fault removed: %v", err)
	}

	// Faulted requests count too.
	got := map[string]int{}
	for _, g := range []string{"client_credentials", "password", "refresh_token", "authorization_code"} {
		got[g] = d.TokenRequests(g)
	}
	want := map[string]int{"client_credentials": 6, "password": 2, "refresh_token": 1, "authorization_code": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TokenRequests (-want +got):\n%s", diff)
	}
}

// A fault left hanging does not keep the test from ending: Start's cleanup
// cancels every request's context before it closes the server.
func TestHangingFaultEndsAtCleanup(t *testing.T) {
	d := start(t, dextest.Options{})
	d.SetTokenFault(func(_ http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	})
	go func() {
		// Runs until cleanup; its error is expected and ignored.
		req, _ := http.NewRequest(http.MethodPost, d.TokenURL, strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for d.TokenRequests("client_credentials") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d.TokenRequests("client_credentials") != 1 {
		t.Fatal("request never arrived")
	}
}
