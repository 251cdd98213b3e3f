package gateway_test

// An mcp route end to end: the official MCP Go SDK's server behind the
// route, its client with the SDK's authorization code handler in front,
// and the dev IdP as the authorization server.

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
)

// The dev IdP's client that MCP clients sign in with, and the route's
// scopes: mcpScope for every call, mcpAdmin besides for tool secret.
const (
	mcpClient       = "mcp-client"
	mcpClientSecret = "mcp-client-secret"
	mcpScope        = "mcp:use"
	mcpAdmin        = "mcp:admin"
)

// mcpWorld is a world whose mounted gateway serves route mcp: the MCP
// server below, with the weather API key injected, for tokens the dev IdP
// issued for the route's resource, which inbound authorizer mcp (allowed
// by the route's workload) verifies.
type mcpWorld struct {
	*world
	resource string
	server   *mcpServer
}

// newMCPWorld serves route mcp, as edits change it, from the mounted
// gateway or, standalone, from a gateway of its own (w.gateway) on a
// loopback address chosen first, since the route's resource is its URL.
func newMCPWorld(t *testing.T, b behalftest.Backend, mounted bool, edits ...func(*config.File, *config.GatewayRouteFile)) *mcpWorld {
	t.Helper()
	mw := &mcpWorld{server: newMCPServer(t)}
	var route config.GatewayRouteFile
	addr := testnet.FreeAddr(t)
	mw.world = newWorld(t, b, mounted, func(f *config.File) {
		if mounted {
			addr = f.Gateway.Listen
		}
		mw.resource = "http://" + addr + "/mcp"
		issuer, _, _ := strings.Cut(f.InboundAuthorizers[0].DiscoveryURL, "/.well-known/") // the dev IdP's
		f.InboundAuthorizers = append(f.InboundAuthorizers, config.InboundAuthorizerFile{
			Name: "mcp", DiscoveryURL: issuer + "/.well-known/oauth-authorization-server", AllowedAudience: []string{mw.resource}})
		route = config.GatewayRouteFile{Name: "mcp", Path: "/mcp", Upstream: mw.server.URL + "/mcp",
			Kind: "mcp", Workload: workload, Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key"},
			MCPRouteFile: config.MCPRouteFile{Resource: mw.resource, AuthorizationServers: []string{issuer},
				Scopes: []string{mcpScope}, ToolScopes: map[string][]string{"tools/call:secret": {mcpAdmin}}}}
		for _, edit := range edits {
			edit(f, &route)
		}
		if mounted {
			f.Gateway.Routes = append(f.Gateway.Routes, route)
		}
	})
	if !mounted {
		mw.gateway = mw.standaloneAt(t, addr, route)
	}
	mw.do(t, "/identities/UpdateWorkloadIdentity", map[string]any{"name": workload, "allowedInboundAuthorizers": []string{"dev", "mcp"},
		"allowedResourceOauth2ReturnUrls": []string{mw.returnURL}}, http.StatusOK)
	return mw
}

// standaloneAt serves the world's routes and extra from a standalone
// gateway listening on addr, and returns its URL.
func (w *world) standaloneAt(t *testing.T, addr string, extra ...config.GatewayRouteFile) string {
	t.Helper()
	f := config.GatewayDefaults()
	f.Listen, f.Endpoint, f.Routes = addr, w.s.URL, append(w.routes(), extra...)
	cfg, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{Data: w.data})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ErrServerClosed once the test is done
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + addr
}

// mcpServer is the official SDK's MCP server with tools echo and secret,
// which notes the headers of every request it receives. It serves MCP
// 2026-07-28 requests statelessly once told to (stateless); until then a
// client of that revision falls back to 2025-11-25's sessions.
type mcpServer struct {
	URL       string
	mu        sync.Mutex
	headers   []http.Header
	stateless atomic.Bool
}

func newMCPServer(t *testing.T) *mcpServer {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "tools", Version: "1.0.0"}, nil)
	type echoArgs struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes text"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "secret", Description: "tells a secret"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "the secret"}}}, nil, nil
	})
	ms := &mcpServer{}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	// MCP 2026-07-28 has no sessions: the SDK serves it statelessly.
	stateless := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ms.mu.Lock()
		ms.headers = append(ms.headers, r.Header.Clone())
		ms.mu.Unlock()
		if ms.stateless.Load() && r.Header.Get("Mcp-Protocol-Version") >= "2026-07-28" {
			stateless.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ms.URL = srv.URL
	return ms
}

// seen is every request's headers so far.
func (s *mcpServer) seen() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.headers)
}

// TestMCPRoute: on SQLite and PostgreSQL, the SDK's client discovers the
// route's metadata from its 401 challenge, signs in at the dev IdP for the
// route's resource, lists the tools and calls echo; tool secret's 403
// insufficient_scope makes it step up to both scopes and succeed. The
// upstream sees the route's API key and never the client's token.
func TestMCPRoute(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, mounted := range []bool{false, true} {
			t.Run(map[bool]string{false: "standalone", true: "mounted"}[mounted], func(t *testing.T) { testMCPRoute(t, b, mounted) })
		}
	})
}

func testMCPRoute(t *testing.T, b behalftest.Backend, mounted bool) {
	mw := newMCPWorld(t, b, mounted)
	mw.checkMetadata(t)
	mw.checkChallenges(t)
	auths := mw.sdkSession(t)
	if len(auths) != 2 || auths[0].Get("scope") != mcpScope || !sameScopes(auths[1].Get("scope"), mcpScope+" "+mcpAdmin) ||
		auths[0].Get("resource") != mw.resource || auths[1].Get("resource") != mw.resource {
		t.Errorf("authorization requests: %v, want one for %s and a step-up to both scopes, for %s", auths, mcpScope, mw.resource)
	}
	seen := mw.server.seen()
	if len(seen) < 4 {
		t.Fatalf("the MCP server saw %d requests", len(seen))
	}
	for _, h := range seen {
		if h.Get("Authorization") != "" || h.Get("X-Api-Key") != weatherKey {
			t.Fatalf("the MCP server received %v", h)
		}
	}
	if !slices.ContainsFunc(seen, func(h http.Header) bool { return h.Get("Mcp-Session-Id") != "" && h.Get("Mcp-Protocol-Version") != "" }) {
		t.Error("no session or protocol version reached the MCP server")
	}
	mw.checkRefusalAudited(t)
	// The key is cached per access token, not per workload access
	// token, which each call mints anew.
	if recs, _ := mw.records(t, "GetResourceApiKey"); len(recs) != 2 {
		t.Errorf("the API key was fetched %d times for the session's 2 access tokens", len(recs))
	}
}

// checkMetadata: the route's protected resource metadata, at its
// path-inserted well-known URI and, as the first mcp route's, the root.
func (mw *mcpWorld) checkMetadata(t *testing.T) {
	t.Helper()
	want := `{"resource":"` + mw.resource + `","authorization_servers":["` + mw.idp.Issuer() + `"],"scopes_supported":["mcp:use","mcp:admin"],` +
		`"bearer_methods_supported":["header"],"resource_name":"mcp"}`
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		res := mw.call(t, "GET", path, "", nil)
		if res.StatusCode != http.StatusOK || string(res.body) != want || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s %s, want %s", path, res.StatusCode, res.Header.Get("Content-Type"), res.body, want)
		}
	}
}

// checkChallenges: no token, a token for another resource, a forged one
// and a token with too few scopes are refused with the challenges MCP
// clients act on; headers that differ from the body are refused.
func (mw *mcpWorld) checkChallenges(t *testing.T) {
	t.Helper()
	prm := `resource_metadata="http://` + strings.TrimPrefix(mw.gateway, "http://") + `/.well-known/oauth-protected-resource/mcp"`
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	secret := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"secret","arguments":{}}}`
	user := mw.mcpToken(t, mcpScope, mw.resource)
	forged := user[:strings.LastIndex(user, ".")+1] + "AAAA"
	for _, c := range []struct {
		name, token, body string
		status            int
		challenge         string
	}{
		{"no token", "", list, http.StatusUnauthorized, `Bearer ` + prm + `, scope="mcp:use"`},
		{"another resource", mw.mcpToken(t, mcpScope, "https://elsewhere.example/mcp"), list, http.StatusUnauthorized, `Bearer error="invalid_token", ` + prm + `, scope="mcp:use"`},
		{"the app's token", mw.userJWT(t, "alice"), list, http.StatusUnauthorized, `Bearer error="invalid_token", ` + prm + `, scope="mcp:use"`},
		{"forged", forged, list, http.StatusUnauthorized, `Bearer error="invalid_token", ` + prm + `, scope="mcp:use"`},
		{"no scope", mw.mcpToken(t, "openid", mw.resource), list, http.StatusForbidden, `Bearer error="insufficient_scope", scope="mcp:use", ` + prm},
		{"too few scopes", user, secret, http.StatusForbidden, `Bearer error="insufficient_scope", scope="mcp:use mcp:admin", ` + prm},
		// The members are read as the upstream reads them: exactly, and
		// never one of two of the same name.
		{"another case", user, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"secret"},"Params":{"name":"echo"}}`,
			http.StatusForbidden, `Bearer error="insufficient_scope", scope="mcp:use mcp:admin", ` + prm},
		{"a batch", user, `[` + list + `,` + secret + `]`, http.StatusForbidden, `Bearer error="insufficient_scope", scope="mcp:use mcp:admin", ` + prm},
		{"twice", user, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"secret"},"params":{"name":"echo"}}`, http.StatusBadRequest, ""},
		{"no message", user, `"tools/list"`, http.StatusBadRequest, ""},
		{"empty batch", user, `[]`, http.StatusBadRequest, ""},
	} {
		headers := map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
		if c.token != "" {
			headers["Authorization"] = "Bearer " + c.token
		}
		res := mw.call(t, "POST", "/mcp", c.body, headers)
		if res.StatusCode != c.status || res.Header.Get("WWW-Authenticate") != c.challenge {
			t.Errorf("%s: %d %q %s, want %d %q", c.name, res.StatusCode, res.Header.Get("WWW-Authenticate"), res.body, c.status, c.challenge)
		}
	}
	res := mw.call(t, "POST", "/mcp", secret, map[string]string{"Authorization": "Bearer " + mw.mcpToken(t, mcpScope+" "+mcpAdmin, mw.resource),
		"Content-Type": "application/json", "Mcp-Method": "tools/call", "Mcp-Name": "echo"})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(res.body), "-32020") {
		t.Errorf("Mcp-Name echo calling secret: %d %s, want 400 HeaderMismatch", res.StatusCode, res.body)
	}
	if n := len(mw.server.seen()); n != 0 {
		t.Errorf("the MCP server received %d refused requests", n)
	}
}

// mcpToken is alice's access token for resource from the dev IdP
// (password grant), with scope.
func (mw *mcpWorld) mcpToken(t *testing.T, scope, resource string) string {
	t.Helper()
	return mw.passwordToken(t, mcpClient, mcpClientSecret, url.Values{"username": {"alice"}, "scope": {scope}, "resource": {resource}})
}

// sdkSession runs the SDK's client through the route and returns the
// authorization requests its handler made.
func (mw *mcpWorld) sdkSession(t *testing.T) []url.Values {
	t.Helper()
	var auths []url.Values
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient: &oauthex.ClientCredentials{ClientID: mcpClient, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: mcpClientSecret}},
		RedirectURL:         "http://127.0.0.1:1/callback",
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			u, _ := url.Parse(args.URL)
			auths = append(auths, u.Query())
			return signIn(ctx, t, args.URL, "alice"), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	client := mcp.NewClient(&mcp.Implementation{Name: "behalf-test", Version: "1.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: mw.resource, OAuthHandler: h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	tools, err := session.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 2 {
		t.Fatalf("tools/list: %v %v", tools, err)
	}
	for _, call := range []struct {
		name string
		args map[string]any
		want string
	}{{"echo", map[string]any{"text": "hello"}, "hello"}, {"secret", map[string]any{}, "the secret"}} {
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: call.name, Arguments: call.args})
		if err != nil || res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != call.want {
			t.Fatalf("tools/call %s: %+v %v", call.name, res, err)
		}
	}
	return auths
}

// signIn plays alice's browser at the dev IdP's consent page and returns
// the authorization response it is redirected with, without following it.
func signIn(ctx context.Context, t *testing.T, authURL, user string) *auth.AuthorizationResult {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	res, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, res)
	m := formTokenPattern.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no consent form: %d %s", res.StatusCode, page)
	}
	u, _ := url.Parse(authURL)
	form := url.Values{"form_token": {m[1]}, "username": {user}, "action": {"allow"}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, u.Scheme+"://"+u.Host+"/consent", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = readAll(t, res)
	back, err := url.Parse(res.Header.Get("Location"))
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("consent: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	q := back.Query()
	return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}
}

// checkRefusalAudited: the 403 for tool secret is recorded as a refusal
// naming the rule that denied it and the scopes the call needed.
func (mw *mcpWorld) checkRefusalAudited(t *testing.T) {
	t.Helper()
	recs, all := mw.records(t, "RecordGatewayCall")
	found := false
	for _, r := range recs {
		if r.Resource == "gateway-route/mcp/tools/call:secret" {
			found = true
			if r.Outcome != "failure" || r.ErrorType != "InsufficientScope" || !slices.Equal(r.Scopes, []string{mcpScope, mcpAdmin}) ||
				r.User != "jwt:"+mw.idp.Issuer()+"#alice" || r.Workload != workload {
				t.Errorf("refusal recorded as %+v", r)
			}
		}
	}
	if !found {
		t.Errorf("no refusal of tools/call:secret recorded: %s", all)
	}
}

var formTokenPattern = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestRecordGatewayCallRule: RecordGatewayCall takes kind mcp and an mcp
// route's refusing rule with the scopes the call needed, together and
// bounded, and names the rule in the record's resource.
func TestRecordGatewayCallRule(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		for _, c := range []struct {
			body   string
			status int
		}{
			{`{"route":"r","kind":"mcp","status":403,"errorType":"InsufficientScope","rule":"tools/call:secret","scopes":["a","b"]}`, http.StatusOK},
			{`{"route":"r","kind":"mcp","status":403,"errorType":"InsufficientScope","rule":"scopes","scopes":["a"]}`, http.StatusOK},
			{`{"route":"r","kind":"mcp","status":403,"rule":"tools/call:secret"}`, http.StatusBadRequest},
			{`{"route":"r","kind":"mcp","status":403,"scopes":["a"]}`, http.StatusBadRequest},
			{`{"route":"r","kind":"mcp","status":403,"rule":"tools/call:a b","scopes":["a"]}`, http.StatusBadRequest},
			{`{"route":"r","kind":"mcp","status":403,"rule":"scopes","scopes":["a\"b"]}`, http.StatusBadRequest},
			{`{"route":"r","kind":"mcp","status":403,"rule":"` + strings.Repeat("a", 141) + `","scopes":["a"]}`, http.StatusBadRequest},
		} {
			if res := s.Do(t, behalftest.Raw{Path: "/behalf/RecordGatewayCall", Body: []byte(c.body)}); res.Status != c.status {
				t.Errorf("%s: %d %s, want %d", c.body, res.Status, res.Body, c.status)
			}
		}
		w := &world{s: s}
		recs, _ := w.records(t, "RecordGatewayCall")
		if len(recs) < 2 || recs[0].Resource != "gateway-route/r/tools/call:secret" || !slices.Equal(recs[0].Scopes, []string{"a", "b"}) ||
			recs[1].Resource != "gateway-route/r/scopes" || recs[0].ErrorType != "InsufficientScope" {
			t.Errorf("records: %+v", recs)
		}
	})
}

// sameScopes compares scope strings as sets (RFC 6749 §3.3: the order
// does not matter).
func sameScopes(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
