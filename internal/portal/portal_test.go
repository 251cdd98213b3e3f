package portal_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
)

const (
	workload      = "support-agent"
	runtimeKeyID  = "BEHALFPORTALRUNTIME1"
	runtimeSecret = "behalf-portal-runtime-secret-0123456789"
)

// world is behalf mounting a gateway whose tool route needs the users'
// own token at "tools" (a second dev IdP), and a consent portal for that
// gateway whose users sign in at "corp" (the first dev IdP, also the
// inbound authorizer of the agent's users).
type world struct {
	s           *behalftest.Server
	corp, tools *devidp.Server
	portal      string // the portal's URL
	data        *bedrockagentcore.Client
}

// newWorld's tool route asks for scopes, default openid.
func newWorld(t *testing.T, b behalftest.Backend, scopes ...string) *world {
	t.Helper()
	return newWorldWith(t, b, worldOptions{scopes: scopes})
}

// worldOptions vary a world.
type worldOptions struct {
	// scopes are the tool route's, default openid.
	scopes []string
	// reauthenticateAfter is the server's portals.reauthenticateAfter.
	reauthenticateAfter time.Duration
	// clock is behalf's and both dev IdPs' clock; default the real one.
	clock *testclock.Clock
	// omitAuthTime makes corp leave auth_time out of its ID tokens.
	omitAuthTime bool
}

func newWorldWith(t *testing.T, b behalftest.Backend, o worldOptions) *world {
	scopes := o.scopes
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	var now func() time.Time
	if o.clock != nil {
		now = o.clock.Now
	}
	t.Helper()
	w := &world{}
	w.corp = behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "portal", Secret: "portal-secret"}, {ID: "app", Secret: "app-secret"}},
		Now: now, OmitAuthTime: o.omitAuthTime})
	w.tools = behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "behalf", Secret: "behalf-secret"}}, Now: now})
	w.s = behalftest.Start(t, b, behalftest.Options{Now: now, Edit: func(f *config.File) {
		f.Portals.ReauthenticateAfter = o.reauthenticateAfter
		f.InboundAuthorizers = []config.InboundAuthorizerFile{{Name: "corp", DiscoveryURL: w.corp.Issuer() + "/.well-known/openid-configuration", AllowedClients: []string{"app"}}}
		f.Gateway = config.MountedGatewayFile{Listen: testnet.FreeAddr(t), Principal: runtimeKeyID, Routes: []config.GatewayRouteFile{
			{Name: "agent", Path: "/agent", Upstream: "http://127.0.0.1:9/", Kind: "agent", Workload: workload},
			{Name: "tickets", Path: "/tickets", Upstream: "http://127.0.0.1:9/", Kind: "tool", ReturnURL: "http://" + f.Listen + "/unused",
				Credential: config.GatewayCredentialFile{Provider: "tools", Type: "user", Scopes: scopes}},
		}}
	}})
	ctx := t.Context()
	c := w.s.Control()
	arn := func(name string, idp *devidp.Server, id, secret string) string {
		out, err := c.CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String(name), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
				ClientId: aws.String(id), ClientSecret: aws.String(secret),
				OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: idp.Issuer() + "/.well-known/openid-configuration"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.CredentialProviderArn)
	}
	corpARN := arn("corp", w.corp, "portal", "portal-secret")
	arn("tools", w.tools, "behalf", "behalf-secret")
	p, err := c.CreateConsentPortal(ctx, &bedrockagentcorecontrol.CreateConsentPortalInput{
		Name: aws.String("support"), ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/portal"),
		IdpConfig: &ctltypes.ConsentPortalIdpConfig{CredentialProviderArn: aws.String(corpARN), Scopes: []string{"openid", "profile"}},
		Sources:   []ctltypes.ConsentPortalSource{{Identifier: aws.String(config.DefaultGatewayID), Type: ctltypes.ConsentPortalSourceTypeAgentcoreGateway}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.portal = aws.ToString(p.PortalUrl)
	w.api(t, "/identities/CreateWorkloadIdentity", map[string]any{"name": workload, "allowedInboundAuthorizers": []string{"corp"},
		"allowedResourceOauth2ReturnUrls": []string{w.portal + "complete"}})
	w.api(t, "/behalf/CreatePrincipal", map[string]any{"role": "runtime", "workloads": []string{workload}, "accessKeyId": runtimeKeyID,
		"secretAccessKey": runtimeSecret, "operations": []string{"GetWorkloadAccessTokenForJWT", "GetResourceOauth2Token"}})
	w.data = w.s.DataAs(runtimeKeyID, runtimeSecret)
	return w
}

func (w *world) api(t *testing.T, path string, body any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	if res := w.s.Do(t, behalftest.Raw{Path: path, Body: raw}); res.Status/100 != 2 {
		t.Fatalf("%s: %d %s", path, res.Status, res.Body)
	}
}

// agentToken is what the agent gets for user's tools token, for scopes
// (default openid): the token, or else the authorization URL to send the
// user to.
func (w *world) agentToken(t *testing.T, user string, scopes ...string) (token, authURL string) {
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	t.Helper()
	ctx := t.Context()
	jwt := w.passwordToken(t, user)
	wat, err := w.data.GetWorkloadAccessTokenForJWT(ctx, &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{WorkloadName: aws.String(workload), UserToken: aws.String(jwt)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := w.data.GetResourceOauth2Token(ctx, &bedrockagentcore.GetResourceOauth2TokenInput{ResourceCredentialProviderName: aws.String("tools"),
		WorkloadIdentityToken: wat.WorkloadAccessToken, Oauth2Flow: types.Oauth2FlowTypeUserFederation, Scopes: scopes,
		ResourceOauth2ReturnUrl: aws.String(w.portal + "complete")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.AccessToken), aws.ToString(out.AuthorizationUrl)
}

// passwordToken is user's access token for the app at corp (the dev IdP's
// password grant).
func (w *world) passwordToken(t *testing.T, user string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {"x"}, "scope": {"openid"}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, w.corp.Issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("password grant: %d %v", res.StatusCode, err)
	}
	return tok.AccessToken
}

// browser is a user's browser.
type browser struct{ *behalftest.Browser }

func newBrowser(t *testing.T) *browser { return &browser{behalftest.NewBrowser(t)} }

type page = behalftest.Page

// signIn opens the portal and signs in as user at corp.
func (b *browser) signIn(portal, user string) page {
	b.T().Helper()
	p := b.Consent(b.Get(portal), user)
	if p.Status != http.StatusOK || p.URL != portal {
		b.T().Fatalf("after sign-in: %d at %s: %s", p.Status, p.URL, p.Body)
	}
	return p
}

func csrf(t *testing.T, p page) string { return behalftest.CSRF(t, p) }

// status is the row of tools for the workload on a connections page.
func status(t *testing.T, p page) string {
	t.Helper()
	for _, s := range []string{"Connected</td>", "Needs consent</td>", "Expired: needs re-authorization</td>", "Needs more scope<br>"} {
		if strings.Contains(p.Body, `<td data-label="Status">`+s) {
			s, _, _ = strings.Cut(s, "<")
			return s
		}
	}
	t.Fatalf("no status on the page: %s", p.Body)
	return ""
}

func TestPortalPages(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b)

		// Unauthenticated: sent to sign in, which goes to corp.
		anon := newBrowser(t)
		anon.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		res := anon.Get(w.portal)
		if res.Status != http.StatusSeeOther {
			t.Fatalf("unauthenticated: %d", res.Status)
		}
		for _, path := range []string{"connect", "disconnect", "signout"} {
			if got := anon.Send(http.MethodPost, w.portal+path, url.Values{"csrf": {"x"}}); got.Status != http.StatusUnauthorized {
				t.Errorf("unauthenticated POST %s: %d", path, got.Status)
			}
		}

		// Fixation: a cookie planted before sign-in is not the session.
		alice := newBrowser(t)
		u, _ := url.Parse(w.portal)
		planted := &http.Cookie{Name: "behalf_portal", Value: "planted-by-an-attacker", Path: u.Path} //nolint:gosec // G124: an attacker's cookie
		alice.Client.Jar.SetCookies(u, []*http.Cookie{planted})
		home := alice.signIn(w.portal, "alice")
		for _, c := range alice.Client.Jar.Cookies(u) {
			if c.Name == "behalf_portal" && c.Value == planted.Value {
				t.Error("the planted cookie survived sign-in")
			}
		}
		if !strings.Contains(home.Body, "<th scope=\"row\">tools</th>") || status(t, home) != "Needs consent" {
			t.Fatalf("alice's page before connecting: %s", home.Body)
		}
		if tok, authURL := w.agentToken(t, "alice"); tok != "" || authURL == "" {
			t.Fatal("the agent got a token before alice connected")
		}

		// CSRF: missing or wrong is refused.
		form := url.Values{"provider": {"tools"}, "workload": {workload}}
		if got := alice.Send(http.MethodPost, w.portal+"connect", form); got.Status != http.StatusForbidden {
			t.Errorf("connect without a form token: %d", got.Status)
		}
		form.Set("csrf", "AAAA"+csrf(t, home)[4:])
		if got := alice.Send(http.MethodPost, w.portal+"connect", form); got.Status != http.StatusForbidden {
			t.Errorf("connect with a wrong form token: %d", got.Status)
		}

		// Connect: consent at tools, back through behalf's callback and the
		// portal's completion.
		form.Set("csrf", csrf(t, home))
		done := alice.Consent(alice.Send(http.MethodPost, w.portal+"connect", form), "alice")
		if done.URL != w.portal || status(t, done) != "Connected" {
			t.Fatalf("after connecting: %d at %s: %s", done.Status, done.URL, done.Body)
		}
		if tok, _ := w.agentToken(t, "alice"); tok == "" {
			t.Fatal("the agent got no token after alice connected")
		}

		// Another user sees none of alice's connections.
		bob := newBrowser(t)
		if got := bob.signIn(w.portal, "bob"); status(t, got) != "Needs consent" {
			t.Errorf("bob's page: %s", got.Body)
		}

		// A session started for alice, consented and completed by bob: refused.
		aliceSession := func() string {
			t.Helper()
			_, authURL := w.agentToken(t, "carol")
			return authURL
		}
		res = bob.Consent(bob.Get(aliceSession()), "bob")
		if res.Status != http.StatusForbidden || !strings.Contains(res.Body, "different user") {
			t.Errorf("bob completing carol's session: %d %s", res.Status, res.Body)
		}

		// Disconnect: the agent must ask again.
		form.Set("csrf", csrf(t, done))
		after := alice.Send(http.MethodPost, w.portal+"disconnect", form)
		if after.URL != w.portal || status(t, after) != "Needs consent" {
			t.Fatalf("after disconnecting: %d %s", after.Status, after.Body)
		}
		if tok, authURL := w.agentToken(t, "alice"); tok != "" || authURL == "" {
			t.Error("the agent still got a token after alice disconnected")
		}

		// Sign out ends the session, on every replica: the old cookie,
		// replayed, no longer signs in.
		old := alice.Client.Jar.Cookies(u)
		if got := alice.Send(http.MethodPost, w.portal+"signout", url.Values{"csrf": {csrf(t, after)}}); got.Status != http.StatusOK || !strings.Contains(got.Body, "signed out") {
			t.Fatalf("sign-out: %d %s", got.Status, got.Body)
		}
		replay := newBrowser(t)
		replay.Client.Jar.SetCookies(u, old)
		replay.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		if got := replay.Get(w.portal); got.Status != http.StatusSeeOther {
			t.Errorf("a signed-out cookie replayed: %d", got.Status)
		}

		// The audit trail: the portal as principal, the user as user.
		aliceKey := "jwt:" + w.corp.Issuer() + "#alice"
		bobKey := "jwt:" + w.corp.Issuer() + "#bob"
		want := []string{
			"PortalSignIn " + aliceKey + " corp success ",
			"PortalConnect " + aliceKey + " tools success ",
			"CompleteResourceTokenAuth " + aliceKey + " tools success ",
			"PortalSignIn " + bobKey + " corp success ",
			"CompleteResourceTokenAuth " + bobKey + " tools failure AccessDeniedException",
			"RevokeConnection " + aliceKey + " tools success ",
			"PortalSignOut " + aliceKey + "  success ",
		}
		var got []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			// Sign-ins and sign-outs are written by group commit.
			recs, err := w.s.Server.Store().ListAudit(t.Context(), storage.AuditFilter{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			got = nil
			for _, r := range recs {
				if strings.HasPrefix(r.Principal, "portal:") {
					got = append(got, fmt.Sprintf("%s %s %s %s %s", r.Operation, r.User, r.Provider, r.Outcome, r.ErrorType))
				}
			}
			if slices.Equal(got, want) {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("portal audit records:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestPortalNeedsMoreScope: a connection granted less than the route
// needs, or than an agent's step-up asks for, is "Needs more scope", and
// Reconnect asks for all of it.
func TestPortalNeedsMoreScope(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, "openid", "profile")
		alice := newBrowser(t)
		alice.signIn(w.portal, "alice")

		// The agent's consent request for openid alone, completed at the
		// portal: less than the route needs.
		_, authURL := w.agentToken(t, "alice", "openid")
		home := alice.Consent(alice.Get(authURL), "alice")
		if home.URL != w.portal || status(t, home) != "Needs more scope" || !strings.Contains(home.Body, "missing <code>profile</code>") {
			t.Fatalf("after the agent's narrower consent: %d at %s: %s", home.Status, home.URL, home.Body)
		}
		form := url.Values{"provider": {"tools"}, "workload": {workload}, "csrf": {csrf(t, home)}}
		reconnect := func() page {
			t.Helper()
			at := alice.Send(http.MethodPost, w.portal+"connect", form)
			if u, _ := url.Parse(at.URL); !strings.Contains(u.Query().Get("scope"), "profile") {
				t.Errorf("Reconnect asked for %q", u.Query().Get("scope"))
			}
			return alice.Consent(at, "alice")
		}
		if done := reconnect(); status(t, done) != "Connected" {
			t.Fatalf("after reconnecting: %s", done.Body)
		}

		// An agent's step-up for email: a session of alice's in progress.
		if tok, authURL := w.agentToken(t, "alice", "openid", "email"); tok != "" || authURL == "" {
			t.Fatal("the agent got a token for a scope alice never granted")
		}
		home = alice.Get(w.portal)
		if status(t, home) != "Needs more scope" || !strings.Contains(home.Body, "missing <code>email</code>") {
			t.Fatalf("after the agent's step-up: %s", home.Body)
		}
		form.Set("csrf", csrf(t, home))
		if done := reconnect(); status(t, done) != "Connected" {
			t.Fatalf("after reconnecting for the step-up: %s", done.Body)
		}
		for _, scopes := range [][]string{{"openid", "email"}, {"openid", "profile"}} {
			if tok, _ := w.agentToken(t, "alice", scopes...); tok == "" {
				t.Errorf("the agent got no token for %v after alice reconnected", scopes)
			}
		}
	})
}

// TestPortalListsAgentGrants: an agent workload whose grants name OAuth2
// providers needs them, with the grant's scopes, besides the routes'; a
// provider both a route and a grant name is one row.
func TestPortalListsAgentGrants(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b)
		w.api(t, "/identities/UpdateWorkloadIdentity", map[string]any{"name": workload, "allowedResourceOauth2ReturnUrls": []string{w.portal + "complete"},
			"allowedCredentialProviders": []map[string]any{{"provider": "corp", "scopes": []string{"openid", "email"}}, {"provider": "tools"}}})
		home := newBrowser(t).signIn(w.portal, "alice")
		for _, want := range []string{`<th scope="row">corp</th>`, "<code>email</code>", `<th scope="row">tools</th>`} {
			if !strings.Contains(home.Body, want) {
				t.Errorf("the connections page lacks %s: %s", want, home.Body)
			}
		}
		if n := strings.Count(home.Body, `<th scope="row">tools</th>`); n != 1 {
			t.Errorf("tools listed %d times, want once (its route and its grant are one need)", n)
		}
	})
}
