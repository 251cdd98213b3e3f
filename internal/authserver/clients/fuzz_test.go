package clients

import (
	"strings"
	"testing"
)

const fuzzDocURL = "https://client.example/doc.json"

func FuzzParseDocument(f *testing.F) {
	for _, seed := range []string{
		`{"client_id":"` + fuzzDocURL + `","client_name":"c","redirect_uris":["https://client.example/cb"]}`,
		`{"client_id":"` + fuzzDocURL + `","client_name":"c","redirect_uris":["com.example:/cb"],"application_type":"native"}`,
		`{"client_id":"` + fuzzDocURL + `","client_name":"c","redirect_uris":["https://c.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://c.example/jwks"}`,
		`{"client_id":"x","client_id":"y"}`, `[]`, `null`, `{"client_secret":1}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, oe := parseDocument(fuzzDocURL, body)
		if oe != nil {
			if oe.Code != "invalid_client_metadata" && oe.Code != "invalid_redirect_uri" {
				t.Fatalf("code %s", oe.Code)
			}
			return
		}
		if e.ID != fuzzDocURL || e.Name == "" || len(e.RedirectURIs) == 0 || e.secretHash != nil ||
			e.TokenEndpointAuthMethod != AuthNone && e.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
			t.Fatalf("accepted %+v", e)
		}
		for _, u := range e.RedirectURIs {
			if strings.Contains(u, "#") || checkRedirectURI(u, e.ApplicationType) != "" {
				t.Fatalf("accepted redirect URI %q", u)
			}
		}
	})
}

func FuzzParseRegistration(f *testing.F) {
	for _, seed := range []string{
		`{"redirect_uris":["https://app.example/cb"]}`,
		`{"redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`,
		`{"token_endpoint_auth_method":"private_key_jwt","grant_types":["urn:ietf:params:oauth:grant-type:jwt-bearer"],"jwks":{"keys":[]}}`,
		`{"redirect_uris":["https://a/cb"],"client_id":"https://x/y"}`, `{"software_statement":"x"}`, `{}`, `1`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		md, oe := parseRegistration(body)
		if oe != nil {
			return
		}
		if md.ClientID != "" || md.ApplicationType == "" || md.TokenEndpointAuthMethod == "" || len(md.GrantTypes) == 0 {
			t.Fatalf("accepted %+v", md)
		}
		for _, u := range md.RedirectURIs {
			if checkRedirectURI(u, md.ApplicationType) != "" {
				t.Fatalf("accepted redirect URI %q", u)
			}
		}
	})
}
