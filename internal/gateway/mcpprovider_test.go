package gateway_test

// A remote MCP server as a credential provider: behalf, as the agent's
// credential broker, is given the gateway's mcp route by its URL; the
// route's authorization server is behalf's own (asWorld), a real OAuth
// 2.1 server with PKCE, RFC 8707 resources, RFC 9207 iss and Client ID
// Metadata Documents or RFC 7591 registration.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestMCPServerProvider: on SQLite and PostgreSQL, with the client behalf
// hosts as a metadata document and with one it registers (RFC 7591): the
// provider is created from the route's URL; an agent's USER_FEDERATION
// request gets an authorization URL with PKCE S256 and the route as
// resource; the user signs in and consents once; after the session is
// bound to her, the agent's next request returns the access token, with
// which the official MCP SDK's client calls the route's tools.
func TestMCPServerProvider(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, dynamic := range []bool{false, true} {
			t.Run(map[bool]string{false: "metadata document", true: "dynamic"}[dynamic], func(t *testing.T) {
				front := newTokenFront(t)
				aw := newASWorld(t, b, func(f *config.File, as *config.AuthorizationServerFile) {
					front.fronting(t, f)
					as.DynamicRegistration.Enabled = dynamic
					as.ClientIDMetadataDocuments = aws.Bool(!dynamic)
				})
				aw.issuer = front.URL
				out := aw.createMCPProvider(t, "notes", aw.resource, nil)
				want := map[bool]string{false: "CLIENT_ID_METADATA_DOCUMENT", true: "DYNAMIC"}[dynamic]
				if out.Registration != want || out.Resource != aw.resource || out.Issuer != aw.issuer || !slices.Equal(out.Scopes, []string{mcpScope}) {
					t.Fatalf("created: %+v", out)
				}
				if !dynamic {
					aw.checkClientDocument(t, out)
				}
				tok := aw.federate(t, "notes", out)
				aw.callWithToken(t, tok)
				// The code exchange named the server; so does the refresh,
				// once the access token is about to expire.
				aw.clock.Advance(6 * time.Minute)
				aw.idpClock.Advance(6 * time.Minute)
				refreshed, err := aw.s.Data().GetResourceOauth2Token(t.Context(), aw.agentRequest(t, "notes"))
				if err != nil || aws.ToString(refreshed.AccessToken) == "" || aws.ToString(refreshed.AccessToken) == tok {
					t.Fatalf("after the access token expired: %v", err)
				}
				aw.callWithToken(t, aws.ToString(refreshed.AccessToken))
				for _, grant := range []string{"authorization_code", "refresh_token"} {
					forms := front.grant(grant)
					if len(forms) != 1 {
						t.Fatalf("%d %s requests", len(forms), grant)
					}
					if !slices.Equal(forms[0]["resource"], []string{aw.resource}) || forms[0].Get("client_id") != out.ClientID {
						t.Errorf("%d %s requests, the first with resource %v", len(forms), grant, forms[0]["resource"])
					}
					if !dynamic {
						aw.checkClientAssertion(t, out, forms[0])
					}
				}
				if !dynamic {
					aw.checkForgedAssertions(t, out, front.grant("refresh_token")[0])
				}
				aw.checkUpdates(t, "notes", out)
				// GetOauth2CredentialProvider shows the same provider.
				res := aw.s.Do(t, behalftest.Raw{Path: "/identities/GetOauth2CredentialProvider", Body: []byte(`{"name":"notes"}`)})
				if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"registration":"`+want+`"`) {
					t.Errorf("GetOauth2CredentialProvider: %d %s", res.Status, res.Body)
				}
				// RevokeConnection revokes at the authorization server (RFC
				// 7009), the client authenticated as for its token requests.
				revocations := aw.revokeConnection(t, "notes", front)
				if !dynamic {
					aw.checkClientAssertion(t, out, revocations[0])
				}
			})
		}
		t.Run("refusals", func(t *testing.T) { testMCPProviderRefusals(t, b) })
	})
}

// createMCPProvider creates an MCP server provider as the admin.
func (w *world) createMCPProvider(t *testing.T, name, serverURL string, edit func(*behalfapi.CreateMcpServerCredentialProviderInput)) behalfapi.McpServerCredentialProviderOutput {
	t.Helper()
	in := behalfapi.CreateMcpServerCredentialProviderInput{Name: name, ServerURL: serverURL}
	if edit != nil {
		edit(&in)
	}
	body, _ := json.Marshal(in) //nolint:gosec // G117: the request to behalf, whose client secret (if any) is the test's own
	res := w.s.Do(t, behalftest.Raw{Path: "/behalf/CreateMcpServerCredentialProvider", Body: body})
	var out behalfapi.McpServerCredentialProviderOutput
	if res.Status != http.StatusCreated || json.Unmarshal(res.Body, &out) != nil {
		t.Fatalf("CreateMcpServerCredentialProvider: %d %s", res.Status, res.Body)
	}
	return out
}

// checkClientDocument: the client id is behalf's document URL, where the
// document names it and the provider's callback.
func (aw *asWorld) checkClientDocument(t *testing.T, out behalfapi.McpServerCredentialProviderOutput) {
	t.Helper()
	if out.ClientID != out.ClientMetadataDocumentURL || !strings.HasPrefix(out.ClientID, aw.issuer+"/mcp-clients/") {
		t.Fatalf("client id %q, document %q", out.ClientID, out.ClientMetadataDocumentURL)
	}
	res, err := http.Get(out.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil || res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("document: %d %v", res.StatusCode, err)
	}
	// behalf's authorization server takes private_key_jwt with ES256: the
	// client is confidential, its keys behalf's, published at jwks_uri.
	if doc["client_id"] != out.ClientID || doc["token_endpoint_auth_method"] != "private_key_jwt" || doc["jwks_uri"] != aw.issuer+"/mcp-clients/jwks" ||
		len(doc["redirect_uris"].([]any)) != 1 || doc["redirect_uris"].([]any)[0] != out.CallbackURL {
		t.Errorf("document: %v", doc)
	}
	if out.TokenEndpointAuthMethod != "private_key_jwt" || out.SigningAlgorithm != "ES256" {
		t.Errorf("client authentication %q %q", out.TokenEndpointAuthMethod, out.SigningAlgorithm)
	}
	if _, secret := doc["client_secret"]; secret {
		t.Error("the document holds a secret")
	}
}

// revokeConnection revokes alice's connection to the provider, which the
// authorization server confirms, and returns its revocation requests.
func (aw *asWorld) revokeConnection(t *testing.T, provider string, front *tokenFront) []url.Values {
	t.Helper()
	res := aw.s.Do(t, behalftest.Raw{Path: "/behalf/ListConnections", Body: []byte(`{"provider":"` + provider + `"}`)})
	var list behalfapi.ListConnectionsOutput
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &list) != nil || len(list.Connections) != 1 {
		t.Fatalf("ListConnections: %d %s", res.Status, res.Body)
	}
	body, _ := json.Marshal(behalfapi.ConnectionInput{Provider: provider, Workload: list.Connections[0].Workload, User: list.Connections[0].User})
	res = aw.s.Do(t, behalftest.Raw{Path: "/behalf/RevokeConnection", Body: body})
	var out behalfapi.RevokeConnectionOutput
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &out) != nil || !out.RevokedAtProvider {
		t.Fatalf("RevokeConnection: %d %s", res.Status, res.Body)
	}
	front.mu.Lock()
	defer front.mu.Unlock()
	if len(front.revocations) == 0 || front.revocations[0].Get("token_type_hint") != "refresh_token" {
		t.Fatalf("revocation requests: %v", front.revocations)
	}
	return front.revocations
}

// checkClientAssertion: behalf's token request authenticated its client
// with private_key_jwt (RFC 7523 §2.2): an assertion whose kid is in the
// JWKS its document names, verifying with that key, issued by the client
// for the authorization server's issuer.
func (aw *asWorld) checkClientAssertion(t *testing.T, out behalfapi.McpServerCredentialProviderOutput, form url.Values) {
	t.Helper()
	if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || form.Has("client_secret") {
		t.Fatalf("token request without a client assertion: %v", form)
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("client assertion: %v", err)
	}
	set := aw.clientJWKS(t)
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("the assertion's kid %q is not in the published JWKS (%d keys)", tok.Headers[0].KeyID, len(set.Keys))
	}
	var claims jwt.Claims
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("the assertion does not verify with the published key: %v", err)
	}
	if claims.Issuer != out.ClientID || claims.Subject != out.ClientID || !slices.Equal(claims.Audience, jwt.Audience{aw.issuer}) || claims.ID == "" {
		t.Errorf("assertion claims %+v", claims)
	}
}

// clientJWKS is the JWK set behalf publishes for its MCP clients.
func (aw *asWorld) clientJWKS(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	res, err := http.Get(aw.issuer + "/mcp-clients/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil || res.StatusCode != http.StatusOK || len(set.Keys) == 0 {
		t.Fatalf("JWKS: %d %v", res.StatusCode, err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatal("the JWKS holds a private key")
		}
	}
	return set
}

// checkForgedAssertions: the authorization server refuses, as
// invalid_client, the client's request with an assertion signed by
// another key under behalf's kid, with behalf's assertion altered, and
// with behalf's assertion again (its jti was used).
func (aw *asWorld) checkForgedAssertions(t *testing.T, out behalfapi.McpServerCredentialProviderOutput, sent url.Values) {
	t.Helper()
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	genuine, _ := jwt.ParseSigned(sent.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: genuine.Headers[0].KeyID}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := aw.clock.Now()
	otherKey, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: out.ClientID, Subject: out.ClientID, Audience: jwt.Audience{aw.issuer}, ID: "forged-1",
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(sent.Get("client_assertion"), ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + out.ClientID + `","sub":"` + out.ClientID + `","aud":"` + aw.issuer +
		`","jti":"altered-1","exp":` + strconv.FormatInt(now.Add(time.Minute).Unix(), 10) + `}`))
	for _, c := range []struct{ name, assertion, why string }{
		{"another key", otherKey, "signature does not verify"},
		{"altered", strings.Join(parts, "."), "signature does not verify"},
		{"replayed", sent.Get("client_assertion"), "jti was already used"},
	} {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {out.ClientID},
			"client_assertion_type": {sent.Get("client_assertion_type")}, "client_assertion": {c.assertion}}
		res, err := http.PostForm(aw.issuer+"/oauth2/token", form)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, res)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "invalid_client") || !strings.Contains(body, c.why) {
			t.Errorf("%s assertion: %d %s", c.name, res.StatusCode, body)
		}
	}
}

// checkUpdates: discovering the same issuer again keeps the client and
// the user's connection; the AgentCore update operation refuses an MCP
// server provider.
func (aw *asWorld) checkUpdates(t *testing.T, name string, out behalfapi.McpServerCredentialProviderOutput) {
	t.Helper()
	res := aw.s.Do(t, behalftest.Raw{Path: "/behalf/UpdateMcpServerCredentialProvider", Body: []byte(`{"name":"` + name + `"}`)})
	var up behalfapi.McpServerCredentialProviderOutput
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &up) != nil || up.Reregistered || up.ClientID != out.ClientID || up.Issuer != out.Issuer {
		t.Errorf("UpdateMcpServerCredentialProvider: %d %s", res.Status, res.Body)
	}
	if _, err := aw.s.Data().GetResourceOauth2Token(t.Context(), aw.agentRequest(t, name)); err != nil {
		t.Errorf("the connection after an update to the same issuer: %v", err)
	}
	res = aw.s.Do(t, behalftest.Raw{Path: "/identities/UpdateOauth2CredentialProvider", Body: []byte(`{"name":"` + name +
		`","credentialProviderVendor":"CustomOauth2","oauth2ProviderConfigInput":{"customOauth2ProviderConfig":{"clientId":"x","clientSecret":"y",` +
		`"oauthDiscovery":{"discoveryUrl":"` + aw.issuer + `/.well-known/oauth-authorization-server"}}}}`)})
	if res.Status != http.StatusBadRequest || !strings.Contains(string(res.Body), "UpdateMcpServerCredentialProvider") {
		t.Errorf("UpdateOauth2CredentialProvider of an MCP server provider: %d %s", res.Status, res.Body)
	}
}

// agentRequest is the agent's USER_FEDERATION request for alice.
func (aw *asWorld) agentRequest(t *testing.T, provider string) *bedrockagentcore.GetResourceOauth2TokenInput {
	t.Helper()
	return aw.federationRequest(t, provider, "alice", []string{mcpScope})
}

// federate runs USER_FEDERATION to its end and returns the access token.
func (aw *asWorld) federate(t *testing.T, provider string, out behalfapi.McpServerCredentialProviderOutput) string {
	t.Helper()
	ctx := t.Context()
	req := aw.agentRequest(t, provider)
	first, err := aw.s.Data().GetResourceOauth2Token(ctx, req)
	if err != nil || first.AuthorizationUrl == nil {
		t.Fatalf("USER_FEDERATION: %v", err)
	}
	u, _ := url.Parse(*first.AuthorizationUrl)
	q := u.Query()
	if q.Get("resource") != aw.resource || len(q["resource"]) != 1 || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("client_id") != out.ClientID || q.Get("redirect_uri") != out.CallbackURL || !strings.HasPrefix(*first.AuthorizationUrl, aw.issuer+"/oauth2/authorize?") {
		t.Fatalf("authorization URL: %s", *first.AuthorizationUrl)
	}
	aw.consent(t, *first.AuthorizationUrl, aws.ToString(first.SessionUri))
	next, err := aw.s.Data().GetResourceOauth2Token(ctx, req)
	if err != nil || aws.ToString(next.AccessToken) == "" {
		t.Fatalf("the agent's next request: %v", err)
	}
	return aws.ToString(next.AccessToken)
}

// consent plays alice's browser through the authorization URL, consenting
// at behalf's authorization server, back to the agent's return URL, and
// completes the session for her there.
func (aw *asWorld) consent(t *testing.T, authURL, sessionURI string) {
	t.Helper()
	p, consented := asBrowse(t.Context(), t, authURL, devSignIn(aw.idp.Issuer()), aw.issuer, aw.returnURL)
	loc, _ := url.Parse(p.header.Get("Location"))
	if !consented || loc == nil || loc.Query().Get("session_id") != sessionURI {
		t.Fatalf("not sent back to the agent: consented %v, %d %s %s", consented, p.status, p.header.Get("Location"), p.body)
	}
	if _, err := aw.s.Data().CompleteResourceTokenAuth(t.Context(), &bedrockagentcore.CompleteResourceTokenAuthInput{
		SessionUri: aws.String(sessionURI), UserIdentifier: &types.UserIdentifierMemberUserToken{Value: aw.userJWT(t, "alice")}}); err != nil {
		t.Fatalf("CompleteResourceTokenAuth: %v", err)
	}
}

// callWithToken: the MCP SDK's client, sending the token, lists and calls
// the route's tools.
func (aw *asWorld) callWithToken(t *testing.T, token string) {
	t.Helper()
	hc := &http.Client{Transport: bearer{token}}
	session, err := mcp.NewClient(&mcp.Implementation{Name: "behalf-agent", Version: "1.0.0"}, nil).
		Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: aw.resource, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}})
	if err != nil || res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "hello" {
		t.Fatalf("tools/call echo: %+v %v", res, err)
	}
}

// bearer sends a bearer token with every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// testMCPProviderRefusals: a server whose authorization server lacks
// PKCE S256, one on an address the egress policy denies, and one whose
// authorization server takes neither documents nor registration are
// refused, and nothing is stored; an authorization response with another
// issuer, or none, is refused at the callback (RFC 9207), the session
// fails and no token is stored.
func testMCPProviderRefusals(t *testing.T, b behalftest.Backend) {
	aw := newASWorld(t, b, func(_ *config.File, as *config.AuthorizationServerFile) {
		as.ClientIDMetadataDocuments = aws.Bool(false)
	})
	create := func(name, serverURL string) behalftest.Response {
		body, _ := json.Marshal(behalfapi.CreateMcpServerCredentialProviderInput{Name: name, ServerURL: serverURL}) //nolint:gosec // G117: no secret in it
		return aw.s.Do(t, behalftest.Raw{Path: "/behalf/CreateMcpServerCredentialProvider", Body: body})
	}
	noPKCE := plainSite(t)
	for _, c := range []struct {
		url    string
		status int
		text   string
	}{
		{noPKCE + "/mcp", http.StatusBadGateway, "PKCE S256"},
		{"https://169.254.169.254/mcp", http.StatusBadGateway, "egress policy"},
		{"http://mcp.example/mcp", http.StatusBadRequest, "https"},
		{aw.resource, http.StatusBadRequest, "pass its clientId"},
	} {
		res := create("refused", c.url)
		if res.Status != c.status || !strings.Contains(string(res.Body), c.text) {
			t.Errorf("%s: %d %s", c.url, res.Status, res.Body)
		}
	}
	if res := aw.s.Do(t, behalftest.Raw{Path: "/identities/GetOauth2CredentialProvider", Body: []byte(`{"name":"refused"}`)}); res.Status != http.StatusNotFound {
		t.Errorf("a refused provider was stored: %d", res.Status)
	}

	// A pre-registered client: an iss that is not the server's, or none,
	// fails the session at the callback.
	out := aw.createMCPProvider(t, "pre", aw.resource, func(in *behalfapi.CreateMcpServerCredentialProviderInput) { in.ClientID = aws.String(desktopClient) })
	if out.Registration != "PREREGISTERED" || out.ClientID != desktopClient {
		t.Fatalf("pre-registered: %+v", out)
	}
	for _, iss := range [][]string{{"https://attacker.example"}, nil} {
		req := aw.agentRequest(t, "pre")
		req.ForceAuthentication = aws.Bool(true)
		first, err := aw.s.Data().GetResourceOauth2Token(t.Context(), req)
		if err != nil || first.AuthorizationUrl == nil {
			t.Fatalf("USER_FEDERATION: %v", err)
		}
		// desktop's redirect URI is not the callback: the browser is
		// brought back to it by hand, with the code and state.
		p, _ := asBrowse(t.Context(), t, strings.Replace(*first.AuthorizationUrl, url.QueryEscape(out.CallbackURL), url.QueryEscape(desktopCallback), 1),
			devSignIn(aw.idp.Issuer()), aw.issuer, desktopCallback)
		loc, err := url.Parse(p.header.Get("Location"))
		if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("iss") != aw.issuer {
			t.Fatalf("no code: %d %s %s", p.status, p.header.Get("Location"), p.body)
		}
		q := loc.Query()
		q.Del("iss")
		for _, v := range iss {
			q.Add("iss", v)
		}
		res, err := http.Get(out.CallbackURL + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, res)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "RFC 9207") {
			t.Errorf("callback with iss %v: %d %s", iss, res.StatusCode, body)
		}
		status, err := aw.s.Data().GetResourceOauth2Token(t.Context(), &bedrockagentcore.GetResourceOauth2TokenInput{
			ResourceCredentialProviderName: req.ResourceCredentialProviderName, WorkloadIdentityToken: req.WorkloadIdentityToken,
			Scopes: req.Scopes, Oauth2Flow: req.Oauth2Flow, SessionUri: first.SessionUri})
		if err == nil && aws.ToString(status.AccessToken) != "" {
			t.Errorf("a token after a refused callback")
		}
	}
}

// tokenFront is a reverse proxy in front of behalf that serves as its
// public URL, so that the authorization server's token requests — those
// behalf sends as the MCP server provider's client — can be read.
type tokenFront struct {
	*httptest.Server
	mu          sync.Mutex
	target      *url.URL
	forms       []url.Values
	revocations []url.Values
}

func newTokenFront(t *testing.T) *tokenFront {
	t.Helper()
	tf := &tokenFront{}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		tf.mu.Lock()
		defer tf.mu.Unlock()
		r.SetURL(tf.target)
	}}
	tf.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && (r.URL.Path == "/oauth2/token" || r.URL.Path == "/oauth2/revoke") {
			raw, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(raw))
			tf.mu.Lock()
			if r.URL.Path == "/oauth2/token" {
				tf.forms = append(tf.forms, form)
			} else {
				tf.revocations = append(tf.revocations, form)
			}
			tf.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(raw))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(tf.Close)
	return tf
}

// fronting makes the front behalf's public URL, and so its authorization
// server's issuer, which the mcp route names.
func (tf *tokenFront) fronting(t *testing.T, f *config.File) {
	t.Helper()
	tf.mu.Lock()
	tf.target, _ = url.Parse("http://" + f.Listen)
	tf.mu.Unlock()
	f.PublicURL = tf.URL
	for i := range f.Gateway.Routes {
		if f.Gateway.Routes[i].Kind == "mcp" {
			f.Gateway.Routes[i].AuthorizationServers = []string{tf.URL}
		}
	}
}

// grant returns the token requests of the grant type.
func (tf *tokenFront) grant(g string) []url.Values {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	var out []url.Values
	for _, f := range tf.forms {
		if f.Get("grant_type") == g {
			out = append(out, f)
		}
	}
	return out
}

// plainSite is an MCP server whose authorization server does not
// advertise PKCE S256.
func plainSite(t *testing.T) string {
	t.Helper()
	var base string
	doc := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mcp", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, _ *http.Request) {
		doc(w, map[string]any{"resource": base + "/mcp", "authorization_servers": []string{base}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		doc(w, map[string]any{"issuer": base, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
			"code_challenge_methods_supported": []string{"plain"}, "registration_endpoint": base + "/register"})
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	base = s.URL
	return base
}
