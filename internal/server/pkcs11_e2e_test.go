//go:build cgo

package server_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/softhsm"
	"github.com/behalf-dev/behalf/internal/vault/pkcs11"
)

// The PKCS#11 token stops taking behalf's login while secrets are under
// its key (its sessions lost, as when an HSM restarts, and the PIN file
// holding a PIN the token refuses): see checkKeyOutage. A token that
// refused a PIN is tried again at most once a second, once the file holds
// another.
func TestPKCS11Outage(t *testing.T) {
	tok := softhsm.New(t, "behalf")
	writePIN := func(pin string) {
		if err := os.WriteFile(tok.Config.PinFile, []byte(pin), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		key := newTokenKey(t, tok, "kek-"+b.Name)
		checkKeyOutage(t, key, func(opts behalftest.Options) *behalftest.Server {
			return startWithKeyBackends(t, b, nil, &tok, opts)
		}, func() {
			writePIN("wrong-pin")
			softhsm.CloseAllSessions(t, tok)
		}, func() {
			writePIN(tok.PIN)
			time.Sleep(1100 * time.Millisecond)
		})
	})
}

// SetTokenVaultCMK refuses, with a ValidationException that says what is
// wrong, a token's key that cannot seal the vault, a key id that is not
// one, and a PKCS#11 key when no token is configured.
func TestSetTokenVaultCMKRefusesUnfitTokenKeys(t *testing.T) {
	tok := softhsm.New(t, "behalf")
	token, err := pkcs11.New(tok.Config)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := token.CreateKeyPair(t.Context(), "es256", pkcs11.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := token.Close(); err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, s *behalftest.Server, id, want string) {
		t.Helper()
		_, err := s.Control().SetTokenVaultCMK(t.Context(), &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &ctltypes.KmsConfiguration{
			KeyType: ctltypes.KeyTypeCustomerManagedKey, KmsKeyArn: aws.String(id)}})
		var ve *ctltypes.ValidationException
		if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.Message), want) {
			t.Errorf("SetTokenVaultCMK(%s) = %v, want a ValidationException saying %q", id, err, want)
		}
	}
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := startWithKeyBackends(t, b, nil, &tok, behalftest.Options{})
		for id, want := range map[string]string{
			pair:                              "is a key pair; an AES-256 key wraps data keys",
			pkcs11.KeyID("behalf", "missing"): "names no key that exists",
			pkcs11.KeyID("other", "kek"):      `this server opens token "behalf" only`,
			"pkcs11:object=kek;token=behalf":  "bad key id",
			"pkcs11:token=behalf;object=a b":  "must match the pattern",
		} {
			refused(t, s, id, want)
		}
		if v := rotationStatus(t, s); v.KeyType != "ServiceManagedKey" {
			t.Fatalf("a refused key changed the vault: %+v", v)
		}
	})
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	refused(t, s, pkcs11.KeyID("behalf", "kek"), "set vault.pkcs11")
}
