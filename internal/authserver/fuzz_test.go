package authserver

import (
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/config"
)

// FuzzIDTokenNonce: reading a verified ID token's nonce never panics, and
// only a compact JWS has one.
func FuzzIDTokenNonce(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.eyJub25jZSI6Im4ifQ.sig", "..", "a.eyJub25jZSI6MX0.c", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		nonce, err := idTokenNonce(token)
		if err == nil && nonce != "" && len(strings.Split(token, ".")) != 3 {
			t.Errorf("%q: nonce %q from a token that is not a compact JWS", token, nonce)
		}
	})
}

// FuzzParseAccessToken: whatever a client presents at introspection,
// revocation or the gateway, parsing never panics, and only a token this
// server signed, altered in no byte that counts, is accepted.
func FuzzParseAccessToken(f *testing.F) {
	st, v := storeAndVault(f, time.Now)
	cfg := config.AuthorizationServer{Issuer: "https://as.example", AccessTokenTTL: time.Hour, SigningKeyRotation: 24 * time.Hour}
	s := &Server{cfg: cfg, now: time.Now, keys: newSigningKeys(Options{Config: cfg, Store: st, Vault: v, Now: time.Now})}
	if err := s.keys.Rotate(f.Context()); err != nil {
		f.Fatal(err)
	}
	valid, _, err := s.mint(grant{user: "jwt:https://idp.example#alice", clientID: "app", resource: "https://mcp.example/mcp", scopes: []string{"a"}})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{valid, "", "a.b.c", valid + "x", strings.Replace(valid, ".", "..", 1), "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2FzLmV4YW1wbGUifQ."} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.parseAccessToken(t.Context(), token)
		if err == nil && (c.Issuer != "https://as.example" || c.Subject != "jwt:https://idp.example#alice") {
			t.Errorf("%q accepted with claims %+v", token, c)
		}
	})
}
