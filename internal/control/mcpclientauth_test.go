package control

import (
	"testing"

	"github.com/behalf-dev/behalf/internal/mcpauth"
)

// TestVerifiesOwnKey: a metadata document's client is confidential only
// when the authorization server lists private_key_jwt, and ES256 among
// its signing algorithms when it lists them; otherwise it stays public.
func TestVerifiesOwnKey(t *testing.T) {
	for _, c := range []struct {
		name    string
		methods []string
		algs    []string
		want    bool
	}{
		{"private_key_jwt, no algorithms listed", []string{"none", "private_key_jwt"}, nil, true},
		{"private_key_jwt with ES256", []string{"private_key_jwt"}, []string{"RS256", "ES256"}, true},
		{"private_key_jwt without ES256", []string{"none", "private_key_jwt"}, []string{"RS256", "PS256"}, false},
		{"public clients only", []string{"none"}, []string{"ES256"}, false},
		{"no methods listed (client_secret_basic, RFC 8414 §2)", nil, nil, false},
	} {
		as := mcpauth.AuthorizationServerMetadata{TokenEndpointAuthMethodsSupported: c.methods, TokenEndpointAuthSigningAlgValuesSupported: c.algs}
		if got := verifiesOwnKey(as); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}
