package gateway_test

// Hostile and broken MCP servers met where an administrator meets them:
// CreateMcpServerCredentialProvider. mcpauth's own tests cover each
// refusal of discovery and registration one by one; these show that the
// API refuses them with a 502 naming the step, within the outbound
// timeout, without quoting what the server sent, and stores nothing.
// (testMCPProviderRefusals has a server without PKCE S256, a server URL
// on a denied address, and RFC 9207 iss mismatches at the callback.)

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// hostileSecret is what a hostile registration endpoint puts in its
// garbage, which behalf must never repeat.
const hostileSecret = "hostile-registration-secret-0123456789"

// hostileSite is an MCP server at <site>/mcp and its authorization server
// at <site>/as, which takes dynamic registration only. edit changes the
// challenge, the resource metadata and the authorization server metadata
// before they are served; register answers the registration endpoint.
func hostileSite(t *testing.T, edit func(base string, challenge *string, prm, as map[string]any), register http.HandlerFunc) string {
	t.Helper()
	var base string
	docs := func() (string, map[string]any, map[string]any) {
		challenge := `Bearer resource_metadata="` + base + `/.well-known/oauth-protected-resource/mcp"`
		prm := map[string]any{"resource": base + "/mcp", "authorization_servers": []string{base + "/as"}, "scopes_supported": []string{"files:read"}}
		as := map[string]any{"issuer": base + "/as", "authorization_endpoint": base + "/as/authorize", "token_endpoint": base + "/as/token",
			"registration_endpoint": base + "/as/register", "code_challenge_methods_supported": []string{"S256"}}
		if edit != nil {
			edit(base, &challenge, prm, as)
		}
		return challenge, prm, as
	}
	doc := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mcp", func(w http.ResponseWriter, _ *http.Request) {
		challenge, _, _ := docs()
		w.Header().Set("WWW-Authenticate", challenge)
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, _ *http.Request) {
		_, prm, _ := docs()
		doc(w, prm)
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server/as", func(w http.ResponseWriter, _ *http.Request) {
		_, _, as := docs()
		doc(w, as)
	})
	mux.HandleFunc("POST /as/register", register)
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	base = s.URL
	return base + "/mcp"
}

// TestMCPServerProviderHostileServers: on SQLite and PostgreSQL, with a
// one-second outbound timeout, CreateMcpServerCredentialProvider refuses
// a server whose authorization server metadata names another issuer (RFC
// 8414 §3.3), whose resource metadata names another resource (RFC 9728
// §3.3), whose challenge or metadata points discovery at a denied
// address, and whose registration endpoint (RFC 7591) answers garbage or
// nothing at all.
func TestMCPServerProviderHostileServers(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) {
			f.Development = true
			f.Outbound.Timeout = time.Second
		}})
		registered := func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"client_id":"c-1"}`))
		}
		for _, c := range []struct {
			name     string
			edit     func(base string, challenge *string, prm, as map[string]any)
			register http.HandlerFunc
			text     string
		}{
			{name: "another issuer", edit: func(_ string, _ *string, _, as map[string]any) { as["issuer"] = "https://attacker.example/as" },
				text: "authorization server metadata is for another issuer"},
			{name: "another resource", edit: func(base string, _ *string, prm, _ map[string]any) { prm["resource"] = base + "/other" },
				text: "protected resource metadata is for another resource"},
			{name: "resource metadata on a metadata address", edit: func(_ string, challenge *string, _, _ map[string]any) {
				*challenge = `Bearer resource_metadata="https://169.254.169.254/latest/meta-data/"`
			}, text: "protected-resource-metadata: unreachable or denied by the egress policy"},
			{name: "authorization server on a metadata address", edit: func(_ string, _ *string, prm, _ map[string]any) {
				prm["authorization_servers"] = []string{"https://169.254.169.254/as"}
			}, text: "unreachable or denied by the egress policy"},
			{name: "registration answers garbage", register: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				_, _ = w.Write([]byte(`{"client_secret":"` + hostileSecret + `","client_id":`))
			}, text: "dynamic client registration failed"},
			{name: "registration answers HTML", register: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte(`<p>` + hostileSecret + `</p>`))
			}, text: "not application/json"},
			{name: "registration answers slowly", register: func(_ http.ResponseWriter, r *http.Request) {
				// Read first: the server notices the client's hang-up
				// only once the body is consumed.
				_, _ = io.Copy(io.Discard, r.Body)
				<-r.Context().Done()
			}, text: "dynamic client registration failed"},
		} {
			t.Run(c.name, func(t *testing.T) {
				register := c.register
				if register == nil {
					register = registered
				}
				serverURL := hostileSite(t, c.edit, register)
				body, _ := json.Marshal(behalfapi.CreateMcpServerCredentialProviderInput{Name: "hostile", ServerURL: serverURL}) //nolint:gosec // G117: no secret in it
				start := time.Now()
				res := s.Do(t, behalftest.Raw{Path: "/behalf/CreateMcpServerCredentialProvider", Body: body})
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("took %s with a one-second outbound timeout", took)
				}
				if res.Status != http.StatusBadGateway || !strings.Contains(string(res.Body), c.text) || strings.Contains(string(res.Body), hostileSecret) {
					t.Errorf("%d %s, want 502 with %q", res.Status, res.Body, c.text)
				}
				if res := s.Do(t, behalftest.Raw{Path: "/identities/GetOauth2CredentialProvider", Body: []byte(`{"name":"hostile"}`)}); res.Status != http.StatusNotFound {
					t.Errorf("a refused provider was stored: %d %s", res.Status, res.Body)
				}
			})
		}
	})
}
