package gateway_test

// An mcp route whose credential is the user's own token at the dev IdP
// (type user): the user's consent, which the gateway needs first, reaches
// the official MCP Go SDK's client as URL-mode elicitation, in MCP
// 2026-07-28's multi round-trip form and as 2025-11-25's
// URLElicitationRequiredError; a client that does not elicit by URL gets
// the consent as a JSON-RPC error. The test plays the user's browser at
// the dev IdP and the application behind the route's return URL.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestMCPConsentElicitation: on SQLite and PostgreSQL, each client acts
// for a user of its own, who has not consented yet.
func TestMCPConsentElicitation(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		mw := newMCPWorld(t, b, true, func(f *config.File, r *config.GatewayRouteFile) {
			r.ReturnURL = "http://" + f.Listen + "/dev/complete"
			r.Credential = config.GatewayCredentialFile{Provider: "dev-idp", Type: "user", Scopes: []string{"openid"}}
		})
		mw.server.stateless.Store(true)
		t.Run("2026-07-28", func(t *testing.T) { mw.checkElicited(t, "alice", "2026-07-28") })
		t.Run("2025-11-25", func(t *testing.T) { mw.checkElicited(t, "bob", "2025-11-25") })
		t.Run("no url elicitation", func(t *testing.T) { mw.checkStructured(t, "carol") })
		t.Run("requestState", func(t *testing.T) { mw.checkRequestState(t) })
		mw.checkConsentAudited(t)
	})
}

// checkElicited: the client's elicitation handler gets the dev IdP's
// authorization URL on its first tools/call, plays the user's browser
// there, and the retried call reaches the MCP server with the user's
// token; the session's set-up and listing reached it without one.
func (mw *mcpWorld) checkElicited(t *testing.T, user, version string) {
	var elicited []*mcp.ElicitParams
	token := mw.userToken(t, user)
	consent := func(ctx context.Context, params *mcp.ElicitParams) *mcp.ElicitResult {
		elicited = append(elicited, params)
		mw.consentAs(ctx, t, params.URL, user, token)
		return &mcp.ElicitResult{Action: "accept"}
	}
	handler := func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		return consent(ctx, req.Params), nil
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "behalf-test", Version: "1.0.0"}, &mcp.ClientOptions{ElicitationHandler: handler,
		Capabilities: &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}}})
	if version == "2025-11-25" {
		// The client side of URLElicitationRequiredError, which the SDK
		// leaves to its user: elicit, then send the request again.
		client.AddSendingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
			return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
				res, err := next(ctx, method, req)
				var rpcErr *jsonrpc.Error
				if !errors.As(err, &rpcErr) || rpcErr.Code != mcp.CodeURLElicitationRequired {
					return res, err
				}
				var data struct {
					Elicitations []*mcp.ElicitParams `json:"elicitations"`
				}
				if err := json.Unmarshal(rpcErr.Data, &data); err != nil || len(data.Elicitations) != 1 {
					t.Fatalf("URLElicitationRequiredError: %s %v", rpcErr.Data, err)
				}
				consent(ctx, data.Elicitations[0])
				return next(ctx, method, req)
			}
		})
	}
	before := len(mw.server.seen())
	session := mw.mcpSession(t, client, token, version)
	res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}})
	if err != nil || res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "hello" {
		t.Fatalf("tools/call echo: %+v %v", res, err)
	}
	if len(elicited) != 1 || elicited[0].Mode != "url" || !strings.HasPrefix(elicited[0].URL, mw.idp.Issuer()+"/") ||
		elicited[0].ElicitationID == "" || strings.Contains(elicited[0].ElicitationID, "/") {
		t.Fatalf("elicitations: %+v, want one for the dev IdP's authorization URL", elicited)
	}
	var anonymous, withToken int
	for _, h := range mw.server.seen()[before:] {
		switch auth := h.Get("Authorization"); {
		case auth == "":
			anonymous++
		case strings.HasPrefix(auth, "Bearer eyJ"):
			withToken++
		default:
			t.Errorf("the MCP server received Authorization %q", auth)
		}
	}
	if anonymous == 0 || withToken == 0 {
		t.Errorf("the MCP server saw %d requests without the user's token and %d with it", anonymous, withToken)
	}
	// Consented, the next call needs no elicitation.
	if res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "again"}}); err != nil || res.IsError || len(elicited) != 1 {
		t.Errorf("tools/call after consent: %+v %v, %d elicitations", res, err, len(elicited))
	}
}

// checkStructured: a client that does not declare URL-mode elicitation
// (of either revision) gets the consent as a JSON-RPC error carrying the
// authorization URL and the session's URI, not a 401 that would send it
// back to its own authorization server.
func (mw *mcpWorld) checkStructured(t *testing.T, user string) {
	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		client := mcp.NewClient(&mcp.Implementation{Name: "behalf-test", Version: "1.0.0"}, nil)
		session := mw.mcpSession(t, client, mw.userToken(t, user), version)
		_, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}})
		var rpcErr *jsonrpc.Error
		var data map[string]string
		if !errors.As(err, &rpcErr) || rpcErr.Code != -32000 || json.Unmarshal(rpcErr.Data, &data) != nil ||
			data["__type"] != "ConsentRequiredException" || !strings.HasPrefix(data["authorizationUrl"], mw.idp.Issuer()+"/") || data["sessionUri"] == "" {
			t.Errorf("%s: %v, want the JSON-RPC consent error", version, err)
		}
	}
}

// userToken is user's access token for route mcp.
func (mw *mcpWorld) userToken(t *testing.T, user string) string {
	t.Helper()
	return mw.passwordToken(t, mcpClient, mcpClientSecret, url.Values{"username": {user}, "scope": {mcpScope}, "resource": {mw.resource}})
}

// consentAs plays user's browser at the dev IdP's consent page and
// behalf's callback, up to the route's return URL, where the application
// behind it completes the session for the user whose token it holds
// (CompleteResourceTokenAuth).
func (mw *mcpWorld) consentAs(ctx context.Context, t *testing.T, authURL, user, token string) {
	t.Helper()
	p, _ := asBrowse(ctx, t, authURL, devSignInAs(mw.idp.Issuer(), user), "", mw.returnURL)
	back, err := url.Parse(p.header.Get("Location"))
	if err != nil || back.Query().Get("session_id") == "" {
		t.Fatalf("consent: %d %s %s", p.status, p.header.Get("Location"), p.body)
	}
	if _, err := mw.s.Data().CompleteResourceTokenAuth(ctx, &bedrockagentcore.CompleteResourceTokenAuthInput{
		SessionUri: aws.String(back.Query().Get("session_id")), UserIdentifier: &types.UserIdentifierMemberUserToken{Value: token}}); err != nil {
		t.Fatalf("CompleteResourceTokenAuth: %v", err)
	}
}

// mcpSession connects client to route mcp with an access token at a
// protocol revision.
func (mw *mcpWorld) mcpSession(t *testing.T, client *mcp.Client, token, version string) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: bearerTransport{token}}
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: mw.resource, HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = session.Close() })
	if got := session.InitializeResult().ProtocolVersion; got != version {
		t.Fatalf("negotiated %s, want %s", got, version)
	}
	return session
}

// bearerTransport sends an access token with every request.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// checkRequestState: a requestState forged, of another user, of another
// call, or expired is refused as invalid params; the gateway's own, for
// the same call, asks again while the user has not consented.
func (mw *mcpWorld) checkRequestState(t *testing.T) {
	dave := mw.passwordToken(t, mcpClient, mcpClientSecret, url.Values{"username": {"dave"}, "scope": {mcpScope}, "resource": {mw.resource}})
	erin := mw.passwordToken(t, mcpClient, mcpClientSecret, url.Values{"username": {"erin"}, "scope": {mcpScope}, "resource": {mw.resource}})
	call := func(token, text, state string) map[string]json.RawMessage {
		t.Helper()
		params := map[string]any{"name": "echo", "arguments": map[string]any{"text": text}, "_meta": map[string]any{
			"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
			"io.modelcontextprotocol/clientCapabilities": map[string]any{"elicitation": map[string]any{"url": map[string]any{}}}}}
		if state != "" {
			params["requestState"], params["inputResponses"] = state, map[string]any{"behalf_consent": map[string]any{"action": "accept"}}
		}
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params})
		res := mw.call(t, "POST", "/mcp", string(body), map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json",
			"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": "2026-07-28"})
		var out map[string]json.RawMessage
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" || json.Unmarshal(res.body, &out) != nil {
			t.Fatalf("tools/call: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), res.body)
		}
		return out
	}
	stateOf := func(out map[string]json.RawMessage) string {
		t.Helper()
		var result struct {
			ResultType    string                     `json:"resultType"`
			InputRequests map[string]json.RawMessage `json:"inputRequests"`
			RequestState  string                     `json:"requestState"`
		}
		if json.Unmarshal(out["result"], &result) != nil || result.ResultType != "input_required" || result.InputRequests["behalf_consent"] == nil || result.RequestState == "" {
			t.Fatalf("not input_required: %s", out["result"])
		}
		return result.RequestState
	}
	state := stateOf(call(dave, "hi", ""))
	if again := stateOf(call(dave, "hi", state)); again == "" {
		t.Error("the retry without consent was not asked again")
	}
	for name, c := range map[string]struct{ token, text, state string }{
		"forged":       {dave, "hi", "behalf1.e30.AAAA"},
		"tampered":     {dave, "hi", state[:len(state)-2] + "AA"},
		"another user": {erin, "hi", state},
		"another call": {dave, "bye", state},
	} {
		if out := call(c.token, c.text, c.state); !strings.Contains(string(out["error"]), `"code":-32602`) {
			t.Errorf("%s requestState: %s", name, out["error"])
		}
	}
	mw.clock.Advance(16 * time.Minute)
	defer mw.clock.Advance(-16 * time.Minute)
	if out := call(dave, "hi", state); !strings.Contains(string(out["error"]), `"code":-32602`) {
		t.Errorf("expired requestState: %s", out["error"])
	}
}

// checkConsentAudited: the gateway's records name the consent it asked
// for, never its URL.
func (mw *mcpWorld) checkConsentAudited(t *testing.T) {
	t.Helper()
	recs, all := mw.records(t, "RecordGatewayCall")
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.ErrorType]++
	}
	if seen["URLElicitationRequired"] < 3 || seen["ConsentRequiredException"] < 2 || seen["InvalidRequestState"] < 5 {
		t.Errorf("records by error type: %v", seen)
	}
	if strings.Contains(all, mw.idp.Issuer()+"/authorize") || strings.Contains(all, "state=") {
		t.Errorf("a record holds the authorization URL: %s", all)
	}
}
