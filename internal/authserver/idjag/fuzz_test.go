package idjag

import (
	"encoding/base64"
	"strings"
	"testing"
)

func FuzzParseUnverified(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, seed := range []string{
		enc([]byte(`{"alg":"ES256","typ":"oauth-id-jag+jwt"}`)) + "." + enc([]byte(`{"iss":"https://idp.example"}`)) + ".c2ln",
		enc([]byte(`{"alg":"none","typ":"oauth-id-jag+jwt"}`)) + "." + enc([]byte(`{"iss":"x"}`)) + ".",
		enc([]byte(`{"alg":"ES256","typ":"oauth-id-jag+jwt","typ":"JWT"}`)) + ".e30.c2ln",
		"a.b.c", "", "..",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, assertion string) {
		iss, oe := parseUnverified(assertion)
		if oe != nil {
			if oe.Code != "invalid_grant" || assertion != "" && len(assertion) > 8 && strings.Contains(oe.Description, assertion) {
				t.Fatalf("error %v", oe)
			}
			return
		}
		if iss == "" || strings.Count(assertion, ".") != 2 {
			t.Fatalf("accepted %q with iss %q", assertion, iss)
		}
	})
}
