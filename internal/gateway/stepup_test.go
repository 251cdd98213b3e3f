package gateway_test

// The scopes of a remote MCP server's tokens are behalf's to choose (MCP
// authorization 2025-11-25, "Scope Selection Strategy" and "Scope
// Challenge Handling"; SEP-2207 offline_access): an agent that names none
// gets the selection made at discovery; one that passes a 403
// insufficient_scope challenge's scopes gets consent asked for those and
// all the user granted before; and the gateway, in front of the server,
// does the step-up itself. The server is the gateway's own mcp route
// (the official MCP Go SDK's server behind it), whose authorization
// server is behalf's.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// mcpRead is a scope of the route's resource that no call needs, which an
// agent asks for on its own.
const (
	mcpRead       = "mcp:read"
	offlineAccess = "offline_access"
)

// TestMCPServerProviderScopes: on SQLite and PostgreSQL, with an
// authorization server that advertises offline_access and with one that
// does not.
func TestMCPServerProviderScopes(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		t.Run("offline_access advertised", func(t *testing.T) { testScopesAndStepUp(t, b) })
		t.Run("offline_access not advertised", func(t *testing.T) {
			aw := newASWorld(t, b, nil)
			out := aw.createMCPProvider(t, "notes", aw.resource, nil)
			req := aw.agentRequest(t, "notes")
			req.Scopes = []string{}
			first, err := aw.s.Data().GetResourceOauth2Token(t.Context(), req)
			if err != nil || first.AuthorizationUrl == nil {
				t.Fatalf("USER_FEDERATION: %v", err)
			}
			if got := scopeParam(t, *first.AuthorizationUrl); !slices.Equal(got, out.Scopes) {
				t.Errorf("scope %v, want the selection %v and no offline_access", got, out.Scopes)
			}
		})
	})
}

// testScopesAndStepUp: the agent names no scopes and consent is asked for
// the discovery's selection and offline_access; it names mcp:read and
// consent is asked for the union with what the user granted; then the
// gateway's route notes, whose credential is the user's token for the
// server, meets the server's 403 insufficient_scope for tool secret,
// answers the MCP client with the consent for the union, and after it
// calls secret with the stepped-up token. A server that challenges again
// after the step-up is not stepped up again in the same call.
func testScopesAndStepUp(t *testing.T, b behalftest.Backend) {
	stubborn := newStubbornServer(t)
	aw := newASWorld(t, b, func(f *config.File, as *config.AuthorizationServerFile) {
		as.Resources[0].Scopes = append(as.Resources[0].Scopes, mcpRead, offlineAccess)
		resource := as.Resources[0].Resource
		stubborn.to(t, resource)
		cred := config.GatewayCredentialFile{Provider: "notes", Type: "user", Header: "Authorization", Prefix: aws.String("Bearer "), CacheTTL: new(time.Minute)}
		returnURL := "http://" + f.Listen + "/dev/complete"
		f.Gateway.Routes = append(f.Gateway.Routes,
			config.GatewayRouteFile{Name: "notes", Path: "/notes", Upstream: resource, Kind: "tool", ReturnURL: returnURL, Credential: cred},
			config.GatewayRouteFile{Name: "stubborn", Path: "/stubborn", Upstream: stubborn.URL + "/mcp", Kind: "tool", ReturnURL: returnURL, Credential: cred})
	})
	ctx := t.Context()
	out := aw.createMCPProvider(t, "notes", aw.resource, nil)
	if !slices.Equal(out.Scopes, []string{mcpScope}) {
		t.Fatalf("selected at discovery: %v", out.Scopes)
	}

	// No scopes: the selection, and offline_access.
	req := aw.agentRequest(t, "notes")
	req.Scopes = []string{}
	first, err := aw.s.Data().GetResourceOauth2Token(ctx, req)
	if err != nil || first.AuthorizationUrl == nil {
		t.Fatalf("USER_FEDERATION: %v", err)
	}
	if got := scopeParam(t, *first.AuthorizationUrl); !slices.Equal(got, sorted(mcpScope, offlineAccess)) {
		t.Errorf("first consent for %v", got)
	}
	aw.consent(t, *first.AuthorizationUrl, aws.ToString(first.SessionUri))
	if tok, err := aw.s.Data().GetResourceOauth2Token(ctx, req); err != nil || aws.ToString(tok.AccessToken) == "" {
		t.Fatalf("after consent: %v", err)
	}

	// mcp:read: consent for it with what was granted.
	req.Scopes = []string{mcpRead}
	more, err := aw.s.Data().GetResourceOauth2Token(ctx, req)
	if err != nil || more.AuthorizationUrl == nil {
		t.Fatalf("mcp:read: %v", err)
	}
	if got := scopeParam(t, *more.AuthorizationUrl); !slices.Equal(got, sorted(mcpScope, mcpRead, offlineAccess)) {
		t.Errorf("step-up consent for %v", got)
	}
	aw.consent(t, *more.AuthorizationUrl, aws.ToString(more.SessionUri))
	for _, scopes := range [][]string{{mcpRead}, {mcpScope}, {}} {
		req.Scopes = scopes
		if tok, err := aw.s.Data().GetResourceOauth2Token(ctx, req); err != nil || aws.ToString(tok.AccessToken) == "" {
			t.Fatalf("%v after the step-up: %v", scopes, err)
		}
	}

	// The gateway: echo passes with the token; secret needs mcp:admin.
	session := aw.gatewaySession(t, "/notes", aws.ToString(req.WorkloadIdentityToken))
	if res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}}); err != nil || res.IsError {
		t.Fatalf("echo: %+v %v", res, err)
	}
	_, err = session.CallTool(ctx, &mcp.CallToolParams{Name: "secret", Arguments: map[string]any{}})
	var rpcErr *jsonrpc.Error
	var data map[string]string
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32000 || json.Unmarshal(rpcErr.Data, &data) != nil || data["__type"] != "ConsentRequiredException" {
		t.Fatalf("secret before the step-up: %v, want the consent", err)
	}
	if got := scopeParam(t, data["authorizationUrl"]); !slices.Equal(got, sorted(mcpScope, mcpAdmin, mcpRead, offlineAccess)) {
		t.Errorf("the gateway's step-up asked consent for %v", got)
	}
	aw.consent(t, data["authorizationUrl"], data["sessionUri"])
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "secret", Arguments: map[string]any{}})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "the secret" {
		t.Fatalf("secret after the step-up: %+v %v", res, err)
	}
	if res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "again"}}); err != nil || res.IsError {
		t.Fatalf("echo with the stepped-up token: %+v %v", res, err)
	}

	// A server that challenges again after the step-up: one retry.
	other := aw.gatewaySession(t, "/stubborn", aws.ToString(req.WorkloadIdentityToken))
	if _, err := other.CallTool(ctx, &mcp.CallToolParams{Name: "stubborn", Arguments: map[string]any{}}); err == nil {
		t.Error("stubborn: no error")
	}
	if n := stubborn.challenges.Load(); n != 2 {
		t.Errorf("stubborn was called %d times, want the call and one retry", n)
	}
}

// gatewaySession connects the MCP SDK's client to a tool route of the
// gateway in front of the server, with an agent's workload access token.
func (aw *asWorld) gatewaySession(t *testing.T, path, wat string) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: watTransport{wat}}
	session, err := mcp.NewClient(&mcp.Implementation{Name: "behalf-agent", Version: "1.0.0"}, nil).
		Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: aw.gateway + path, HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = session.Close() })
	return session
}

// watTransport sends an agent's workload access token with every request.
type watTransport struct{ wat string }

func (w watTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(gateway.HeaderWAT, w.wat)
	return http.DefaultTransport.RoundTrip(r)
}

// scopeParam is an authorization URL's scope, sorted.
func scopeParam(t *testing.T, authURL string) []string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	return sorted(strings.Fields(u.Query().Get("scope"))...)
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// stubbornServer is a fault no real server shows on purpose: it passes
// every request on to the route's server, but answers tools/call of tool
// stubborn with 403 insufficient_scope for a scope every token has,
// however often the call comes.
type stubbornServer struct {
	*httptest.Server
	mu         sync.Mutex
	proxy      *httputil.ReverseProxy
	challenges atomic.Int32
}

func newStubbornServer(t *testing.T) *stubbornServer {
	t.Helper()
	s := &stubbornServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(body, &msg) == nil && msg.Method == "tools/call" && msg.Params.Name == "stubborn" {
			s.challenges.Add(1)
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+mcpScope+`"`)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.mu.Lock()
		proxy := s.proxy
		s.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// to points the server at the route's server.
func (s *stubbornServer) to(t *testing.T, resource string) {
	t.Helper()
	u, err := url.Parse(resource)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proxy = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(&url.URL{Scheme: u.Scheme, Host: u.Host})
		r.Out.Host = u.Host
	}}
}
