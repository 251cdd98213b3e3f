package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// doc serves v as a JSON document.
func doc(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// mcpSite is an MCP server guarded by an authorization server at
// <site>/as whose metadata claims issuer claimed.
func mcpSite(t *testing.T, claimed func(base string) string) *httptest.Server {
	t.Helper()
	var base string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mcp", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp", scope="files:read"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, _ *http.Request) {
		doc(w, map[string]any{"resource": base + "/mcp", "authorization_servers": []string{base + "/as"}, "scopes_supported": []string{"files:read", "files:write"}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server/as", func(w http.ResponseWriter, _ *http.Request) {
		doc(w, map[string]any{"issuer": claimed(base), "authorization_endpoint": base + "/as/authorize", "token_endpoint": base + "/as/token",
			"code_challenge_methods_supported": []string{"S256"}, "client_id_metadata_document_supported": true})
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	base = s.URL
	return s
}

// TestMCPDiscoverCommand: behalf mcp discover shows a server's
// authorization as a table and as JSON, refuses a server whose
// authorization server metadata claims another issuer, and a URL on a
// denied address; each call is audited.
func TestMCPDiscoverCommand(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	good := mcpSite(t, func(base string) string { return base + "/as" })

	out := r.ok("", "mcp", "discover", good.URL+"/mcp")
	for _, want := range []string{"files:read (the 401's challenge)", good.URL + "/as/token", "codeChallengeMethods       S256", "clientIdMetadataDocuments  true"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var d behalfapi.DiscoverMcpServerOutput
	r.json(&d, "mcp", "discover", good.URL+"/mcp#fragment")
	if d.ServerURL != good.URL+"/mcp" || d.Resource != good.URL+"/mcp" || d.ResourceMetadataSource != "challenge" ||
		!slices.Equal(d.Scopes, []string{"files:read"}) || !slices.Equal(d.ResourceScopes, []string{"files:read", "files:write"}) ||
		d.AuthorizationServer.Issuer != good.URL+"/as" || d.AuthorizationServer.MetadataURL != good.URL+"/.well-known/oauth-authorization-server/as" ||
		d.AuthorizationServer.GrantTypesSupported == nil || !d.AuthorizationServer.ClientIDMetadataDocumentSupported {
		t.Errorf("json: %+v", d)
	}

	bad := mcpSite(t, func(string) string { return "https://attacker.example/as" })
	if _, errs, code := r.do("", "mcp", "discover", bad.URL+"/mcp"); code == 0 || !strings.Contains(errs, "another issuer") {
		t.Errorf("issuer mismatch: exit %d %s", code, errs)
	}
	if _, errs, code := r.do("", "mcp", "discover", "https://169.254.169.254/mcp"); code == 0 || !strings.Contains(errs, "unreachable or denied by the egress policy") {
		t.Errorf("metadata address: exit %d %s", code, errs)
	}
	if _, errs, code := r.do("", "mcp", "discover", "http://mcp.example/mcp"); code == 0 || !strings.Contains(errs, "ValidationException") {
		t.Errorf("http URL: exit %d %s", code, errs)
	}
	if _, _, code := r.do("", "mcp", "discover"); code == 0 {
		t.Error("discover without a URL succeeded")
	}

	var records []behalfapi.AuditRecord
	r.json(&records, "audit", "list", "--operation", "DiscoverMcpServer", "--oldest-first")
	var got []string
	for _, rec := range records {
		got = append(got, rec.Outcome+" "+rec.ErrorType+" "+rec.Resource)
	}
	want := []string{"success  mcp-server/" + good.URL + "/mcp", "success  mcp-server/" + good.URL + "/mcp#fragment",
		"failure InternalServerException mcp-server/" + bad.URL + "/mcp", "failure InternalServerException mcp-server/https://169.254.169.254/mcp",
		"failure ValidationException mcp-server/http://mcp.example/mcp"}
	if !slices.Equal(got, want) {
		t.Errorf("audit records:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMCPDiscoverUnderProductionPolicy: with loopback addresses denied,
// behalf does not reach an MCP server on one.
func TestMCPDiscoverUnderProductionPolicy(t *testing.T) {
	no := false
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: func(f *config.File) { f.Egress.AllowLoopback = &no }})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	site := mcpSite(t, func(base string) string { return base + "/as" })
	if _, errs, code := r.do("", "mcp", "discover", site.URL+"/mcp"); code == 0 || !strings.Contains(errs, "unreachable or denied by the egress policy") {
		t.Errorf("loopback server: exit %d %s", code, errs)
	}
}

// TestMCPProviderCommands: behalf provider mcp create makes a provider
// from an MCP server's URL with a pre-registered client whose secret is
// read from standard input and never shown; the AgentCore provider
// commands list it; update discovers it again and keeps the client.
func TestMCPProviderCommands(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	site := mcpSite(t, func(base string) string { return base + "/as" })

	out := r.ok("pre-registered-secret-0123\n", "provider", "mcp", "create", "files", "--server-url", site.URL+"/mcp", "--client-id", "behalf-files", "--client-secret", "-")
	for _, want := range []string{"registration  PREREGISTERED", "client id     behalf-files", "resource      " + site.URL + "/mcp", "issuer        " + site.URL + "/as", "files:read"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "pre-registered-secret") {
		t.Error("the client secret was shown")
	}
	if list := r.ok("", "provider", "oauth2", "list"); !strings.Contains(list, "files") {
		t.Errorf("oauth2 list:\n%s", list)
	}
	var up behalfapi.McpServerCredentialProviderOutput
	r.json(&up, "provider", "mcp", "update", "files")
	if up.ClientID != "behalf-files" || up.Reregistered || up.Registration != "PREREGISTERED" {
		t.Errorf("update: %+v", up)
	}
	if _, errs, code := r.do("", "provider", "mcp", "create", "x", "--server-url", "https://169.254.169.254/mcp"); code == 0 || !strings.Contains(errs, "egress policy") {
		t.Errorf("denied address: exit %d %s", code, errs)
	}
	if _, _, code := r.do("", "provider", "mcp", "create", "y"); code == 0 {
		t.Error("create without --server-url succeeded")
	}

	// Enterprise-managed authorization: the IdP's provider must exist;
	// once it does, the table names it, and the client sends its secret
	// as --client-auth-method says; --identity-provider "" turns it off.
	if _, errs, code := r.do("s3cret\n", "provider", "mcp", "create", "wiki", "--server-url", site.URL+"/mcp", "--client-id", "behalf-wiki",
		"--client-secret", "-", "--identity-provider", "corp"); code == 0 || !strings.Contains(errs, "identityProvider corp is not an OAuth2 credential provider") {
		t.Errorf("an IdP provider that does not exist: exit %d %s", code, errs)
	}
	r.ok("corp-secret\n", "provider", "oauth2", "create", "corp", "--vendor", "CustomOauth2", "--client-id", "agent-app", "--client-secret", "-",
		"--issuer", site.URL+"/idp", "--authorization-endpoint", site.URL+"/idp/authorize", "--token-endpoint", site.URL+"/idp/token")
	out = r.ok("s3cret\n", "provider", "mcp", "create", "wiki", "--server-url", site.URL+"/mcp", "--client-id", "behalf-wiki",
		"--client-secret", "-", "--client-auth-method", "client_secret_post", "--identity-provider", "corp")
	for _, want := range []string{"identity provider  corp (ID-JAG: no consent page)", "client auth        client_secret_post"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	r.json(&up, "provider", "mcp", "update", "wiki", "--identity-provider", "")
	if up.IdentityProvider != "" || up.TokenEndpointAuthMethod != "client_secret_post" {
		t.Errorf("update turning the IdP off: %+v", up)
	}
	// A metadata document the administrator serves: its URL is the client
	// id, the document to serve is printed, and behalf serves none.
	var hosted behalfapi.McpServerCredentialProviderOutput
	r.json(&hosted, "provider", "mcp", "create", "notes", "--server-url", site.URL+"/mcp", "--client-metadata-document-url", "https://docs.example.com/behalf/client.json")
	var md map[string]any
	if err := json.Unmarshal(hosted.ClientMetadataDocument, &md); err != nil || hosted.Registration != "CLIENT_ID_METADATA_DOCUMENT" ||
		hosted.ClientID != "https://docs.example.com/behalf/client.json" || md["client_id"] != hosted.ClientID ||
		fmt.Sprint(md["redirect_uris"]) != "["+hosted.CallbackURL+"]" || md["token_endpoint_auth_method"] != "none" {
		t.Errorf("an administrator's document: %+v %v", hosted, err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/mcp-clients/"+path.Base(hosted.CallbackURL), nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("behalf served the administrator's document: %v %v", res, err)
	} else {
		_ = res.Body.Close()
	}
	for _, c := range []struct{ url, want string }{
		{"http://docs.example.com/client.json", "https URL"},
		{"https://docs.example.com/", "must have a path"},
		{"https://docs.example.com/a/../client.json", ". or .."},
	} {
		if _, errs, code := r.do("", "provider", "mcp", "create", "bad", "--server-url", site.URL+"/mcp", "--client-metadata-document-url", c.url); code == 0 ||
			!strings.Contains(errs, c.want) {
			t.Errorf("document URL %s: exit %d %s", c.url, code, errs)
		}
	}
	if _, errs, code := r.do("", "provider", "mcp", "create", "z", "--server-url", site.URL+"/mcp", "--client-auth-method", "client_secret_post"); code == 0 ||
		!strings.Contains(errs, "tokenEndpointAuthMethod") {
		t.Errorf("--client-auth-method without a secret: exit %d %s", code, errs)
	}
}

// movingSite is an MCP server whose authorization server moves from
// <site>/as1 to <site>/as2 when told; both register clients (RFC 7591),
// naming them after themselves.
func movingSite(t *testing.T) (*httptest.Server, *atomic.Value) {
	t.Helper()
	var base string
	current := &atomic.Value{}
	current.Store("as1")
	doc := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mcp", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, _ *http.Request) {
		doc(w, http.StatusOK, map[string]any{"resource": base + "/mcp", "authorization_servers": []string{base + "/" + current.Load().(string)}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server/{as}", func(w http.ResponseWriter, r *http.Request) {
		as := base + "/" + r.PathValue("as")
		doc(w, http.StatusOK, map[string]any{"issuer": as, "authorization_endpoint": as + "/authorize", "token_endpoint": as + "/token",
			"registration_endpoint": as + "/register", "code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("POST /{as}/register", func(w http.ResponseWriter, r *http.Request) {
		var md map[string]any
		if json.NewDecoder(r.Body).Decode(&md) != nil || md["application_type"] != "web" || md["token_endpoint_auth_method"] != "none" {
			doc(w, http.StatusBadRequest, map[string]any{"error": "invalid_client_metadata"})
			return
		}
		doc(w, http.StatusCreated, map[string]any{"client_id": "client-of-" + r.PathValue("as"), "client_secret": "secret-of-" + r.PathValue("as"),
			"token_endpoint_auth_method": "client_secret_basic"})
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	base = s.URL
	return s, current
}

// TestMCPProviderReregistersOnNewIssuer: a provider registered by RFC
// 7591 keeps its client while the issuer stays, and registers at the new
// authorization server when it changes; the registered secret is never
// shown, and both changes are audited.
func TestMCPProviderReregistersOnNewIssuer(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	site, current := movingSite(t)

	var out behalfapi.McpServerCredentialProviderOutput
	r.json(&out, "provider", "mcp", "create", "moving", "--server-url", site.URL+"/mcp")
	if out.Registration != "DYNAMIC" || out.ClientID != "client-of-as1" || out.Issuer != site.URL+"/as1" {
		t.Fatalf("create: %+v", out)
	}
	r.json(&out, "provider", "mcp", "update", "moving")
	if out.Reregistered || out.ClientID != "client-of-as1" {
		t.Errorf("update, same issuer: %+v", out)
	}
	current.Store("as2")
	raw := r.ok("", "provider", "mcp", "update", "moving", "-o", "json")
	if err := json.Unmarshal([]byte(raw), &out); err != nil || !out.Reregistered || out.ClientID != "client-of-as2" || out.Issuer != site.URL+"/as2" {
		t.Errorf("update, new issuer: %+v %v", out, err)
	}
	if strings.Contains(raw, "secret-of") || strings.Contains(r.ok("", "provider", "oauth2", "get", "moving", "-o", "json"), "secret-of") {
		t.Error("a registered secret was shown")
	}
	var records []behalfapi.AuditRecord
	r.json(&records, "audit", "list", "--operation", "UpdateMcpServerCredentialProvider")
	if len(records) != 2 || records[0].Provider != "moving" {
		t.Errorf("audit records: %+v", records)
	}
}

// TestMCPProviderForOrigin: a server that answers initialize without a
// token and publishes, at the root well-known URI, metadata naming its
// origin (RFC 9728 §3.3) becomes a provider whose tokens are for that
// origin; discovering it again keeps its client.
func TestMCPProviderForOrigin(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	var base string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mcp", func(w http.ResponseWriter, _ *http.Request) {
		doc(w, map[string]any{"jsonrpc": "2.0", "id": 1, "result": map[string]any{}})
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource", func(w http.ResponseWriter, _ *http.Request) {
		doc(w, map[string]any{"resource": base + "/", "authorization_servers": []string{base}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		doc(w, map[string]any{"issuer": base, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
			"code_challenge_methods_supported": []string{"S256"}})
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	base = site.URL

	var out, up behalfapi.McpServerCredentialProviderOutput
	r.json(&out, "provider", "mcp", "create", "origin", "--server-url", site.URL+"/mcp", "--client-id", "behalf-origin")
	if out.ServerURL != site.URL+"/mcp" || out.Resource != site.URL || out.Issuer != site.URL || out.Registration != "PREREGISTERED" ||
		out.AuthorizationServerSource != "resource-metadata" {
		t.Errorf("create: %+v", out)
	}
	r.json(&up, "provider", "mcp", "update", "origin")
	if up.Reregistered || up.Resource != site.URL || up.ClientID != "behalf-origin" {
		t.Errorf("update: %+v", up)
	}
}

// TestMCP20250326Server: a server of the 2025-03-26 revision — a 401,
// no protected resource metadata, no authorization server metadata — is
// discovered at its origin's default endpoints, which discover and the
// provider commands say; its tokens are for its canonical URI, and
// discovering it again keeps the client.
func TestMCP20250326Server(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/mcp", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)

	out := r.ok("", "mcp", "discover", site.URL+"/v1/mcp")
	for _, want := range []string{"authorizationServerSource  default-endpoints (2025-03-26", "tokenEndpoint              " + site.URL + "/token"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var d behalfapi.DiscoverMcpServerOutput
	r.json(&d, "mcp", "discover", site.URL+"/v1/mcp")
	if d.Resource != site.URL+"/v1/mcp" || d.ResourceMetadataSource != "none" || d.AuthorizationServerSource != "default-endpoints" ||
		d.AuthorizationServer.Issuer != site.URL || d.AuthorizationServer.MetadataURL != "" || d.AuthorizationServer.RegistrationEndpoint != site.URL+"/register" {
		t.Errorf("json: %+v", d)
	}

	var p, up behalfapi.McpServerCredentialProviderOutput
	r.json(&p, "provider", "mcp", "create", "legacy", "--server-url", site.URL+"/v1/mcp", "--client-id", "behalf-legacy")
	if p.Resource != site.URL+"/v1/mcp" || p.Issuer != site.URL || p.AuthorizationServerSource != "default-endpoints" || p.Registration != "PREREGISTERED" {
		t.Errorf("create: %+v", p)
	}
	r.json(&up, "provider", "mcp", "update", "legacy")
	if up.Reregistered || up.ClientID != "behalf-legacy" || up.AuthorizationServerSource != "default-endpoints" {
		t.Errorf("update: %+v", up)
	}
}

// TestMCPProviderPrivateKeyJWT: a pre-registered client's private key,
// read from a file, makes the provider authenticate with private_key_jwt
// (its algorithm chosen from the key unless given); the key is never
// shown, and a key that cannot sign as asked is refused without being
// quoted.
func TestMCPProviderPrivateKeyJWT(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	site := mcpSite(t, func(base string) string { return base + "/as" })
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	secretPart := string(pemKey[40:80])

	var out behalfapi.McpServerCredentialProviderOutput
	r.json(&out, "provider", "mcp", "create", "keyed", "--server-url", site.URL+"/mcp", "--client-id", "behalf-keyed", "--client-private-key", "@"+keyFile)
	if out.TokenEndpointAuthMethod != "private_key_jwt" || out.SigningAlgorithm != "ES256" || out.Registration != "PREREGISTERED" {
		t.Errorf("created: %+v", out)
	}
	table := r.ok(string(pemKey), "provider", "mcp", "update", "keyed", "--client-id", "behalf-keyed", "--client-private-key", "-", "--signing-algorithm", "ES256")
	if !strings.Contains(table, "client auth   private_key_jwt") {
		t.Errorf("update:\n%s", table)
	}
	if got := r.ok("", "provider", "oauth2", "get", "keyed", "--output", "json"); strings.Contains(got, secretPart) || strings.Contains(table, secretPart) {
		t.Error("the private key was shown")
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--client-id", "c", "--client-private-key", "@" + keyFile, "--signing-algorithm", "RS256"}, "not RS256"},
		{[]string{"--client-id", "c", "--client-private-key", "@" + keyFile, "--signing-algorithm", "HS256"}, "must be one of RS256, PS256, ES256"},
		{[]string{"--client-id", "c", "--client-private-key", "@" + keyFile, "--client-secret", "s"}, "with clientSecret"},
		{[]string{"--client-private-key", "@" + keyFile}, "without clientId"},
		{[]string{"--client-id", "c", "--client-private-key", "-----BEGIN PRIVATE KEY-----\n" + secretPart + "\n-----END PRIVATE KEY-----"}, "is not a valid PRIVATE KEY"},
	} {
		_, errs, code := r.do("", append([]string{"provider", "mcp", "create", "refused", "--server-url", site.URL + "/mcp"}, c.args...)...)
		if code == 0 || !strings.Contains(errs, "ValidationException") || !strings.Contains(errs, c.want) || strings.Contains(errs, secretPart) {
			t.Errorf("%v: exit %d %s", c.args, code, errs)
		}
	}
}
