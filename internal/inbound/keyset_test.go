package inbound

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/egress"
)

func TestMaxAge(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                          0,
		"public":                    0,
		"max-age=3600":              time.Hour,
		"public, max-age=7200":      2 * time.Hour,
		"MAX-AGE=600, must-revalid": 10 * time.Minute,
		"max-age=10":                minMaxAge,
		"max-age=0":                 0,
		"max-age=999999999999":      maxMaxAge,
		"max-age=-5":                0,
		"max-age=abc":               0,
		`max-age="900"`:             15 * time.Minute,
		"no-store":                  minMaxAge,
		"no-cache, max-age=3600":    minMaxAge,
	} {
		if got := maxAge(cc); got != want {
			t.Errorf("maxAge(%q) = %v; want %v", cc, got, want)
		}
	}
}

func mustJWK(t *testing.T, key any, mod func(map[string]any)) json.RawMessage {
	t.Helper()
	b, err := jose.JSONWebKey{Key: key, KeyID: "k"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(m)
	}
	b, _ = json.Marshal(m)
	return b
}

func TestParseJWKS(t *testing.T) {
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // G403: the short key parseJWKS must refuse
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	set := func(m func(map[string]any)) json.RawMessage { return mustJWK(t, &rsa2048.PublicKey, m) }
	tests := []struct {
		name string
		key  json.RawMessage
		keep bool
	}{
		{"RSA 2048", set(nil), true},
		{"RSA 2048 use sig alg RS256", set(func(m map[string]any) { m["use"], m["alg"] = "sig", "RS256" }), true},
		{"RSA key_ops verify", set(func(m map[string]any) { m["key_ops"] = []string{"verify"} }), true},
		{"EC P-256", mustJWK(t, &ec.PublicKey, nil), true},
		{"Ed25519", mustJWK(t, edPub, nil), true},
		{"RSA use enc", set(func(m map[string]any) { m["use"] = "enc" }), false},
		{"RSA key_ops encrypt", set(func(m map[string]any) { m["key_ops"] = []string{"encrypt", "wrapKey"} }), false},
		{"RSA alg RSA-OAEP", set(func(m map[string]any) { m["alg"] = "RSA-OAEP" }), false},
		{"RSA alg HS256", set(func(m map[string]any) { m["alg"] = "HS256" }), false},
		{"RSA 1024", mustJWK(t, &rsa1024.PublicKey, nil), false},
		{"EC private key", mustJWK(t, ec, nil), false},
		{"symmetric", json.RawMessage(`{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0","kid":"k"}`), false},
		{"unknown kty", json.RawMessage(`{"kty":"AKP","alg":"ML-DSA-44","pub":"AAAA","kid":"k"}`), false},
		{"malformed RSA", json.RawMessage(`{"kty":"RSA","n":"!!","e":"AQAB","kid":"k"}`), false},
		{"duplicate member", json.RawMessage(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"keys": []json.RawMessage{tt.key}})
			keys, err := parseJWKS(body)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(keys) == 1; got != tt.keep {
				t.Errorf("kept = %v; want %v", got, tt.keep)
			}
		})
	}
	for name, body := range map[string]string{
		"not JSON":        "<html>",
		"no keys":         `{"keyz":[]}`,
		"keys twice":      `{"keys":[],"keys":[]}`,
		"keys not a list": `{"keys":{}}`,
		"trailing data":   `{"keys":[]} {}`,
	} {
		if _, err := parseJWKS([]byte(body)); err == nil {
			t.Errorf("%s: parseJWKS accepted %s", name, body)
		}
	}
	// One bad key does not hide the others, and an empty set is a real
	// answer (all keys withdrawn).
	body, _ := json.Marshal(map[string]any{"keys": []json.RawMessage{json.RawMessage(`{"kty":"XYZ"}`), set(nil)}})
	if keys, err := parseJWKS(body); err != nil || len(keys) != 1 {
		t.Errorf("mixed set: %d keys, %v", len(keys), err)
	}
	if keys, err := parseJWKS([]byte(`{"keys":[]}`)); err != nil || len(keys) != 0 {
		t.Errorf("empty set: %d keys, %v", len(keys), err)
	}
}

func TestFits(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		key  verifyKey
		alg  string
		want bool
	}{
		{verifyKey{key: &rsaKey.PublicKey}, "RS256", true},
		{verifyKey{key: &rsaKey.PublicKey}, "PS512", true},
		{verifyKey{key: &rsaKey.PublicKey, alg: "RS256"}, "PS256", false},
		{verifyKey{key: &rsaKey.PublicKey}, "ES256", false},
		{verifyKey{key: &p256.PublicKey}, "ES256", true},
		{verifyKey{key: &p256.PublicKey}, "ES384", false},
		{verifyKey{key: &p384.PublicKey}, "ES384", true},
		{verifyKey{key: &p384.PublicKey}, "ES256", false},
		{verifyKey{key: edPub}, "EdDSA", true},
		{verifyKey{key: edPub}, "ES256", false},
		{verifyKey{key: edPub, alg: "Ed25519"}, "EdDSA", false},
	}
	for _, tt := range tests {
		if got := tt.key.fits(tt.alg); got != tt.want {
			t.Errorf("fits(%T alg=%q, %s) = %v; want %v", tt.key.key, tt.key.alg, tt.alg, got, tt.want)
		}
	}
}

func TestGetJSONLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat(" ", maxDocumentBytes+1)))
		case "/exact":
			w.Header().Set("Cache-Control", "max-age=600")
			_, _ = w.Write([]byte(strings.Repeat(" ", maxDocumentBytes)))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	if _, _, err := getJSON(ctx, srv.Client(), srv.URL+"/big"); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("body over 1 MiB: err = %v", err)
	}
	body, age, err := getJSON(ctx, srv.Client(), srv.URL+"/exact")
	if err != nil || len(body) != maxDocumentBytes || age != 10*time.Minute {
		t.Errorf("body of exactly 1 MiB: %d bytes, age %v, %v", len(body), age, err)
	}
	if _, _, err := getJSON(ctx, srv.Client(), srv.URL+"/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: err = %v", err)
	}
}

// Redirects are not followed: a discovery document or JWKS that moved
// is an error, not a fetch from wherever the redirect points.
func TestFetchDoesNotFollowRedirects(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("http://198.51.100.7/jwks", http.StatusFound))
	defer srv.Close()
	c := egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}})
	_, _, err := getJSON(context.Background(), c, srv.URL)
	if err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("redirect: err = %v", err)
	}
}

func TestPreparseHeaderRules(t *testing.T) {
	enc := func(s string) string { return b64.EncodeToString([]byte(s)) }
	payload := enc(`{"iss":"https://i","sub":"s","exp":1}`)
	tests := []struct {
		header string
		ok     bool
	}{
		{`{"alg":"RS256"}`, true},
		{`{"alg":"ES256","kid":"k","typ":"at+jwt"}`, true},
		{`{"alg":"EdDSA","typ":"application/at+JWT","x5t":"abc","nonce":"n"}`, true},
		{`{"alg":"RS256","typ":"Application/DPoP+JWT"}`, false},
		{`{"alg":"RS256","typ":"logout+jwt"}`, false},
		{`{"alg":"ES256","typ":"oauth-id-jag+jwt"}`, false},
		{`{"alg":"RS256","typ":7}`, false},
		{`{"alg":"RS256","alg":"RS256"}`, false},
		{`{"alg":"RS256","Alg":"none"}`, true}, // case-sensitive: "Alg" is some other, ignored member
		{`{"alg":"HS512"}`, false},
		{`{"alg":"RSA-OAEP"}`, false},
		{`{"alg":""}`, false},
		{`{"alg":null}`, false},
		{`{}`, false},
		{`null`, false},
		{`{"alg":"RS256","kid":""}`, false},
		{`{"alg":"RS256","crit":[]}`, false},
		{`{"alg":"RS256","zip":"DEF"}`, false},
		{`{"alg":"RS256","enc":"A256GCM"}`, false},
		{`{"alg":"RS256"} `, true},
		{`{"alg":"RS256"}x`, false},
	}
	for _, tt := range tests {
		rt, e := preparse(enc(tt.header)+"."+payload+".c2ln", 1<<14)
		if e == nil {
			e = checkBearerType(rt.header.Typ)
		}
		if (e == nil) != tt.ok {
			t.Errorf("header %s: err = %v; want ok = %v", tt.header, e, tt.ok)
		}
	}
}

func TestParseClaims(t *testing.T) {
	tests := []struct {
		payload string
		ok      bool
	}{
		{`{"iss":"i","sub":"s","exp":1}`, true},
		{`{"iss":"i","sub":"s","exp":1.5,"nbf":0,"iat":1e9}`, true},
		{`{"iss":"i","sub":"s","exp":253402300799}`, true},
		{`{"iss":"i","sub":"s","exp":253402300800}`, false},
		{`{"iss":"i","sub":"s","exp":-1}`, false},
		{`{"iss":"i","sub":"s","exp":null}`, false},
		{`{"iss":"i","sub":"s","exp":true}`, false},
		{`{"iss":"i","sub":"s"}`, false},
		{`{"iss":"i","sub":null,"exp":1}`, false},
		{`{"iss":"i","sub":"s","exp":1,"aud":null}`, false},
		{`{"iss":"i","sub":"s","exp":1,"aud":["a",1]}`, false},
		{`{"iss":"i","sub":"s","exp":1,"client_id":1}`, false},
		{`{"iss":"i","sub":"s","exp":1,"scp":[1]}`, false},
		{`{"iss":"i","sub":"s","exp":1,"scope":null}`, false},
		{`{"iss":"i","sub":"s","exp":1,"ISS":"other"}`, true},
		{`{"iss":"i","sub":"s","exp":1,"sub":"t"}`, false},
	}
	for _, tt := range tests {
		_, e := parseClaims([]byte(tt.payload))
		if (e == nil) != tt.ok {
			t.Errorf("payload %s: err = %v; want ok = %v", tt.payload, e, tt.ok)
		}
	}
	c, e := parseClaims([]byte(`{"iss":"i","sub":"s","exp":1,"scope":"a  b","scp":["c d","e"]}`))
	if e != nil || strings.Join(c.scopes, ",") != "a,b,c,d,e" {
		t.Errorf("scopes = %q, %v", c.scopes, e)
	}
}
