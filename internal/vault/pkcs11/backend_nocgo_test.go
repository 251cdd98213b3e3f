//go:build !cgo

package pkcs11

import (
	"testing"

	"github.com/behalf-dev/behalf/internal/config"
)

// Without cgo there is no PKCS#11 backend, and New says why.
func TestNewWithoutCgo(t *testing.T) {
	b, err := New(config.PKCS11{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "behalf", PinFile: "/etc/behalf/pin"})
	if b != nil || err == nil || err.Error() != "behalf was built without cgo; PKCS#11 support needs a cgo build" {
		t.Fatalf("New = %v, %v", b, err)
	}
}
