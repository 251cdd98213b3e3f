package dataplane_test

// USER_FEDERATION consent in a real browser (internal/testutil/browser):
// the authorization URL an agent is given opens the provider's sign-in
// page (behalf dev-idp's), the user signs in and allows, and the browser
// goes through behalf's callback to the return URL, here the development
// completion page, which completes the session for the user.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/browser"
)

func TestFederationConsentInBrowser(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		idp := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}}})
		s := behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) { f.Development = true }})
		p := browser.Start(t) // after the servers, so that it closes first
		c, data := s.Control(), s.Data()
		returnURL := s.URL + "/dev/complete"
		if _, err := c.CreateWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
			Name: aws.String("agent-w"), AllowedResourceOauth2ReturnUrls: []string{returnURL}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("dev-idp"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
				ClientId: aws.String("agent"), ClientSecret: aws.String("agent-secret"),
				OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: idp.Issuer() + "/.well-known/openid-configuration"}}},
		}); err != nil {
			t.Fatal(err)
		}
		in := &bedrockagentcore.GetResourceOauth2TokenInput{
			WorkloadIdentityToken: aws.String(mintForUser(t, data, "agent-w", "alice")), ResourceCredentialProviderName: aws.String("dev-idp"),
			Oauth2Flow: types.Oauth2FlowTypeUserFederation, Scopes: []string{"openid", "profile"}, ResourceOauth2ReturnUrl: aws.String(returnURL),
		}
		out, err := data.GetResourceOauth2Token(ctx(t), in)
		if err != nil || out.AuthorizationUrl == nil || out.SessionUri == nil {
			t.Fatalf("GetResourceOauth2Token: %+v, %v; want an authorization URL", out, err)
		}

		// The dev IdP's sign-in page, under its own security headers.
		if st := p.Open(*out.AuthorizationUrl); st != http.StatusOK || !strings.HasPrefix(p.URL(), idp.Issuer()+"/") {
			t.Fatalf("the authorization URL opened %s (%d)", p.URL(), st)
		}
		if title, text := p.Title(), p.Text(); title != "behalf dev-idp: sign in" || !strings.Contains(text, "agent asks for: openid profile") {
			t.Errorf("sign-in page %q: %q", title, text)
		}
		if p.InlineScriptRuns() {
			t.Error("an inline script ran on the dev IdP's page")
		}
		p.Screenshot("dev-idp-sign-in")
		p.Fill("Sign in as", "alice")

		// Allow: through behalf's callback to the return URL, with the
		// session id, where the development page completes the session.
		if st := p.Click("Allow"); st != http.StatusOK {
			t.Errorf("the return URL's page: status %d", st)
		}
		final, err := url.Parse(p.URL())
		if err != nil || final.Scheme+"://"+final.Host+final.Path != returnURL || final.Query().Get("session_id") != *out.SessionUri {
			t.Fatalf("the browser ended at %s, want %s?session_id=%s", p.URL(), returnURL, *out.SessionUri)
		}
		if text := p.Text(); p.Title() != "Connected — behalf" || !strings.Contains(text, "dev-idp is connected for user alice and workload agent-w") {
			t.Errorf("completion page %q: %q", p.Title(), text)
		}
		p.Screenshot("connected")

		// The agent gets alice's token with the session, and then without.
		for _, session := range []*string{out.SessionUri, nil} {
			in.SessionUri = session
			got, err := data.GetResourceOauth2Token(ctx(t), in)
			if err != nil || aws.ToString(got.AccessToken) == "" {
				t.Fatalf("GetResourceOauth2Token (session %v) after consent: %+v, %v", aws.ToString(session), got, err)
			}
		}
	})
}
