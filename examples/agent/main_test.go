package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
	"github.com/behalf-dev/behalf/sdk"
)

const (
	weatherKey    = "weather-api-key"
	gatewayKeyID  = "BEHALFGATEWAYAGENT01"
	agentKeyID    = "BEHALFAGENTEXAMPLE01"
	helperKeyID   = "BEHALFHELPEREXAMPLE1"
	testSecret    = "behalf-agent-example-secret-0123456789"
	forecastParis = "sunny in Paris"
	mcpProvider   = "weather-mcp-server"
	mcpScope      = "weather.read"
	// alertsScope is the scope the MCP server's set_alert tool needs besides
	// mcpScope: a call of it with a token for mcpScope alone is stepped
	// up.
	alertsScope = "weather.alerts"
)

// world is behalf serving a gateway (mounted), the dev IdP as the users'
// IdP and an OAuth2 provider, the example agent behind the gateway's
// agent route, a second instance of it (workload helper-agent) behind a
// route that my-agent may call, the weather tool behind its tool route,
// and an MCP weather server behind its mcp route, whose authorization
// server is behalf's own (users sign in at the dev IdP as behalf's
// client agent); everything traced to one OTLP receiver.
type world struct {
	s        *behalftest.Server
	idp      *devidp.Server
	recv     *otlptest.Receiver
	gateway  string
	mcpURL   string // the mcp route, the MCP server's URL for its clients
	agentURL string
	flush    func(context.Context) error
}

func newWorld(t *testing.T, b behalftest.Backend) *world {
	w := &world{recv: otlptest.New(t)}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", w.recv.URL)
	w.idp = behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "app", Secret: "app-secret"}, {ID: "agent", Secret: "agent-secret"}}})
	weather := httptest.NewServer(newWeatherAPI(weatherKey))
	t.Cleanup(weather.Close)
	agentSrv := httptest.NewUnstartedServer(nil) // its address is the route's upstream; its handler needs behalf's
	t.Cleanup(agentSrv.Close)
	agentURL := "http://" + agentSrv.Listener.Addr().String()
	w.agentURL = agentURL
	helperSrv := httptest.NewUnstartedServer(nil)
	t.Cleanup(helperSrv.Close)
	mcpWeather := httptest.NewServer(newMCPWeather(t))
	t.Cleanup(mcpWeather.Close)
	loginSecret := filepath.Join(t.TempDir(), "dev-idp-agent")
	if err := os.WriteFile(loginSecret, []byte("agent-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	gatewayAddr := testnet.FreeAddr(t)
	w.mcpURL = "http://" + gatewayAddr + "/mcp/weather"
	w.s = behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) {
		f.Development = true
		f.PublicURL = "http://" + f.Listen // the authorization server's issuer
		discovery := w.idp.Issuer() + "/.well-known/openid-configuration"
		f.InboundAuthorizers = []config.InboundAuthorizerFile{{Name: "dev-idp", DiscoveryURL: discovery, AllowedClients: []string{"app"}},
			{Name: "login", DiscoveryURL: discovery, AllowedClients: []string{"agent"}}}
		f.AuthorizationServer = &config.AuthorizationServerFile{
			Login:     config.AuthServerLoginFile{Authorizer: "login", ClientID: "agent", ClientSecretFile: loginSecret},
			Resources: []config.AuthServerResourceFile{{Resource: w.mcpURL, Scopes: []string{mcpScope, alertsScope}}},
		}
		f.Telemetry.OTLP.Endpoint = w.recv.URL
		f.Telemetry.Traces.Enabled = true
		f.Gateway = config.MountedGatewayFile{Listen: gatewayAddr, Principal: gatewayKeyID, Routes: []config.GatewayRouteFile{
			{Name: "my-agent", Path: "/agents/my-agent", Upstream: agentURL, Kind: "agent", Workload: "my-agent", ReturnURL: agentURL + "/oauth2/done"},
			{Name: "helper", Path: "/agents/helper", Upstream: "http://" + helperSrv.Listener.Addr().String(), Kind: "agent", Workload: "helper-agent",
				Callers: []string{"my-agent"}},
			{Name: "weather", Path: "/tools/weather", Upstream: weather.URL + "/forecast", Kind: "tool",
				Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key"}},
			{Name: "weather-mcp", Path: "/mcp/weather", Upstream: mcpWeather.URL + "/mcp", Kind: "mcp", Workload: "weather-mcp",
				Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key"},
				MCPRouteFile: config.MCPRouteFile{Resource: w.mcpURL, AuthorizationServers: []string{f.PublicURL}, Scopes: []string{mcpScope},
					ToolScopes: map[string][]string{"tools/call:set_alert": {alertsScope}}}},
		}}
	}})
	w.gateway = "http://" + gatewayAddr
	w.setUp(t, agentURL)
	tracer, flush, err := newTracer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w.flush = flush
	agentSrv.Config.Handler = newAgent(behalftest.AWSConfig(agentKeyID, testSecret), tracer,
		options{Endpoint: w.s.URL, WeatherURL: w.gateway + "/tools/weather", Agents: w.gateway,
			MCP: mcpServer{Provider: mcpProvider, URL: w.mcpURL, Scopes: []string{mcpScope}}})
	agentSrv.Start()
	helperSrv.Config.Handler = newAgent(behalftest.AWSConfig(helperKeyID, testSecret), tracer,
		options{Endpoint: w.s.URL, WeatherURL: w.gateway + "/tools/weather", Agents: w.gateway})
	helperSrv.Start()
	return w
}

// setUp creates, as an operator would, the agents' workload identities,
// the MCP server's (whose callers come with behalf's own tokens), the two
// credential providers, and the principals of the gateway and of the
// agents, each allowed only what it does.
func (w *world) setUp(t *testing.T, agentURL string) {
	ctx := t.Context()
	c := w.s.Control()
	if _, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
		Name: aws.String("my-agent"), AllowedResourceOauth2ReturnUrls: []string{agentURL + "/oauth2/done"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("helper-agent")}); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"name": "weather-mcp", "allowedInboundAuthorizers": []string{config.AuthorizationServerAuthorizer}})
	if res := w.s.Do(t, behalftest.Raw{Path: "/identities/CreateWorkloadIdentity", Body: raw}); res.Status != http.StatusCreated {
		t.Fatalf("workload weather-mcp: %d %s", res.Status, res.Body)
	}
	if _, err := c.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{Name: aws.String("weather"), ApiKey: aws.String(weatherKey)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String("dev-idp"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String("agent"), ClientSecret: aws.String("agent-secret"),
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: w.idp.Issuer() + "/.well-known/openid-configuration"}}},
	}); err != nil {
		t.Fatal(err)
	}
	for id, p := range map[string]struct{ workloads, ops []string }{
		gatewayKeyID: {[]string{"my-agent", "helper-agent", "weather-mcp"},
			[]string{"GetWorkloadAccessTokenForJWT", "GetWorkloadAccessTokenForChain", "GetResourceApiKey", "GetResourceOauth2Token", "RecordGatewayCall"}},
		agentKeyID:  {[]string{"my-agent"}, []string{"GetResourceApiKey", "GetResourceOauth2Token", "CompleteResourceTokenAuth"}},
		helperKeyID: {[]string{"helper-agent"}, []string{"GetResourceApiKey"}},
	} {
		raw, _ := json.Marshal(map[string]any{"role": "runtime", "workloads": p.workloads, "accessKeyId": id, "secretAccessKey": testSecret, "operations": p.ops})
		if res := w.s.Do(t, behalftest.Raw{Path: "/behalf/CreatePrincipal", Body: raw}); res.Status != http.StatusCreated {
			t.Fatalf("principal %s: %d %s", id, res.Status, res.Body)
		}
	}
}

// userJWT is a user's token from the dev IdP (the password grant stands
// in for signing in to the application, client app).
func (w *world) userJWT(t *testing.T, user string) string {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, w.idp.Issuer()+"/token", strings.NewReader(url.Values{
		"grant_type": {"password"}, "username": {user}, "password": {"x"}, "scope": {"openid"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("password grant: %d %v", res.StatusCode, err)
	}
	return tok.AccessToken
}

// invoke calls the agent through the gateway as the user of jwt.
func (w *world) invoke(t *testing.T, jwt string, in request, headers map[string]string) (int, reply) {
	raw, _ := json.Marshal(in)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, w.gateway+"/agents/my-agent/invocations", strings.NewReader(string(raw)))
	req.Header.Set("Authorization", "Bearer "+jwt)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var out reply
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%d: not the agent's reply: %s", res.StatusCode, body)
	}
	return res.StatusCode, out
}

// TestAgentBehindGateway is the README's walk: a user calls the example
// agent through the gateway with their JWT; the agent, with the workload
// access token the gateway minted for that user, gets the API key, the
// forecast through the tool route (which injects the key), and the user's
// own token once they consented — all in one trace.
func TestAgentBehindGateway(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b)
		alice := w.userJWT(t, "alice")
		const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		status, out := w.invoke(t, alice, request{City: "Paris"}, map[string]string{
			"traceparent":           "00-" + traceID + "-00f067aa0ba902b7-01",
			sdk.HeaderWorkloadToken: "forged", sdk.HeaderUserID: "mallory", sdk.HeaderSessionID: "session-of-alice-0001"})
		if status != 200 || out.User != "alice" || out.Session != "session-of-alice-0001" || out.APIKey != "weather-… (15 characters)" || out.Forecast != forecastParis {
			t.Fatalf("alice's call: %d %+v", status, out)
		}

		// USER_FEDERATION: first the consent URL, then — after alice
		// allowed it and the agent completed the session with her JWT —
		// her own token. bob completing alice's session fails it.
		bob := w.userJWT(t, "bob")
		session := w.consent(t, alice)
		if status, bobs := w.invoke(t, bob, request{UserToken: true, SessionURI: session}, nil); status == 200 || bobs.User != "bob" || bobs.UserToken != "" {
			t.Errorf("bob completing alice's session: %d %+v", status, bobs)
		}
		status, out = w.invoke(t, alice, request{UserToken: true, SessionURI: w.consent(t, alice)}, nil)
		if status != 200 || out.UserTokenSubject != "alice" || !strings.HasPrefix(out.UserToken, "eyJ") {
			t.Fatalf("after consent: %d %+v", status, out)
		}
		if status, out = w.invoke(t, alice, request{UserToken: true}, nil); status != 200 || out.UserTokenSubject != "alice" {
			t.Errorf("the stored token, later: %d %+v", status, out)
		}
		if status, out = w.invoke(t, bob, request{UserToken: true}, nil); status != 200 || out.UserToken != "" || out.AuthorizationURL == "" {
			t.Errorf("bob, who has not consented: %d %+v", status, out)
		}

		w.checkToolRoute(t)
		w.checkTrace(t, traceID)
		w.checkChain(t, alice)
	})
}

// TestAgentCallsMCPServer is the README's "An agent calling an MCP server
// for its user": the MCP server behind the gateway's mcp route becomes a
// credential provider from its URL alone; alice asks the agent for the
// server's forecast tool and gets the consent URL — behalf's own
// authorization server, for the route as resource; she signs in at the
// dev IdP and allows on behalf's page, and lands on the agent's page;
// asked again with the session, the agent binds the token to her and
// calls the tool with it, and later calls use the stored token. bob has
// consented to nothing.
func TestAgentCallsMCPServer(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b)
		w.createMCPProvider(t)
		alice := w.userJWT(t, "alice")
		status, out := w.invoke(t, alice, request{MCP: "forecast", City: "Paris"}, nil)
		authURL, err := url.Parse(out.AuthorizationURL)
		if status != 200 || err != nil || out.SessionURI == "" || out.MCP != "" || out.APIKey != "" {
			t.Fatalf("before consent: %d %+v", status, out)
		}
		if q := authURL.Query(); !strings.HasPrefix(out.AuthorizationURL, w.s.URL+"/oauth2/authorize?") || q.Get("resource") != w.mcpURL || q.Get("scope") != mcpScope {
			t.Fatalf("consent URL: %s", out.AuthorizationURL)
		}
		if code, page := w.allow(t, out.AuthorizationURL, "alice"); code != 200 || !strings.Contains(page, out.SessionURI) {
			t.Fatalf("consent ended on %d:\n%s", code, page)
		}
		status, out = w.invoke(t, alice, request{MCP: "forecast", City: "Paris", SessionURI: out.SessionURI}, nil)
		if status != 200 || out.User != "alice" || out.MCP != forecastParis || out.AuthorizationURL != "" {
			t.Fatalf("after consent: %d %+v", status, out)
		}
		if status, out = w.invoke(t, alice, request{MCP: "forecast", City: "Lyon"}, nil); status != 200 || out.MCP != "sunny in Lyon" {
			t.Errorf("the stored token, later: %d %+v", status, out)
		}
		// The set_alert tool needs one more scope: the route answers 403
		// insufficient_scope, the agent's SDK client steps up, and alice
		// is asked to consent to both.
		status, out = w.invoke(t, alice, request{MCP: "set_alert", City: "Paris"}, nil)
		if status != 200 || out.MCP != "" || !slices.Equal(scopeParam(t, out.AuthorizationURL), []string{alertsScope, mcpScope}) {
			t.Fatalf("set_alert, before the step-up's consent: %d %+v", status, out)
		}
		if code, page := w.allow(t, out.AuthorizationURL, "alice"); code != 200 || !strings.Contains(page, out.SessionURI) {
			t.Fatalf("step-up consent ended on %d:\n%s", code, page)
		}
		if status, out = w.invoke(t, alice, request{MCP: "set_alert", City: "Paris", SessionURI: out.SessionURI}, nil); status != 200 || out.MCP != "alert set for Paris" {
			t.Fatalf("set_alert, after the step-up's consent: %d %+v", status, out)
		}
		if status, out = w.invoke(t, alice, request{MCP: "forecast", City: "Lyon"}, nil); status != 200 || out.MCP != "sunny in Lyon" {
			t.Errorf("forecast, with the stepped-up token: %d %+v", status, out)
		}
		if status, out = w.invoke(t, alice, request{MCP: "no_such_tool", City: "Lyon"}, nil); status != http.StatusBadGateway || !strings.Contains(out.Error, "no_such_tool") {
			t.Errorf("an unknown tool: %d %+v", status, out)
		}
		if status, out = w.invoke(t, w.userJWT(t, "bob"), request{MCP: "forecast", City: "Paris"}, nil); status != 200 || out.MCP != "" || out.AuthorizationURL == "" {
			t.Errorf("bob, who has not consented: %d %+v", status, out)
		}
	})
}

// TestMCPClientStepsUp is sdk.NewMCPClient under the official MCP Go
// SDK's client, as a long-running agent uses it: carol has consented to
// nothing; connecting asks her consent for the scopes behalf selects;
// once given, bound to her (CompleteResourceTokenAuth with her JWT) and
// waited for, the session calls forecast; its call of set_alert, which
// needs one more scope, asks her consent for both; once given, the same
// session's next call of set_alert succeeds.
func TestMCPClientStepsUp(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b)
		w.createMCPProvider(t)
		carol := w.userJWT(t, "carol")
		minted, err := w.s.Data().GetWorkloadAccessTokenForJWT(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
			WorkloadName: aws.String("my-agent"), UserToken: aws.String(carol)})
		if err != nil {
			t.Fatal(err)
		}
		api := w.s.DataAs(agentKeyID, testSecret)
		ctx := sdk.NewContext(t.Context(), sdk.Invocation{WorkloadToken: aws.ToString(minted.WorkloadAccessToken), CallbackURL: w.agentURL + "/oauth2/done"})
		hc, err := sdk.NewMCPClient(ctx, api, sdk.MCPServer{Provider: mcpProvider})
		if err != nil {
			t.Fatal(err)
		}
		consent := func(what string, err error, scopes ...string) {
			t.Helper()
			c, ok := errors.AsType[*sdk.ConsentRequired](err)
			if !ok {
				t.Fatalf("%s: %v, want *sdk.ConsentRequired", what, err)
			}
			if got := scopeParam(t, c.AuthorizationURL); !slices.Equal(got, scopes) {
				t.Errorf("%s: consent for %q, want %q", what, got, scopes)
			}
			if code, page := w.allow(t, c.AuthorizationURL, "carol"); code != 200 || !strings.Contains(page, c.SessionURI) {
				t.Fatalf("%s: consent ended on %d:\n%s", what, code, page)
			}
			if _, err := api.CompleteResourceTokenAuth(ctx, &bedrockagentcore.CompleteResourceTokenAuthInput{
				SessionUri: aws.String(c.SessionURI), UserIdentifier: &types.UserIdentifierMemberUserToken{Value: carol}}); err != nil {
				t.Fatalf("%s: CompleteResourceTokenAuth: %v", what, err)
			}
			if _, err := c.Wait(ctx, sdk.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}); err != nil {
				t.Fatalf("%s: Wait: %v", what, err)
			}
		}
		client := mcp.NewClient(&mcp.Implementation{Name: "sdk-test", Version: "1.0.0"}, nil)
		transport := &mcp.StreamableClientTransport{Endpoint: w.mcpURL, HTTPClient: hc, DisableStandaloneSSE: true}
		_, err = client.Connect(ctx, transport, nil)
		consent("connecting", err, mcpScope)
		session, err := client.Connect(ctx, transport, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = session.Close() }()
		call := func(tool string) (string, error) {
			res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"city": "Paris"}})
			if err != nil {
				return "", err
			}
			if len(res.Content) != 1 || res.IsError {
				return "", fmt.Errorf("%s answered %+v", tool, res)
			}
			return res.Content[0].(*mcp.TextContent).Text, nil
		}
		if text, err := call("forecast"); err != nil || text != forecastParis {
			t.Fatalf("forecast: %q %v", text, err)
		}
		_, err = call("set_alert")
		consent("set_alert", err, alertsScope, mcpScope)
		if text, err := call("set_alert"); err != nil || text != "alert set for Paris" {
			t.Fatalf("set_alert after the step-up: %q %v", text, err)
		}
		if text, err := call("forecast"); err != nil || text != forecastParis {
			t.Errorf("forecast after the step-up: %q %v", text, err)
		}
	})
}

// createMCPProvider makes the mcp route's URL an MCP server provider.
func (w *world) createMCPProvider(t *testing.T) {
	raw, _ := json.Marshal(map[string]string{"name": mcpProvider, "serverUrl": w.mcpURL})
	if res := w.s.Do(t, behalftest.Raw{Path: "/behalf/CreateMcpServerCredentialProvider", Body: raw}); res.Status != http.StatusCreated {
		t.Fatalf("CreateMcpServerCredentialProvider: %d %s", res.Status, res.Body)
	}
}

// scopeParam is the sorted scopes of an authorization URL.
func scopeParam(t *testing.T, authURL string) []string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatalf("authorization URL %q: %v", authURL, err)
	}
	return slices.Sorted(slices.Values(strings.Fields(u.Query().Get("scope"))))
}

// allow plays the user's browser from a consent URL at behalf's
// authorization server: sign-in at the dev IdP, Allow on behalf's consent
// page, then every redirect — to behalf's callback and on to the agent's
// page, whose status and text it returns.
func (w *world) allow(t *testing.T, authURL, user string) (int, string) {
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar}
	_, page := browse(t, b, http.MethodGet, authURL, nil)
	m := regexp.MustCompile(`name="form_token" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in page: %s", page)
	}
	_, page = browse(t, b, http.MethodPost, w.idp.Issuer()+"/consent", url.Values{"form_token": {m[1]}, "username": {user}, "action": {"allow"}})
	c := regexp.MustCompile(`name="request" value="([^"]+)">\s*<input type="hidden" name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if c == nil {
		t.Fatalf("no consent page at behalf: %s", page)
	}
	return browse(t, b, http.MethodPost, w.s.URL+"/oauth2/consent", url.Values{"request": {c[1]}, "csrf": {c[2]}, "action": {"allow"}})
}

func browse(t *testing.T, b *http.Client, method, u string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(form.Encode()))
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// newMCPWeather is the MCP server behind the mcp route, as
// examples/mcp-weather (a separate command): a forecast tool, and a
// set_alert tool, for which the route asks one more scope, for callers with
// its key, which the gateway injects, and without the client's token.
func newMCPWeather(t *testing.T) http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcp-weather", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "forecast"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		City string `json:"city"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sunny in " + in.City}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "set_alert"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		City string `json:"city"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "alert set for " + in.City}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != weatherKey || r.Header.Get("Authorization") != "" {
			t.Errorf("the MCP server got X-Api-Key %q and Authorization %q", r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"))
			http.Error(rw, "refused", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(rw, r)
	})
}

// checkChain: alice asks my-agent, which asks helper through the gateway
// with its own workload access token: helper acts for alice through
// my-agent, and says so; its call to behalf is recorded so.
func (w *world) checkChain(t *testing.T, jwt string) {
	status, out := w.invoke(t, jwt, request{City: "Lyon", Ask: "helper"}, map[string]string{"X-Behalf-Identity-Chain": "mallory"})
	if status != 200 || out.Actors != nil || out.Helper == nil {
		t.Fatalf("alice asking my-agent to ask helper: %d %+v", status, out)
	}
	if h := out.Helper; !slices.Equal(h.Actors, []string{"my-agent"}) || h.Forecast != "sunny in Lyon" || h.APIKey != out.APIKey || h.User != "" {
		t.Errorf("helper's answer: %+v", h)
	}
	// helper's own GetResourceApiKey, and the gateway's for helper's call
	// to the tool route, both with helper's token.
	raw, _ := json.Marshal(map[string]any{"workload": "helper-agent", "operation": "GetResourceApiKey"})
	res := w.s.Do(t, behalftest.Raw{Path: "/behalf/ListAuditRecords", Body: raw})
	var page struct {
		Records []struct {
			Principal, User string
			Actors          []string
		} `json:"records"`
	}
	if err := json.Unmarshal(res.Body, &page); err != nil || len(page.Records) != 2 {
		t.Fatalf("ListAuditRecords: %d %s", res.Status, res.Body)
	}
	for i, r := range page.Records {
		if r.Principal != []string{helperKeyID, gatewayKeyID}[i] || !strings.HasSuffix(r.User, "#alice") || !slices.Equal(r.Actors, []string{"my-agent"}) {
			t.Errorf("GetResourceApiKey record %d with helper's token: %+v", i, r)
		}
	}
}

// consent asks the agent for the user's token, which it answers with the
// consent URL; the user allows, and returns to the agent's page.
func (w *world) consent(t *testing.T, jwt string) (sessionURI string) {
	status, out := w.invoke(t, jwt, request{UserToken: true}, nil)
	if status != 200 || !strings.Contains(out.AuthorizationURL, "/authorize?") || out.SessionURI == "" || out.UserToken != "" {
		t.Fatalf("before consent: %d %+v", status, out)
	}
	code, page := behalftest.Consent(t, out.AuthorizationURL, out.User, true)
	if code != 200 || !strings.Contains(page, out.SessionURI) {
		t.Fatalf("consent ended on %d:\n%s", code, page)
	}
	return out.SessionURI
}

// checkToolRoute calls the tool route as the agent does, with a forged
// key: the tool gets exactly the stored one.
func (w *world) checkToolRoute(t *testing.T) {
	minted, err := w.s.Data().GetWorkloadAccessTokenForJWT(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
		WorkloadName: aws.String("my-agent"), UserToken: aws.String(w.userJWT(t, "alice"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		headers map[string]string
		want    int
	}{
		{map[string]string{sdk.HeaderWorkloadToken: aws.ToString(minted.WorkloadAccessToken), "X-Api-Key": "forged"}, 200},
		{map[string]string{"X-Api-Key": weatherKey}, 401}, // no workload token: the gateway refuses, even with the right key
		{map[string]string{sdk.HeaderWorkloadToken: "forged"}, 401},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.gateway+"/tools/weather?city=Paris", nil)
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != tc.want || tc.want == 200 && !strings.Contains(string(body), forecastParis) {
			t.Errorf("tool route with %v: %d %s, want %d", tc.headers, res.StatusCode, body, tc.want)
		}
	}
}

// checkTrace: the first call is one trace — the caller's — holding the
// gateway's span, behalf's minting of the workload access token, the
// agent's invocation, its data-plane call and behalf's answer to it, and
// the tool call through the gateway; with no user or token in any span.
func (w *world) checkTrace(t *testing.T, traceID string) {
	if err := w.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := w.s.Server.Telemetry().ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, s := range w.recv.Spans() {
		if hex.EncodeToString(s.TraceId) == traceID {
			count[s.Name+"/"+strings.TrimPrefix(s.Kind.String(), "SPAN_KIND_")]++
		}
		for _, a := range s.Attributes {
			if v := a.Value.String(); strings.Contains(v, "alice") || strings.Contains(v, "eyJ") || strings.Contains(v, weatherKey) {
				t.Errorf("span %s holds a user or a credential in %s", s.Name, a.Key)
			}
		}
	}
	for _, want := range []string{
		"gateway my-agent/SERVER",             // the call to the agent
		"gateway weather/SERVER",              // the agent's call to the tool
		"GetWorkloadAccessTokenForJWT/SERVER", // behalf minting the agent's token for alice
		"POST /invocations/SERVER",            // the agent
		"GetResourceApiKey/CLIENT",            // the agent asking behalf
		"GetResourceApiKey/SERVER",            // behalf answering, for the agent and for the tool route
		"GET /tools/weather/CLIENT",           // the agent calling the tool route
	} {
		if count[want] == 0 {
			t.Errorf("no span %s in the trace; it holds %v", want, count)
		}
	}
	if count["GetResourceApiKey/SERVER"] < 2 {
		t.Errorf("the trace holds %v: want behalf's answer to the agent and to the tool route", count)
	}
}
