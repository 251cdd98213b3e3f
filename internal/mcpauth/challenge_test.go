package mcpauth_test

import (
	"maps"
	"testing"

	"github.com/behalf-dev/behalf/internal/mcpauth"
)

func TestParseChallenges(t *testing.T) {
	type c = mcpauth.Challenge
	type p = map[string]string
	for _, tc := range []struct {
		in   []string
		want []c // nil: refused
	}{
		{[]string{`Bearer resource_metadata="https://a/.well-known/oauth-protected-resource", scope="read write"`},
			[]c{{Scheme: "Bearer", Params: p{"resource_metadata": "https://a/.well-known/oauth-protected-resource", "scope": "read write"}}}},
		{[]string{`Bearer`}, []c{{Scheme: "Bearer", Params: p{}}}},
		{[]string{`bearer Scope=read`}, []c{{Scheme: "bearer", Params: p{"scope": "read"}}}},
		{[]string{`Bearer realm = "a \"quoted\" \\ value" , scope="x"`}, []c{{Scheme: "Bearer", Params: p{"realm": `a "quoted" \ value`, "scope": "x"}}}},
		{[]string{`Basic realm="a, b", Bearer scope="s", Negotiate abc==`},
			[]c{{Scheme: "Basic", Params: p{"realm": "a, b"}}, {Scheme: "Bearer", Params: p{"scope": "s"}}, {Scheme: "Negotiate", Params: p{}, Token68: "abc=="}}},
		{[]string{`Negotiate`, `Basic realm="x"`, `Bearer error="invalid_token"`},
			[]c{{Scheme: "Negotiate", Params: p{}}, {Scheme: "Basic", Params: p{"realm": "x"}}, {Scheme: "Bearer", Params: p{"error": "invalid_token"}}}},
		{[]string{`, Basic, ,Bearer scope="a",,`}, []c{{Scheme: "Basic", Params: p{}}, {Scheme: "Bearer", Params: p{"scope": "a"}}}},
		{[]string{`Bearer scope="unterminated`}, nil},
		{[]string{`Bearer scope="a", scope="b"`}, nil},
		{[]string{`Bearer scope="a", SCOPE="b"`}, nil},
		{[]string{`Bearer scope=`}, []c{{Scheme: "Bearer", Params: p{}, Token68: "scope="}}}, // a token68, as RFC 9110 §11.2 reads it
		{[]string{`Bearer word other`}, nil},
		{[]string{`Bearer scope="a" junk`}, nil},
		{[]string{`Bearer scope="bad \` + "\x01" + `"`}, nil},
		{[]string{`Bearer scope="ctl` + "\x7f" + `"`}, nil},
		{[]string{`"Bearer"`}, nil},
		{[]string{`Bearer=x`}, nil},
	} {
		got, err := mcpauth.ParseChallenges(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%q: parsed as %+v, want refused", tc.in, got)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %+v %v", tc.in, got, err)
			continue
		}
		for i := range got {
			if got[i].Scheme != tc.want[i].Scheme || got[i].Token68 != tc.want[i].Token68 || !maps.Equal(got[i].Params, tc.want[i].Params) {
				t.Errorf("%q: challenge %d is %+v, want %+v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
	b, ok := mcpauth.BearerChallenge([]mcpauth.Challenge{{Scheme: "Basic"}, {Scheme: "BEARER", Params: map[string]string{"scope": "x"}}})
	if !ok || b.Params["scope"] != "x" {
		t.Errorf("BearerChallenge: %+v %v", b, ok)
	}
}

func TestCanonicalResource(t *testing.T) {
	for in, want := range map[string]string{
		"https://MCP.Example.com/Path/":   "https://mcp.example.com/Path",
		"HTTPS://mcp.example.com":         "https://mcp.example.com",
		"https://mcp.example.com/":        "https://mcp.example.com",
		"https://mcp.example.com:443/mcp": "https://mcp.example.com/mcp",
		"https://mcp.example.com:8443/a":  "https://mcp.example.com:8443/a",
		"https://mcp.example.com/a#frag":  "https://mcp.example.com/a",
		"https://mcp.example.com/a?x=1":   "https://mcp.example.com/a?x=1",
		"http://127.0.0.1:8080/mcp/":      "http://127.0.0.1:8080/mcp",
		"http://localhost:80/mcp":         "http://localhost/mcp",
		"http://[::1]:9/mcp":              "http://[::1]:9/mcp",
		"http://mcp.example.com/mcp":      "",
		"ftp://mcp.example.com/":          "",
		"https://u:p@mcp.example.com/":    "",
		"/mcp":                            "",
		"https:opaque":                    "",
		"":                                "",
	} {
		got, err := mcpauth.CanonicalResource(in)
		if want == "" {
			if err == nil {
				t.Errorf("%q: %q, want refused", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
}
