// Command agent is an agent written with behalf's Go SDK, to run behind
// behalf gateway (or AgentCore Runtime, unchanged). On POST /invocations
// it acts for the user who called it, with the workload access token the
// gateway minted for that user: it gets the weather API key from behalf,
// asks the weather tool for a forecast through the gateway's tool route
// (which injects the key: the agent sends none), and, when asked, gets
// the user's own token (USER_FEDERATION), answering with the consent URL
// until the user has given it; when asked, asks another agent through the
// gateway for the same user (an identity chain), reporting the chain it
// was itself called through; and, when asked, calls a tool of a remote MCP
// server for the user, with the user's token for that server, which behalf
// obtains from the server's authorization server (an MCP server provider,
// USER_FEDERATION; sdk.NewMCPClient, which asks for more scopes when a
// tool needs them).
//
//	export AWS_SHARED_CREDENTIALS_FILE=$PWD/behalf-data/admin-credentials AWS_REGION=us-east-1
//	go run ./examples/agent                                                          # the agent, on 127.0.0.1:8080
//	WEATHER_API_KEY=weather-api-key go run ./examples/agent -weather-api 127.0.0.1:8090   # the tool it calls
//
// MCP_PROVIDER (weather-mcp-server), MCP_SERVER_URL
// (http://127.0.0.1:8788/mcp/weather) and MCP_SCOPES (weather.read, space
// separated) name the MCP server provider, the server and the scopes the
// agent asks for.
//
// With OTEL_EXPORTER_OTLP_ENDPOINT set, it traces its invocations in the
// caller's trace (the gateway's).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/sdk"
)

func main() {
	log.SetFlags(0)
	listen := flag.String("listen", "127.0.0.1:8080", "where the agent listens")
	weatherAPI := flag.String("weather-api", "", "serve only the weather tool, at this address, accepting the key in WEATHER_API_KEY")
	flag.Parse()
	ctx := context.Background()
	if *weatherAPI != "" {
		key := os.Getenv("WEATHER_API_KEY")
		if key == "" {
			log.Fatal("set WEATHER_API_KEY to the key the weather tool accepts")
		}
		log.Printf("weather tool on http://%s/forecast, accepting only its key in X-Api-Key", *weatherAPI)
		log.Fatal(serve(*weatherAPI, newWeatherAPI(key)))
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil || cfg.Region == "" {
		log.Fatal("no AWS credentials or region: export AWS_SHARED_CREDENTIALS_FILE=$PWD/behalf-data/admin-credentials AWS_REGION=us-east-1")
	}
	tracer, shutdown, err := newTracer(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = shutdown(context.WithoutCancel(ctx)) }()
	h := newAgent(cfg, tracer, options{
		Endpoint:   env("BEHALF_ENDPOINT", "http://127.0.0.1:8787"),
		WeatherURL: env("WEATHER_URL", "http://127.0.0.1:8788/tools/weather"),
		Agents:     env("AGENTS_URL", "http://127.0.0.1:8788"),
		MCP: mcpServer{
			Provider: env("MCP_PROVIDER", "weather-mcp-server"),
			URL:      env("MCP_SERVER_URL", "http://127.0.0.1:8788/mcp/weather"),
			Scopes:   strings.Fields(env("MCP_SCOPES", "weather.read")),
		},
	})
	log.Printf("agent on http://%s: POST /invocations, GET /ping", *listen)
	log.Fatal(serve(*listen, h))
}

func serve(addr string, h http.Handler) error {
	s := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return s.ListenAndServe()
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// options say where the agent's calls go.
type options struct {
	Endpoint   string // behalf's data plane
	WeatherURL string // the gateway's tool route to the weather API
	Agents     string // the gateway, where other agents are invoked
	MCP        mcpServer
}

// mcpServer is a remote MCP server the agent calls for its users, with
// their tokens from the MCP server provider behalf holds for it.
type mcpServer struct {
	Provider string
	URL      string
	Scopes   []string
}

// request is an invocation's payload.
type request struct {
	City string `json:"city"`
	// UserToken asks for the caller's own token at the dev IdP.
	UserToken bool `json:"userToken"`
	// SessionURI, after the user consented, is the session the agent
	// completes for the caller (CompleteResourceTokenAuth with the
	// caller's JWT, which the gateway propagates).
	SessionURI string `json:"sessionUri"`
	// Ask names another agent's runtime (a gateway route) to ask for the
	// forecast too, for the same user.
	Ask string `json:"ask"`
	// MCP names a tool of the MCP server to call for the user, with the
	// city as its argument; the agent does only that.
	MCP string `json:"mcp"`
}

// reply is the agent's answer: what it did for whom. Credentials appear
// shortened.
type reply struct {
	User             string `json:"user"` // the subject of the caller's JWT
	Session          string `json:"session"`
	APIKey           string `json:"apiKey,omitempty"`
	Forecast         string `json:"forecast,omitempty"` // from the weather tool, through the gateway
	UserToken        string `json:"userToken,omitempty"`
	UserTokenSubject string `json:"userTokenSubject,omitempty"`
	AuthorizationURL string `json:"authorizationUrl,omitempty"`
	SessionURI       string `json:"sessionUri,omitempty"`
	// Actors are the agents the call came through (an identity chain);
	// none when a user called.
	Actors []string `json:"actors,omitempty"`
	// Helper is the answer of the agent asked (request.Ask).
	Helper *reply `json:"helper,omitempty"`
	// MCP is the text the MCP server's tool answered (request.MCP).
	MCP   string `json:"mcp,omitempty"`
	Error string `json:"error,omitempty"`
}

type agent struct {
	api       *bedrockagentcore.Client
	agents    *bedrockagentcore.Client // InvokeAgentRuntime at the gateway
	region    string
	tool      aws.HTTPClient
	tracer    trace.Tracer
	weather   string
	apiKey    func(context.Context, struct{}) (string, error)
	userToken func(context.Context, struct{}) (string, error)
	mcpTool   func(context.Context, toolCall) (string, error)
}

// newAgent serves the agent: /invocations behind sdk.Middleware, /ping,
// and /oauth2/done, where the user returns after consent.
func newAgent(cfg aws.Config, tracer trace.Tracer, o options) http.Handler {
	cfg.HTTPClient = tracingClient{next: httpClient(cfg.HTTPClient), tracer: tracer}
	api := bedrockagentcore.NewFromConfig(cfg, func(bo *bedrockagentcore.Options) { bo.BaseEndpoint = aws.String(o.Endpoint) })
	itself := func(_ context.Context, credential string, _ struct{}) (string, error) { return credential, nil }
	// Other agents are invoked through the gateway with this agent's
	// workload access token (sdk.PropagateWorkloadToken): the gateway then
	// calls them for the same user.
	agents := bedrockagentcore.NewFromConfig(cfg, sdk.PropagateWorkloadToken, func(bo *bedrockagentcore.Options) { bo.BaseEndpoint = aws.String(o.Agents) })
	a := &agent{
		api:       api,
		agents:    agents,
		region:    cfg.Region,
		tool:      tracingClient{next: &http.Client{Timeout: 30 * time.Second}, tracer: tracer},
		tracer:    tracer,
		weather:   o.WeatherURL,
		apiKey:    sdk.WithAPIKey(api, sdk.APIKey{Provider: "weather"}, itself),
		userToken: sdk.WithAccessToken(api, sdk.OAuth2{Provider: "dev-idp", Flow: sdk.UserFederation, Scopes: []string{"openid", "profile"}}, itself),
	}
	a.mcpTool = func(ctx context.Context, call toolCall) (string, error) {
		// The user's token for the server, stepped up when a tool needs
		// more scopes than it has (a 403 insufficient_scope).
		hc, err := sdk.NewMCPClient(ctx, api, sdk.MCPServer{Provider: o.MCP.Provider, Scopes: o.MCP.Scopes, Base: roundTripper{a.tool}})
		if err != nil {
			return "", err
		}
		return a.callTool(ctx, o.MCP.URL, hc, call)
	}
	ping := new(sdk.Ping)
	mux := http.NewServeMux()
	mux.Handle("POST /invocations", sdk.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer ping.Track()()
		a.invoke(w, r)
	})))
	mux.Handle("GET /ping", ping)
	mux.HandleFunc("GET /oauth2/done", consentDone)
	return mux
}

func httpClient(c aws.HTTPClient) aws.HTTPClient {
	if c == nil {
		return http.DefaultClient
	}
	return c
}

func (a *agent) invoke(w http.ResponseWriter, r *http.Request) {
	ctx, span := a.tracer.Start(propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header)),
		"POST /invocations", trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	var in request
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, reply{Error: "the payload is not JSON: " + err.Error()})
		return
	}
	jwt := strings.TrimPrefix(sdk.RequestHeaders(ctx).Get("Authorization"), "Bearer ")
	out := reply{User: subject(jwt), Session: sdk.SessionID(ctx), Actors: sdk.Actors(ctx)}
	status, err := a.act(ctx, in, jwt, &out)
	if err != nil {
		out.Error = err.Error()
	}
	writeJSON(w, status, out)
}

// act does what the user asked, for that user.
func (a *agent) act(ctx context.Context, in request, jwt string, out *reply) (int, error) {
	if in.MCP != "" {
		return a.asUser(ctx, in.SessionURI, jwt, out, func() (err error) {
			out.MCP, err = a.mcpTool(ctx, toolCall{Name: in.MCP, City: in.City})
			return err
		})
	}
	key, err := a.apiKey(ctx, struct{}{})
	if err != nil {
		return http.StatusBadGateway, fmt.Errorf("API key: %w", err)
	}
	out.APIKey = shorten(key)
	if out.Forecast, err = a.forecast(ctx, in.City); err != nil {
		return http.StatusBadGateway, err
	}
	if in.Ask != "" {
		if out.Helper, err = a.ask(ctx, in.Ask, in.City); err != nil {
			return http.StatusBadGateway, err
		}
	}
	if !in.UserToken {
		return http.StatusOK, nil
	}
	return a.asUser(ctx, in.SessionURI, jwt, out, func() error {
		token, err := a.userToken(ctx, struct{}{})
		if err != nil {
			return fmt.Errorf("user token: %w", err)
		}
		out.UserToken, out.UserTokenSubject = shorten(token), subject(token)
		return nil
	})
}

// asUser runs call, which needs the user's own token (USER_FEDERATION):
// after the user consented, the agent first completes the session with
// the caller's JWT, so that the token is bound to that user; until then
// it answers with the consent URL.
func (a *agent) asUser(ctx context.Context, sessionURI, jwt string, out *reply, call func() error) (int, error) {
	if sessionURI != "" {
		if _, err := a.api.CompleteResourceTokenAuth(ctx, &bedrockagentcore.CompleteResourceTokenAuthInput{
			SessionUri: aws.String(sessionURI), UserIdentifier: &types.UserIdentifierMemberUserToken{Value: jwt}}); err != nil {
			return http.StatusBadGateway, fmt.Errorf("completing the consent: %w", err)
		}
	}
	err := call()
	if consent, ok := errors.AsType[*sdk.ConsentRequired](err); ok {
		out.AuthorizationURL, out.SessionURI = consent.AuthorizationURL, consent.SessionURI
		return http.StatusOK, nil
	}
	if err != nil {
		return http.StatusBadGateway, err
	}
	return http.StatusOK, nil
}

// toolCall is a call of an MCP server's tool that takes a city.
type toolCall struct {
	Name, City string
}

// callTool calls the MCP server's tool with the official MCP SDK's
// client, over hc, and returns the tool's text.
func (a *agent) callTool(ctx context.Context, serverURL string, hc *http.Client, call toolCall) (string, error) {
	session, err := mcp.NewClient(&mcp.Implementation{Name: "behalf-example-agent", Version: "1.0.0"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: serverURL, HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return "", fmt.Errorf("MCP server %s: %w", serverURL, err)
	}
	defer func() { _ = session.Close() }()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: call.Name, Arguments: map[string]any{"city": call.City}})
	if err != nil {
		return "", fmt.Errorf("MCP tool %s: %w", call.Name, err)
	}
	var text []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			text = append(text, t.Text)
		}
	}
	if res.IsError {
		return "", fmt.Errorf("MCP tool %s: %s", call.Name, strings.Join(text, " "))
	}
	return strings.Join(text, "\n"), nil
}

// roundTripper sends requests with a traced client.
type roundTripper struct{ aws.HTTPClient }

func (r roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return r.Do(req) }

// forecast asks the weather tool through the gateway, presenting the
// workload access token: the gateway adds the API key.
func (a *agent) forecast(ctx context.Context, city string) (string, error) {
	if city == "" {
		city = "Paris"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.weather+"?city="+url.QueryEscape(city), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set(sdk.HeaderWorkloadToken, sdk.WorkloadToken(ctx))
	res, err := a.tool.Do(req)
	if err != nil {
		return "", fmt.Errorf("weather tool: %w", err)
	}
	defer func() { _ = res.Body.Close() }()
	var body struct{ Forecast, Error string }
	_ = json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("weather tool: HTTP %d %s", res.StatusCode, body.Error)
	}
	return body.Forecast, nil
}

// ask asks the agent behind the gateway's runtime named name for the
// forecast too (InvokeAgentRuntime; the gateway routes by the ARN's last
// segment), presenting this agent's workload access token.
func (a *agent) ask(ctx context.Context, name, city string) (*reply, error) {
	payload, err := json.Marshal(request{City: city})
	if err != nil {
		return nil, err
	}
	out, err := a.agents.InvokeAgentRuntime(ctx, &bedrockagentcore.InvokeAgentRuntimeInput{
		AgentRuntimeArn: aws.String("arn:aws:bedrock-agentcore:" + a.region + ":000000000000:runtime/" + name),
		Payload:         payload, ContentType: aws.String("application/json"), Accept: aws.String("application/json")})
	if err != nil {
		return nil, fmt.Errorf("asking agent %s: %w", name, err)
	}
	defer func() { _ = out.Response.Close() }()
	var answer reply
	if err := json.NewDecoder(io.LimitReader(out.Response, 64<<10)).Decode(&answer); err != nil {
		return nil, fmt.Errorf("agent %s's answer: %w", name, err)
	}
	return &answer, nil
}

// urnAlphabet is what a session URI (RFC 9126 §2.2 request_uri) is made of.
const urnAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_."

// consentDone is the page the user's browser returns to after consent.
func consentDone(w http.ResponseWriter, r *http.Request) {
	session := r.URL.Query().Get("session_id")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if session == "" || len(session) > 512 || strings.Trim(session, urnAlphabet) != "" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "no session_id\n")
		return
	}
	//nolint:gosec // plain text, not sniffed, and the session id holds only urnAlphabet
	_, _ = fmt.Fprintf(w, "Consent given. Ask the agent again with your JWT and the same payload, adding\n  \"sessionUri\": %q\nso that it binds the token to you.\n", session)
}

// newWeatherAPI is the weather tool: it answers only requests carrying
// its key, once, in X-Api-Key.
func newWeatherAPI(key string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /forecast", func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != key {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid X-Api-Key is required"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"forecast": "sunny in " + r.URL.Query().Get("city")})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // the authorization URL, as the user copies it
	_ = enc.Encode(v)
}

// subject reads a JWT's sub claim, for display only: the gateway and
// behalf have verified the token, the agent need not.
func subject(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	_ = json.Unmarshal(raw, &claims)
	return claims.Sub
}

// shorten shows a credential's first characters and length only.
func shorten(s string) string {
	return fmt.Sprintf("%s… (%d characters)", s[:min(8, len(s))], len(s))
}
