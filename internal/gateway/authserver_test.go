package gateway_test

// An mcp route whose authorization server is behalf itself: the official
// MCP Go SDK's client finds behalf's authorization server from the
// route's 401, signs the user in at the organisation's IdP (the dev IdP)
// through behalf's login and consent pages, and steps up for a second
// tool's scope; the data plane verifies behalf's own access tokens in
// process. enterprise_test.go has the enterprise-managed flow, with no
// sign-in at behalf.

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
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/wat"
)

const (
	desktopClient   = "desktop"
	desktopCallback = "http://127.0.0.1:1/callback"
)

// TestMCPRouteWithBehalfAuthorizationServer: on SQLite and PostgreSQL,
// with a pre-registered client and with one the SDK registers itself
// (RFC 7591), and with Dex as behalf's login IdP. (The Go SDK's client
// takes only an https Client ID Metadata Document URL; the TypeScript
// SDK's client uses one served on loopback in tsclient_test.go.)
func TestMCPRouteWithBehalfAuthorizationServer(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, dynamic := range []bool{false, true} {
			t.Run(map[bool]string{false: "preregistered", true: "dynamic"}[dynamic], func(t *testing.T) { testBehalfAuthorizationServer(t, b, dynamic) })
		}
		t.Run("dex login", func(t *testing.T) { testDexLogin(t, b) })
	})
}

// behalf's client at Dex, for its users' sign-in.
const (
	dexLogin       = "behalf-login"
	dexLoginSecret = "behalf-login-secret-0123456789"
)

// testDexLogin: behalf signs users in at Dex (its login authorizer, an
// inbound authorizer for Dex's ID tokens to behalf's client there), whose
// browser login is its mock connector's; the MCP client's calls act for
// the user Dex names.
func testDexLogin(t *testing.T, b behalftest.Backend) {
	dex := dextest.Start(t, dextest.Options{RequirePKCE: true, Clients: []dextest.Client{{ID: dexLogin, Secret: dexLoginSecret}}})
	secretFile := filepath.Join(t.TempDir(), "dex-login-secret")
	if err := os.WriteFile(secretFile, []byte(dexLoginSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	aw := newASWorld(t, b, func(f *config.File, as *config.AuthorizationServerFile) {
		f.InboundAuthorizers = append(f.InboundAuthorizers, config.InboundAuthorizerFile{Name: "dex", DiscoveryURL: dex.DiscoveryURL,
			AllowedAudience: []string{dexLogin}})
		as.Login = config.AuthServerLoginFile{Authorizer: "dex", ClientID: dexLogin, ClientSecretFile: secretFile}
	})
	dex.SetRedirectURIs(t, dexLogin, aw.issuer+"/oauth2/login/callback")
	consents := aw.codeFlow(t, dexSignIn, false)
	if len(consents) != 2 || !consents[0] || !consents[1] {
		t.Errorf("consent pages shown: %v, want one per authorization", consents)
	}
	// behalf redeemed a login code at Dex per authorization.
	if n := dex.TokenRequests("authorization_code"); n != 2 {
		t.Errorf("%d logins completed at Dex, want 2", n)
	}
	aw.checkUser(t, "jwt:"+dex.Issuer+"#"+dextest.CallbackSubject)
}

// dexSignIn: Dex's mock connector signs its one user in without a page,
// so the browser, following Dex's redirects, is already back at behalf.
func dexSignIn(_ asBrowser, first page) page { return first }

func testBehalfAuthorizationServer(t *testing.T, b behalftest.Backend, dynamic bool) {
	aw := newASWorld(t, b, func(_ *config.File, as *config.AuthorizationServerFile) { as.DynamicRegistration.Enabled = dynamic })
	consents := aw.codeFlow(t, devSignIn(aw.idp.Issuer()), dynamic)
	// Alice is the user the dev IdP names, as if she had presented its JWT
	// herself.
	aw.checkUser(t, wat.UserFromJWT(aw.idp.Issuer(), "alice"))
	// Consent for mcp:use, then again for the step-up's mcp:admin.
	if len(consents) != 2 || !consents[0] || !consents[1] {
		t.Errorf("consent pages shown: %v, want one per authorization", consents)
	}

	// A token of the same server for another resource is refused.
	ctx := t.Context()
	cfg := &oauth2.Config{ClientID: desktopClient, RedirectURL: desktopCallback, Scopes: []string{mcpScope},
		Endpoint: oauth2.Endpoint{AuthURL: aw.issuer + "/oauth2/authorize", TokenURL: aw.issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	v := oauth2.GenerateVerifier()
	q, _ := asSignIn(ctx, t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("resource", aw.other)), devSignIn(aw.idp.Issuer()), aw.issuer)
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	res := aw.call(t, "POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, map[string]string{"Authorization": "Bearer " + tok.AccessToken,
		"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("a token for %s at %s: %d %q", aw.other, aw.resource, res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
}

// asWorld is an mcpWorld whose route mcp names behalf's authorization
// server: users sign in at the dev IdP (as its client mcp-client) through
// behalf, which offers the route's resource and other, and knows the
// public client desktop.
type asWorld struct {
	*mcpWorld
	issuer, other string
}

// newASWorld makes an asWorld; edit may change the authorization server
// and the rest of the file before behalf starts.
func newASWorld(t *testing.T, b behalftest.Backend, edit func(*config.File, *config.AuthorizationServerFile)) *asWorld {
	t.Helper()
	aw := &asWorld{mcpWorld: &mcpWorld{server: newMCPServer(t)}}
	secretFile := filepath.Join(t.TempDir(), "login-secret")
	if err := os.WriteFile(secretFile, []byte(mcpClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	aw.world = newWorld(t, b, true, func(f *config.File) {
		aw.resource, aw.other = "http://"+f.Gateway.Listen+"/mcp", "http://"+f.Gateway.Listen+"/other"
		aw.issuer = "http://" + f.Listen
		f.PublicURL = aw.issuer
		// behalf signs users in at the dev IdP as its client mcp-client.
		f.InboundAuthorizers = append(f.InboundAuthorizers, config.InboundAuthorizerFile{Name: "corp",
			DiscoveryURL: f.InboundAuthorizers[0].DiscoveryURL, AllowedClients: []string{mcpClient}})
		f.AuthorizationServer = &config.AuthorizationServerFile{
			Login: config.AuthServerLoginFile{Authorizer: "corp", ClientID: mcpClient, ClientSecretFile: secretFile},
			Resources: []config.AuthServerResourceFile{{Resource: aw.resource, Scopes: []string{mcpScope, mcpAdmin}},
				{Resource: aw.other, Scopes: []string{mcpScope}}},
			Clients: []config.AuthServerClientFile{{ClientID: desktopClient, ClientName: "Desktop", RedirectURIs: []string{desktopCallback}}},
		}
		f.Gateway.Routes = append(f.Gateway.Routes, config.GatewayRouteFile{Name: "mcp", Path: "/mcp", Upstream: aw.server.URL + "/mcp",
			Kind: "mcp", Workload: workload, Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key"},
			MCPRouteFile: config.MCPRouteFile{Resource: aw.resource, AuthorizationServers: []string{aw.issuer},
				Scopes: []string{mcpScope}, ToolScopes: map[string][]string{"tools/call:secret": {mcpAdmin}}}})
		if edit != nil {
			edit(f, f.AuthorizationServer)
		}
	})
	aw.do(t, "/identities/UpdateWorkloadIdentity", map[string]any{"name": workload, "allowedInboundAuthorizers": []string{"dev", config.AuthorizationServerAuthorizer},
		"allowedResourceOauth2ReturnUrls": []string{aw.returnURL}}, http.StatusOK)
	return aw
}

// codeFlow connects the SDK's client with its authorization code handler
// as desktop (or a client it registers itself, when dynamic), signing the
// user in with signIn, and calls both tools. It returns, per
// authorization, whether behalf showed its consent page.
func (aw *asWorld) codeFlow(t *testing.T, signIn idpSignIn, dynamic bool) []bool {
	t.Helper()
	var consents []bool
	hc := &auth.AuthorizationCodeHandlerConfig{
		RedirectURL: desktopCallback,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			q, consented := asSignIn(ctx, t, args.URL, signIn, aw.issuer)
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
	aw.callTools(t, h, nil)
	return consents
}

// callTools connects the SDK's client with h (over hc, if not nil) and
// calls echo and secret.
func (aw *asWorld) callTools(t *testing.T, h auth.OAuthHandler, hc *http.Client) {
	t.Helper()
	ctx := t.Context()
	session, err := aw.connect(t, h, hc)
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
	for _, got := range aw.server.seen() {
		if got.Get("Authorization") != "" || got.Get("X-Api-Key") != weatherKey {
			t.Fatalf("the MCP server received %v", got)
		}
	}
}

// connect connects the SDK's client to route mcp with h (over hc, if not
// nil).
func (aw *asWorld) connect(t *testing.T, h auth.OAuthHandler, hc *http.Client) (*mcp.ClientSession, error) {
	t.Helper()
	return mcp.NewClient(&mcp.Implementation{Name: "behalf-test", Version: "1.0.0"}, nil).
		Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: aw.resource, OAuthHandler: h, HTTPClient: hc}, nil)
}

// checkUser: the MCP client's calls acted for user, in the workload
// access tokens minted for them and in the gateway's records of them.
func (aw *asWorld) checkUser(t *testing.T, user string) {
	t.Helper()
	var minted, recorded int
	for _, r := range aw.auditRecords(t) {
		switch {
		case r.Operation == "GetWorkloadAccessTokenForJWT" && r.Outcome == "success":
			minted++
			if r.User != user || r.Workload != workload {
				t.Errorf("minting for the MCP client: %+v, want user %s", r, user)
			}
		case r.Operation == "RecordGatewayCall" && strings.HasPrefix(r.Resource, "gateway-route/mcp") && r.Outcome == "success":
			recorded++
			if r.User != user || r.Workload != workload {
				t.Errorf("the gateway's record of an MCP call: %+v, want user %s", r, user)
			}
		}
	}
	if minted == 0 || recorded == 0 {
		t.Errorf("%d mintings and %d gateway records of %s's MCP calls", minted, recorded, user)
	}
}

var behalfConsent = regexp.MustCompile(`name="request" value="([^"]+)">\s*<input type="hidden" name="csrf" value="([^"]+)"`)

// page is a response to the user's browser, read.
type page struct {
	status int
	header http.Header
	body   string
}

// asBrowser is the user's browser: it keeps cookies and follows
// redirects, up to the client's redirect URI when told.
type asBrowser struct {
	ctx context.Context // the test's, for every request
	t   *testing.T
	c   *http.Client
}

func (b asBrowser) send(method, u string, form url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequestWithContext(b.ctx, method, u, strings.NewReader(form.Encode()))
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{res.StatusCode, res.Header, readAll(b.t, res)}
}

// idpSignIn plays the user at the login IdP, from its first page to
// where its redirect back to behalf leads.
type idpSignIn func(b asBrowser, first page) page

// devSignIn signs alice in on the dev IdP's page.
func devSignIn(idp string) idpSignIn { return devSignInAs(idp, "alice") }

// devSignInAs signs user in on the dev IdP's page.
func devSignInAs(idp, user string) idpSignIn {
	return func(b asBrowser, first page) page {
		m := formTokenPattern.FindStringSubmatch(first.body)
		if m == nil {
			b.t.Fatalf("no sign-in page: %d %s", first.status, first.body)
		}
		return b.send(http.MethodPost, idp+"/consent", url.Values{"form_token": {m[1]}, "username": {user}, "action": {"allow"}})
	}
}

// asSignIn plays the user's browser through behalf's authorization server
// up to its redirect to desktopCallback, which it does not follow. It
// returns the authorization response's parameters and whether consent was
// asked.
func asSignIn(ctx context.Context, t *testing.T, authURL string, signIn idpSignIn, issuer string) (url.Values, bool) {
	t.Helper()
	p, consented := asBrowse(ctx, t, authURL, signIn, issuer, desktopCallback)
	loc, err := url.Parse(p.header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("not sent back with a code: %d %s %s", p.status, p.header.Get("Location"), p.body)
	}
	return loc.Query(), consented
}

// asBrowse plays the user's browser through behalf's authorization server:
// the login IdP's sign-in, then behalf's consent page when it shows one
// (Allow), following redirects except to a URL starting with stopAt (when
// set). It returns the last page and whether consent was asked.
func asBrowse(ctx context.Context, t *testing.T, authURL string, signIn idpSignIn, issuer, stopAt string) (page, bool) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := asBrowser{ctx, t, &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if stopAt != "" && strings.HasPrefix(req.URL.String(), stopAt) {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
	p := signIn(b, b.send(http.MethodGet, authURL, nil))
	consented := false
	if c := behalfConsent.FindStringSubmatch(p.body); c != nil {
		consented = true
		p = b.send(http.MethodPost, issuer+"/oauth2/consent", url.Values{"request": {c[1]}, "csrf": {c[2]}, "action": {"allow"}})
	}
	return p, consented
}
