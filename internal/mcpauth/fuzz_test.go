package mcpauth_test

import (
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/mcpauth"
)

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`Bearer resource_metadata="https://a/.well-known/oauth-protected-resource", scope="read write"`,
		`Basic realm="a, b", Bearer scope="s", Negotiate abc==`,
		`Bearer realm = "a \"q\" \\ v" ,, scope=x`,
		`Bearer scope="unterminated`, `Bearer a=b, a=c`, `, ,`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Two field lines: the header split at its first newline.
		values := strings.SplitN(s, "\n", 2)
		cs, err := mcpauth.ParseChallenges(values)
		if err != nil {
			return
		}
		for _, c := range cs {
			if c.Scheme == "" || c.Params == nil {
				t.Fatalf("%q: challenge %+v", s, c)
			}
			if c.Token68 != "" && len(c.Params) != 0 {
				t.Fatalf("%q: token68 and params in %+v", s, c)
			}
			if !strings.Contains(s, c.Scheme) {
				t.Fatalf("%q: scheme %q not in the input", s, c.Scheme)
			}
		}
	})
}

func FuzzDecodeResourceMetadata(f *testing.F) {
	for _, s := range []string{
		`{"resource":"https://mcp.example/mcp","authorization_servers":["https://as.example"],"scopes_supported":["a"]}`,
		`{"resource":"x","resource":"y"}`, `{"resource":"x"} []`, `[]`, `{"resource":1}`, `null`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := mcpauth.DecodeResourceMetadata(raw)
		if err != nil {
			return
		}
		if m.Resource == "" {
			t.Fatalf("%q: accepted without a resource", raw)
		}
	})
}

func FuzzDecodeAuthorizationServerMetadata(f *testing.F) {
	for _, s := range []string{
		`{"issuer":"https://as.example","token_endpoint":"https://as.example/token","code_challenge_methods_supported":["S256"]}`,
		`{"issuer":"https://as.example","token_endpoint":"http://as.example/token"}`,
		`{"issuer":"a","issuer":"b"}`, `{"issuer":"https://as.example","token_endpoint":"https://as.example/t","x":{"y":[1,2,{}]}}`, `{`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := mcpauth.DecodeAuthorizationServerMetadata(raw)
		if err != nil {
			return
		}
		if m.Issuer == "" || m.TokenEndpoint == "" {
			t.Fatalf("%q: accepted %+v", raw, m)
		}
		if _, err := mcpauth.CanonicalResource(m.TokenEndpoint); err != nil {
			t.Fatalf("%q: token endpoint %q accepted: %v", raw, m.TokenEndpoint, err)
		}
	})
}
