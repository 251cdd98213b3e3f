package inbound

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateConfigs(t *testing.T) {
	ok := func(mod func(*Config)) Config {
		c := Config{
			Name:            "corp",
			DiscoveryURL:    "https://idp.example.com/tenant/.well-known/openid-configuration",
			AllowedAudience: []string{"api"},
		}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	p := "inboundAuthorizers[0]"
	tests := []struct {
		name string
		cfgs []Config
		want []string
	}{
		{"empty list", nil, nil},
		{"minimal", []Config{ok(nil)}, nil},
		{"RFC 8414 metadata URL", []Config{ok(func(c *Config) {
			c.DiscoveryURL = "https://idp.example.com/oauth2/default/.well-known/oauth-authorization-server"
		})}, nil},
		{"http on localhost", []Config{ok(func(c *Config) { c.DiscoveryURL = "http://localhost:8080/.well-known/openid-configuration" })}, nil},
		{"http on ::1", []Config{ok(func(c *Config) { c.DiscoveryURL = "http://[::1]:8080/.well-known/openid-configuration" })}, nil},
		{"every check kind", []Config{ok(func(c *Config) {
			c.AllowedClients = []string{"app"}
			c.AllowedScopes = []string{"api/read", "https://graph.microsoft.com/.default"}
			c.CustomClaims = []CustomClaim{
				{Name: "cognito:groups", ValueType: ValueStringArray, Operator: OpContains, Value: "admins"},
				{Name: "https://example.com/roles", ValueType: ValueStringArray, Operator: OpContainsAny, Values: []string{"a", "b-c"}},
				{Name: "custom-dept", ValueType: ValueString, Operator: OpEquals, Value: "eng.1"},
			}
		})}, nil},
		{"name", []Config{ok(func(c *Config) { c.Name = "has space" })}, []string{p + ".name: must be 1 to 64 characters from A-Z a-z 0-9 _ . -"}},
		{"empty name", []Config{ok(func(c *Config) { c.Name = "" })}, []string{p + ".name: must be 1 to 64 characters from A-Z a-z 0-9 _ . -"}},
		{"duplicate name", []Config{ok(nil), ok(nil)}, []string{`inboundAuthorizers[1].name: "corp" is already used by inboundAuthorizers[0]`}},
		{"no discovery URL", []Config{ok(func(c *Config) { c.DiscoveryURL = "" })}, []string{p + ".discoveryUrl: is required"}},
		{"http elsewhere", []Config{ok(func(c *Config) { c.DiscoveryURL = "http://idp.example.com/.well-known/openid-configuration" })},
			[]string{p + ".discoveryUrl: must use https (http is allowed only for localhost, 127.0.0.1 and ::1)"}},
		{"http on a name that merely starts with localhost", []Config{ok(func(c *Config) { c.DiscoveryURL = "http://localhost.evil.com/.well-known/openid-configuration" })},
			[]string{p + ".discoveryUrl: must use https (http is allowed only for localhost, 127.0.0.1 and ::1)"}},
		{"wrong suffix", []Config{ok(func(c *Config) { c.DiscoveryURL = "https://idp.example.com/.well-known/jwks.json" })},
			[]string{p + ".discoveryUrl: must be an absolute https URL ending in /.well-known/openid-configuration or /.well-known/oauth-authorization-server"}},
		{"query", []Config{ok(func(c *Config) { c.DiscoveryURL = "https://idp.example.com/.well-known/openid-configuration?p=x" })},
			[]string{p + ".discoveryUrl: must not have a query"}},
		{"userinfo", []Config{ok(func(c *Config) { c.DiscoveryURL = "https://u:p@idp.example.com/.well-known/openid-configuration" })},
			[]string{p + ".discoveryUrl: must not contain user information"}},
		{"relative", []Config{ok(func(c *Config) { c.DiscoveryURL = "/.well-known/openid-configuration" })},
			[]string{p + ".discoveryUrl: must be an absolute https URL ending in /.well-known/openid-configuration or /.well-known/oauth-authorization-server"}},
		{"no checks", []Config{ok(func(c *Config) { c.AllowedAudience = nil })},
			[]string{p + ": set at least one of allowedAudience, allowedClients, allowedScopes or customClaims"}},
		{"empty audience and client", []Config{ok(func(c *Config) { c.AllowedAudience = []string{""}; c.AllowedClients = []string{"a", ""} })},
			[]string{p + ".allowedAudience[0]: must not be empty", p + ".allowedClients[1]: must not be empty"}},
		{"scope syntax", []Config{ok(func(c *Config) { c.AllowedScopes = []string{"ok", "two words", `quo"te`, strings.Repeat("s", 256)} })},
			[]string{
				p + `.allowedScopes[1]: must be 1 to 255 printable ASCII characters without space, '"' or '\'`,
				p + `.allowedScopes[2]: must be 1 to 255 printable ASCII characters without space, '"' or '\'`,
				p + `.allowedScopes[3]: must be 1 to 255 printable ASCII characters without space, '"' or '\'`,
			}},
		{"custom claim problems", []Config{ok(func(c *Config) {
			c.CustomClaims = []CustomClaim{
				{Name: "bad name!", ValueType: ValueString, Operator: OpEquals, Value: "x"},
				{Name: "a", ValueType: ValueString, Operator: OpContains, Value: "x"},
				{Name: "b", ValueType: ValueStringArray, Operator: OpEquals, Value: "x"},
				{Name: "c", ValueType: "NUMBER", Operator: "GREATER"},
				{Name: "d", ValueType: ValueStringArray, Operator: OpContainsAny},
				{Name: "e", ValueType: ValueStringArray, Operator: OpContainsAny, Values: []string{"ok", "not ok"}, Value: "x"},
				{Name: "f", ValueType: ValueString, Operator: OpEquals, Value: "", Values: []string{"x"}},
			}
		})}, []string{
			p + ".customClaims[0].inboundTokenClaimName: must be 1 to 255 characters from A-Z a-z 0-9 _ . - : /",
			p + ".customClaims[1].claimMatchOperator: must be EQUALS for inboundTokenClaimValueType STRING",
			p + ".customClaims[2].claimMatchOperator: must be CONTAINS or CONTAINS_ANY for inboundTokenClaimValueType STRING_ARRAY",
			p + ".customClaims[3].inboundTokenClaimValueType: must be STRING or STRING_ARRAY",
			p + ".customClaims[3].claimMatchOperator: must be EQUALS, CONTAINS or CONTAINS_ANY",
			p + ".customClaims[4].matchValueStringList: must list at least one value for CONTAINS_ANY",
			p + ".customClaims[5].matchValueStringList[1]: must be 1 to 255 characters from A-Z a-z 0-9 _ . -",
			p + ".customClaims[5].matchValueString: must be empty for CONTAINS_ANY (use matchValueStringList)",
			p + ".customClaims[6].matchValueString: must be 1 to 255 characters from A-Z a-z 0-9 _ . -",
			p + ".customClaims[6].matchValueStringList: must be empty for EQUALS (use matchValueString)",
		}},
		{"custom claim alone is enough", []Config{ok(func(c *Config) {
			c.AllowedAudience = nil
			c.CustomClaims = []CustomClaim{{Name: "tid", ValueType: ValueString, Operator: OpEquals, Value: "t1"}}
		})}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, ValidateConfigs(tt.cfgs)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

func TestIssuerFromDiscoveryURL(t *testing.T) {
	for u, want := range map[string]string{
		"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc/.well-known/openid-configuration": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc",
		"https://login.microsoftonline.com/tid/v2.0/.well-known/openid-configuration":                "https://login.microsoftonline.com/tid/v2.0",
		"https://x.okta.com/oauth2/default/.well-known/oauth-authorization-server":                   "https://x.okta.com/oauth2/default",
		"https://tenant.auth0.com/.well-known/openid-configuration":                                  "https://tenant.auth0.com",
		"https://idp.example.com//.well-known/openid-configuration":                                  "",
	} {
		got, _ := issuerFromDiscoveryURL(u)
		if got != want {
			t.Errorf("issuerFromDiscoveryURL(%q) = %q; want %q", u, got, want)
		}
	}
}
