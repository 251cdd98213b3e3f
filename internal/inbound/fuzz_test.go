package inbound_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/inbound/inboundtest"
)

// FuzzVerify feeds arbitrary strings through the whole path: pre-parser,
// go-jose, key lookup (with rate-limited refetches against a live test
// IdP) and claim checks. Only the one valid token may pass, every failure
// must be a typed *Error, and no message may echo the token.
func FuzzVerify(f *testing.F) {
	idp := inboundtest.NewIDP(f)
	s, err := inbound.NewSet([]inbound.Config{idp.Config("corp")}, inbound.Options{Now: func() time.Time { return t0 }, HTTPClient: loopbackClient})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	valid := idp.Sign(idp.ValidClaims(t0))
	f.Add(valid)
	for _, c := range inboundtest.Forged(idp, idp.ValidClaims(t0)) {
		f.Add(c.Token)
	}
	f.Add("eyJhbGciOiJSUzI1NiJ9.e30.")
	f.Add("....")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := s.Verify(context.Background(), tok, nil)
		if err == nil {
			if tok != valid {
				t.Fatalf("accepted a token other than the valid one: %q → %+v", tok, id)
			}
			return
		}
		if inbound.KindOf(err) == "" {
			t.Fatalf("untyped error %v", err)
		}
		if len(tok) >= 16 && strings.Contains(err.Error(), tok) {
			t.Fatalf("message echoes the token: %v", err)
		}
	})
}
