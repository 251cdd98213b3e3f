package devidp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/behalf-dev/behalf/internal/devidp"
)

// assertionKey is a client's P-256 key, published under kid.
type assertionKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newAssertionKey(t *testing.T, kid string) assertionKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return assertionKey{kid: kid, priv: k}
}

// assertion is a client assertion by id for aud, signed with k.
func (k assertionKey) assertion(t *testing.T, id, aud string, now time.Time) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	tok, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{aud}, ID: base64.RawURLEncoding.EncodeToString(jti),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestPrivateKeyJWTClients: a client with a jwks_uri authenticates its
// token and revocation requests with private_key_jwt (RFC 7523 §2.2),
// whose assertion the IdP verifies with the keys it fetches there; an
// assertion altered, signed by another key, replayed, or for another
// audience is invalid_client, and so is the client trying a secret.
func TestPrivateKeyJWTClients(t *testing.T) {
	key := newAssertionKey(t, "k1")
	var fetches atomic.Int64
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.priv.PublicKey, KeyID: key.kid, Algorithm: "ES256", Use: "sig"}}})
	}))
	t.Cleanup(jwks.Close)
	e := start(t, devidp.Options{HTTP: jwks.Client(), Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}, {ID: "jwt-agent", JWKSURI: jwks.URL}}})
	now := e.clock.Now()
	grant := func(assertion string, extra url.Values) (int, map[string]any) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {assertion}}
		for k, v := range extra {
			form[k] = v
		}
		return e.post("/token", form, "", "")
	}
	for _, aud := range []string{e.url, e.url + "/token"} {
		status, m := grant(key.assertion(t, "jwt-agent", aud, now), url.Values{"client_id": {"jwt-agent"}})
		if status != http.StatusOK {
			t.Fatalf("aud %s: %d %v", aud, status, m)
		}
		if c := e.claims(m["access_token"].(string), "at+jwt"); c["sub"] != "jwt-agent" || c["client_id"] != "jwt-agent" {
			t.Fatalf("claims %v", c)
		}
	}
	if fetches.Load() != 2 {
		t.Errorf("%d JWKS fetches for 2 assertions", fetches.Load())
	}

	genuine := key.assertion(t, "jwt-agent", e.url, now)
	parts := strings.Split(genuine, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	altered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"sub":"jwt-agent"`, `"sub":"jwt-agenT"`, 1))) + "." + parts[2]
	for name, tc := range map[string]struct {
		assertion string
		extra     url.Values
		code      string
	}{
		"altered claim":      {altered, nil, "invalid_client"},
		"another key":        {newAssertionKey(t, "k1").assertion(t, "jwt-agent", e.url, now), nil, "invalid_client"},
		"another audience":   {key.assertion(t, "jwt-agent", "https://as.example", now), nil, "invalid_client"},
		"a secret client":    {key.assertion(t, "agent", e.url, now), nil, "invalid_client"},
		"an unknown client":  {key.assertion(t, "nobody", e.url, now), nil, "invalid_client"},
		"client_id differs":  {key.assertion(t, "jwt-agent", e.url, now), url.Values{"client_id": {"agent"}}, "invalid_client"},
		"with a secret, too": {key.assertion(t, "jwt-agent", e.url, now), url.Values{"client_secret": {"x"}}, "invalid_request"},
	} {
		if status, m := grant(tc.assertion, tc.extra); m["error"] != tc.code || status/100 != 4 {
			t.Errorf("%s: %d %v, want %s", name, status, m, tc.code)
		}
	}
	// A jti is used once; the revocation endpoint authenticates alike.
	if status, _ := grant(genuine, nil); status != http.StatusOK {
		t.Fatalf("genuine: %d", status)
	}
	if status, m := grant(genuine, nil); m["error"] != "invalid_client" {
		t.Errorf("replayed: %d %v", status, m)
	}
	revoke := url.Values{"token": {"x"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}
	revoke.Set("client_assertion", key.assertion(t, "jwt-agent", e.url, now))
	if status, m := e.post("/revoke", revoke, "", ""); status != http.StatusOK {
		t.Errorf("revocation: %d %v", status, m)
	}
	// The key-only client has no secret to fall back on, empty or not.
	for _, secret := range []string{"", "x"} {
		if status, m := e.post("/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"jwt-agent"}, "client_secret": {secret}}, "", ""); m["error"] != "invalid_client" {
			t.Errorf("secret %q for the key client: %d %v", secret, status, m)
		}
	}
	// Discovery offers private_key_jwt.
	res, err := http.Get(e.url + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	_ = json.Unmarshal([]byte(readAll(t, res)), &md)
	if methods, _ := json.Marshal(md["token_endpoint_auth_methods_supported"]); !strings.Contains(string(methods), "private_key_jwt") {
		t.Errorf("token_endpoint_auth_methods_supported %s", methods)
	}
	for name, opts := range map[string]devidp.Options{
		"secret and jwks":   {Issuer: "http://127.0.0.1:1", HTTP: http.DefaultClient, Clients: []devidp.Client{{ID: "a", Secret: "s", JWKSURI: jwks.URL}}},
		"jwks without HTTP": {Issuer: "http://127.0.0.1:1", Clients: []devidp.Client{{ID: "a", JWKSURI: jwks.URL}}},
		"jwks not a URL":    {Issuer: "http://127.0.0.1:1", HTTP: http.DefaultClient, Clients: []devidp.Client{{ID: "a", JWKSURI: "keys.json"}}},
	} {
		if _, err := devidp.New(opts); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
