// Package sdk is behalf's Go SDK for agents: it reads the identity the
// runtime hands an agent, and turns it into the credentials the agent's
// tools need, through the AgentCore Identity data plane (behalf, or
// AgentCore itself). An agent written with it runs unchanged behind
// behalf gateway or on AgentCore Runtime.
//
// # Serving an agent
//
// The runtime calls the agent at POST /invocations with the user's
// workload access token and the session in headers; Middleware puts them
// in the request's context, and Ping answers GET /ping:
//
//	mux := http.NewServeMux()
//	mux.Handle("POST /invocations", sdk.Middleware(http.HandlerFunc(invoke)))
//	mux.Handle("GET /ping", new(sdk.Ping))
//
// In invoke, sdk.WorkloadToken(ctx), sdk.SessionID(ctx), sdk.UserID(ctx),
// sdk.CallbackURL(ctx), sdk.RequestHeaders(ctx) and, for a call from
// another agent, sdk.Actors(ctx) describe the call.
//
// # Credentials for tools
//
// The data-plane client is the AWS SDK's:
//
//	api := bedrockagentcore.NewFromConfig(cfg, func(o *bedrockagentcore.Options) {
//		o.BaseEndpoint = aws.String("http://127.0.0.1:8787") // behalf; omit for AgentCore
//	})
//
// WithAccessToken and WithAPIKey wrap a tool function, like AgentCore's
// requires_access_token and requires_api_key, taking the workload token
// from the context:
//
//	weather := sdk.WithAPIKey(api, sdk.APIKey{Provider: "weather"},
//		func(ctx context.Context, key string, city string) (string, error) { … })
//
// For an HTTP API, NewTokenSource gives an oauth2.TokenSource and
// NewAPIKeySource a key source; either in a Transport makes an
// http.Client that sends the credential, and on a 401 gets a new one and
// retries once:
//
//	ts, err := sdk.NewTokenSource(ctx, api, sdk.OAuth2{Provider: "github", Flow: sdk.UserFederation, Scopes: []string{"repo"}})
//	client := &http.Client{Transport: &sdk.Transport{Credential: ts}}
//
// # Remote MCP servers
//
// NewMCPClient gives the MCP Go SDK's client an http.Client that sends
// the user's token for a remote MCP server, from the MCP server provider
// behalf made from the server's URL. Naming no scopes leaves their choice
// to behalf; when a tool answers 403 with a Bearer insufficient_scope
// challenge (RFC 6750 §3.1), the client asks for the challenged scopes
// too and sends the call again (the MCP authorization specification's
// "Scope Challenge Handling"), at most MCPServer.MaxStepUps times a call:
//
//	hc, err := sdk.NewMCPClient(ctx, api, sdk.MCPServer{Provider: "notes"})
//	session, err := mcp.NewClient(impl, nil).Connect(ctx,
//		&mcp.StreamableClientTransport{Endpoint: "https://mcp.example.com/mcp", HTTPClient: hc}, nil)
//
// Transport.MaxStepUps does the same for any *TokenSource.
//
// # When the user must consent
//
// A USER_FEDERATION token the user has not yet authorized fails with a
// *ConsentRequired carrying the authorization URL: show it to the user
// (return it to the caller), then Wait for the token. Set OAuth2.OnAuthURL
// instead to show the URL and wait in one call. Through a Transport, as
// through NewMCPClient's client, the request fails with an error wrapping
// the *ConsentRequired, the first time and on a step-up alike; after
// Wait, send it again.
//
// # Workload JWTs
//
// GetWorkloadJWT gets a JWT of behalf's own naming the agent's workload
// identity, for an authorization server that takes it as an RFC 7523
// jwt-bearer assertion (the MCP workload identity federation extension)
// and trusts behalf's workload JWT issuer; behalf's counterpart of AWS
// STS GetWebIdentityToken, it needs behalf as the client's BaseEndpoint:
//
//	jwt, expiry, err := sdk.GetWorkloadJWT(ctx, api, sdk.WorkloadJWT{Audiences: []string{"https://auth.example.com/token"}})
//
// # Agent to agent
//
// PropagateWorkloadToken makes a bedrockagentcore client send the
// context's workload token with InvokeAgentRuntime, so that the agent
// called acts for the same user. Behind behalf gateway, whose route for
// the agent called names this agent's workload among its callers, the
// agent called gets a token for that user naming the chain of agents
// the call came through, and sdk.Actors(ctx) there lists them:
//
//	agents := bedrockagentcore.NewFromConfig(cfg, sdk.PropagateWorkloadToken, func(o *bedrockagentcore.Options) {
//		o.BaseEndpoint = aws.String("http://127.0.0.1:8788") // behalf gateway
//	})
//	// In the agent called: sdk.Actors(ctx) is ["<this agent's workload>"].
package sdk
