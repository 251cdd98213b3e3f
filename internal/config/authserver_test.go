package config

import (
	"strings"
	"testing"
	"time"
)

// The authorizationServer section: defaults filled in, and every problem
// reported with its path.
func TestAuthorizationServer(t *testing.T) {
	valid := func() File {
		f := Defaults()
		f.PublicURL = "https://behalf.example.com"
		f.InboundAuthorizers = []InboundAuthorizerFile{{Name: "corp", DiscoveryURL: "https://idp.example.com/.well-known/openid-configuration", AllowedClients: []string{"behalf"}}}
		f.AuthorizationServer = &AuthorizationServerFile{
			Login:     AuthServerLoginFile{Authorizer: "corp", ClientID: "behalf"},
			Resources: []AuthServerResourceFile{{Resource: "https://gw.example.com/mcp", Scopes: []string{"mcp:use"}}},
			Clients:   []AuthServerClientFile{{ClientID: "app", RedirectURIs: []string{"http://127.0.0.1:9/cb"}}},
		}
		return f
	}
	c, err := valid().Validate()
	if err != nil {
		t.Fatal(err)
	}
	a := c.AuthorizationServer
	if a.Issuer != "https://behalf.example.com" || a.AccessTokenTTL != 5*time.Minute || a.CodeTTL != time.Minute || !a.ClientIDMetadataDocuments ||
		a.Login.Scopes[0] != "openid" || a.Clients[0].TokenEndpointAuthMethod != AuthMethodNone || len(a.Clients[0].GrantTypes) != 2 || a.RegistrationsPerMinute != 10 {
		t.Errorf("defaults: %+v", a)
	}
	for name, tt := range map[string]struct {
		edit func(*File)
		at   string
	}{
		"no publicUrl":        {func(f *File) { f.PublicURL = "" }, "publicUrl:"},
		"unknown authorizer":  {func(f *File) { f.AuthorizationServer.Login.Authorizer = "other" }, "authorizationServer.login.authorizer:"},
		"no login client":     {func(f *File) { f.AuthorizationServer.Login.ClientID = "" }, "authorizationServer.login.clientId:"},
		"no openid":           {func(f *File) { f.AuthorizationServer.Login.Scopes = []string{"profile"} }, "authorizationServer.login.scopes:"},
		"no resources":        {func(f *File) { f.AuthorizationServer.Resources = nil }, "authorizationServer.resources:"},
		"http resource":       {func(f *File) { f.AuthorizationServer.Resources[0].Resource = "http://gw.example.com/mcp" }, "authorizationServer.resources[0].resource:"},
		"uppercase resource":  {func(f *File) { f.AuthorizationServer.Resources[0].Resource = "https://GW.example.com/mcp" }, "authorizationServer.resources[0].resource:"},
		"bad scope":           {func(f *File) { f.AuthorizationServer.Resources[0].Scopes = []string{"a b"} }, "authorizationServer.resources[0].scopes[0]:"},
		"https client id":     {func(f *File) { f.AuthorizationServer.Clients[0].ClientID = "https://app.example/meta" }, "authorizationServer.clients[0].clientId:"},
		"open redirect":       {func(f *File) { f.AuthorizationServer.Clients[0].RedirectURIs = []string{"http://app.example/cb"} }, "authorizationServer.clients[0].redirectUris[0]:"},
		"fragment redirect":   {func(f *File) { f.AuthorizationServer.Clients[0].RedirectURIs = []string{"https://app.example/cb#x"} }, "authorizationServer.clients[0].redirectUris[0]:"},
		"secret method alone": {func(f *File) { f.AuthorizationServer.Clients[0].TokenEndpointAuthMethod = AuthMethodSecretPost }, "authorizationServer.clients[0].clientSecretFile:"},
		"unknown grant":       {func(f *File) { f.AuthorizationServer.Clients[0].GrantTypes = []string{"password"} }, "authorizationServer.clients[0].grantTypes[0]:"},
		"short code ttl":      {func(f *File) { f.AuthorizationServer.CodeTTL = time.Second }, "authorizationServer.codeTtl:"},
		"bad id-jag issuer": {func(f *File) {
			f.AuthorizationServer.IDJag.Issuers = []AuthServerIDJagIssuerFile{{Issuer: "http://idp.example.com"}}
		}, "authorizationServer.idJag.issuers[0].issuer:"},
		"reserved name": {func(f *File) { f.InboundAuthorizers[0].Name = AuthorizationServerAuthorizer }, "inboundAuthorizers[0].name:"},
		"route not a resource": {func(f *File) {
			f.Gateway = MountedGatewayFile{Principal: "AKID", Routes: []GatewayRouteFile{{Name: "m", Path: "/other", Upstream: "http://127.0.0.1:9/mcp",
				Kind: KindMCP, Workload: "w", Credential: GatewayCredentialFile{Provider: "p", Type: CredentialM2M},
				MCPRouteFile: MCPRouteFile{Resource: "https://gw.example.com/other", AuthorizationServers: []string{"https://behalf.example.com"}, Scopes: []string{"mcp:use"}}}}}
		}, "gateway.routes[0].resource:"},
	} {
		f := valid()
		tt.edit(&f)
		_, err := f.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.at) {
			t.Errorf("%s: %v, want a problem at %s", name, err, tt.at)
		}
	}
}

func FuzzValidRedirectURI(f *testing.F) {
	for _, s := range []string{"https://app.example/cb", "http://127.0.0.1:9/cb", "com.example.app:/cb", "javascript:alert(1)", "http://[::1]/x#y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidRedirectURI(s) && strings.Contains(s, "#") {
			t.Errorf("%q has a fragment", s)
		}
	})
}
