package gateway_test

// The gateway end to end with Dex as the users' IdP: a user signed in at
// Dex calls the agent through the gateway, the agent gets the user's own
// Dex token through a tool route once the user has consented at Dex, and
// Dex tokens that are expired or forged are refused.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// Dex's clients: users sign in with dexUsers (the audience of their ID
// tokens); behalf's OAuth2 provider "dex" authenticates as dexAgent.
const (
	dexUsers       = "behalf-users"
	dexUsersSecret = "behalf-users-secret-0123456789"
	dexAgent       = "behalf-agent"
	dexAgentSecret = "behalf-agent-secret-0123456789"
)

// dexWorld is a world with Dex as well: inbound authorizer "dex", which
// the workload allows, trusts Dex's ID tokens for dexUsers; OAuth2
// provider "dex" is Dex for dexAgent; route dex-me is route me with the
// user's own Dex token.
type dexWorld struct {
	*world
	dex *dextest.Dex
	// dexClock is Dex's, which a test may turn back to get an expired JWT.
	dexClock *testclock.Clock
}

func newDexWorld(t *testing.T, b behalftest.Backend, mounted bool) *dexWorld {
	t.Helper()
	dw := &dexWorld{dexClock: testclock.Running()}
	dw.dex = dextest.Start(t, dextest.Options{Now: dw.dexClock.Now,
		Clients: []dextest.Client{{ID: dexUsers, Secret: dexUsersSecret}, {ID: dexAgent, Secret: dexAgentSecret}}})
	dw.world = newWorld(t, b, mounted, func(f *config.File) {
		f.InboundAuthorizers = append(f.InboundAuthorizers, config.InboundAuthorizerFile{
			Name: "dex", DiscoveryURL: dw.dex.DiscoveryURL, AllowedAudience: []string{dexUsers}})
		if mounted {
			f.Gateway.Routes = append(f.Gateway.Routes, dexRoute(f.Gateway.Routes))
		}
	})
	w := dw.world
	if !mounted {
		w.gateway = w.standalone(t, gateway.Options{}, dexRoute(w.routes()))
	}
	w.do(t, "/identities/UpdateWorkloadIdentity", map[string]any{"name": workload, "allowedInboundAuthorizers": []string{"dev", "dex"},
		"allowedResourceOauth2ReturnUrls": []string{w.returnURL}}, http.StatusOK)
	callback := w.createOAuth2Provider(t, "dex", dexAgent, dexAgentSecret, dw.dex.DiscoveryURL)
	dw.dex.SetRedirectURIs(t, dexAgent, callback)
	return dw
}

// dexRoute is route me of routes with provider dex: the tool behind it
// echoes the credential it receives.
func dexRoute(routes []config.GatewayRouteFile) config.GatewayRouteFile {
	r := routes[slices.IndexFunc(routes, func(r config.GatewayRouteFile) bool { return r.Name == "me" })]
	r.Name, r.Path = "dex-me", "/dex-me"
	r.Credential.Provider, r.Credential.Scopes = "dex", []string{"openid", "email"}
	return r
}

// TestDexEndToEnd: on SQLite and PostgreSQL, with the gateway standalone
// and mounted, a user signed in at Dex reaches the agent, whose workload
// access token is that user's; the agent's tool route gets the user's own
// Dex token after the user consents at Dex; an expired or forged Dex JWT
// is refused.
func TestDexEndToEnd(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, mounted := range []bool{false, true} {
			t.Run(map[bool]string{false: "standalone", true: "mounted"}[mounted], func(t *testing.T) {
				dw := newDexWorld(t, b, mounted)
				jwt := dw.dex.PasswordLogin(t, dexUsers, dexUsersSecret).IDToken
				wat := dw.callAgent(t, jwt)
				dw.federate(t, jwt, wat)
				dw.refuseBadJWTs(t, jwt)
			})
		}
	})
}

// callAgent calls the agent route as the user of jwt and returns the
// workload access token the agent received, after checking it is that
// user's and the agent got the Runtime headers.
func (dw *dexWorld) callAgent(t *testing.T, jwt string) (wat string) {
	t.Helper()
	res := dw.call(t, "POST", "/agent/invocations", `{"prompt":"hi"}`, map[string]string{"Authorization": "Bearer " + jwt,
		gateway.HeaderWAT: "forged", "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant": "t1"})
	// The agent exchanged its token for the weather key (GetResourceApiKey).
	if out := decode(t, res); res.StatusCode != http.StatusOK || out["apiKey"] != weatherKey {
		t.Fatalf("agent: %d %v", res.StatusCode, out)
	}
	h := forwardedHeaders(t, res)
	wat = h.Get(gateway.HeaderWAT)
	if wat == "" || wat == "forged" || h.Get(gateway.HeaderWATLegacy) != wat || h.Get("Authorization") != "Bearer "+jwt ||
		h.Get(gateway.HeaderCallbackURL) != dw.returnURL || len(h.Get(gateway.HeaderSessionID)) < 32 ||
		h.Get(gateway.HeaderRequestID) == "" || h.Get("X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant") != "t1" {
		t.Errorf("the agent received %v", h)
	}
	user := "jwt:" + dw.dex.Issuer + "#" + dextest.PasswordSubject
	for _, op := range []string{"GetResourceApiKey", "RecordGatewayCall"} {
		if recs, _ := dw.records(t, op); len(recs) != 1 || recs[0].User != user || recs[0].Outcome != "success" {
			t.Errorf("%s records: %+v, want one for %s", op, recs, user)
		}
	}
	return wat
}

// federate is USER_FEDERATION at Dex through tool route dex-me: consent
// required, the user's consent at Dex and behalf's callback, the session
// completed by the user, and then the user's own Dex token injected in
// place of the credential the caller sent.
func (dw *dexWorld) federate(t *testing.T, jwt, wat string) {
	t.Helper()
	call := func() reply {
		return dw.call(t, "GET", "/dex-me", ``, map[string]string{gateway.HeaderWAT: wat, "Authorization": "Bearer " + jwt})
	}
	res := call()
	out := decode(t, res)
	authURL, _ := out["authorizationUrl"].(string)
	session, _ := out["sessionUri"].(string)
	if res.StatusCode != http.StatusUnauthorized || out["__type"] != "ConsentRequiredException" || !strings.HasPrefix(authURL, dw.dex.AuthURL+"?") || session == "" {
		t.Fatalf("before consent: %d %v", res.StatusCode, out)
	}
	dw.consent(t, authURL, session)
	if _, err := dw.s.Data().CompleteResourceTokenAuth(t.Context(), &bedrockagentcore.CompleteResourceTokenAuthInput{
		SessionUri: aws.String(session), UserIdentifier: &types.UserIdentifierMemberUserToken{Value: jwt}}); err != nil {
		t.Fatalf("CompleteResourceTokenAuth with the user's JWT: %v", err)
	}
	res = call()
	out = decode(t, res)
	token, _ := strings.CutPrefix(out["authorization"].(string), "Bearer ")
	if got := dw.tool.last().Header.Values("Authorization"); res.StatusCode != http.StatusOK || len(got) != 1 || token == jwt {
		t.Fatalf("after consent: %d, the tool received %d Authorization headers, the caller's JWT: %v", res.StatusCode, len(got), token == jwt)
	}
	// Consent went through Dex's browser login, whose subject differs from
	// the password grant's for the same person.
	if info := dw.userinfo(t, token); info["sub"] != dextest.CallbackSubject || info["email"] != dextest.UserEmail {
		t.Errorf("the injected token is not the user's Dex token: userinfo %v", info)
	}
}

// consent plays the user's browser: the login at Dex, then behalf's
// callback, which must send it to the route's return URL with the session.
func (dw *dexWorld) consent(t *testing.T, authURL, session string) {
	t.Helper()
	toCallback := dw.dex.Authorize(t, authURL)
	browser := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := browser.Get(toCallback.String())
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), dw.returnURL+"?") || loc.Query().Get("session_id") != session {
		t.Fatalf("behalf's callback: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// userinfo is what Dex's UserInfo endpoint (OpenID Connect Core §5.3)
// answers for an access token; nil if Dex refuses it.
func (dw *dexWorld) userinfo(t *testing.T, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, dw.dex.Issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var info map[string]any
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&info) != nil {
		return nil
	}
	return info
}

// refuseBadJWTs: a Dex JWT that expired, or whose signature is not Dex's,
// is refused with a bearer challenge.
func (dw *dexWorld) refuseBadJWTs(t *testing.T, jwt string) {
	t.Helper()
	dw.dexClock.Advance(-25 * time.Hour) // Dex's tokens last 24 hours
	expired := dw.dex.PasswordLogin(t, dexUsers, dexUsersSecret).IDToken
	dw.dexClock.Advance(25 * time.Hour)
	for name, bad := range map[string]string{"expired": expired, "forged": jwt[:strings.LastIndex(jwt, ".")+1] + "AAAA"} {
		res := dw.call(t, "POST", "/agent/invocations", `{}`, map[string]string{"Authorization": "Bearer " + bad})
		if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != invalidToken || decode(t, res)["__type"] != "UnauthorizedException" {
			t.Errorf("%s JWT: %d %q %.200s", name, res.StatusCode, res.Header.Get("WWW-Authenticate"), res.body)
		}
	}
}
