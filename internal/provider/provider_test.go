package provider

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/oauthvendor"
)

// loopbackClient reaches the test documents, served on 127.0.0.1.
var loopbackClient = egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}})

func serveDoc(t *testing.T, path, contentType string, body func(base string) string) string {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Write([]byte(body(srv.URL)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestDiscover(t *testing.T) {
	ok := func(issuerSuffix string) func(string) string {
		return func(base string) string {
			return `{"issuer":"` + base + issuerSuffix + `","authorization_endpoint":"` + base + `/a","token_endpoint":"` + base +
				`/t","code_challenge_methods_supported":["S256"],"token_endpoint_auth_methods_supported":["client_secret_post"]}`
		}
	}
	for _, tc := range []struct {
		name, path, ctype string
		body              func(string) string
		discoverySuffix   string
		wantErr           string
	}{
		{"oidc", "/.well-known/openid-configuration", "application/json", ok(""), "/.well-known/openid-configuration", ""},
		{"oidc with path", "/tenant/.well-known/openid-configuration", "application/json; charset=utf-8", ok("/tenant"), "/tenant/.well-known/openid-configuration", ""},
		{"rfc8414 inserted", "/.well-known/oauth-authorization-server/tenant", "application/json", ok("/tenant"), "/.well-known/oauth-authorization-server/tenant", ""},
		{"issuer mismatch", "/.well-known/openid-configuration", "application/json", ok("/other"), "/.well-known/openid-configuration", "does not match"},
		{"not json", "/.well-known/openid-configuration", "application/json", func(string) string { return "<html>" }, "/.well-known/openid-configuration", "not valid JSON"},
		{"html", "/.well-known/openid-configuration", "text/html", ok(""), "/.well-known/openid-configuration", "content type"},
		{"too large", "/.well-known/openid-configuration", "application/json", func(string) string { return `{"x":"` + strings.Repeat("a", maxDocument) + `"}` }, "/.well-known/openid-configuration", "larger than"},
		{"no token endpoint", "/.well-known/openid-configuration", "application/json", func(b string) string { return `{"issuer":"` + b + `"}` }, "/.well-known/openid-configuration", "no token_endpoint"},
		{"remote http endpoint", "/.well-known/openid-configuration", "application/json", func(b string) string {
			return `{"issuer":"` + b + `","token_endpoint":"http://evil.example.com/t"}`
		}, "/.well-known/openid-configuration", "https"},
		{"404", "/somewhere-else", "application/json", ok(""), "/.well-known/openid-configuration", "HTTP 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := serveDoc(t, tc.path, tc.ctype, tc.body)
			m, err := Discover(context.Background(), loopbackClient, base+tc.discoverySuffix)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.TokenEndpoint != base+"/t" || m.CodeChallengeMethodsSupported[0] != "S256" {
					t.Fatalf("%+v", m)
				}
				return
			}
			if !errors.Is(err, ErrDiscovery) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
	if _, err := Discover(context.Background(), loopbackClient, "http://idp.example.com/.well-known/openid-configuration"); err == nil {
		t.Fatal("plain http to a remote host was fetched")
	}
}

func TestAuthMethodAndPKCE(t *testing.T) {
	for _, tc := range []struct {
		cfg  OAuth2
		auth oauthvendor.AuthMethod
		pkce bool
	}{
		{OAuth2{Vendor: "CustomOauth2", ClientAuthenticationMethod: "CLIENT_SECRET_POST"}, oauthvendor.ClientSecretPost, true},
		// The configured method wins over the server's advertised ones.
		{OAuth2{Vendor: "CustomOauth2", ClientAuthenticationMethod: "CLIENT_SECRET_BASIC", Resolved: Metadata{TokenEndpointAuthMethodsSupported: []string{"client_secret_post"}}}, oauthvendor.ClientSecretBasic, true},
		{OAuth2{Vendor: "CustomOauth2", ClientAuthenticationMethod: "PRIVATE_KEY_JWT", PrivateKeyJWT: &PrivateKeyJWT{KeyID: "k", SigningAlgorithm: "PS256"},
			Resolved: Metadata{TokenEndpointAuthMethodsSupported: []string{"client_secret_basic"}}}, oauthvendor.PrivateKeyJWT, true},
		{OAuth2{Vendor: "CustomOauth2", Resolved: Metadata{TokenEndpointAuthMethodsSupported: []string{"private_key_jwt", "client_secret_basic"}}}, oauthvendor.ClientSecretBasic, true},
		{OAuth2{Vendor: "CustomOauth2", Resolved: Metadata{TokenEndpointAuthMethodsSupported: []string{"client_secret_post"}, CodeChallengeMethodsSupported: []string{"plain"}}}, oauthvendor.ClientSecretPost, false},
		{OAuth2{Vendor: "GithubOauth2"}, oauthvendor.ClientSecretPost, true},
		{OAuth2{Vendor: "AtlassianOauth2"}, oauthvendor.ClientSecretPost, false},
	} {
		if got := tc.cfg.AuthMethod(); got != tc.auth {
			t.Errorf("%+v: auth %s, want %s", tc.cfg, got, tc.auth)
		}
		if got := tc.cfg.PKCE(); got != tc.pkce {
			t.Errorf("%+v: pkce %v, want %v", tc.cfg, got, tc.pkce)
		}
	}
	round, err := Decode(OAuth2{Vendor: "GithubOauth2", ClientID: "x"}.Encode())
	if err != nil || round.ClientID != "x" {
		t.Fatalf("%+v %v", round, err)
	}
	if _, err := Decode([]byte("{")); err == nil {
		t.Fatal("corrupt config decoded")
	}
}

// An MCP server provider always uses PKCE, sends its server as resource
// besides those requested (once), and authenticates as its registration
// says.
func TestMCPServerProvider(t *testing.T) {
	c := OAuth2{Vendor: "CustomOauth2", MCP: &MCPServer{Resource: "https://mcp.example.com/mcp", TokenEndpointAuthMethod: "none"},
		Resolved: Metadata{CodeChallengeMethodsSupported: []string{"plain"}}}
	if !c.PKCE() || c.AuthMethod() != oauthvendor.ClientSecretPost {
		t.Errorf("PKCE %v, auth %s", c.PKCE(), c.AuthMethod())
	}
	for _, tc := range []struct{ in, want []string }{
		{nil, []string{"https://mcp.example.com/mcp"}},
		{[]string{"https://other.example"}, []string{"https://other.example", "https://mcp.example.com/mcp"}},
		{[]string{"https://mcp.example.com/mcp"}, []string{"https://mcp.example.com/mcp"}},
	} {
		if got := c.Resources(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Resources(%v) = %v", tc.in, got)
		}
	}
	c.MCP.TokenEndpointAuthMethod = "client_secret_basic"
	if c.AuthMethod() != oauthvendor.ClientSecretBasic {
		t.Errorf("auth %s", c.AuthMethod())
	}
	if got := (OAuth2{}).Resources([]string{"r"}); !slices.Equal(got, []string{"r"}) {
		t.Errorf("another provider's resources: %v", got)
	}
}

// An MCP server provider asks for its selection when a request names no
// scopes, and for offline_access only when its authorization server
// advertises it; another provider asks for what is requested, and for its
// vendor's refresh scopes.
func TestScopes(t *testing.T) {
	mcp := OAuth2{Vendor: "CustomOauth2", MCP: &MCPServer{Scopes: []string{"notes:read"}}}
	if got := mcp.Scopes([]string{}); !slices.Equal(got, []string{"notes:read"}) {
		t.Errorf("selection: %v", got)
	}
	if got := mcp.Scopes([]string{"notes:write"}); !slices.Equal(got, []string{"notes:write"}) {
		t.Errorf("requested: %v", got)
	}
	if got := mcp.RefreshScopes(); got != nil {
		t.Errorf("offline_access not advertised: %v", got)
	}
	mcp.Resolved.ScopesSupported = []string{"notes:read", OfflineAccess}
	if got := mcp.RefreshScopes(); !slices.Equal(got, []string{OfflineAccess}) {
		t.Errorf("offline_access advertised: %v", got)
	}
	google := OAuth2{Vendor: "GoogleOauth2", Resolved: Metadata{ScopesSupported: []string{OfflineAccess}}}
	if got := google.Scopes([]string{}); len(got) != 0 {
		t.Errorf("another provider's empty request: %v", got)
	}
	if got := google.RefreshScopes(); !slices.Equal(got, google.VendorInfo().RefreshScopes) {
		t.Errorf("a vendor's refresh scopes: %v", got)
	}
}
