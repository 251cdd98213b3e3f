// Package softhsm gives tests PKCS#11 tokens of their own in Debian's
// SoftHSM2, a software token behind the same PKCS#11 interface as an HSM.
//
// New points SOFTHSM2_CONF at a token directory in t.TempDir, which
// SoftHSM2 reads when the module is initialised: a test must close every
// PKCS#11 context it opened before the next test starts (its cleanups run
// before New's), and cannot run in parallel (t.Setenv).
//
// softhsm2-util and the module must be installed: without them the test is
// skipped, except in CI (CI set), where .ci/run installs them before the
// tests and their absence fails the test.
package softhsm

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/behalf-dev/behalf/internal/config"
)

// Module is the PKCS#11 library of Debian's softhsm2 package.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// Token is a token initialised for a test.
type Token struct {
	// Config opens the token: Module, the token's label and a PIN file
	// readable by its owner only.
	Config config.PKCS11
	// PIN is the user PIN, random for each token.
	PIN string
}

// New sets up a SoftHSM2 configuration of its own for t and initialises a
// token labelled label in it.
func New(t testing.TB, label string) Token {
	t.Helper()
	if _, err := os.Stat(Module); err != nil {
		skipOrFail(t, err)
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		skipOrFail(t, err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	return InitToken(t, label)
}

// InitToken initialises another token labelled label in the configuration
// New set up. softhsm2-util picks a free slot and SoftHSM2 renumbers slots,
// so a token is found by its label, never by its slot.
func InitToken(t testing.TB, label string) Token {
	t.Helper()
	pin, soPIN := randomPIN(t), randomPIN(t)
	initToken := exec.CommandContext(t.Context(), "softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", soPIN) //nolint:gosec // G204: the test's own label and random PINs
	out, err := initToken.CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v: %s", err, out)
	}
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return Token{Config: config.PKCS11{Module: Module, TokenLabel: label, PinFile: pinFile}, PIN: pin}
}

func randomPIN(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skipf("softhsm: SoftHSM2 is not installed (apt-get install --no-install-recommends softhsm2): %v", err)
	}
	t.Fatalf("softhsm: CI: SoftHSM2 is not installed (.ci/run installs it before the tests): %v", err)
}
