package portal_test

// The consent portal in a real browser (internal/testutil/browser): a
// user signs in at Dex (the portal's identity provider), connects two
// providers (two dev IdPs), the agent acts for them, the user disconnects
// one, an agent's step-up shows as "Needs more scope" and Reconnect
// fixes it; a second user (Dex has one browser user, so at a second
// portal that signs in with the dev IdP) sees none of it; a form posted
// from another origin is refused, a cookie planted before sign-in does not
// become the session, and the pages hold their CSP, framing, keyboard and
// label checks on a desktop and a mobile viewport.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	headless "github.com/behalf-dev/behalf/internal/testutil/browser"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
)

const (
	dexPortalSecret = "dex-portal-secret-0123456789"
	dexAppSecret    = "dex-app-secret-0123456789"
	dexAppCallback  = "http://127.0.0.1:1/app-callback"
)

// browserWorld: behalf's gateway has tool routes needing the users' tokens
// at "tickets" and "docs" (two dev IdPs); portal "support" signs users in
// at Dex, portal "partners" at the dev IdP corp.
type browserWorld struct {
	s                *behalftest.Server
	dex              *dextest.Dex
	corp             *devidp.Server
	support, partner string // the portals' URLs
	data             *bedrockagentcore.Client
}

func newBrowserWorld(t *testing.T, b behalftest.Backend) *browserWorld {
	t.Helper()
	w := &browserWorld{}
	w.dex = dextest.Start(t, dextest.Options{Clients: []dextest.Client{{ID: "portal", Secret: dexPortalSecret},
		{ID: "app", Secret: dexAppSecret, RedirectURIs: []string{dexAppCallback}}}})
	w.corp = behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "portal", Secret: "portal-secret"}}})
	tickets := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "behalf", Secret: "behalf-secret"}}})
	docs := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "behalf", Secret: "behalf-secret"}}})
	w.s = behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) {
		f.InboundAuthorizers = []config.InboundAuthorizerFile{{Name: "dex", DiscoveryURL: w.dex.DiscoveryURL, AllowedAudience: []string{"app"}}}
		user := func(provider string) config.GatewayCredentialFile {
			return config.GatewayCredentialFile{Provider: provider, Type: "user", Scopes: []string{"openid"}}
		}
		f.Gateway = config.MountedGatewayFile{Listen: testnet.FreeAddr(t), Principal: runtimeKeyID, Routes: []config.GatewayRouteFile{
			{Name: "agent", Path: "/agent", Upstream: "http://127.0.0.1:9/", Kind: "agent", Workload: workload},
			{Name: "tickets", Path: "/tickets", Upstream: "http://127.0.0.1:9/", Kind: "tool", ReturnURL: "http://" + f.Listen + "/unused", Credential: user("tickets")},
			{Name: "docs", Path: "/docs", Upstream: "http://127.0.0.1:9/", Kind: "tool", ReturnURL: "http://" + f.Listen + "/unused", Credential: user("docs")},
		}}
	}})
	ctx := t.Context()
	c := w.s.Control()
	provider := func(name, discovery, id, secret string) string {
		out, err := c.CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String(name), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
				ClientId: aws.String(id), ClientSecret: aws.String(secret), OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: discovery}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.CredentialProviderArn)
	}
	portal := func(name, idpARN string) string {
		p, err := c.CreateConsentPortal(ctx, &bedrockagentcorecontrol.CreateConsentPortalInput{
			Name: aws.String(name), ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/portal"),
			IdpConfig: &ctltypes.ConsentPortalIdpConfig{CredentialProviderArn: aws.String(idpARN), Scopes: []string{"openid", "email"}},
			Sources:   []ctltypes.ConsentPortalSource{{Identifier: aws.String(config.DefaultGatewayID), Type: ctltypes.ConsentPortalSourceTypeAgentcoreGateway}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(p.PortalUrl)
	}
	w.support = portal("support", provider("dex", w.dex.DiscoveryURL, "portal", dexPortalSecret))
	w.partner = portal("partners", provider("corp", w.corp.Issuer()+"/.well-known/openid-configuration", "portal", "portal-secret"))
	w.dex.SetRedirectURIs(t, "portal", w.support+"callback")
	provider("tickets", tickets.Issuer()+"/.well-known/openid-configuration", "behalf", "behalf-secret")
	provider("docs", docs.Issuer()+"/.well-known/openid-configuration", "behalf", "behalf-secret")
	api := func(path string, body any) {
		raw, _ := json.Marshal(body)
		if res := w.s.Do(t, behalftest.Raw{Path: path, Body: raw}); res.Status/100 != 2 {
			t.Fatalf("%s: %d %s", path, res.Status, res.Body)
		}
	}
	api("/identities/CreateWorkloadIdentity", map[string]any{"name": workload, "allowedInboundAuthorizers": []string{"dex"},
		"allowedResourceOauth2ReturnUrls": []string{w.support + "complete"}})
	api("/behalf/CreatePrincipal", map[string]any{"role": "runtime", "workloads": []string{workload}, "accessKeyId": runtimeKeyID,
		"secretAccessKey": runtimeSecret, "operations": []string{"GetWorkloadAccessTokenForJWT", "GetResourceOauth2Token"}})
	w.data = w.s.DataAs(runtimeKeyID, runtimeSecret)
	return w
}

// agentWAT is the agent's workload access token for Dex's browser user:
// minted from an ID token of that user (sub CallbackSubject) to the app,
// so its user is the one the portal signs in.
func (w *browserWorld) agentWAT(t *testing.T) string {
	t.Helper()
	q := url.Values{"client_id": {"app"}, "redirect_uri": {dexAppCallback}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s"}}
	back := w.dex.Authorize(t, w.dex.AuthURL+"?"+q.Encode())
	tok, terr := w.dex.TokenRequest(t, "app", dexAppSecret, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {dexAppCallback}})
	if terr != nil {
		t.Fatal(terr)
	}
	out, err := w.data.GetWorkloadAccessTokenForJWT(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{WorkloadName: aws.String(workload), UserToken: aws.String(tok.IDToken)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.WorkloadAccessToken)
}

// token is what the agent gets at provider for scopes: the token, or
// else the authorization URL to send its user to, who comes back to the
// portal.
func (w *browserWorld) token(t *testing.T, wat, provider string, scopes ...string) (token, authURL string) {
	t.Helper()
	out, err := w.data.GetResourceOauth2Token(t.Context(), &bedrockagentcore.GetResourceOauth2TokenInput{ResourceCredentialProviderName: aws.String(provider),
		WorkloadIdentityToken: aws.String(wat), Oauth2Flow: types.Oauth2FlowTypeUserFederation, Scopes: scopes,
		ResourceOauth2ReturnUrl: aws.String(w.support + "complete")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.AccessToken), aws.ToString(out.AuthorizationUrl)
}

// rowStatus is the status cell of provider's row on the page shown.
func rowStatus(p *headless.Page, provider string) string {
	return headless.Eval[string](p, fmt.Sprintf(`(() => {
		for (const r of document.querySelectorAll("tbody tr")) {
			if (r.querySelector("th").innerText.trim() === %q) return r.cells[3].innerText.replace(/\s+/g, " ").trim();
		}
		return "";
	})()`, provider))
}

// cdpDo runs a DevTools command in p's tab.
func cdpDo[P, R any](t *testing.T, p *headless.Page, c cdp.Command[P, R], params P) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.Context(), 15*time.Second)
	defer cancel()
	r, err := chromedp.Run(ctx, chromedp.Action[R](func(ctx context.Context, tg *chromedp.Target) (R, error) { return cdp.Call(ctx, tg, c, params) }))
	if err != nil {
		t.Fatalf("%s: %v", c.Method, err)
	}
	return r
}

// connectAtDevIDP clicks label and signs in and allows at the dev IdP,
// back to the portal.
func connectAtDevIDP(t *testing.T, p *headless.Page, label, portal string) {
	t.Helper()
	p.Click(label)
	p.Fill("Sign in as", "kilgore")
	if st := p.Click("Allow"); st != http.StatusOK || p.URL() != portal {
		t.Fatalf("%s: ended at %s (%d)", label, p.URL(), st)
	}
}

// accessible checks the page shown: no inline script runs, every input is
// labelled, and Tab reaches every button.
func accessible(t *testing.T, p *headless.Page) {
	t.Helper()
	if p.InlineScriptRuns() {
		t.Error("an inline script ran on the portal's page")
	}
	if u := p.Unlabelled(); len(u) != 0 {
		t.Errorf("inputs without a label: %q", u)
	}
	for _, b := range p.TabMisses() {
		t.Errorf("Tab does not reach the button %q", b)
	}
}

func TestPortalInBrowser(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newBrowserWorld(t, b)
		wat := w.agentWAT(t)
		p := headless.Start(t) // after the servers, so that it closes first

		// Fixation: a session cookie planted before sign-in is replaced.
		u, _ := url.Parse(w.support)
		cdpDo(t, p, network.SetCookie, network.SetCookieParams{Name: "behalf_portal", Value: "planted-by-an-attacker", URL: w.support, Path: u.Path})
		// Dex's mock connector signs its one user in without a page.
		if st := p.Open(w.support); st != http.StatusOK || p.URL() != w.support {
			t.Fatalf("sign-in at Dex ended at %s (%d)", p.URL(), st)
		}
		for _, c := range cdpDo(t, p, network.GetCookies, network.GetCookiesParams{URLs: []string{w.support}}).Cookies {
			if c.Name == "behalf_portal" && c.Value == "planted-by-an-attacker" {
				t.Error("the planted cookie is the session")
			}
		}
		for _, pr := range []string{"tickets", "docs"} {
			if st := rowStatus(p, pr); st != "Needs consent" {
				t.Errorf("%s before connecting: %q", pr, st)
			}
		}
		p.Screenshot("connections-before")

		// Connect both providers.
		connectAtDevIDP(t, p, "Connect tickets for "+workload, w.support)
		connectAtDevIDP(t, p, "Connect docs for "+workload, w.support)
		for _, pr := range []string{"tickets", "docs"} {
			if st := rowStatus(p, pr); st != "Connected" {
				t.Errorf("%s after connecting: %q", pr, st)
			}
			if tok, _ := w.token(t, wat, pr, "openid"); tok == "" {
				t.Errorf("the agent got no %s token after the user connected", pr)
			}
		}
		p.Screenshot("connections-after")
		accessible(t, p)
		p.Screenshot("connections-keyboard")

		// Mobile: the page fits a narrow viewport.
		p.Viewport(375, 740, true)
		p.Open(w.support)
		if p.ScrollsSideways() {
			t.Error("the connections page scrolls sideways on a narrow viewport")
		}
		p.Screenshot("connections-mobile")
		p.Viewport(1024, 768, false)

		// Disconnect docs: the agent must ask again; tickets still works.
		p.Open(w.support)
		if st := p.Click("Disconnect docs for " + workload); st != http.StatusOK || rowStatus(p, "docs") != "Needs consent" {
			t.Fatalf("after disconnecting docs: %d %q", st, rowStatus(p, "docs"))
		}
		if tok, authURL := w.token(t, wat, "docs", "openid"); tok != "" || authURL == "" {
			t.Error("the agent still got a docs token after the user disconnected")
		}
		if tok, _ := w.token(t, wat, "tickets", "openid"); tok == "" {
			t.Error("the agent lost its tickets token when the user disconnected docs")
		}

		// An agent's step-up at tickets: "Needs more scope", and
		// Reconnect fixes it.
		if tok, authURL := w.token(t, wat, "tickets", "openid", "profile"); tok != "" || authURL == "" {
			t.Fatal("the agent got a tickets token for a scope the user never granted")
		}
		p.Open(w.support)
		if st := rowStatus(p, "tickets"); st != "Needs more scope missing profile" {
			t.Errorf("tickets after the agent's step-up: %q", st)
		}
		p.Screenshot("needs-more-scope")
		connectAtDevIDP(t, p, "Reconnect tickets for "+workload, w.support)
		if st := rowStatus(p, "tickets"); st != "Connected" {
			t.Errorf("tickets after reconnecting: %q", st)
		}
		if tok, _ := w.token(t, wat, "tickets", "openid", "profile"); tok == "" {
			t.Error("the agent got no tickets token for its step-up after the user reconnected")
		}

		// CSRF: a form another origin's page posts is refused, and the
		// connection stays.
		p.PostFromAnotherOrigin(w.support+"disconnect", url.Values{"provider": {"tickets"}, "workload": {workload}, "csrf": {"guessed"}})
		p.WaitTrue(`document.title.startsWith("This form has expired")`)
		if tok, _ := w.token(t, wat, "tickets", "openid"); tok == "" {
			t.Error("another origin's form disconnected tickets")
		}

		// Framing by another origin is refused.
		if p.Framed(w.support) {
			t.Error("another origin framed the connections page")
		}

		// Sign out.
		p.Open(w.support)
		if st := p.Click("Sign out"); st != http.StatusOK || !strings.Contains(p.Text(), "You are signed out") {
			t.Fatalf("sign-out: %d %q", st, p.Text())
		}
		p.Screenshot("signed-out")

		// Another user, at the portal that signs in with the dev IdP, sees
		// none of the first user's connections.
		cdpDo(t, p, network.ClearBrowserCookies, cdp.Empty{})
		p.Open(w.partner)
		if !strings.HasPrefix(p.URL(), w.corp.Issuer()+"/") {
			t.Fatalf("sign-in at the partners portal opened %s", p.URL())
		}
		p.Screenshot("sign-in")
		p.Fill("Sign in as", "bob")
		if st := p.Click("Allow"); st != http.StatusOK || p.URL() != w.partner {
			t.Fatalf("bob's sign-in ended at %s (%d)", p.URL(), st)
		}
		for _, pr := range []string{"tickets", "docs"} {
			if st := rowStatus(p, pr); st != "Needs consent" {
				t.Errorf("bob sees %s as %q", pr, st)
			}
		}
		p.Screenshot("other-user")
	})
}
