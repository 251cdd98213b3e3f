package authserver

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/vault"
)

// TestSigningKeyRotation: a new key signs after the rotation period; the
// old one verifies its tokens until they have all expired, then leaves
// the key set; a second replica sharing the storage picks up a key the
// first made.
func TestSigningKeyRotation(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st, v := storeAndVault(t, clock.Now)
	replica := func() *Server {
		cfg := config.AuthorizationServer{Issuer: "https://as.example", AccessTokenTTL: 5 * time.Minute, SigningKeyRotation: 24 * time.Hour}
		s := &Server{cfg: cfg, now: clock.Now, keys: newSigningKeys(Options{Config: cfg, Store: st, Vault: v, Now: clock.Now})}
		if err := s.keys.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := replica(), replica()
	g := grant{user: "jwt:https://idp.example#alice", clientID: "app", resource: "https://mcp.example/mcp", scopes: []string{"read"}}
	old, _, err := a.mint(g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.parseAccessToken(t.Context(), old); err != nil {
		t.Fatalf("replica b refuses a's token: %v", err)
	}
	clock.Advance(24 * time.Hour)
	if err := a.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	fresh, _, err := a.mint(g)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.keys.JWKS().Keys) != 2 || kid(t, fresh) == kid(t, old) {
		t.Fatalf("after rotation: %d keys, the new token's key %s", len(a.keys.JWKS().Keys), kid(t, fresh))
	}
	// b has not rotated: it reloads for the unknown key.
	clock.Advance(11 * time.Second)
	if _, err := b.parseAccessToken(t.Context(), fresh); err != nil {
		t.Errorf("replica b refuses a token of a's new key: %v", err)
	}
	clock.Advance(10 * time.Minute)
	if err := a.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if keys := a.keys.JWKS().Keys; len(keys) != 1 || keys[0].KeyID != kid(t, fresh) {
		t.Errorf("the retired key is still there: %v", keys)
	}
	if _, err := a.parseAccessToken(t.Context(), old); err == nil {
		t.Error("a token of the retired key still verifies")
	}
	if now, _, err := a.mint(g); err != nil || kid(t, now) != kid(t, fresh) {
		t.Errorf("after retirement the current key signs: %v", err)
	}
}

func kid(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// storeAndVault is a SQLite store and a vault with a local keyring, in a
// temporary directory.
func storeAndVault(tb testing.TB, now func() time.Time) (*sqlstore.Store, *vault.Vault) {
	tb.Helper()
	dir := tb.TempDir()
	st, err := sqlstore.Open(tb.Context(), filepath.Join(dir, "db"), nil, sqlstore.Now(now))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	kr, err := vault.OpenLocalKeyring(filepath.Join(dir, "keyring.json"))
	if err != nil {
		tb.Fatal(err)
	}
	v, err := vault.New(tb.Context(), kr, kr.ServiceKeyID())
	if err != nil {
		tb.Fatal(err)
	}
	return st, v
}
