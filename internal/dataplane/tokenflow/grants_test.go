package tokenflow

import (
	"encoding/base64"
	"testing"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// TestSubjectTokenType: the JWT's own header and claims decide RFC 8693
// §2.1's subject_token_type. Signatures are not checked here: behalf
// verified the JWT when the workload access token was minted.
func TestSubjectTokenType(t *testing.T) {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	jwt := func(header, claims string) string { return seg(header) + "." + seg(claims) + ".c2ln" }
	for _, tc := range []struct {
		name, token, want string
	}{
		{"RFC 9068 access token", jwt(`{"alg":"RS256","typ":"at+jwt"}`, `{"sub":"a","client_id":"c","scope":"x"}`), oauthwire.TokenTypeAccessToken},
		{"media type form", jwt(`{"alg":"RS256","typ":"application/AT+JWT"}`, `{"sub":"a"}`), oauthwire.TokenTypeAccessToken},
		{"ID token with at_hash", jwt(`{"alg":"RS256","typ":"JWT"}`, `{"sub":"a","aud":"c","at_hash":"h"}`), oauthwire.TokenTypeIDToken},
		{"ID token with nonce", jwt(`{"alg":"ES256"}`, `{"sub":"a","nonce":"n"}`), oauthwire.TokenTypeIDToken},
		{"ID token with c_hash", jwt(`{"alg":"ES256"}`, `{"sub":"a","c_hash":"h"}`), oauthwire.TokenTypeIDToken},
		{"plain JWT", jwt(`{"alg":"RS256","typ":"JWT"}`, `{"sub":"a","aud":"c","scope":"x"}`), oauthwire.TokenTypeJWT},
		{"padded segments", seg(`{"typ":"at+jwt"}`) + "==." + seg(`{}`) + ".c2ln", oauthwire.TokenTypeAccessToken},
		{"undecodable header", "!!." + seg(`{"nonce":"n"}`) + ".c2ln", oauthwire.TokenTypeIDToken},
		{"undecodable claims", jwt(`{"alg":"RS256"}`, `[1]`), oauthwire.TokenTypeJWT},
		{"not a JWT", "opaque", oauthwire.TokenTypeJWT},
	} {
		if got := subjectTokenType(tc.token); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
