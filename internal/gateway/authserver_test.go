package gateway_test

// An mcp route whose authorization server is behalf itself: the official
// MCP Go SDK's client finds behalf's authorization server from the
// route's 401, signs the user in at the organisation's IdP (the dev IdP)
// through behalf's login and consent pages, and steps up for a second
// tool's scope; the data plane verifies behalf's own access tokens in
// process.

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/wat"
)

const (
	desktopClient   = "desktop"
	desktopCallback = "http://127.0.0.1:1/callback"
)

// TestMCPRouteWithBehalfAuthorizationServer: on SQLite and PostgreSQL,
// with a pre-registered client and with one the SDK registers itself
// (RFC 7591). (Client ID Metadata Documents need an https document URL,
// which the SDK's client cannot serve on loopback: package clients tests
// them.)
func TestMCPRouteWithBehalfAuthorizationServer(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, dynamic := range []bool{false, true} {
			t.Run(map[bool]string{false: "preregistered", true: "dynamic"}[dynamic], func(t *testing.T) { testBehalfAuthorizationServer(t, b, dynamic) })
		}
	})
}

func testBehalfAuthorizationServer(t *testing.T, b behalftest.Backend, dynamic bool) {
	mw := &mcpWorld{server: newMCPServer(t)}
	var issuer, other string
	secretFile := filepath.Join(t.TempDir(), "login-secret")
	if err := os.WriteFile(secretFile, []byte(mcpClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	mw.world = newWorld(t, b, true, func(f *config.File) {
		mw.resource, other = "http://"+f.Gateway.Listen+"/mcp", "http://"+f.Gateway.Listen+"/other"
		issuer = "http://" + f.Listen
		f.PublicURL = issuer
		// behalf signs users in at the dev IdP as its client mcp-client.
		f.InboundAuthorizers = append(f.InboundAuthorizers, config.InboundAuthorizerFile{Name: "corp",
			DiscoveryURL: f.InboundAuthorizers[0].DiscoveryURL, AllowedClients: []string{mcpClient}})
		f.AuthorizationServer = &config.AuthorizationServerFile{
			Login: config.AuthServerLoginFile{Authorizer: "corp", ClientID: mcpClient, ClientSecretFile: secretFile},
			Resources: []config.AuthServerResourceFile{{Resource: mw.resource, Scopes: []string{mcpScope, mcpAdmin}},
				{Resource: other, Scopes: []string{mcpScope}}},
			Clients:             []config.AuthServerClientFile{{ClientID: desktopClient, ClientName: "Desktop", RedirectURIs: []string{desktopCallback}}},
			DynamicRegistration: config.AuthServerRegistrationFile{Enabled: dynamic},
		}
		f.Gateway.Routes = append(f.Gateway.Routes, config.GatewayRouteFile{Name: "mcp", Path: "/mcp", Upstream: mw.server.URL + "/mcp",
			Kind: "mcp", Workload: workload, Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key"},
			MCPRouteFile: config.MCPRouteFile{Resource: mw.resource, AuthorizationServers: []string{issuer},
				Scopes: []string{mcpScope}, ToolScopes: map[string][]string{"tools/call:secret": {mcpAdmin}}}})
	})
	mw.do(t, "/identities/UpdateWorkloadIdentity", map[string]any{"name": workload, "allowedInboundAuthorizers": []string{"dev", config.AuthorizationServerAuthorizer},
		"allowedResourceOauth2ReturnUrls": []string{mw.returnURL}}, http.StatusOK)

	var consents []bool
	hc := &auth.AuthorizationCodeHandlerConfig{
		RedirectURL: desktopCallback,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			q, consented := asSignIn(ctx, t, args.URL, mw.idp.Issuer(), issuer)
			consents = append(consents, consented)
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	}
	if dynamic {
		hc.DynamicClientRegistrationConfig = &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			RedirectURIs: []string{desktopCallback}, ClientName: "Registered Desktop", TokenEndpointAuthMethod: "none"}}
	} else {
		hc.PreregisteredClient = &oauthex.ClientCredentials{ClientID: desktopClient}
	}
	h, err := auth.NewAuthorizationCodeHandler(hc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	session, err := mcp.NewClient(&mcp.Implementation{Name: "behalf-test", Version: "1.0.0"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: mw.resource, OAuthHandler: h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
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
	// Alice is the user the dev IdP names, as if she had presented its JWT
	// herself: in the workload access tokens minted for her, and in the
	// gateway's records of her calls.
	alice := wat.UserFromJWT(mw.idp.Issuer(), "alice")
	var minted, recorded int
	for _, r := range mw.auditRecords(t) {
		switch {
		case r.Operation == "GetWorkloadAccessTokenForJWT" && r.Outcome == "success":
			minted++
			if r.User != alice || r.Workload != workload {
				t.Errorf("minting for the MCP client: %+v, want user %s", r, alice)
			}
		case r.Operation == "RecordGatewayCall" && strings.HasPrefix(r.Resource, "gateway-route/mcp") && r.Outcome == "success":
			recorded++
			if r.User != alice || r.Workload != workload {
				t.Errorf("the gateway's record of an MCP call: %+v, want user %s", r, alice)
			}
		}
	}
	if minted == 0 || recorded == 0 {
		t.Errorf("%d mintings and %d gateway records of alice's MCP calls", minted, recorded)
	}
	// Consent for mcp:use, then again for the step-up's mcp:admin.
	if len(consents) != 2 || !consents[0] || !consents[1] {
		t.Errorf("consent pages shown: %v, want one per authorization", consents)
	}
	for _, h := range mw.server.seen() {
		if h.Get("Authorization") != "" || h.Get("X-Api-Key") != weatherKey {
			t.Fatalf("the MCP server received %v", h)
		}
	}

	// A token of the same server for another resource is refused.
	cfg := &oauth2.Config{ClientID: desktopClient, RedirectURL: desktopCallback, Scopes: []string{mcpScope},
		Endpoint: oauth2.Endpoint{AuthURL: issuer + "/oauth2/authorize", TokenURL: issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	v := oauth2.GenerateVerifier()
	q, _ := asSignIn(ctx, t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("resource", other)), mw.idp.Issuer(), issuer)
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	res := mw.call(t, "POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, map[string]string{"Authorization": "Bearer " + tok.AccessToken,
		"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("a token for %s at %s: %d %q", other, mw.resource, res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
}

var behalfConsent = regexp.MustCompile(`name="request" value="([^"]+)">\s*<input type="hidden" name="csrf" value="([^"]+)"`)

// asSignIn plays alice's browser through behalf's authorization server:
// the dev IdP's sign-in page, then behalf's consent page when it shows
// one (Allow). It returns the authorization response's parameters and
// whether consent was asked.
func asSignIn(ctx context.Context, t *testing.T, authURL, idp, issuer string) (url.Values, bool) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), desktopCallback) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	send := func(method, u string, form url.Values) (int, http.Header, string) {
		req, _ := http.NewRequestWithContext(ctx, method, u, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, res.Header, readAll(t, res)
	}
	status, _, page := send(http.MethodGet, authURL, nil)
	m := formTokenPattern.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in page: %d %s", status, page)
	}
	status, header, page := send(http.MethodPost, idp+"/consent", url.Values{"form_token": {m[1]}, "username": {"alice"}, "action": {"allow"}})
	consented := false
	if c := behalfConsent.FindStringSubmatch(page); c != nil {
		consented = true
		status, header, page = send(http.MethodPost, issuer+"/oauth2/consent", url.Values{"request": {c[1]}, "csrf": {c[2]}, "action": {"allow"}})
	}
	loc, err := url.Parse(header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("not sent back with a code: %d %s %s", status, header.Get("Location"), page)
	}
	return loc.Query(), consented
}
