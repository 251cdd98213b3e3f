package vault_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/vault"
)

// secretKind stores one record of a kind, its secret sealed through the
// kind's helper in bindings.go, and reads it back.
type secretKind struct {
	kind  storage.SecretKind
	store func(ctx context.Context, st storage.Storage, v *vault.Vault, secret []byte) error
	load  func(ctx context.Context, st storage.Storage, v *vault.Vault) (storage.Sealed, []byte, error)
}

var sessionRow = storage.OAuthSession{ID: "session-1", StateHash: bytes.Repeat([]byte{1}, 32), ProviderID: "provider-1", Workload: "agent-1",
	User: "id:alice", Status: storage.SessionAuthorized, Request: []byte(`{}`)}

var connectionKey = storage.ConnectionKey{ProviderID: "provider-1", Workload: "agent-1", User: "id:bob"}

// secretKinds covers every storage.SecretKind.
var secretKinds = []secretKind{
	{storage.SecretPrincipal,
		func(ctx context.Context, st storage.Storage, v *vault.Vault, secret []byte) error {
			sealed, err := v.Seal(ctx, secret, vault.PrincipalSecretBinding("AKIDROUNDTRIP0001"))
			if err != nil {
				return err
			}
			return st.CreatePrincipal(ctx, storage.Principal{AccessKeyID: "AKIDROUNDTRIP0001", Secret: sealed, Role: storage.RoleRuntime})
		},
		func(ctx context.Context, st storage.Storage, v *vault.Vault) (storage.Sealed, []byte, error) {
			p, err := st.GetPrincipal(ctx, "AKIDROUNDTRIP0001")
			if err != nil {
				return storage.Sealed{}, nil, err
			}
			raw, err := v.Open(ctx, p.Secret, vault.PrincipalSecretBinding(p.AccessKeyID))
			return p.Secret, raw, err
		}},
	{storage.SecretOAuth2ClientSecret,
		func(ctx context.Context, st storage.Storage, v *vault.Vault, secret []byte) error {
			sealed, err := v.SealClientSecret(ctx, "provider-1", secret)
			if err != nil {
				return err
			}
			return st.CreateOAuth2Provider(ctx, storage.OAuth2Provider{ID: "provider-1", Name: "oauth", Vendor: "CustomOauth2",
				Config: []byte(`{}`), ClientSecret: sealed}, nil)
		},
		func(ctx context.Context, st storage.Storage, v *vault.Vault) (storage.Sealed, []byte, error) {
			p, err := st.GetOAuth2Provider(ctx, "oauth")
			if err != nil {
				return storage.Sealed{}, nil, err
			}
			raw, err := v.OpenClientSecret(ctx, p)
			return p.ClientSecret, raw, err
		}},
	{storage.SecretAPIKey,
		func(ctx context.Context, st storage.Storage, v *vault.Vault, secret []byte) error {
			sealed, err := v.SealAPIKey(ctx, "provider-2", secret)
			if err != nil {
				return err
			}
			return st.CreateAPIKeyProvider(ctx, storage.APIKeyProvider{ID: "provider-2", Name: "apikey", APIKey: sealed}, nil)
		},
		func(ctx context.Context, st storage.Storage, v *vault.Vault) (storage.Sealed, []byte, error) {
			p, err := st.GetAPIKeyProvider(ctx, "apikey")
			if err != nil {
				return storage.Sealed{}, nil, err
			}
			raw, err := v.OpenAPIKey(ctx, p)
			return p.APIKey, raw, err
		}},
	{storage.SecretServerKey,
		func(ctx context.Context, st storage.Storage, v *vault.Vault, secret []byte) error {
			sealed, err := v.Seal(ctx, secret, vault.ServerKeyBinding("test-purpose", "key-1"))
			if err != nil {
				return err
			}
			return st.CreateServerKey(ctx, storage.ServerKey{Purpose: "test-purpose", ID: "key-1", Key: sealed, CreatedAt: time.Now()})
		},
		func(ctx context.Context, st storage.Storage, v *vault.Vault) (storage.Sealed, []byte, error) {
			keys, err := st.ListServerKeys(ctx, "test-purpose")
			if err != nil || len(keys) != 1 {
				return storage.Sealed{}, nil, err
			}
			raw, err := v.Open(ctx, keys[0].Key, vault.ServerKeyBinding(keys[0].Purpose, keys[0].ID))
			return keys[0].Key, raw, err
		}},
	{storage.SecretCachedToken,
		func(ctx context.Context, st storage.Storage, v *vault.Vault, secret []byte) error {
			sealed, err := v.Seal(ctx, secret, vault.CachedTokenBinding("provider-1", "agent-1", "cache-key"))
			if err != nil {
				return err
			}
			return st.PutCachedToken(ctx, storage.CachedToken{ProviderID: "provider-1", Workload: "agent-1", Key: "cache-key", Token: sealed,
				ExpiresAt: time.Now().Add(time.Hour), CreatedAt: time.Now()})
		},
		func(ctx context.Context, st storage.Storage, v *vault.Vault) (storage.Sealed, []byte, error) {
			ct, err := st.GetCachedToken(ctx, "provider-1", "agent-1", "cache-key")
			if err != nil {
				return storage.Sealed{}, nil, err
			}
			raw, err := v.Open(ctx, ct.Token, vault.CachedTokenBinding(ct.ProviderID, ct.Workload, ct.Key))
			return ct.Token, raw, err
		}},
	{storage.SecretSession,
		func(ctx context.Context, st storage.Storage, v *vault.Vault, secret []byte) error {
			sess := sessionRow
			sealed, err := v.Seal(ctx, secret, vault.SessionBinding(sess.ID, sess.Workload, sess.User))
			if err != nil {
				return err
			}
			sess.Secrets, sess.CreatedAt, sess.UpdatedAt, sess.ExpiresAt = sealed, time.Now(), time.Now(), time.Now().Add(time.Hour)
			return st.CreateOAuthSession(ctx, sess)
		},
		func(ctx context.Context, st storage.Storage, v *vault.Vault) (storage.Sealed, []byte, error) {
			sess, err := st.GetOAuthSession(ctx, sessionRow.ID)
			if err != nil {
				return storage.Sealed{}, nil, err
			}
			raw, err := v.Open(ctx, sess.Secrets, vault.SessionBinding(sess.ID, sess.Workload, sess.User))
			return sess.Secrets, raw, err
		}},
	{storage.SecretConnection,
		func(ctx context.Context, st storage.Storage, v *vault.Vault, secret []byte) error {
			sealed, err := v.Seal(ctx, secret, vault.ConnectionBinding(connectionKey))
			if err != nil {
				return err
			}
			sess := sessionRow
			sess.ID, sess.StateHash, sess.User = "session-2", bytes.Repeat([]byte{2}, 32), connectionKey.User
			sess.CreatedAt, sess.UpdatedAt, sess.ExpiresAt = time.Now(), time.Now(), time.Now().Add(time.Hour)
			if err := st.CreateOAuthSession(ctx, sess); err != nil {
				return err
			}
			return st.CompleteOAuthSession(ctx, sess.ID, storage.Connection{ConnectionKey: connectionKey, Status: storage.ConnectionActive,
				Details: []byte(`{}`), Tokens: sealed, CreatedAt: time.Now(), UpdatedAt: time.Now(), LastUsedAt: time.Now()})
		},
		func(ctx context.Context, st storage.Storage, v *vault.Vault) (storage.Sealed, []byte, error) {
			conn, err := st.GetConnection(ctx, connectionKey)
			if err != nil {
				return storage.Sealed{}, nil, err
			}
			raw, err := v.Open(ctx, conn.Tokens, vault.ConnectionBinding(conn.ConnectionKey))
			return conn.Tokens, raw, err
		}},
}

// storeEveryKind stores one record of every kind, sealed by v, in a new
// SQLite store, and returns the store.
func storeEveryKind(t *testing.T, dir string, v *vault.Vault) storage.Storage {
	t.Helper()
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, filepath.Join(dir, "behalf.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// Cached tokens, sessions and connections belong to a workload.
	if err := st.CreateWorkloadIdentity(ctx, storage.WorkloadIdentity{Name: "agent-1", CreatedAt: time.Now(), UpdatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range secretKinds {
		if err := k.store(ctx, st, v, secretOf(k.kind)); err != nil {
			t.Fatalf("%s: store: %v", k.kind, err)
		}
	}
	return st
}

func secretOf(k storage.SecretKind) []byte { return []byte("secret of " + string(k)) }

// wantSealedUnder checks that every kind opens and is sealed under the key
// keyOf names for it.
func wantSealedUnder(t *testing.T, st storage.Storage, v *vault.Vault, keyOf func(storage.SecretKind) string) {
	t.Helper()
	for _, k := range secretKinds {
		sealed, raw, err := k.load(t.Context(), st, v)
		switch {
		case err != nil:
			t.Errorf("%s: open: %v", k.kind, err)
		case sealed.KeyID != keyOf(k.kind):
			t.Errorf("%s: sealed under %s, want %s", k.kind, sealed.KeyID, keyOf(k.kind))
		case !bytes.Equal(raw, secretOf(k.kind)):
			t.Errorf("%s: opened %q", k.kind, raw)
		}
	}
}

func newKeyring(t *testing.T, dir string) *vault.LocalKeyring {
	t.Helper()
	kr, err := vault.OpenLocalKeyring(filepath.Join(dir, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// newKeyringWithCMK is newKeyring with a customer key created.
func newKeyringWithCMK(t *testing.T, dir string) (kr *vault.LocalKeyring, cmk string) {
	t.Helper()
	kr = newKeyring(t, dir)
	cmk, err := kr.Create()
	if err != nil {
		t.Fatal(err)
	}
	return kr, cmk
}

// Every kind of secret, sealed through its helper in bindings.go, survives
// a new key (SetTokenVaultCMK) and the re-wrap that follows: rotation maps
// each stored reference back to the binding the helper built, and each
// opens afterwards, the token vault's under the new key and behalf's own
// (principals' secrets, server keys) still under the service key.
func TestEverySecretKindSurvivesRotation(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	kr := newKeyring(t, dir)
	v, err := vault.New(ctx, kr, kr.ServiceKeyID())
	if err != nil {
		t.Fatal(err)
	}
	st := storeEveryKind(t, dir, v)
	newKey, err := kr.Create()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetCurrent(ctx, newKey); err != nil {
		t.Fatal(err)
	}
	res, err := v.RewrapStale(ctx, st, 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rewrapped != len(secretKinds)-2 || len(res.Skipped) > 0 {
		t.Errorf("re-wrapped %d secrets, skipped %v; want %d re-wrapped", res.Rewrapped, res.Skipped, len(secretKinds)-2)
	}
	wantSealedUnder(t, st, v, vault.Targets(kr.ServiceKeyID(), newKey))
}

// behalf's own secrets are sealed under the service key whatever the token
// vault's key is, so they open when that key is deleted; the token vault's
// secrets then do not open, nothing of theirs can be sealed or re-wrapped,
// and the key checks as gone.
func TestBehalfSecretsOutliveTheVaultKey(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	kr, cmk := newKeyringWithCMK(t, dir)
	v, err := vault.New(ctx, kr, kr.ServiceKeyID())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetCurrent(ctx, cmk); err != nil {
		t.Fatal(err)
	}
	st := storeEveryKind(t, dir, v)
	wantSealedUnder(t, st, v, vault.Targets(kr.ServiceKeyID(), cmk))

	behalftest.RemoveVaultKey(t, filepath.Join(dir, "keyring.json"), cmk)
	// This process's keyring still holds a copy; checking reads the file.
	if err := vault.NewKeys(kr).Check(ctx, cmk); !errors.Is(err, vault.ErrKeyGone) {
		t.Fatalf("Check(removed key) = %v, want ErrKeyGone", err)
	}
	if err := kr.Check(ctx, kr.ServiceKeyID()); err != nil {
		t.Fatalf("Check(service key) = %v", err)
	}

	// A process started after the removal, as a restarted server.
	kr2, err := vault.LoadLocalKeyring(filepath.Join(dir, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := vault.New(ctx, kr2, kr2.ServiceKeyID())
	if err != nil {
		t.Fatal(err)
	}
	if err := v2.SetCurrent(ctx, cmk); !errors.Is(err, vault.ErrUnknownKey) || v2.CurrentKeyID() != cmk {
		t.Fatalf("SetCurrent(removed key) = %v, current %s; want ErrUnknownKey and the key current all the same", err, v2.CurrentKeyID())
	}
	for _, k := range secretKinds {
		_, _, err := k.load(ctx, st, v2)
		switch {
		case vault.ServiceSealed(k.kind) && err != nil:
			t.Errorf("%s: behalf's own secret does not open: %v", k.kind, err)
		case !vault.ServiceSealed(k.kind) && !errors.Is(err, vault.ErrUnknownKey):
			t.Errorf("%s: opened under a removed key: %v", k.kind, err)
		}
	}
	if _, err := v2.Seal(ctx, []byte("k"), vault.ServerKeyBinding("p", "2")); err != nil {
		t.Errorf("sealing a server key: %v", err)
	}
	if _, err := v2.SealAPIKey(ctx, "provider-9", []byte("k")); !errors.Is(err, vault.ErrUnknownKey) {
		t.Errorf("sealing an API key under a removed key: %v, want ErrUnknownKey", err)
	}
	if res, err := v2.RewrapStale(ctx, st, 10); err == nil || res.Rewrapped+len(res.Skipped) != 0 {
		t.Errorf("RewrapStale under a removed key = %+v, %v; want an error and nothing touched", res, err)
	}

	// Lost secrets (what the reset leaves) say so.
	lost := storage.Sealed{KeyID: cmk}
	if _, err := v2.OpenAPIKey(ctx, storage.APIKeyProvider{ID: "provider-2", APIKey: lost}); !errors.Is(err, vault.ErrSecretLost) {
		t.Errorf("opening a lost API key: %v, want ErrSecretLost", err)
	}

	// Back under the service key, the vault seals and re-wraps again.
	if err := v2.SetCurrent(ctx, kr2.ServiceKeyID()); err != nil {
		t.Fatal(err)
	}
	if _, err := v2.SealAPIKey(ctx, "provider-9", []byte("k")); err != nil {
		t.Errorf("sealing under the service key: %v", err)
	}
}

// Records of behalf's own kinds sealed under the token vault's key (as
// before they were the service key's alone) move back under the service
// key with the next re-wrap; the token vault's stay where they are.
func TestRewrapMovesBehalfSecretsToTheServiceKey(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	kr, cmk := newKeyringWithCMK(t, dir)
	// A vault whose service key is cmk seals every kind under it.
	legacy, err := vault.New(ctx, kr, cmk)
	if err != nil {
		t.Fatal(err)
	}
	st := storeEveryKind(t, dir, legacy)
	v, err := vault.New(ctx, kr, kr.ServiceKeyID())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetCurrent(ctx, cmk); err != nil {
		t.Fatal(err)
	}
	res, err := v.RewrapStale(ctx, st, 1)
	if err != nil || res.Rewrapped != 2 || len(res.Skipped) != 0 {
		t.Fatalf("RewrapStale = %+v, %v; want the 2 kinds of behalf's own re-wrapped", res, err)
	}
	wantSealedUnder(t, st, v, vault.Targets(kr.ServiceKeyID(), cmk))
}
