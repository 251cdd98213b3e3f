package oauthwire_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// FuzzParseClientAssertion: any client_assertion either parses, with an
// allowed algorithm, or is invalid_client; nothing panics.
func FuzzParseClientAssertion(f *testing.F) {
	for _, seed := range []string{
		"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJhIn0.c2ln",
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJhIn0.",
		"eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "a.b.c", "", "...",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a, oe := oauthwire.ParseClientAssertion(url.Values{"client_assertion_type": {oauthwire.ClientAssertionType}, "client_assertion": {raw}})
		if oe != nil {
			if oe.Code != "invalid_client" {
				t.Fatalf("code %s", oe.Code)
			}
			return
		}
		_ = a.KeyID()
		if _, _, oe := a.Verify(nil, []string{"https://as.example"}, time.Now()); oe == nil || oe.Code != "invalid_client" {
			t.Fatalf("verified without keys: %v", oe)
		}
	})
}
