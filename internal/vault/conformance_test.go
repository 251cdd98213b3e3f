package vault_test

import (
	"path/filepath"
	"testing"

	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/vault/vaulttest"
)

// The local keyring passes the backends' conformance suite.
func TestLocalKeyringConformance(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) vaulttest.Fixture {
		kr, err := vault.OpenLocalKeyring(filepath.Join(t.TempDir(), "keyring.json"))
		if err != nil {
			t.Fatal(err)
		}
		customer, err := kr.Create()
		if err != nil {
			t.Fatal(err)
		}
		return vaulttest.Fixture{Backend: kr, Keys: [2]string{kr.ServiceKeyID(), customer},
			Missing: vault.LocalPrefix + "00000000-0000-0000-0000-000000000000"}
	})
}
