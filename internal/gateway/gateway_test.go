package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
)

const (
	weatherKey = "weather-api-key-123"
	workload   = "my-agent"
)

// world is behalf with the dev IdP as the users' IdP and an OAuth2
// provider, an agent and two tools behind a gateway signing as a runtime
// principal of my-agent.
type world struct {
	s     *behalftest.Server
	idp   *devidp.Server
	clock *testclock.Clock
	// idpClock is the dev IdP's, which a test may turn back to get an
	// expired JWT.
	idpClock  *testclock.Clock
	data      *bedrockagentcore.Client // signed as the gateway's principal
	gateway   string
	returnURL string
	agent     *agent
	tool      *tool
	// down is an address nothing listens on: the upstream of route down.
	down string
}

// Access key of the principal the mounted gateway acts as.
const (
	gatewayKeyID  = "BEHALFGATEWAYTEST01"
	gatewaySecret = "behalf-gateway-test-secret-0123456789"
)

// newWorld runs the gateway standalone (its own listener, the data plane
// over HTTP) or, mounted, inside behalf serve (the data plane in memory).
func newWorld(t *testing.T, b behalftest.Backend, mounted bool, edits ...func(*config.File)) *world {
	t.Helper()
	return newLoggedWorld(t, b, mounted, nil, edits...)
}

// newLoggedWorld is newWorld with the server's log (and the mounted
// gateway's) sent to log.
func newLoggedWorld(t *testing.T, b behalftest.Backend, mounted bool, log *slog.Logger, edits ...func(*config.File)) *world {
	t.Helper()
	w := &world{clock: testclock.Running(), idpClock: testclock.Running()}
	w.idp = behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "app", Secret: "app-secret"}, {ID: "agent", Secret: "agent-secret"},
		{ID: mcpClient, Secret: mcpClientSecret}},
		Now: w.idpClock.Now})
	w.agent, w.tool, w.down = newAgent(t), newTool(t), testnet.FreeAddr(t)
	var gatewayAddr string
	w.s = behalftest.Start(t, b, behalftest.Options{Now: w.clock.Now, Log: log, Edit: func(f *config.File) {
		f.Development = true
		f.InboundAuthorizers = []config.InboundAuthorizerFile{{Name: "dev", DiscoveryURL: w.idp.Issuer() + "/.well-known/openid-configuration", AllowedClients: []string{"app"}}}
		if mounted {
			gatewayAddr = testnet.FreeAddr(t)
			w.returnURL = "http://" + f.Listen + "/dev/complete"
			f.Gateway = config.MountedGatewayFile{Listen: gatewayAddr, Principal: gatewayKeyID, Routes: w.routes()}
		}
		for _, edit := range edits {
			edit(f)
		}
	}})
	w.returnURL = w.s.URL + "/dev/complete"
	ctx := context.Background()
	w.do(t, "/identities/CreateWorkloadIdentity", map[string]any{"name": workload, "allowedInboundAuthorizers": []string{"dev"},
		"allowedResourceOauth2ReturnUrls": []string{w.returnURL}}, http.StatusCreated)
	c := w.s.Control()
	if _, err := c.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{Name: aws.String("weather"), ApiKey: aws.String(weatherKey)}); err != nil {
		t.Fatal(err)
	}
	w.createOAuth2Provider(t, "dev-idp", "agent", "agent-secret", w.idp.Issuer()+"/.well-known/openid-configuration")
	w.do(t, "/behalf/CreatePrincipal", map[string]any{"role": "runtime", "workloads": []string{workload}, "accessKeyId": gatewayKeyID,
		"secretAccessKey": gatewaySecret, "operations": []string{"GetWorkloadAccessTokenForJWT", "GetWorkloadAccessTokenForSignedCaller", "GetResourceApiKey", "GetResourceOauth2Token", "RecordGatewayCall"}}, http.StatusCreated)
	w.data = w.s.DataAs(gatewayKeyID, gatewaySecret)
	w.agent.data = w.data
	if mounted {
		w.gateway = "http://" + gatewayAddr
		return w
	}
	w.gateway = w.standalone(t, gateway.Options{})
	return w
}

// createOAuth2Provider creates a CustomOauth2 provider found through
// discoveryURL, for a client of that IdP, and returns its callback URL.
func (w *world) createOAuth2Provider(t *testing.T, name, clientID, secret, discoveryURL string) string {
	t.Helper()
	out, err := w.s.Control().CreateOauth2CredentialProvider(t.Context(), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String(name), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String(clientID), ClientSecret: aws.String(secret),
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: discoveryURL}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.CallbackUrl)
}

// standalone serves the world's routes, and extra, from a standalone
// gateway with opts, signing as the gateway's principal, and returns its
// URL.
func (w *world) standalone(t *testing.T, opts gateway.Options, extra ...config.GatewayRouteFile) string {
	t.Helper()
	f := config.GatewayDefaults()
	f.Endpoint, f.Routes = w.s.URL, append(w.routes(), extra...)
	cfg, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	opts.Data = w.data
	g, err := gateway.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func (w *world) routes() []config.GatewayRouteFile {
	return []config.GatewayRouteFile{
		{Name: workload, Path: "/agent", Upstream: w.agent.URL, Kind: "agent", Workload: workload, ReturnURL: w.returnURL,
			MaxBodyBytes: 1 << 10, Timeout: 2 * time.Second},
		{Name: "weather", Path: "/weather", Upstream: w.tool.URL + "/weather", Kind: "tool",
			Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key"}},
		{Name: "weather-q", Path: "/weather-q", Upstream: w.tool.URL + "/weather-q", Kind: "tool",
			Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", QueryParameter: "key", CacheTTL: new(time.Duration(0))}},
		{Name: "billing", Path: "/billing", Upstream: w.tool.URL + "/billing", Kind: "tool",
			Credential: config.GatewayCredentialFile{Provider: "dev-idp", Type: "m2m", Scopes: []string{"openid"}}},
		{Name: "me", Path: "/me", Upstream: w.tool.URL + "/me", Kind: "tool", ReturnURL: w.returnURL,
			Credential: config.GatewayCredentialFile{Provider: "dev-idp", Type: "user", Scopes: []string{"openid"}}},
		{Name: "stream", Path: "/stream", Upstream: w.tool.URL + "/stream", Kind: "tool", MaxBodyBytes: 1 << 10, Timeout: time.Second,
			Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key"}},
		{Name: "down", Path: "/down", Upstream: "http://" + w.down, Kind: "tool",
			Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key"}},
	}
}

func (w *world) do(t *testing.T, path string, body any, want int) {
	t.Helper()
	raw, _ := json.Marshal(body)
	res := w.s.Do(t, behalftest.Raw{Path: path, Body: raw})
	if res.Status != want {
		t.Fatalf("%s: %d %s", path, res.Status, res.Body)
	}
}

// userJWT is a user's access token for the app from the dev IdP
// (password grant).
func (w *world) userJWT(t *testing.T, user string) string {
	t.Helper()
	return w.userJWTFor(t, "app", "app-secret", user)
}

// userJWTFor is a user's access token for a client of the dev IdP.
func (w *world) userJWTFor(t *testing.T, client, secret, user string) string {
	t.Helper()
	return w.passwordToken(t, client, secret, url.Values{"username": {user}, "scope": {"openid"}})
}

// passwordToken is the access token the dev IdP grants a client for a
// user by the password grant, with the form's other parameters.
func (w *world) passwordToken(t *testing.T, client, secret string, form url.Values) string {
	t.Helper()
	form.Set("grant_type", "password")
	form.Set("password", "x")
	req, _ := http.NewRequest(http.MethodPost, w.idp.Issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
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

// reply is a gateway response, read.
type reply struct {
	StatusCode int
	Header     http.Header
	body       []byte
	// readErr is why the body ended before its end (a cut stream).
	readErr error
}

// call sends a request through the gateway and reads the whole response.
func (w *world) call(t *testing.T, method, path, body string, headers map[string]string) reply {
	t.Helper()
	r := w.send(t, method, path, body, headers)
	if r.readErr != nil {
		t.Fatal(r.readErr)
	}
	return r
}

// send sends a request through the gateway and reads the response as far
// as it goes.
func (w *world) send(t *testing.T, method, path, body string, headers map[string]string) reply {
	t.Helper()
	res := w.open(t, method, path, body, headers)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return reply{StatusCode: res.StatusCode, Header: res.Header, body: raw, readErr: err}
}

// open sends a request through the gateway; the caller closes the body.
func (w *world) open(t *testing.T, method, path, body string, headers map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, w.gateway+path, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func decode(t *testing.T, r reply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%d: not JSON: %s", r.StatusCode, r.body)
	}
	return m
}

// agent stands in for an agent: /invocations exchanges the workload
// access token it was given for the weather API key, and reports the
// headers it received.
type agent struct {
	*httptest.Server
	release chan struct{}
	data    *bedrockagentcore.Client // set before the first call
	fail    atomic.Bool              // /invocations drops the connection
}

func newAgent(t *testing.T) *agent {
	a := &agent{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /invocations", func(w http.ResponseWriter, r *http.Request) {
		if a.fail.Load() {
			hangUp(w)
			return
		}
		out := map[string]any{"headers": r.Header}
		key, err := a.data.GetResourceApiKey(r.Context(), &bedrockagentcore.GetResourceApiKeyInput{
			ResourceCredentialProviderName: aws.String("weather"), WorkloadIdentityToken: aws.String(r.Header.Get(gateway.HeaderWAT))})
		if err != nil {
			out["error"] = err.Error()
		} else {
			out["apiKey"] = aws.ToString(key.ApiKey)
		}
		w.Header().Set(gateway.HeaderSessionID, "the-agent-cannot-change-it")
		if body, _ := io.ReadAll(r.Body); string(body) == `{"stream":true}` { // answered as server-sent events
			w.Header().Set("Content-Type", "text/event-stream")
			raw, _ := json.Marshal(out)
			_, _ = io.WriteString(w, "data: "+string(raw)+"\n\n")
			http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, "data: done\n\n")
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /stream", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-a.release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: second\n\n")
	})
	mux.HandleFunc("POST /flood", func(w http.ResponseWriter, r *http.Request) { // far more than socket buffers hold
		_, _ = io.Copy(io.Discard, r.Body)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 4 << 10 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("POST /slow", func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the gateway hanging up
		<-r.Context().Done()
	})
	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, _ *http.Request) { hangUp(w) })
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	return a
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
}

// tool stands in for the tools: /weather accepts only the weather key
// (or the one set with accept), /billing refuses its first call, /me
// returns the token it was given; below /stream, /cut starts a stream and
// cuts it and /slow never answers; any path ending in /moved redirects,
// echoing the query it was sent.
type tool struct {
	*httptest.Server
	mu     sync.Mutex
	seen   []*http.Request
	status atomic.Int32 // when set, every call is answered with it
	key    atomic.Pointer[string]
}

// accept makes /weather accept key instead.
func (tl *tool) accept(key string) { tl.key.Store(&key) }

func newTool(t *testing.T) *tool {
	tl := &tool{}
	tl.accept(weatherKey)
	billingCalls := 0
	tl.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tl.mu.Lock()
		tl.seen = append(tl.seen, r)
		billingCalls += map[bool]int{true: 1}[r.URL.Path == "/billing"]
		first := billingCalls == 1 && r.URL.Path == "/billing"
		tl.mu.Unlock()
		switch {
		case tl.status.Load() != 0:
			w.WriteHeader(int(tl.status.Load()))
		case strings.HasSuffix(r.URL.Path, "/moved"): // echoes the query it was sent, credential included
			w.Header().Set("Content-Location", r.URL.Path+"/there?"+r.URL.RawQuery)
			http.Redirect(w, r, r.URL.Path+"/there?"+r.URL.RawQuery, http.StatusFound) //nolint:gosec // G710: this tool echoes its request on purpose
		case r.URL.Path == "/stream/cut":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: first\n\n")
			http.NewResponseController(w).Flush()
			hangUp(w)
		case r.URL.Path == "/stream/slow":
			<-r.Context().Done()
		case r.URL.Path == "/weather" && r.Header.Get("X-Api-Key") != *tl.key.Load(),
			r.URL.Path == "/weather-q" && r.URL.Query().Get("key") != *tl.key.Load(),
			first:
			w.WriteHeader(http.StatusUnauthorized)
		default:
			_ = json.NewEncoder(w).Encode(map[string]string{"authorization": r.Header.Get("Authorization"), "body": string(body)})
		}
	}))
	t.Cleanup(tl.Close)
	return tl
}

func (tl *tool) last() *http.Request {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.seen[len(tl.seen)-1]
}

func TestAgentRoute(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, false)
		jwt := w.userJWT(t, "alice")
		res := w.call(t, "POST", "/agent/invocations", `{"prompt":"hi"}`, map[string]string{
			"Authorization": "Bearer " + jwt, "Content-Type": "application/json", "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant": "t1",
			gateway.HeaderSessionID: "session-0123456789-0123456789-0123456789"})
		out := decode(t, res)
		if res.StatusCode != 200 || out["apiKey"] != weatherKey {
			t.Fatalf("the agent did not get the API key with the WAT it was given: %d %v", res.StatusCode, out)
		}
		if got := res.Header.Values(gateway.HeaderSessionID); len(got) != 1 || got[0] != "session-0123456789-0123456789-0123456789" {
			t.Errorf("session id returned: %v", got)
		}
		h := forwardedHeaders(t, res)
		wat := h.Get(gateway.HeaderWAT)
		if wat == "" || h.Get(gateway.HeaderWATLegacy) != wat {
			t.Errorf("WAT headers: %q %q", wat, h.Get(gateway.HeaderWATLegacy))
		}
		if h.Get("Authorization") != "Bearer "+jwt || h.Get(gateway.HeaderCallbackURL) != w.returnURL ||
			h.Get("X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant") != "t1" || h.Get(gateway.HeaderSessionID) != "session-0123456789-0123456789-0123456789" {
			t.Errorf("forwarded headers: %v", h)
		}
		if rid := h.Get(gateway.HeaderRequestID); rid == "" {
			t.Errorf("no request id")
		}
		// The WAT is alice's: its user-federation session completes with
		// alice's JWT (behalf fails a session completed by another user),
		// and then yields her token.
		tokenReq := &bedrockagentcore.GetResourceOauth2TokenInput{
			ResourceCredentialProviderName: aws.String("dev-idp"), WorkloadIdentityToken: aws.String(wat), Scopes: []string{"openid"},
			Oauth2Flow: "USER_FEDERATION", ResourceOauth2ReturnUrl: aws.String(w.returnURL)}
		tok, err := w.s.Data().GetResourceOauth2Token(t.Context(), tokenReq)
		if err != nil || tok.AuthorizationUrl == nil {
			t.Fatalf("USER_FEDERATION with the minted WAT: %v", err)
		}
		behalftest.Consent(t, *tok.AuthorizationUrl, "alice", true)
		complete := func(jwt string) error {
			_, err := w.s.Data().CompleteResourceTokenAuth(t.Context(), &bedrockagentcore.CompleteResourceTokenAuthInput{
				SessionUri: tok.SessionUri, UserIdentifier: &types.UserIdentifierMemberUserToken{Value: jwt}})
			return err
		}
		if err := complete(jwt); err != nil {
			t.Fatalf("alice could not complete her session: %v", err)
		}
		if tok, err = w.s.Data().GetResourceOauth2Token(t.Context(), tokenReq); err != nil || !strings.HasPrefix(aws.ToString(tok.AccessToken), "eyJ") {
			t.Errorf("alice's token after consent: %v", err)
		}
		res = w.call(t, "POST", "/agent/invocations", `{}`, map[string]string{"Authorization": "Bearer " + w.userJWT(t, "bob")})
		if sid := res.Header.Get(gateway.HeaderSessionID); res.StatusCode != 200 || len(sid) < 32 {
			t.Errorf("a generated session id: %d %q", res.StatusCode, sid)
		}
	})
}

func TestAgentRouteUpstreamFailures(t *testing.T) {
	w := newWorld(t, behalftest.Backends[0], false)
	auth := map[string]string{"Authorization": "Bearer " + w.userJWT(t, "alice"), "Accept": "text/event-stream"}

	release := sync.OnceFunc(func() { close(w.agent.release) })
	t.Cleanup(release)
	res := w.open(t, "POST", "/agent/stream", `{}`, auth)
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: first\n" || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("first event before the agent finished: %d %q %v", res.StatusCode, line, err)
	}
	release()

	arn := url.PathEscape("arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/" + workload)
	if res := w.call(t, "POST", "/runtimes/"+arn+"/invocations?qualifier=DEFAULT", `{}`, auth); res.StatusCode != 200 || decode(t, res)["apiKey"] != weatherKey {
		t.Errorf("InvokeAgentRuntime path: %d", res.StatusCode)
	}
	// InvokeAgentRuntime's path answers the agent's failures as AgentCore
	// does: RuntimeClientError.
	w.agent.fail.Store(true)
	if res := w.call(t, "POST", "/runtimes/"+workload+"/invocations", `{}`, auth); res.StatusCode != 424 || decode(t, res)["__type"] != "RuntimeClientError" {
		t.Errorf("InvokeAgentRuntime, the agent dropping the connection: %d", res.StatusCode)
	}
	if res := w.call(t, "POST", "/runtimes/"+url.PathEscape("arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/other")+"/invocations", `{}`, auth); res.StatusCode != 404 {
		t.Errorf("an unknown runtime: %d", res.StatusCode)
	}
}

// TestInvokeAgentRuntimeResolvesARNs: the runtime an ARN's last segment
// names is the agent route of that name, or else the first agent route
// serving a workload of that name, whatever order the routes come in.
func TestInvokeAgentRuntimeResolvesARNs(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, false)
		auth := map[string]string{"Authorization": "Bearer " + w.userJWT(t, "alice")}
		// Routes whose agent cannot be reached: a call they served would be
		// answered 424.
		unreachable := func(name, workload string) config.GatewayRouteFile {
			return config.GatewayRouteFile{Name: name, Path: "/" + name, Upstream: "http://" + w.down, Kind: "agent", Workload: workload}
		}
		w.gateway = w.standalone(t, gateway.Options{}, unreachable("second-"+workload, workload), unreachable("other-agent", workload),
			unreachable("other", "other-agent"))
		for _, id := range []string{workload, "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/" + workload} {
			if res := w.call(t, "POST", "/runtimes/"+url.PathEscape(id)+"/invocations", `{}`, auth); res.StatusCode != 200 {
				t.Errorf("%s reached another route than the one named %s: %d", id, workload, res.StatusCode)
			}
		}
		// other-agent names a route of workload my-agent (whose agent cannot
		// be reached), and is the workload of route other (a workload
		// behalf does not know).
		if res := w.call(t, "POST", "/runtimes/other-agent/invocations", `{}`, auth); res.StatusCode != 424 {
			t.Errorf("other-agent reached another route than the one of that name: %d %s", res.StatusCode, res.body)
		}
	})
}

// TestSlowReaderReleased: a caller that stops reading a response does
// not hold its call for ever: the route's timeout, and the time to record
// and answer a call, bound the writing of its response too.
func TestSlowReaderReleased(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, false)
		log := &lockedBuffer{}
		w.gateway = w.standalone(t, gateway.Options{Log: slog.New(slog.NewJSONHandler(log, nil))})
		conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", strings.TrimPrefix(w.gateway, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req := "POST /agent/flood HTTP/1.1\r\nHost: gateway\r\nContent-Length: 2\r\nAuthorization: Bearer " + w.userJWT(t, "alice") + "\r\n\r\n{}"
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for len(log.lines(t, "gateway call")) == 0 { // logged as the call ends
			if time.Since(start) > 30*time.Second {
				t.Fatal("the call of a caller that reads nothing has not ended")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestToolRoutes(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, false)
		minted, err := w.s.Data().GetWorkloadAccessTokenForUserId(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
			WorkloadName: aws.String(workload), UserId: aws.String("alice")})
		if err != nil {
			t.Fatal(err)
		}
		wat := aws.ToString(minted.WorkloadAccessToken)
		res := w.call(t, "POST", "/weather?city=paris", `{"q":1}`, map[string]string{gateway.HeaderWAT: wat})
		if out := decode(t, res); res.StatusCode != 200 || out["body"] != `{"q":1}` || out["authorization"] != "" {
			t.Errorf("weather: %d %v", res.StatusCode, out)
		}
		seen := w.tool.last()
		if got := seen.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != weatherKey || seen.Header.Get(gateway.HeaderWAT) != "" || seen.URL.Query().Get("city") != "paris" {
			t.Errorf("the tool saw %v %v", seen.Header, seen.URL)
		}
		res = w.call(t, "GET", "/weather-q?key=forged&city=paris", ``, map[string]string{gateway.HeaderWAT: wat})
		if q := w.tool.last().URL.Query(); res.StatusCode != 200 || q["key"][0] != weatherKey || len(q["key"]) != 1 {
			t.Errorf("query parameter: %d %v", res.StatusCode, q)
		}

		res = w.call(t, "POST", "/billing", `{"month":"2026-11"}`, map[string]string{gateway.HeaderWAT: wat})
		if out := decode(t, res); res.StatusCode != 200 || !strings.HasPrefix(out["authorization"].(string), "Bearer eyJ") || out["body"] != `{"month":"2026-11"}` {
			t.Errorf("billing (M2M, retried after a 401): %d %v", res.StatusCode, out)
		}

		res = w.call(t, "GET", "/me", ``, map[string]string{gateway.HeaderWAT: wat})
		out := decode(t, res)
		if res.StatusCode != 401 || out["__type"] != "ConsentRequiredException" || out["sessionUri"] == "" {
			t.Fatalf("before consent: %d %v", res.StatusCode, out)
		}
		if code, page := behalftest.Consent(t, out["authorizationUrl"].(string), "alice", true); code != 200 || !strings.Contains(page, "Connected") {
			t.Fatalf("consent: %d %s", code, page)
		}
		res = w.call(t, "GET", "/me", ``, map[string]string{gateway.HeaderWAT: wat})
		if out := decode(t, res); res.StatusCode != 200 || !strings.HasPrefix(out["authorization"].(string), "Bearer eyJ") {
			t.Errorf("after consent: %d %v", res.StatusCode, out)
		}
	})
}

// TestMountedGateway is the gateway inside behalf serve: the same calls,
// with the data plane reached in memory as the configured principal.
func TestMountedGateway(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, true)
		res := w.call(t, "POST", "/agent/invocations", `{}`, map[string]string{"Authorization": "Bearer " + w.userJWT(t, "alice"), gateway.HeaderWAT: "forged"})
		if out := decode(t, res); res.StatusCode != 200 || out["apiKey"] != weatherKey {
			t.Fatalf("agent: %d %v", res.StatusCode, out)
		}
		if res := w.call(t, "POST", "/agent/invocations", `{}`, map[string]string{"Authorization": "Bearer forged"}); res.StatusCode != 401 {
			t.Errorf("a forged JWT: %d", res.StatusCode)
		}
		minted, err := w.s.Data().GetWorkloadAccessTokenForUserId(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
			WorkloadName: aws.String(workload), UserId: aws.String("alice")})
		if err != nil {
			t.Fatal(err)
		}
		res = w.call(t, "GET", "/weather", ``, map[string]string{gateway.HeaderWAT: aws.ToString(minted.WorkloadAccessToken), "X-Api-Key": "forged"})
		if got := w.tool.last().Header.Values("X-Api-Key"); res.StatusCode != 200 || len(got) != 1 || got[0] != weatherKey {
			t.Errorf("tool: %d %v", res.StatusCode, got)
		}
	})
}

// TestMountedGatewayTraces: a call through the mounted gateway is a SERVER
// span in the caller's trace; the data-plane call that mints the workload
// access token and the CLIENT span of the call to the agent (which names no
// provider) are under it, and the agent receives the CLIENT span as its
// parent.
func TestMountedGatewayTraces(t *testing.T) {
	recv := otlptest.New(t)
	w := newWorld(t, behalftest.Backends[0], true, func(f *config.File) {
		f.Telemetry.OTLP.Endpoint = recv.URL
		f.Telemetry.Traces.Enabled = true
	})
	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	res := w.call(t, "POST", "/agent/invocations", `{}`, map[string]string{"Authorization": "Bearer " + w.userJWT(t, "alice"),
		"traceparent": "00-" + traceID + "-" + callerSpan + "-01"})
	out := decode(t, res)
	if res.StatusCode != 200 {
		t.Fatalf("%d %v", res.StatusCode, out)
	}
	if err := w.s.Server.Telemetry().ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var server, client, mint *tracepb.Span
	for _, s := range recv.Spans() {
		if hex.EncodeToString(s.TraceId) != traceID {
			continue
		}
		switch {
		case s.Name == "gateway "+workload:
			server = s
		case s.Kind == tracepb.Span_SPAN_KIND_CLIENT:
			client = s
		case s.Name == "GetWorkloadAccessTokenForJWT":
			mint = s
		}
	}
	if server == nil || client == nil || mint == nil {
		t.Fatalf("spans in the caller's trace: gateway %v, upstream call %v, mint %v", server != nil, client != nil, mint != nil)
	}
	if hex.EncodeToString(server.ParentSpanId) != callerSpan || server.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("the gateway's span is under %x, want the caller's %s", server.ParentSpanId, callerSpan)
	}
	if !bytes.Equal(client.ParentSpanId, server.SpanId) {
		t.Errorf("the upstream call is not under the gateway's span")
	}
	for _, a := range client.Attributes {
		if a.Key == "behalf.provider" || a.Key == "behalf.endpoint" {
			t.Errorf("the upstream call, to no provider, has %s %q", a.Key, a.Value.GetStringValue())
		}
	}
	got := out["headers"].(map[string]any)["Traceparent"].([]any)[0].(string)
	if want := "00-" + traceID + "-" + hex.EncodeToString(client.SpanId) + "-01"; got != want {
		t.Errorf("the agent received traceparent %s, want %s", got, want)
	}
	for _, s := range recv.Spans() {
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.String(), "alice") || strings.Contains(a.Value.String(), "eyJ") {
				t.Errorf("span %s holds a user or a token in %s", s.Name, a.Key)
			}
		}
	}
}
