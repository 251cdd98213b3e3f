package vault

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
)

func newTestVault(t *testing.T) (*Vault, *LocalKeyring) {
	t.Helper()
	kr, err := OpenLocalKeyring(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(context.Background(), kr, kr.ServiceKeyID())
	if err != nil {
		t.Fatal(err)
	}
	return v, kr
}

var apiKeyBinding = Binding{Kind: storage.SecretAPIKey, Owner: "provider-1"}

func TestSealOpenRoundTrip(t *testing.T) {
	ctx := context.Background()
	v, _ := newTestVault(t)
	for _, pt := range [][]byte{[]byte("sk-live-123"), {}, bytes.Repeat([]byte{0xff}, 70000)} {
		s, err := v.Seal(ctx, pt, apiKeyBinding)
		if err != nil {
			t.Fatal(err)
		}
		if s.KeyID != v.CurrentKeyID() {
			t.Fatalf("key id %q, want %q", s.KeyID, v.CurrentKeyID())
		}
		if len(pt) > 4 && bytes.Contains(s.Blob, pt) {
			t.Fatal("plaintext visible in the sealed blob")
		}
		got, err := v.Open(ctx, s, apiKeyBinding)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatal("round trip changed the plaintext")
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	ctx := context.Background()
	v, _ := newTestVault(t)
	a, _ := v.Seal(ctx, []byte("same"), apiKeyBinding)
	b, _ := v.Seal(ctx, []byte("same"), apiKeyBinding)
	if bytes.Equal(a.Blob, b.Blob) {
		t.Fatal("two seals of the same secret produced the same ciphertext")
	}
}

// A ciphertext moved to another record must not open there.
func TestBindingIsEnforced(t *testing.T) {
	ctx := context.Background()
	v, _ := newTestVault(t)
	orig := Binding{Kind: storage.SecretKind("user-token"), Owner: "p1", Workload: "w1", User: "u1"}
	s, err := v.Seal(ctx, []byte("token"), orig)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]Binding{
		"kind":     {Kind: storage.SecretAPIKey, Owner: "p1", Workload: "w1", User: "u1"},
		"owner":    {Kind: orig.Kind, Owner: "p2", Workload: "w1", User: "u1"},
		"workload": {Kind: orig.Kind, Owner: "p1", Workload: "w2", User: "u1"},
		"user":     {Kind: orig.Kind, Owner: "p1", Workload: "w1", User: "u2"},
		// Length prefixes keep field boundaries: "w1"+"u1" ≠ "w"+"1u1".
		"shifted": {Kind: orig.Kind, Owner: "p1", Workload: "w", User: "1u1"},
	} {
		if _, err := v.Open(ctx, s, b); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: Open = %v, want ErrDecrypt", name, err)
		}
	}
}

func TestTamperingIsDetected(t *testing.T) {
	ctx := context.Background()
	v, _ := newTestVault(t)
	s, _ := v.Seal(ctx, []byte("secret value"), apiKeyBinding)
	for i := range s.Blob {
		bad := storage.Sealed{KeyID: s.KeyID, Blob: bytes.Clone(s.Blob)}
		bad.Blob[i] ^= 0x01
		if _, err := v.Open(ctx, bad, apiKeyBinding); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	if _, err := v.Open(ctx, storage.Sealed{KeyID: "local:other", Blob: s.Blob}, apiKeyBinding); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("mismatched key id column: %v", err)
	}
	if _, err := v.Open(ctx, storage.Sealed{KeyID: s.KeyID, Blob: s.Blob[:len(s.Blob)-1]}, apiKeyBinding); err == nil {
		t.Fatal("truncation went unnoticed")
	}
}

func TestRotationKeepsOldRecordsReadable(t *testing.T) {
	ctx := context.Background()
	v, kr := newTestVault(t)
	old, _ := v.Seal(ctx, []byte("before rotation"), apiKeyBinding)

	next, err := kr.Create()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetCurrent(ctx, next); err != nil {
		t.Fatal(err)
	}
	fresh, _ := v.Seal(ctx, []byte("after rotation"), apiKeyBinding)
	if fresh.KeyID != next || old.KeyID == next {
		t.Fatalf("key ids: old %q fresh %q next %q", old.KeyID, fresh.KeyID, next)
	}
	if got, err := v.Open(ctx, old, apiKeyBinding); err != nil || string(got) != "before rotation" {
		t.Fatalf("old record after rotation: %q, %v", got, err)
	}

	rewrapped, err := v.Rewrap(ctx, old, apiKeyBinding)
	if err != nil {
		t.Fatal(err)
	}
	if rewrapped.KeyID != next {
		t.Fatalf("rewrapped under %q, want %q", rewrapped.KeyID, next)
	}
	if got, err := v.Open(ctx, rewrapped, apiKeyBinding); err != nil || string(got) != "before rotation" {
		t.Fatalf("rewrapped record: %q, %v", got, err)
	}
	if _, err := v.Rewrap(ctx, old, Binding{Kind: storage.SecretAPIKey, Owner: "someone-else"}); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("rewrap under the wrong binding: %v", err)
	}
}

func TestUnknownKey(t *testing.T) {
	ctx := context.Background()
	v, _ := newTestVault(t)
	other, _ := newTestVault(t)
	s, _ := other.Seal(ctx, []byte("x"), apiKeyBinding)
	if _, err := v.Open(ctx, s, apiKeyBinding); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open with a foreign key: %v, want ErrUnknownKey", err)
	}
	if err := v.SetCurrent(ctx, "local:00000000-0000-0000-0000-000000000000"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("SetCurrent(unknown) = %v", err)
	}
}

func TestKeyringFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "keyring.json")
	a, err := OpenLocalKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring mode %04o, want 0600", fi.Mode().Perm())
	}

	// A second process sharing the file sees keys the first one adds.
	b, err := OpenLocalKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.ServiceKeyID() != b.ServiceKeyID() {
		t.Fatal("reopening created a new service key")
	}
	id, err := a.Create()
	if err != nil {
		t.Fatal(err)
	}
	b.lastLoad = b.lastLoad.Add(-2e9) // let b's reload limiter pass
	if !b.Has(context.Background(), id) {
		t.Fatal("second keyring did not pick up the new key")
	}

	if err := os.Chmod(path, 0o644); err != nil { //nolint:gosec // G302: the world-readable keyring the test expects refused
		t.Fatal(err)
	}
	if _, err := OpenLocalKeyring(path); err == nil {
		t.Fatal("a world-readable keyring was accepted")
	}
}

func TestKeyringConcurrentCreation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kr, err := OpenLocalKeyring(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = kr.ServiceKeyID()
		}()
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("concurrent openers disagree on the service key: %q vs %q", id, ids[0])
		}
	}
}

func TestKeyringRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":      "{",
		"no service":    `{"keys":[{"id":"6f1c2d9e-6b1a-4c1e-9a7e-2b0f3c4d5e6f","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		"short key":     `{"keys":[{"id":"6f1c2d9e-6b1a-4c1e-9a7e-2b0f3c4d5e6f","service":true,"material":"AAAA"}]}`,
		"bad id":        `{"keys":[{"id":"x","service":true,"material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		"two services":  `{"keys":[{"id":"6f1c2d9e-6b1a-4c1e-9a7e-2b0f3c4d5e6f","service":true,"material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},{"id":"7f1c2d9e-6b1a-4c1e-9a7e-2b0f3c4d5e6f","service":true,"material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		"duplicate key": `{"keys":[{"id":"6f1c2d9e-6b1a-4c1e-9a7e-2b0f3c4d5e6f","service":true,"material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},{"id":"6f1c2d9e-6b1a-4c1e-9a7e-2b0f3c4d5e6f","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenLocalKeyring(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseEnvelope(f *testing.F) {
	v, err := New(context.Background(), mustKeyring(f), "")
	if err == nil || v != nil {
		f.Fatal("New accepted an empty key id")
	}
	kr := mustKeyring(f)
	v, _ = New(context.Background(), kr, kr.ServiceKeyID())
	s, _ := v.Seal(context.Background(), []byte("seed"), apiKeyBinding)
	f.Add(s.Blob)
	f.Add([]byte("bhv1"))
	f.Add([]byte("bhv1\x05local\x00\x02ab"))
	f.Fuzz(func(t *testing.T, blob []byte) {
		e, err := parseEnvelope(blob)
		if err != nil {
			return
		}
		round, err := e.marshal()
		if err != nil {
			t.Fatalf("parsed envelope does not marshal: %v", err)
		}
		if !bytes.Equal(round, blob) {
			t.Fatal("parse/marshal is not a round trip")
		}
		// Any parsed blob either opens (it is the seed) or fails cleanly.
		_, _ = v.Open(context.Background(), storage.Sealed{KeyID: e.keyID, Blob: blob}, apiKeyBinding)
	})
}

func mustKeyring(tb testing.TB) *LocalKeyring {
	tb.Helper()
	dir, err := os.MkdirTemp("", "keyring")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	kr, err := OpenLocalKeyring(filepath.Join(dir, "keyring.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}
