package mcpconformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/mcpauth"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// The environment the suite gives its client.
const (
	envScenario = "MCP_CONFORMANCE_SCENARIO"
	envContext  = "MCP_CONFORMANCE_CONTEXT"
)

const (
	workload = "conformance-agent"
	user     = "alice"
	provider = "conformance"
	// maxStepUps bounds the authorizations asked for after a 403
	// insufficient_scope (MCP authorization, "Scope Challenge Handling").
	maxStepUps = 2
)

// scenarioContext is MCP_CONFORMANCE_CONTEXT: a pre-registered client,
// with a secret or a private key (private_key_jwt); for enterprise-managed
// authorization, the enterprise IdP, behalf's client there and the user's
// ID token it issued.
type scenarioContext struct {
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret"`
	PrivateKeyPEM    string `json:"private_key_pem"`
	SigningAlgorithm string `json:"signing_algorithm"`
	IDPIssuer        string `json:"idp_issuer"`
	IDPClientID      string `json:"idp_client_id"`
	IDPIDToken       string `json:"idp_id_token"`
	// ClientMetadataDocumentURL is not the suite's: where the client's
	// metadata document is served when not by behalf.
	ClientMetadataDocumentURL string `json:"-"`
}

// suiteClientDocument is the Client ID Metadata Document URL the suite
// expects its clients to have (auth/basic-cimd).
const suiteClientDocument = "https://conformance-test.local/client-metadata.json"

// enterprise names the enterprise IdP's inbound authorizer and OAuth2
// credential provider.
const enterprise = "enterprise-idp"

// TestClient is the conformance suite's client, spawned by it with the
// MCP server's URL as the last argument. It runs a behalf server of its
// own, in development on SQLite, makes the URL an MCP server provider,
// obtains the user's token through USER_FEDERATION (playing the browser,
// completing the session at the development completion page) and calls
// the server's tools with it through the MCP SDK's client.
func TestClient(t *testing.T) {
	scenario := os.Getenv(envScenario)
	if scenario == "" || flag.NArg() == 0 {
		t.Skip("run by the conformance suite (TestAuthScenarios)")
	}
	serverURL := flag.Arg(flag.NArg() - 1)
	var sc scenarioContext
	if raw := os.Getenv(envContext); raw != "" {
		if err := json.Unmarshal([]byte(raw), &sc); err != nil {
			t.Fatalf("%s: %v", envContext, err)
		}
	}
	if scenario == "auth/basic-cimd" {
		// The suite's client serves its metadata document there; behalf's
		// administrator would publish the document the output prints.
		sc.ClientMetadataDocumentURL = suiteClientDocument
	}
	b := newBroker(t, sc)
	out := b.createProvider(t, serverURL, sc)
	t.Logf("provider: registration %s, scopes %v", out.Registration, out.Scopes)
	flow := types.Oauth2FlowTypeUserFederation
	if strings.HasPrefix(scenario, "auth/client-credentials") {
		flow = types.Oauth2FlowTypeM2m
	}
	if err := b.callTools(t, serverURL, flow); err != nil {
		t.Fatal(err)
	}
}

// broker is behalf, with a workload identity for the agent.
type broker struct {
	s         *behalftest.Server
	returnURL string
	data      *bedrockagentcore.Client
	// idToken is the user's ID token at the enterprise IdP, if the
	// scenario has one: workload access tokens are minted from it.
	idToken string
}

func newBroker(t *testing.T, sc scenarioContext) *broker {
	t.Helper()
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: func(f *config.File) {
		f.Development = true
		f.PublicURL = "http://" + f.Listen
		if sc.IDPIssuer != "" {
			f.InboundAuthorizers = append(f.InboundAuthorizers, config.InboundAuthorizerFile{Name: enterprise,
				DiscoveryURL: sc.IDPIssuer + "/.well-known/openid-configuration", AllowedAudience: []string{sc.IDPClientID}})
		}
	}})
	b := &broker{s: s, returnURL: s.URL + "/dev/complete", data: s.Data(), idToken: sc.IDPIDToken}
	w := map[string]any{"name": workload, "allowedResourceOauth2ReturnUrls": []string{b.returnURL}}
	if sc.IDPIssuer != "" {
		w["allowedInboundAuthorizers"] = []string{enterprise}
	}
	b.do(t, "/identities/CreateWorkloadIdentity", w, http.StatusCreated, nil)
	return b
}

// do calls behalf's API as the admin.
func (b *broker) do(t *testing.T, path string, in any, status int, out any) {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	res := b.s.Do(t, behalftest.Raw{Path: path, Body: body})
	if res.Status != status {
		t.Fatalf("%s: %d %s", path, res.Status, res.Body)
	}
	if out != nil {
		if err := json.Unmarshal(res.Body, out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
}

// createProvider makes the server an MCP server provider, with the
// scenario's pre-registered client if it has one.
func (b *broker) createProvider(t *testing.T, serverURL string, sc scenarioContext) behalfapi.McpServerCredentialProviderOutput {
	t.Helper()
	in := behalfapi.CreateMcpServerCredentialProviderInput{Name: provider, ServerURL: serverURL}
	if sc.ClientID != "" {
		in.ClientID = aws.String(sc.ClientID)
	}
	if sc.ClientSecret != "" {
		in.ClientSecret = aws.String(sc.ClientSecret)
	}
	if sc.PrivateKeyPEM != "" {
		in.ClientPrivateKey = aws.String(sc.PrivateKeyPEM)
	}
	if sc.SigningAlgorithm != "" {
		in.SigningAlgorithm = aws.String(sc.SigningAlgorithm)
	}
	if sc.ClientMetadataDocumentURL != "" {
		in.ClientMetadataDocumentURL = aws.String(sc.ClientMetadataDocumentURL)
	}
	if sc.IDPIssuer != "" {
		// The IdP authenticates no one in the suite; behalf's client
		// there still has a secret, as a real one would.
		b.do(t, "/identities/CreateOauth2CredentialProvider", map[string]any{"name": enterprise, "credentialProviderVendor": "CustomOauth2",
			"oauth2ProviderConfigInput": map[string]any{"customOauth2ProviderConfig": map[string]any{"clientId": sc.IDPClientID, "clientSecret": "unused",
				"oauthDiscovery": map[string]any{"discoveryUrl": sc.IDPIssuer + "/.well-known/openid-configuration"}}}}, http.StatusCreated, nil)
		in.IdentityProvider = aws.String(enterprise)
	}
	var out behalfapi.McpServerCredentialProviderOutput
	b.do(t, "/behalf/CreateMcpServerCredentialProvider", in, http.StatusCreated, &out)
	return out
}

// token asks behalf for the agent's token for the scopes; for
// USER_FEDERATION it plays the user's browser through the consent.
func (b *broker) token(ctx context.Context, flow types.Oauth2FlowType, scopes []string) (string, error) {
	wat, err := b.workloadToken(ctx)
	if err != nil {
		return "", err
	}
	req := &bedrockagentcore.GetResourceOauth2TokenInput{ResourceCredentialProviderName: aws.String(provider),
		WorkloadIdentityToken: wat, Scopes: scopes, Oauth2Flow: flow}
	if flow == types.Oauth2FlowTypeUserFederation {
		req.ResourceOauth2ReturnUrl = aws.String(b.returnURL)
	}
	first, err := b.data.GetResourceOauth2Token(ctx, req)
	if err != nil {
		return "", err
	}
	if tok := aws.ToString(first.AccessToken); tok != "" {
		return tok, nil
	}
	if first.AuthorizationUrl == nil {
		return "", errors.New("neither a token nor an authorization URL")
	}
	if err := browse(ctx, *first.AuthorizationUrl); err != nil {
		return "", err
	}
	next, err := b.data.GetResourceOauth2Token(ctx, req)
	if err != nil {
		return "", err
	}
	if aws.ToString(next.AccessToken) == "" {
		return "", fmt.Errorf("no token after consent: session %s", next.SessionStatus)
	}
	return aws.ToString(next.AccessToken), nil
}

// workloadToken is the agent's workload access token for the user: from
// the user's ID token at the enterprise IdP, if there is one, else for
// the user id.
func (b *broker) workloadToken(ctx context.Context) (*string, error) {
	if b.idToken != "" {
		out, err := b.data.GetWorkloadAccessTokenForJWT(ctx, &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
			WorkloadName: aws.String(workload), UserToken: aws.String(b.idToken)})
		if err != nil {
			return nil, fmt.Errorf("the user's ID token from the enterprise IdP: %w", err)
		}
		return out.WorkloadAccessToken, nil
	}
	out, err := b.data.GetWorkloadAccessTokenForUserId(ctx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String(workload), UserId: aws.String(user)})
	if err != nil {
		return nil, err
	}
	return out.WorkloadAccessToken, nil
}

// browse follows the authorization URL as a browser would: through the
// authorization server (the suite's approves at once) to behalf's
// callback and on to the development completion page, which binds the
// session to the user.
func browse(ctx context.Context, authURL string) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	res, err := (&http.Client{Jar: jar}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasSuffix(res.Request.URL.Path, "/dev/complete") {
		return fmt.Errorf("the browser ended at %s with %d", res.Request.URL.Redacted(), res.StatusCode)
	}
	return nil
}

// callTools connects the MCP SDK's client with behalf's token, lists the
// tools and calls each. The first request names no scopes: behalf asks
// for those it selected at discovery (MCP authorization, "Scope
// Selection Strategy"). A 403 insufficient_scope asks behalf again with
// the challenge's scopes as they are, which behalf adds to those the
// user granted ("Scope Challenge Handling"), at most maxStepUps times.
func (b *broker) callTools(t *testing.T, serverURL string, flow types.Oauth2FlowType) error {
	ctx := t.Context()
	scopes := []string{}
	for attempt := 0; ; attempt++ {
		tok, err := b.token(ctx, flow, scopes)
		if err != nil {
			return fmt.Errorf("behalf: %w", err)
		}
		rt := &bearer{token: tok}
		err = callAll(ctx, serverURL, rt)
		if err == nil {
			return nil
		}
		challenged, ok := rt.insufficientScope()
		// The same challenge again would only bring the same token back.
		if !ok || attempt == maxStepUps || slices.Equal(challenged, scopes) {
			return err
		}
		t.Logf("step-up: %v", challenged)
		scopes = challenged
	}
}

func callAll(ctx context.Context, serverURL string, rt http.RoundTripper) error {
	session, err := mcp.NewClient(&mcp.Implementation{Name: "behalf-conformance", Version: "1.0.0"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: serverURL, HTTPClient: &http.Client{Transport: rt}, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return err
	}
	defer session.Close()
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		return err
	}
	for _, tool := range tools.Tools {
		if _, err := session.CallTool(ctx, &mcp.CallToolParams{Name: tool.Name, Arguments: map[string]any{}}); err != nil {
			return fmt.Errorf("tools/call %s: %w", tool.Name, err)
		}
	}
	return nil
}

// bearer sends the token with every request and keeps the scopes of the
// last 403 insufficient_scope challenge (RFC 6750 §3.1).
type bearer struct {
	token string
	mu    sync.Mutex
	scope []string
	seen  bool
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || res.StatusCode != http.StatusForbidden {
		return res, err
	}
	cs, perr := mcpauth.ParseChallenges(res.Header.Values("WWW-Authenticate"))
	if c, ok := mcpauth.BearerChallenge(cs); perr == nil && ok && c.Params["error"] == "insufficient_scope" {
		b.mu.Lock()
		b.scope, b.seen = strings.Fields(c.Params["scope"]), true
		b.mu.Unlock()
	}
	return res, nil
}

func (b *bearer) insufficientScope() ([]string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.scope, b.seen
}
