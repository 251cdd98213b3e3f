package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"

	"github.com/behalf-dev/behalf/sdk"
)

// An agent's HTTP server: the runtime's headers in each request's context,
// and the /ping contract.
func ExampleMiddleware() {
	invoke := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "acting for %s in session %s\n", sdk.UserID(r.Context()), sdk.SessionID(r.Context()))
	}
	mux := http.NewServeMux()
	mux.Handle("POST /invocations", sdk.Middleware(http.HandlerFunc(invoke)))
	mux.Handle("GET /ping", new(sdk.Ping))
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	_ = srv.ListenAndServe()
}

// A tool that needs an API key, wrapped like requires_api_key.
func ExampleWithAPIKey() {
	var cfg aws.Config // from config.LoadDefaultConfig
	api := bedrockagentcore.NewFromConfig(cfg)
	forecast := sdk.WithAPIKey(api, sdk.APIKey{Provider: "weather"},
		func(_ context.Context, key string, city string) (string, error) {
			return fmt.Sprintf("sunny in %s (asked with a %d-character key)", city, len(key)), nil
		})
	ctx := context.Background() // in a handler: r.Context(), with the workload token
	fmt.Println(forecast(ctx, "Lisbon"))
}

// The user's own token, without blocking: the first call returns the URL
// the user must open; Wait returns the token once they have consented.
func ExampleConsentRequired() {
	var api *bedrockagentcore.Client
	ctx := context.Background()
	repos := sdk.WithAccessToken(api, sdk.OAuth2{Provider: "github", Flow: sdk.UserFederation, Scopes: []string{"repo"}},
		func(_ context.Context, token string, owner string) ([]string, error) {
			return []string{fmt.Sprintf("%s/notes (listed with a %d-character token)", owner, len(token))}, nil
		})
	_, err := repos(ctx, "alice")
	if consent, ok := errors.AsType[*sdk.ConsentRequired](err); ok {
		fmt.Println("please open", consent.AuthorizationURL)
		if _, err := consent.Wait(ctx); err != nil {
			fmt.Println(err)
		}
	}
}

// An HTTP client that sends an M2M token and, on a 401, gets a new one and
// retries once.
func ExampleTransport() {
	var api *bedrockagentcore.Client
	ctx := context.Background()
	ts, err := sdk.NewTokenSource(ctx, api, sdk.OAuth2{Provider: "billing", Flow: sdk.M2M, Scopes: []string{"invoices:read"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: &sdk.Transport{Credential: ts}}
	res, err := client.Get("https://billing.example/invoices")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
}

// The MCP Go SDK's client calling a remote MCP server with the user's
// token, from the MCP server provider "notes"; a tool that needs more
// scopes is stepped up to them.
func ExampleNewMCPClient() {
	var api *bedrockagentcore.Client
	ctx := context.Background() // in a handler: r.Context(), with the workload token
	hc, err := sdk.NewMCPClient(ctx, api, sdk.MCPServer{Provider: "notes"})
	if err != nil {
		fmt.Println(err)
		return
	}
	// transport := &mcp.StreamableClientTransport{Endpoint: "https://mcp.example.com/mcp", HTTPClient: hc}
	// session, err := mcp.NewClient(impl, nil).Connect(ctx, transport, nil)
	// A call the user has not consented to yet fails with an error
	// wrapping the *sdk.ConsentRequired: show its URL, Wait, call again.
	_ = hc
}

// Calling another agent for the same user.
func ExamplePropagateWorkloadToken() {
	var cfg aws.Config
	agents := bedrockagentcore.NewFromConfig(cfg, sdk.PropagateWorkloadToken)
	ctx := sdk.NewContext(context.Background(), sdk.Invocation{WorkloadToken: "…"}) // in a handler: r.Context()
	_, _ = agents.InvokeAgentRuntime(ctx, &bedrockagentcore.InvokeAgentRuntimeInput{
		AgentRuntimeArn: aws.String("arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/helper"),
		Payload:         []byte(`{"prompt":"hello"}`),
	})
}
