package gateway_test

// A remote MCP server behind a plain authorization server: the official
// MCP Go SDK's server, whose protected resource metadata (RFC 9728) names
// Dex and which verifies Dex's JWT access tokens itself, and behalf as the
// agents' credential broker with a client pre-registered at Dex (Dex has
// neither Client ID Metadata Documents nor RFC 7591 registration).
//
// What Dex allows shapes the test. Dex knows no RFC 8707 resource: it
// ignores the resource behalf sends, and its tokens' aud is the client,
// which is what the server checks. Dex takes only OpenID Connect scopes,
// so the server's step-up asks for "groups", which adds the groups claim.
// Dex's browser login has one user (dextest's mock connector): alice and
// bob, two behalf users, both sign in at Dex as that user, and each gets
// a connection of her own; Dex keeps one refresh token per user and
// client, so the second consent ends the first user's refresh token at
// Dex, and the test refreshes only before it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/wat"
)

// behalf's client at Dex for the MCP server's tokens.
const (
	dexMCPClient = "behalf-mcp"
	dexMCPSecret = "behalf-mcp-secret-0123456789"
)

// TestMCPServerProviderDex: on SQLite and PostgreSQL, behalf creates an
// MCP server provider for a Go SDK server guarded by Dex; alice consents
// at Dex (PKCE required there) and her agent calls the server's tool with
// her token; the token is refreshed once it expires, and Dex rotates the
// refresh token (the one behalf presented before is refused); the
// server's 403 insufficient_scope is stepped up to the union of scopes;
// bob consents and gets a token of his own; revoking alice's connection
// makes her agent's next request ask for consent again while bob's still
// gets his token.
func TestMCPServerProviderDex(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		ctx := t.Context()
		dexClock := testclock.Running()
		dex := dextest.Start(t, dextest.Options{Now: dexClock.Now, RequirePKCE: true, RotateRefreshTokens: true,
			IDTokensValidFor: 5 * time.Minute, Clients: []dextest.Client{{ID: dexMCPClient, Secret: dexMCPSecret}}})
		var refreshes refreshTokensSeen
		dex.SetTokenFault(refreshes.note)
		server := newDexMCPServer(t, dex, dexClock.Now)
		w := newWorld(t, b, true)

		out := w.createMCPProvider(t, "dex-notes", server, func(in *behalfapi.CreateMcpServerCredentialProviderInput) {
			in.ClientID, in.ClientSecret = aws.String(dexMCPClient), aws.String(dexMCPSecret)
		})
		if out.Registration != "PREREGISTERED" || out.Issuer != dex.Issuer || out.Resource != server || !slices.Equal(out.Scopes, []string{"openid", "email"}) {
			t.Fatalf("created: %+v", out)
		}
		dex.SetRedirectURIs(t, dexMCPClient, out.CallbackURL)

		// alice: consent with the discovery's scopes and offline_access.
		alice := w.federationRequest(t, "dex-notes", "alice", []string{})
		first, err := w.s.Data().GetResourceOauth2Token(ctx, alice)
		if err != nil || first.AuthorizationUrl == nil {
			t.Fatalf("USER_FEDERATION: %v", err)
		}
		if got := scopeParam(t, *first.AuthorizationUrl); !slices.Equal(got, sorted("openid", "email", offlineAccess)) ||
			!strings.HasPrefix(*first.AuthorizationUrl, dex.AuthURL+"?") {
			t.Fatalf("authorization URL %s", *first.AuthorizationUrl)
		}
		w.dexConsent(t, dex, *first.AuthorizationUrl, aws.ToString(first.SessionUri), "alice")
		aliceToken := w.accessToken(t, alice)
		if got := callTool(t, server, aliceToken, "whoami"); got != dextest.UserEmail {
			t.Fatalf("whoami: %q", got)
		}

		// Refresh, twice: each presents the refresh token the last one
		// returned, and the first is refused at Dex once rotated.
		for range 2 {
			w.clock.Advance(6 * time.Minute)
			dexClock.Advance(6 * time.Minute)
			next := w.accessToken(t, alice)
			if next == aliceToken {
				t.Fatal("the same access token after it expired")
			}
			aliceToken = next
			if got := callTool(t, server, aliceToken, "whoami"); got != dextest.UserEmail {
				t.Fatalf("whoami after the refresh: %q", got)
			}
		}
		presented := refreshes.seen()
		if len(presented) != 2 || presented[0] == presented[1] {
			t.Fatalf("behalf presented %d refresh tokens, the same twice: %v", len(presented), len(presented) == 2 && presented[0] == presented[1])
		}
		if _, terr := dex.TokenRequest(t, dexMCPClient, dexMCPSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {presented[0]}}); terr == nil {
			t.Error("Dex took a refresh token it had rotated out")
		}

		// Step-up: tool groups needs scope groups.
		status, challenge := callToolRaw(t, server, aliceToken, "groups")
		if status != http.StatusForbidden || !strings.Contains(challenge, `error="insufficient_scope"`) {
			t.Fatalf("groups before the step-up: %d %q", status, challenge)
		}
		alice.Scopes = []string{"groups"}
		more, err := w.s.Data().GetResourceOauth2Token(ctx, alice)
		if err != nil || more.AuthorizationUrl == nil {
			t.Fatalf("step-up: %v", err)
		}
		if got := scopeParam(t, *more.AuthorizationUrl); !slices.Equal(got, sorted("openid", "email", "groups", offlineAccess)) {
			t.Errorf("step-up consent for %v", got)
		}
		w.dexConsent(t, dex, *more.AuthorizationUrl, aws.ToString(more.SessionUri), "alice")
		aliceToken = w.accessToken(t, alice)
		if got := callTool(t, server, aliceToken, "groups"); got != "authors" {
			t.Errorf("groups after the step-up: %q", got)
		}

		// bob: his own connection and token.
		bob := w.federationRequest(t, "dex-notes", "bob", []string{})
		bobFirst, err := w.s.Data().GetResourceOauth2Token(ctx, bob)
		if err != nil || bobFirst.AuthorizationUrl == nil {
			t.Fatalf("bob's USER_FEDERATION: %v, want consent of his own", err)
		}
		w.dexConsent(t, dex, *bobFirst.AuthorizationUrl, aws.ToString(bobFirst.SessionUri), "bob")
		bobToken := w.accessToken(t, bob)
		if bobToken == aliceToken {
			t.Fatal("bob was given alice's token")
		}
		if got := callTool(t, server, bobToken, "whoami"); got != dextest.UserEmail {
			t.Fatalf("bob's whoami: %q", got)
		}

		// Revocation: Dex offers no RFC 7009 endpoint, so behalf deletes
		// alice's connection and says so; her agent must ask her again.
		rev := w.revokeConnectionOf(t, "dex-notes", "alice")
		if rev.RevokedAtProvider || !strings.Contains(rev.Message, "offers no token revocation") {
			t.Errorf("RevokeConnection: %+v", rev)
		}
		alice.Scopes = []string{}
		again, err := w.s.Data().GetResourceOauth2Token(ctx, alice)
		if err != nil || again.AuthorizationUrl == nil || aws.ToString(again.AccessToken) != "" {
			t.Errorf("alice's agent after the revocation: %v, want consent", err)
		}
		if got := w.accessToken(t, bob); got != bobToken {
			t.Error("bob's token changed with alice's revocation")
		}
	})
}

// refreshTokensSeen notes the refresh tokens presented at Dex's token
// endpoint, passing every request on.
type refreshTokensSeen struct {
	mu     sync.Mutex
	tokens []string
}

func (r *refreshTokensSeen) note(_ http.ResponseWriter, req *http.Request) bool {
	if req.ParseForm() == nil && req.PostForm.Get("grant_type") == "refresh_token" {
		r.mu.Lock()
		r.tokens = append(r.tokens, req.PostForm.Get("refresh_token"))
		r.mu.Unlock()
	}
	return false
}

func (r *refreshTokensSeen) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tokens)
}

// newDexMCPServer runs the official Go SDK's MCP server, stateless, at
// <URL>/mcp, which is the URL returned. The SDK's RequireBearerToken
// guards it with a verifier of Dex's access tokens (go-oidc: Dex's
// signature, iss, aud = dexMCPClient, exp by Dex's clock), its scopes
// those the claims show, and "openid email" required; its protected
// resource metadata names Dex. Tool whoami answers the token's email;
// tool groups its groups, and without scope groups the server answers its
// call with 403 insufficient_scope (RFC 6750 §3.1).
func newDexMCPServer(t *testing.T, dex *dextest.Dex, now func() time.Time) string {
	t.Helper()
	provider, err := oidc.NewProvider(t.Context(), dex.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: dexMCPClient, Now: now})
	verify := func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		idt, err := verifier.Verify(ctx, token)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", auth.ErrInvalidToken, err)
		}
		var claims struct {
			Email  string   `json:"email"`
			Groups []string `json:"groups"`
		}
		if err := idt.Claims(&claims); err != nil {
			return nil, fmt.Errorf("%w: %w", auth.ErrInvalidToken, err)
		}
		info := &auth.TokenInfo{Scopes: []string{"openid"}, Expiration: idt.Expiry, UserID: idt.Subject,
			Extra: map[string]any{"email": claims.Email, "groups": strings.Join(claims.Groups, " ")}}
		if claims.Email != "" {
			info.Scopes = append(info.Scopes, "email")
		}
		if len(claims.Groups) > 0 {
			info.Scopes = append(info.Scopes, "groups")
		}
		return info, nil
	}

	s := mcp.NewServer(&mcp.Implementation{Name: "dex-notes", Version: "1.0.0"}, nil)
	extra := func(req *mcp.CallToolRequest, k string) string {
		if req.Extra == nil || req.Extra.TokenInfo == nil {
			return ""
		}
		v, _ := req.Extra.TokenInfo.Extra[k].(string)
		return v
	}
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "the user's email"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: extra(req, "email")}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "groups", Description: "the user's groups"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: extra(req, "groups")}}}, nil, nil
	})

	var base string
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base = srv.URL
	prmURL := base + "/.well-known/oauth-protected-resource/mcp"
	mux.Handle("/.well-known/oauth-protected-resource/mcp", auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource: base + "/mcp", AuthorizationServers: []string{dex.Issuer}, ScopesSupported: []string{"openid", "email", "groups"},
		BearerMethodsSupported: []string{"header"}}))
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
	mux.Handle("/mcp", auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{ResourceMetadataURL: prmURL, Scopes: []string{"openid", "email"}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct {
				Method string `json:"method"`
				Params struct {
					Name string `json:"name"`
				} `json:"params"`
			}
			info := auth.TokenInfoFromContext(r.Context())
			if json.Unmarshal(body, &msg) == nil && msg.Method == "tools/call" && msg.Params.Name == "groups" && !slices.Contains(info.Scopes, "groups") {
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="openid email groups", resource_metadata="`+prmURL+`"`)
				http.Error(w, "insufficient scope", http.StatusForbidden)
				return
			}
			mcpHandler.ServeHTTP(w, r)
		})))
	return base + "/mcp"
}

// federationRequest is an agent's USER_FEDERATION request for user (a
// dev IdP user) to provider, naming scopes (empty: behalf selects).
func (w *world) federationRequest(t *testing.T, provider, user string, scopes []string) *bedrockagentcore.GetResourceOauth2TokenInput {
	t.Helper()
	out, err := w.s.Data().GetWorkloadAccessTokenForJWT(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
		WorkloadName: aws.String(workload), UserToken: aws.String(w.userJWT(t, user))})
	if err != nil {
		t.Fatal(err)
	}
	return &bedrockagentcore.GetResourceOauth2TokenInput{ResourceCredentialProviderName: aws.String(provider), WorkloadIdentityToken: out.WorkloadAccessToken,
		Scopes: scopes, Oauth2Flow: types.Oauth2FlowTypeUserFederation, ResourceOauth2ReturnUrl: aws.String(w.returnURL)}
}

// accessToken is the access token behalf returns for req, which must not
// ask for consent.
func (w *world) accessToken(t *testing.T, req *bedrockagentcore.GetResourceOauth2TokenInput) string {
	t.Helper()
	out, err := w.s.Data().GetResourceOauth2Token(t.Context(), req)
	if err != nil {
		t.Fatalf("GetResourceOauth2Token: %v", err)
	}
	if aws.ToString(out.AccessToken) == "" {
		t.Fatalf("GetResourceOauth2Token asks for consent: %s", aws.ToString(out.AuthorizationUrl))
	}
	return aws.ToString(out.AccessToken)
}

// completeFor completes a session for user, as the agent does once the
// user is back at its return URL.
func (w *world) completeFor(t *testing.T, session, user string) {
	t.Helper()
	if _, err := w.s.Data().CompleteResourceTokenAuth(t.Context(), &bedrockagentcore.CompleteResourceTokenAuthInput{
		SessionUri: aws.String(session), UserIdentifier: &types.UserIdentifierMemberUserToken{Value: w.userJWT(t, user)}}); err != nil {
		t.Fatalf("CompleteResourceTokenAuth for %s: %v", user, err)
	}
}

// dexConsent plays user's browser through Dex's login to behalf's
// callback, which must send it to the return URL with the session, and
// completes the session for user.
func (w *world) dexConsent(t *testing.T, dex *dextest.Dex, authURL, session, user string) {
	t.Helper()
	(&dexWorld{world: w, dex: dex}).consent(t, authURL, session)
	w.completeFor(t, session, user)
}

// revokeConnectionOf is RevokeConnection, as the admin, of user's
// connection for the workload to provider.
func (w *world) revokeConnectionOf(t *testing.T, provider, user string) behalfapi.RevokeConnectionOutput {
	t.Helper()
	body, _ := json.Marshal(behalfapi.ConnectionInput{Provider: provider, Workload: workload, User: wat.UserFromJWT(w.idp.Issuer(), user)})
	res := w.s.Do(t, behalftest.Raw{Path: "/behalf/RevokeConnection", Body: body})
	var out behalfapi.RevokeConnectionOutput
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &out) != nil {
		t.Fatalf("RevokeConnection: %d %s", res.Status, res.Body)
	}
	return out
}

// callTool calls tool (no arguments) with the official Go SDK's client,
// sending token, and returns its text.
func callTool(t *testing.T, endpoint, token, tool string) string {
	t.Helper()
	session, err := mcp.NewClient(&mcp.Implementation{Name: "behalf-agent", Version: "1.0.0"}, nil).
		Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: bearer{token}}, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", endpoint, err)
	}
	defer func() { _ = session.Close() }()
	res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: map[string]any{}})
	if err != nil || res.IsError || len(res.Content) != 1 {
		t.Fatalf("tools/call %s: %+v %v", tool, res, err)
	}
	text, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("tools/call %s: %T", tool, res.Content[0])
	}
	return text.Text
}

// callToolRaw POSTs a tools/call of tool with token, and returns the
// status and the WWW-Authenticate header.
func callToolRaw(t *testing.T, endpoint, token, tool string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint,
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+tool+`","arguments":{}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode, res.Header.Get("WWW-Authenticate")
}
