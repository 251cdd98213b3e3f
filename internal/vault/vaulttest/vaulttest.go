// Package vaulttest is the conformance suite of vault.Backend: every
// key-management backend (the local keyring, AWS KMS, PKCS#11) runs it
// against a real instance, so that the vault behaves the same over each.
//
//	vaulttest.Run(t, func(t *testing.T) vaulttest.Fixture {
//		return vaulttest.Fixture{Backend: b, Keys: [2]string{k1, k2}, Missing: id}
//	})
package vaulttest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/vault"
)

// Fixture is a backend under test and keys of it.
type Fixture struct {
	Backend vault.Backend
	// Keys are two distinct keys that wrap data keys.
	Keys [2]string
	// Missing is an id the backend owns that names no key.
	Missing string
	// Disable and Enable, when the backend has such states (AWS KMS
	// DisableKey, EnableKey), make a key unusable and usable again.
	Disable, Enable func(t *testing.T, id string)
	// Signers are asymmetric keys that sign: P-256 ECDSA or RSA keys.
	Signers []string
}

// Run runs the suite; newFixture makes a fresh fixture for each subtest,
// which may change its keys' states.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	t.Run("SealOpen", func(t *testing.T) { sealOpen(t, newFixture(t)) })
	t.Run("BindingRefused", func(t *testing.T) { bindingRefused(t, newFixture(t)) })
	t.Run("TamperingRefused", func(t *testing.T) { tamperingRefused(t, newFixture(t)) })
	t.Run("UnknownKey", func(t *testing.T) { unknownKey(t, newFixture(t)) })
	t.Run("Check", func(t *testing.T) { check(t, newFixture(t)) })
	t.Run("Rewrap", func(t *testing.T) { rewrap(t, newFixture(t)) })
	t.Run("Signer", func(t *testing.T) { signer(t, newFixture(t)) })
	t.Run("Concurrent", func(t *testing.T) { concurrent(t, newFixture(t)) })
}

func newVault(t *testing.T, keys *vault.Keys, current string) *vault.Vault {
	t.Helper()
	v, err := vault.New(t.Context(), keys, current)
	if err != nil {
		t.Fatalf("vault over %s: %v", current, err)
	}
	return v
}

func seal(t *testing.T, v *vault.Vault, plaintext []byte, b vault.Binding) storage.Sealed {
	t.Helper()
	s, err := v.Seal(t.Context(), plaintext, b)
	if err != nil {
		t.Fatalf("seal under %s: %v", v.CurrentKeyID(), err)
	}
	return s
}

func mustOpen(t *testing.T, v *vault.Vault, s storage.Sealed, b vault.Binding, want []byte) {
	t.Helper()
	got, err := v.Open(t.Context(), s, b)
	if err != nil {
		t.Fatalf("open a record under %s: %v", s.KeyID, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("open under %s: got %d bytes that differ from the %d sealed", s.KeyID, len(got), len(want))
	}
}

var userToken = vault.Binding{Kind: storage.SecretConnection, Owner: "provider-1", Workload: "agent-1", User: "alice@example.com"}

func sealOpen(t *testing.T, f Fixture) {
	v := newVault(t, vault.NewKeys(f.Backend), f.Keys[0])
	for _, pt := range [][]byte{[]byte("sk-live-0123456789"), {}, bytes.Repeat([]byte{0xa5}, 70000)} {
		s := seal(t, v, pt, userToken)
		if s.KeyID != f.Keys[0] {
			t.Fatalf("sealed under %q, want %q", s.KeyID, f.Keys[0])
		}
		if len(pt) > 4 && bytes.Contains(s.Blob, pt) {
			t.Fatal("the plaintext is visible in the sealed blob")
		}
		mustOpen(t, v, s, userToken, pt)
	}
	a, b := seal(t, v, []byte("same"), userToken), seal(t, v, []byte("same"), userToken)
	if bytes.Equal(a.Blob, b.Blob) {
		t.Fatal("two seals of one secret are equal")
	}
}

func bindingRefused(t *testing.T, f Fixture) {
	v := newVault(t, vault.NewKeys(f.Backend), f.Keys[0])
	s := seal(t, v, []byte("token"), userToken)
	for name, b := range map[string]vault.Binding{
		"kind":     {Kind: storage.SecretCachedToken, Owner: userToken.Owner, Workload: userToken.Workload, User: userToken.User},
		"owner":    {Kind: userToken.Kind, Owner: "provider-2", Workload: userToken.Workload, User: userToken.User},
		"workload": {Kind: userToken.Kind, Owner: userToken.Owner, Workload: "agent-2", User: userToken.User},
		"user":     {Kind: userToken.Kind, Owner: userToken.Owner, Workload: userToken.Workload, User: "mallory@example.com"},
	} {
		pt, err := v.Open(t.Context(), s, b)
		if !errors.Is(err, vault.ErrDecrypt) || errors.Is(err, vault.ErrKeyUnavailable) || pt != nil {
			t.Errorf("opened with another %s: %q, %v; want vault.ErrDecrypt", name, pt, err)
		}
	}
}

// wrappedDEKEnd is the offset just past the wrapped data key in an
// envelope: "bhv1" | u8 len(keyID) | keyID | u16 len(wrappedDEK) |
// wrappedDEK | nonce | ciphertext.
func wrappedDEKEnd(t *testing.T, blob []byte) int {
	t.Helper()
	i := 4 + 1 + int(blob[4])
	if len(blob) < i+2 {
		t.Fatalf("envelope of %d bytes", len(blob))
	}
	return i + 2 + int(binary.BigEndian.Uint16(blob[i:]))
}

func tamperingRefused(t *testing.T, f Fixture) {
	v := newVault(t, vault.NewKeys(f.Backend), f.Keys[0])
	s := seal(t, v, []byte("token"), userToken)
	flip := func(i int) storage.Sealed {
		blob := bytes.Clone(s.Blob)
		blob[i] ^= 0x01
		return storage.Sealed{KeyID: s.KeyID, Blob: blob}
	}
	for name, bad := range map[string]storage.Sealed{
		"wrapped data key": flip(wrappedDEKEnd(t, s.Blob) - 1),
		"ciphertext":       flip(len(s.Blob) - 1),
		"key id column":    {KeyID: f.Keys[1], Blob: s.Blob},
		"truncated":        {KeyID: s.KeyID, Blob: s.Blob[:wrappedDEKEnd(t, s.Blob)+8]},
	} {
		pt, err := v.Open(t.Context(), bad, userToken)
		if !errors.Is(err, vault.ErrDecrypt) || pt != nil {
			t.Errorf("tampered %s: %q, %v; want vault.ErrDecrypt", name, pt, err)
		}
	}
}

// reKey returns s's envelope naming key id instead of its own.
func reKey(t *testing.T, s storage.Sealed, id string) storage.Sealed {
	if len(id) == 0 || len(id) > 255 {
		t.Fatalf("key id %q does not fit an envelope", id)
	}
	n := 4 + 1 + int(s.Blob[4])
	blob := append([]byte("bhv1"), byte(len(id))) //nolint:gosec // G115: checked above
	blob = append(blob, id...)
	blob = append(blob, s.Blob[n:]...)
	return storage.Sealed{KeyID: id, Blob: blob}
}

func unknownKey(t *testing.T, f Fixture) {
	ctx := t.Context()
	for _, id := range append(f.Keys[:], f.Missing) {
		if !f.Backend.Owns(id) {
			t.Errorf("%s does not own its id %q", f.Backend.Name(), id)
		}
	}
	for _, id := range []string{"", "local", "arn:aws:iam::111122223333:role/x", "pkcs11", "not a key id"} {
		if f.Backend.Owns(id) {
			t.Errorf("%s owns %q", f.Backend.Name(), id)
		}
	}
	if err := f.Backend.Check(ctx, f.Missing); !errors.Is(err, vault.ErrKeyGone) {
		t.Errorf("Check(missing key) = %v, want vault.ErrKeyGone", err)
	}
	v := newVault(t, vault.NewKeys(f.Backend), f.Keys[0])
	orphan := reKey(t, seal(t, v, []byte("token"), userToken), f.Missing)
	pt, err := v.Open(ctx, orphan, userToken)
	refused := errors.Is(err, vault.ErrUnknownKey) || errors.Is(err, vault.ErrKeyGone) || errors.Is(err, vault.ErrKeyUnavailable) || errors.Is(err, vault.ErrDecrypt)
	if pt != nil || !refused {
		t.Errorf("open a record under a missing key: %q, %v", pt, err)
	}
	if _, err := vault.NewKeys(f.Backend).Key(ctx, "arn:aws:sts::111122223333:assumed-role/x"); !errors.Is(err, vault.ErrUnknownKey) {
		t.Errorf("Key(an id no backend owns) = %v, want vault.ErrUnknownKey", err)
	}
}

func check(t *testing.T, f Fixture) {
	ctx := t.Context()
	for _, id := range f.Keys {
		if err := f.Backend.Check(ctx, id); err != nil {
			t.Fatalf("Check(%s) = %v", id, err)
		}
	}
	if f.Disable == nil {
		return
	}
	keys := vault.NewKeys(f.Backend)
	v := newVault(t, keys, f.Keys[0])
	under0 := seal(t, v, []byte("under key 0"), userToken)
	if err := v.SetCurrent(ctx, f.Keys[1]); err != nil {
		t.Fatal(err)
	}
	under1 := seal(t, v, []byte("under key 1"), userToken)

	f.Disable(t, f.Keys[0])
	if err := f.Backend.Check(ctx, f.Keys[0]); !errors.Is(err, vault.ErrKeyUnavailable) {
		t.Fatalf("Check(disabled key) = %v, want vault.ErrKeyUnavailable", err)
	}
	if pt, err := v.Open(ctx, under0, userToken); !errors.Is(err, vault.ErrKeyUnavailable) || errors.Is(err, vault.ErrDecrypt) || pt != nil {
		t.Fatalf("open under a disabled key: %q, %v; want vault.ErrKeyUnavailable and not vault.ErrDecrypt", pt, err)
	}
	// Records under other keys are unaffected.
	mustOpen(t, v, under1, userToken, []byte("under key 1"))
	if err := v.SetCurrent(ctx, f.Keys[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Seal(ctx, []byte("x"), userToken); !errors.Is(err, vault.ErrKeyUnavailable) {
		t.Fatalf("seal under a disabled key: %v, want vault.ErrKeyUnavailable", err)
	}

	f.Enable(t, f.Keys[0])
	if err := f.Backend.Check(ctx, f.Keys[0]); err != nil {
		t.Fatalf("Check(enabled again) = %v", err)
	}
	mustOpen(t, v, under0, userToken, []byte("under key 0"))
}

// rewrap moves records from one key to the other through the vault's
// RewrapStale, by way of a key of a local keyring when the backend is
// another: a rotation between backends.
func rewrap(t *testing.T, f Fixture) {
	ctx := t.Context()
	backends := []vault.Backend{f.Backend}
	path := []string{f.Keys[0]}
	if f.Backend.Name() != "local" {
		kr, err := vault.OpenLocalKeyring(filepath.Join(t.TempDir(), "keyring.json"))
		if err != nil {
			t.Fatal(err)
		}
		backends = append(backends, kr)
		path = append(path, kr.ServiceKeyID())
	}
	path = append(path, f.Keys[1])
	r := newRecords(t, newVault(t, vault.NewKeys(backends...), path[0]))
	for _, to := range path[1:] {
		r.move(t, to)
	}
	if f.Disable != nil {
		// A key that is unavailable defers its records, which are asked
		// for once, and re-wrapped once it is back.
		f.Disable(t, f.Keys[1])
		if err := r.v.SetCurrent(ctx, f.Keys[0]); err != nil {
			t.Fatal(err)
		}
		res, err := r.v.RewrapStale(ctx, r.st, 5)
		if err != nil || res.Rewrapped != 0 || len(res.Skipped) != 0 || res.Deferred != records || len(res.Unavailable) != 1 ||
			!errors.Is(res.Unavailable[f.Keys[1]], vault.ErrKeyUnavailable) {
			t.Fatalf("re-wrap from a disabled key: %+v, %v; want %d deferred", res, err, records)
		}
		f.Enable(t, f.Keys[1])
		r.move(t, f.Keys[0])
	}
	r.check(t)
}

// store is a store of API key providers whose keys the vault sealed (a
// kind the token vault's key seals, which SetCurrent moves).
type store struct {
	v  *vault.Vault
	st storage.Storage
}

// records is how many providers a store holds.
const records = 12

func recordID(i int) string     { return fmt.Sprintf("provider-%02d", i) }
func recordSecret(i int) []byte { return fmt.Appendf(nil, "secret-%02d", i) }

func newRecords(t *testing.T, v *vault.Vault) store {
	t.Helper()
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "behalf.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now()
	for i := range records {
		sealed := seal(t, v, recordSecret(i), vault.APIKeyBinding(recordID(i)))
		if err := st.CreateAPIKeyProvider(ctx, storage.APIKeyProvider{ID: recordID(i), Name: recordID(i), APIKey: sealed, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return store{v: v, st: st}
}

// move makes to the current key and re-wraps every record under it.
func (r store) move(t *testing.T, to string) {
	t.Helper()
	if err := r.v.SetCurrent(t.Context(), to); err != nil {
		t.Fatal(err)
	}
	// A batch of 5 walks several batches.
	res, err := r.v.RewrapStale(t.Context(), r.st, 5)
	if err != nil || res.Rewrapped != records || len(res.Skipped) != 0 || res.Deferred != 0 {
		t.Fatalf("re-wrap to %s: %+v, %v; want %d re-wrapped", to, res, err, records)
	}
}

// check finds every record under the current key, and opening.
func (r store) check(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	stale, err := r.st.ListStaleSecrets(ctx, r.v.Targets(), 0)
	if err != nil || len(stale) != 0 {
		t.Fatalf("stale after the re-wrap: %d, %v", len(stale), err)
	}
	for i := range records {
		p, err := r.st.GetAPIKeyProvider(ctx, recordID(i))
		if err != nil {
			t.Fatal(err)
		}
		if p.APIKey.KeyID != r.v.CurrentKeyID() {
			t.Fatalf("%s is under %s, want %s", recordID(i), p.APIKey.KeyID, r.v.CurrentKeyID())
		}
		mustOpen(t, r.v, p.APIKey, vault.APIKeyBinding(recordID(i)), recordSecret(i))
	}
}

func signer(t *testing.T, f Fixture) {
	ctx := t.Context()
	keys := vault.NewKeys(f.Backend)
	if _, err := keys.Signer(ctx, f.Keys[0]); !errors.Is(err, vault.ErrNotSigningKey) {
		t.Errorf("Signer(a wrapping key) = %v, want vault.ErrNotSigningKey", err)
	}
	if s, err := keys.Signer(ctx, f.Missing); err == nil {
		t.Errorf("Signer(missing key) = %v", s)
	}
	for _, id := range f.Signers {
		s, err := keys.Signer(ctx, id)
		if err != nil {
			t.Fatalf("Signer(%s): %v", id, err)
		}
		signs(t, id, s)
	}
}

// signs checks s's signatures with its public key: ES256 for an ECDSA
// key, RS256 and PS256 for an RSA key.
func signs(t *testing.T, id string, s crypto.Signer) {
	digest := sha256.Sum256([]byte("header.payload"))
	switch pub := s.Public().(type) {
	case *ecdsa.PublicKey:
		sig, err := s.Sign(nil, digest[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Errorf("%s: ES256 signature does not verify: %v", id, err)
		}
	case *rsa.PublicKey:
		sig, err := s.Sign(nil, digest[:], crypto.SHA256)
		if err != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
			t.Errorf("%s: RS256 signature does not verify: %v", id, err)
		}
		sig, err = s.Sign(nil, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
		// Verified with any salt length: AWS KMS salts with the
		// digest's length (RFC 7518 §3.5), local-kms with the
		// longest salt that fits.
		if err != nil || rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) != nil {
			t.Errorf("%s: PS256 signature does not verify: %v", id, err)
		}
	default:
		t.Errorf("%s: a %T public key", id, pub)
	}
	// A signature is over the digest it was asked for.
	sig, err := s.Sign(nil, digest[:], crypto.SHA256)
	other := sha256.Sum256([]byte("header.other"))
	if err != nil || verify(s.Public(), other[:], sig) {
		t.Errorf("%s: a signature verifies over another digest (%v)", id, err)
	}
	if _, err := s.Sign(nil, digest[:16], crypto.SHA256); err == nil {
		t.Errorf("%s: signed a digest of the wrong length", id)
	}
}

func verify(pub crypto.PublicKey, digest, sig []byte) bool {
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) == nil
	}
	return false
}

func concurrent(t *testing.T, f Fixture) {
	v := newVault(t, vault.NewKeys(f.Backend), f.Keys[0])
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				b := vault.Binding{Kind: storage.SecretAPIKey, Owner: fmt.Sprintf("provider-%d-%d", g, i)}
				pt := fmt.Appendf(nil, "key-%d-%d", g, i)
				s, err := v.Seal(context.WithoutCancel(t.Context()), pt, b)
				if err == nil {
					var got []byte
					got, err = v.Open(t.Context(), s, b)
					if err == nil && !bytes.Equal(got, pt) {
						err = errors.New("opened another secret")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
