package gateway

import (
	"encoding/base64"
	"testing"

	"github.com/behalf-dev/behalf/internal/wat"
)

// The gateway names a JWT's user exactly as behalf's audit records and
// spans do, even for an issuer holding the separator.
func TestJWTSubjectNamesUsersAsBehalfDoes(t *testing.T) {
	for _, iss := range []string{"https://idp.example", "https://idp.example/t#1", "https://idp.example/%23"} {
		payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + iss + `","sub":"alice"}`))
		if got, want := jwtSubject("e30."+payload+".c2ln"), wat.UserFromJWT(iss, "alice"); got != want {
			t.Errorf("issuer %q: %q, want %q", iss, got, want)
		}
	}
	if got := jwtSubject("not-a-jwt"); got != "" {
		t.Errorf("not a JWT: %q", got)
	}
}
