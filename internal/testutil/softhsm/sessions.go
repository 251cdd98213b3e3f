//go:build cgo

package softhsm

import (
	"testing"

	"github.com/miekg/pkcs11"
)

// CloseAllSessions closes every session of the token from outside the
// code under test, as a restarted HSM or a removed token would: the
// sessions and the login of every PKCS#11 context in this process are
// gone.
func CloseAllSessions(t testing.TB, tok Token) {
	t.Helper()
	p := pkcs11.New(tok.Config.Module)
	if p == nil {
		t.Fatal("cannot load the module")
	}
	defer p.Destroy() // never Finalize: the module is shared with the code under test
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, slot := range slots {
		if info, err := p.GetTokenInfo(slot); err == nil && info.Label == tok.Config.TokenLabel {
			if err := p.CloseAllSessions(slot); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("token not found")
}
