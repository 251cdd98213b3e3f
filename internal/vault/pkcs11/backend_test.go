//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/ThalesGroup/crypto11"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/metrictest"
	"github.com/behalf-dev/behalf/internal/testutil/softhsm"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/vault/vaulttest"
)

// open returns a backend of the token, closed when the test ends (before
// the token's configuration goes).
func open(t *testing.T, cfg config.PKCS11) *Backend {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// createKeys makes an AES key labelled kek and an ECDSA key pair labelled
// es256 in b's token, and wraps a data key of zeros under the AES key.
func createKeys(t *testing.T, b *Backend) (w vault.KeyWrapper, wrapped []byte, ecID string) {
	t.Helper()
	ctx := context.Background()
	id, err := b.CreateKey(ctx, "kek")
	if err != nil {
		t.Fatal(err)
	}
	if ecID, err = b.CreateKeyPair(ctx, "es256", ECDSAP256); err != nil {
		t.Fatal(err)
	}
	if w, err = b.Key(ctx, id); err != nil {
		t.Fatal(err)
	}
	if wrapped, err = w.Wrap(ctx, make([]byte, 32), nil); err != nil {
		t.Fatal(err)
	}
	return w, wrapped, ecID
}

// A data key wrapped in the token unwraps with the same associated data,
// and with no other; any change to the wrapped key is refused. Through the
// vault, a secret sealed under the token's key opens for its record only.
func TestWrapUnwrap(t *testing.T) {
	ctx := context.Background()
	b := open(t, softhsm.New(t, "behalf").Config)
	id, err := b.CreateKey(ctx, "kek")
	if err != nil || id != "pkcs11:token=behalf;object=kek" {
		t.Fatalf("CreateKey = %s, %v", id, err)
	}
	if _, err := b.CreateKey(ctx, "kek"); err == nil || !strings.Contains(err.Error(), "already has a key labelled") {
		t.Fatalf("CreateKey of a label in use = %v", err)
	}
	if err := b.Check(ctx, id); err != nil {
		t.Fatalf("Check = %v", err)
	}
	w, err := b.Key(ctx, id)
	if err != nil || w.KeyID() != id {
		t.Fatalf("Key = %v, %v", w, err)
	}
	dek, aad := bytes.Repeat([]byte{7}, 32), []byte("record a")
	wrapped, err := w.Wrap(ctx, dek, aad)
	if err != nil {
		t.Fatal(err)
	}
	if len(wrapped) != nonceSize+32+tagSize || bytes.Contains(wrapped, dek) {
		t.Fatalf("wrapped = %x", wrapped)
	}
	again, err := w.Wrap(ctx, dek, aad)
	if err != nil || bytes.Equal(again[:nonceSize], wrapped[:nonceSize]) {
		t.Fatalf("a second wrap reused the nonce: %x, %v", again, err)
	}
	if got, err := w.Unwrap(ctx, wrapped, aad); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap = %x, %v", got, err)
	}
	if _, err := w.Unwrap(ctx, wrapped, []byte("record b")); !errors.Is(err, vault.ErrDecrypt) {
		t.Errorf("Unwrap with another aad = %v, want ErrDecrypt", err)
	}
	for _, i := range []int{0, nonceSize, nonceSize + 31, len(wrapped) - 1} {
		tampered := bytes.Clone(wrapped)
		tampered[i] ^= 1
		if _, err := w.Unwrap(ctx, tampered, aad); !errors.Is(err, vault.ErrDecrypt) {
			t.Errorf("Unwrap with byte %d changed = %v, want ErrDecrypt", i, err)
		}
	}
	for _, n := range []int{0, nonceSize + tagSize - 1, len(wrapped) - 1} {
		if _, err := w.Unwrap(ctx, wrapped[:n], aad); !errors.Is(err, vault.ErrDecrypt) {
			t.Errorf("Unwrap of %d bytes = %v, want ErrDecrypt", n, err)
		}
	}
	if _, err := w.Unwrap(ctx, append(bytes.Clone(wrapped), make([]byte, maxWrapped)...), aad); !errors.Is(err, vault.ErrDecrypt) {
		t.Errorf("Unwrap of an oversized key = %v, want ErrDecrypt", err)
	}

	v, err := vault.New(ctx, vault.NewKeys(b), id)
	if err != nil {
		t.Fatal(err)
	}
	binding := vault.Binding{Kind: storage.SecretAPIKey, Owner: "provider-1"}
	sealed, err := v.Seal(ctx, []byte("the secret"), binding)
	if err != nil || sealed.KeyID != id {
		t.Fatalf("Seal = %+v, %v", sealed, err)
	}
	if got, err := v.Open(ctx, sealed, binding); err != nil || string(got) != "the secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	binding.Owner = "provider-2"
	if _, err := v.Open(ctx, sealed, binding); !errors.Is(err, vault.ErrDecrypt) {
		t.Errorf("Open for another record = %v, want ErrDecrypt", err)
	}
}

// deleteObjects deletes the token's keys labelled label through a context
// of the test's own, as an operator would with another tool.
func deleteObjects(t *testing.T, tok softhsm.Token, label string) {
	t.Helper()
	c, err := crypto11.Configure(&crypto11.Config{Path: tok.Config.Module, TokenLabel: tok.Config.TokenLabel, Pin: tok.PIN})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := c.FindKeys(nil, []byte(label))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := k.Delete(); err != nil {
			t.Fatal(err)
		}
	}
}

// A key the token does not have is unknown to Key and Signer and gone to
// Check; so is a key deleted from the token after it was used, and ids that
// are malformed or name another token are refused.
func TestMissingKeys(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t, "behalf")
	b := open(t, tok.Config)
	missing := KeyID("behalf", "missing")
	if _, err := b.Key(ctx, missing); !errors.Is(err, vault.ErrUnknownKey) {
		t.Errorf("Key(missing) = %v, want ErrUnknownKey", err)
	}
	if err := b.Check(ctx, missing); !errors.Is(err, vault.ErrKeyGone) {
		t.Errorf("Check(missing) = %v, want ErrKeyGone", err)
	}
	if _, err := b.Signer(ctx, missing); !errors.Is(err, vault.ErrUnknownKey) {
		t.Errorf("Signer(missing) = %v, want ErrUnknownKey", err)
	}
	// A miss the token confirmed is believed for a second: asking again
	// does not open the token anew each time.
	before := current(b)
	for range 3 {
		if err := b.Check(ctx, missing); !errors.Is(err, vault.ErrKeyGone) {
			t.Errorf("Check(missing) again = %v, want ErrKeyGone", err)
		}
	}
	if current(b) != before {
		t.Error("asking again for a missing key opened the token anew")
	}
	if err := b.Check(ctx, "pkcs11:object=kek;token=behalf"); !errors.Is(err, vault.ErrKeyGone) || !errors.Is(err, ErrBadID) {
		t.Errorf("Check(malformed) = %v, want ErrKeyGone and ErrBadID", err)
	}
	other := KeyID("other", "kek")
	if _, err := b.Key(ctx, other); !errors.Is(err, vault.ErrUnknownKey) || !strings.Contains(err.Error(), `opens token "behalf" only`) {
		t.Errorf("Key(another token's key) = %v, want ErrUnknownKey", err)
	}
	if err := b.Check(ctx, other); !errors.Is(err, vault.ErrKeyUnavailable) {
		t.Errorf("Check(another token's key) = %v, want ErrKeyUnavailable", err)
	}

	w, wrapped, _ := createKeys(t, b)
	id := w.KeyID()
	deleteObjects(t, tok, "kek")
	if _, err := w.Unwrap(ctx, wrapped, nil); !errors.Is(err, vault.ErrKeyGone) {
		t.Errorf("Unwrap under a deleted key = %v, want ErrKeyGone", err)
	}
	if err := b.Check(ctx, id); !errors.Is(err, vault.ErrKeyGone) {
		t.Errorf("Check(deleted) = %v, want ErrKeyGone", err)
	}
}

// A token that cannot be opened makes every key unavailable, with an error
// that never holds the PIN: a wrong PIN (not tried again until the PIN
// file changes, so the token does not lock its user), a token that is not
// there (until it is), a module that does not load. Each is retried once
// it may succeed.
func TestTokenUnavailable(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t, "behalf")
	b := open(t, tok.Config)
	id, err := b.CreateKey(ctx, "kek")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	unavailable := func(b *Backend, why string) {
		t.Helper()
		err := b.Check(ctx, id)
		if !errors.Is(err, vault.ErrKeyUnavailable) || !strings.Contains(err.Error(), why) {
			t.Fatalf("Check = %v, want ErrKeyUnavailable saying %q", err, why)
		}
		if strings.Contains(err.Error(), tok.PIN) || strings.Contains(err.Error(), "wrong-pin") {
			t.Fatalf("the error holds a PIN: %v", err)
		}
		if _, err := b.Key(ctx, id); !errors.Is(err, vault.ErrKeyUnavailable) {
			t.Fatalf("Key = %v, want ErrKeyUnavailable", err)
		}
	}

	wrong := open(t, tok.Config)
	wrong.retry = 0
	if err := os.WriteFile(tok.Config.PinFile, []byte("wrong-pin"), 0o600); err != nil {
		t.Fatal(err)
	}
	unavailable(wrong, "CKR_PIN_INCORRECT")
	unavailable(wrong, "not tried again until the file holds another")
	if err := os.WriteFile(tok.Config.PinFile, []byte(tok.PIN), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := wrong.Check(ctx, id); err != nil {
		t.Fatalf("Check with the PIN corrected = %v", err)
	}
	// SoftHSM2 finds new tokens when the module is initialised, which it is
	// again once no context holds it.
	if err := wrong.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := tok.Config
	cfg.TokenLabel = "later"
	absent := open(t, cfg)
	id = KeyID("later", "kek")
	unavailable(absent, "could not find PKCS#11 token")
	unavailable(absent, "could not find PKCS#11 token") // reported again, not retried within a second
	later := softhsm.InitToken(t, "later")
	absent.retry = 0
	if err := os.WriteFile(cfg.PinFile, []byte(later.PIN), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := absent.CreateKey(ctx, "kek"); err != nil {
		t.Fatalf("CreateKey once the token is there = %v", err)
	}

	if err := absent.Check(ctx, id); err != nil {
		t.Fatalf("Check once the token is there = %v", err)
	}

	cfg = tok.Config
	cfg.Module = "/nonexistent/libpkcs11.so"
	id = KeyID("behalf", "kek")
	unavailable(open(t, cfg), "failed to open module")
}

// The token's key pairs sign as crypto.Signers, checked with their public
// keys: ES256 with ECDSA P-256, RS256 and PS256 with RSA (PS256's salt as
// long as the hash, also when the caller asks for rsa.PSSSaltLengthAuto).
// An AES key does not sign, and a key pair does not wrap.
func TestSigners(t *testing.T) {
	ctx := context.Background()
	b := open(t, softhsm.New(t, "behalf").Config)
	digest := sha256.Sum256([]byte("header.payload"))

	ecID, err := b.CreateKeyPair(ctx, "es256", ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(ctx, ecID); err != nil {
		t.Fatalf("Check(key pair) = %v", err)
	}
	if _, err := b.Key(ctx, ecID); !errors.Is(err, vault.ErrUnknownKey) {
		t.Errorf("Key(key pair) = %v, want ErrUnknownKey", err)
	}
	s, err := b.Signer(ctx, ecID)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(nil, digest[:], crypto.SHA256)
	if pub, ok := s.Public().(*ecdsa.PublicKey); err != nil || !ok || pub.Curve.Params().Name != "P-256" || !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Fatalf("ES256: %T %x %v", s.Public(), sig, err)
	}
	if _, err := s.Sign(nil, digest[:20], crypto.SHA256); err == nil {
		t.Error("Sign of a digest of the wrong size succeeded")
	}

	rsaID, err := b.CreateKeyPair(ctx, "rs256", RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err = b.Signer(ctx, rsaID)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := s.Public().(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("public key %T", s.Public())
	}
	sig, err = s.Sign(nil, digest[:], crypto.SHA256)
	if err != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
		t.Fatalf("RS256: %v", err)
	}
	for _, salt := range []int{rsa.PSSSaltLengthEqualsHash, rsa.PSSSaltLengthAuto} {
		sig, err = s.Sign(nil, digest[:], &rsa.PSSOptions{SaltLength: salt, Hash: crypto.SHA256})
		if err != nil {
			t.Fatalf("PS256 (salt %d): %v", salt, err)
		}
		if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
			t.Fatalf("PS256 (salt %d) does not verify with a salt as long as the hash: %v", salt, err)
		}
	}

	aesID, err := b.CreateKey(ctx, "kek")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Signer(ctx, aesID); !errors.Is(err, vault.ErrNotSigningKey) {
		t.Errorf("Signer(AES key) = %v, want ErrNotSigningKey", err)
	}
	if _, err := b.CreateKeyPair(ctx, "x", SigningKeyType(9)); err == nil {
		t.Error("CreateKeyPair of an unknown type succeeded")
	}
}

// Wraps, unwraps and signatures from many goroutines at once share the
// token's session pool (run with -race).
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	b := open(t, softhsm.New(t, "behalf").Config)
	kek, _, ecID := createKeys(t, b)
	id := kek.KeyID()
	digest := sha256.Sum256([]byte("x"))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range byte(16) {
		wg.Go(func() {
			for i := range byte(10) {
				w, err := b.Key(ctx, id)
				if err != nil {
					errs <- err
					return
				}
				dek, aad := bytes.Repeat([]byte{g}, 32), []byte{g, i}
				wrapped, err := w.Wrap(ctx, dek, aad)
				if err != nil {
					errs <- err
					return
				}
				if got, err := w.Unwrap(ctx, wrapped, aad); err != nil || !bytes.Equal(got, dek) {
					errs <- errors.Join(errors.New("unwrap"), err)
					return
				}
				s, err := b.Signer(ctx, ecID)
				if err != nil {
					errs <- err
					return
				}
				sig, err := s.Sign(nil, digest[:], crypto.SHA256)
				if err != nil || !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), digest[:], sig) {
					errs <- errors.Join(errors.New("sign"), err)
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

// After the token's sessions are lost, the call that meets it opens the
// token anew and succeeds; so do the wrapper and signer made before.
func TestReopensAfterLostSessions(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t, "behalf")
	b := open(t, tok.Config)
	w, wrapped, ecID := createKeys(t, b)
	id := w.KeyID()
	s, err := b.Signer(ctx, ecID)
	if err != nil {
		t.Fatal(err)
	}
	before := current(b)
	softhsm.CloseAllSessions(t, tok)
	if got, err := w.Unwrap(ctx, wrapped, nil); err != nil || !bytes.Equal(got, make([]byte, 32)) {
		t.Fatalf("Unwrap with the sessions lost = %x, %v", got, err)
	}
	if after := current(b); after == nil || after == before {
		t.Fatal("the token was not opened anew")
	}
	before = current(b)
	softhsm.CloseAllSessions(t, tok)
	digest := sha256.Sum256([]byte("x"))
	if sig, err := s.Sign(nil, digest[:], crypto.SHA256); err != nil || !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatalf("Sign with the sessions lost: %v", err)
	}
	if after := current(b); after == nil || after == before {
		t.Fatal("the token was not opened anew")
	}
	// Keys hidden by the lost login are not reported gone.
	softhsm.CloseAllSessions(t, tok)
	if err := b.Check(ctx, id); err != nil {
		t.Fatalf("Check(AES key) with the sessions lost = %v", err)
	}
	softhsm.CloseAllSessions(t, tok)
	if err := b.Check(ctx, ecID); err != nil {
		t.Fatalf("Check(key pair) with the sessions lost = %v", err)
	}
}

// current is the token b has open.
func current(b *Backend) *crypto11.Context {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c
}

// The keys an operator makes with OpenSC's pkcs11-tool, with the commands
// docs/security.md gives (the PIN on the command line here only), serve as
// a key-encryption key and as ES256 and RS256 signers.
func TestKeysMadeWithPkcs11Tool(t *testing.T) {
	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("pkcs11-tool is not installed (apt-get install --no-install-recommends opensc): %v", err)
		}
		t.Fatalf("CI: pkcs11-tool is not installed (.ci/run installs it before the tests): %v", err)
	}
	ctx := context.Background()
	tok := softhsm.New(t, "behalf")
	common := []string{"--module", tok.Config.Module, "--token-label", "behalf", "--login", "--pin", tok.PIN}
	for _, args := range [][]string{
		{"--keygen", "--key-type", "AES:32", "--label", "kek", "--id", "01", "--sensitive"},
		{"--keypairgen", "--key-type", "EC:prime256v1", "--label", "es256", "--id", "02", "--usage-sign"},
		{"--keypairgen", "--key-type", "rsa:2048", "--label", "rs256", "--id", "03", "--usage-sign"},
	} {
		if out, err := exec.Command(tool, append(common, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("pkcs11-tool %v: %v: %s", args, err, out)
		}
	}
	b := open(t, tok.Config)
	id := KeyID("behalf", "kek")
	if err := b.Check(ctx, id); err != nil {
		t.Fatalf("Check = %v", err)
	}
	w, err := b.Key(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := w.Wrap(ctx, make([]byte, 32), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Unwrap(ctx, wrapped, []byte("aad")); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("header.payload"))
	s, err := b.Signer(ctx, KeyID("behalf", "es256"))
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := s.Sign(nil, digest[:], crypto.SHA256); err != nil || !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatalf("ES256: %v", err)
	}
	s, err = b.Signer(ctx, KeyID("behalf", "rs256"))
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := s.Sign(nil, digest[:], crypto.SHA256); err != nil || rsa.VerifyPKCS1v15(s.Public().(*rsa.PublicKey), crypto.SHA256, digest[:], sig) != nil {
		t.Fatalf("RS256: %v", err)
	}
}

// The backend passes the backends' conformance suite, each subtest on a
// token of its own.
func TestConformance(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) vaulttest.Fixture {
		ctx := t.Context()
		b := open(t, softhsm.New(t, "behalf").Config)
		var ids [4]string
		for i, create := range []func() (string, error){
			func() (string, error) { return b.CreateKey(ctx, "kek-1") },
			func() (string, error) { return b.CreateKey(ctx, "kek-2") },
			func() (string, error) { return b.CreateKeyPair(ctx, "es256", ECDSAP256) },
			func() (string, error) { return b.CreateKeyPair(ctx, "rs256", RSA2048) },
		} {
			var err error
			if ids[i], err = create(); err != nil {
				t.Fatal(err)
			}
		}
		return vaulttest.Fixture{Backend: b, Keys: [2]string{ids[0], ids[1]}, Missing: KeyID("behalf", "missing"), Signers: ids[2:]}
	})
}

// SetTokenVaultCMK's resolution takes an AES-256 key of the token, and
// refuses as unable to wrap a key pair, an AES-128 key and another token's
// key; the token's operations are counted as key-backend calls.
func TestResolveWrappingKey(t *testing.T) {
	ctx := t.Context()
	tok := softhsm.New(t, "behalf")
	metrics := metrictest.New(t)
	b := open(t, tok.Config)
	b.Metrics = metrics.Metrics
	w, _, ecID := createKeys(t, b)
	c, err := crypto11.Configure(&crypto11.Config{Path: tok.Config.Module, TokenLabel: tok.Config.TokenLabel, Pin: tok.PIN})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GenerateSecretKeyWithLabel([]byte{7}, []byte("aes128"), 128, crypto11.CipherAES); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	if id, err := b.ResolveWrappingKey(ctx, w.KeyID()); err != nil || id != w.KeyID() {
		t.Fatalf("ResolveWrappingKey(AES-256 key) = %s, %v", id, err)
	}
	for id, want := range map[string]string{
		ecID:                      "is a key pair",
		KeyID("behalf", "aes128"): "is AES-128; it must be AES-256",
		KeyID("other", "kek"):     `this server opens token "behalf" only`,
	} {
		if _, err := b.ResolveWrappingKey(ctx, id); !errors.Is(err, vault.ErrNotWrappingKey) || !strings.Contains(err.Error(), want) {
			t.Errorf("ResolveWrappingKey(%s) = %v, want ErrNotWrappingKey saying %q", id, err, want)
		}
	}
	if _, err := b.ResolveWrappingKey(ctx, KeyID("behalf", "missing")); !errors.Is(err, vault.ErrKeyGone) {
		t.Errorf("ResolveWrappingKey(missing) = %v, want ErrKeyGone", err)
	}
	s, err := b.Signer(ctx, ecID)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	if _, err := s.Sign(nil, digest[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	if got := metrics.Counts(t, "behalf.key_backend.calls", telemetry.Operation); got["C_Encrypt"] < 2 || got["C_Decrypt"] < 1 || got["C_Sign"] != 1 {
		t.Errorf("calls by operation: %v", got)
	}
	if got := metrics.Counts(t, "behalf.key_backend.calls", telemetry.KeyBackend); len(got) != 1 || got["pkcs11"] == 0 {
		t.Errorf("calls by backend: %v", got)
	}
}
