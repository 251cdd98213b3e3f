package console_test

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
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

const consoleKeyID = "BEHALFCONSOLEADMIN01"

// TestConsoleOffByDefault: without the console section, /console/ is no
// page.
func TestConsoleOffByDefault(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		if got := behalftest.NewBrowser(t).Get(s.URL + "/console/"); got.Status != http.StatusNotFound {
			t.Errorf("/console/ with the console off: %d", got.Status)
		}
	})
}

// consoleWorld: people sign in at corp (a dev IdP putting groups in
// alice's ID token, making her an admin, and not in bob's); carol has
// connected corp for the workload identity support-agent.
type consoleWorld struct {
	s     *behalftest.Server
	corp  *devidp.Server
	carol string // carol's user key
	base  string // the console's URL
}

func newConsoleWorld(t *testing.T, b behalftest.Backend) *consoleWorld {
	t.Helper()
	corp := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "console", Secret: "console-secret"}},
		UserClaims: map[string]map[string]any{"alice": {"groups": []string{"staff", "behalf-admins"}}, "bob": {"groups": "staff"}}})
	s := behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) {
		f.Development = true
		f.Console = config.ConsoleFile{Enabled: true, Provider: "corp", Scopes: []string{"profile"},
			AdminClaim: config.ConsoleClaimFile{Name: "groups", Value: "behalf-admins"}, Principal: consoleKeyID}
	}})
	ctx := t.Context()
	if _, err := s.Control().CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String("corp"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String("console"), ClientSecret: aws.String("console-secret"),
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: corp.Issuer() + "/.well-known/openid-configuration"}}},
	}); err != nil {
		t.Fatal(err)
	}
	api := func(path string, body any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		if res := s.Do(t, behalftest.Raw{Path: path, Body: raw}); res.Status/100 != 2 {
			t.Fatalf("%s: %d %s", path, res.Status, res.Body)
		}
	}
	api("/behalf/CreatePrincipal", map[string]any{"role": "admin", "accessKeyId": consoleKeyID, "secretAccessKey": "console-principal-secret-0123456789"})
	api("/identities/CreateWorkloadIdentity", map[string]any{"name": "support-agent", "allowedResourceOauth2ReturnUrls": []string{s.URL + "/dev/complete"},
		"allowedCredentialProviders": []map[string]any{{"provider": "corp", "scopes": []string{"tickets.read"}}}})
	// carol connects corp for support-agent: USER_FEDERATION, consent
	// at the dev IdP, the development completion page.
	carol := "id:carol"
	data := s.Data()
	wat, err := data.GetWorkloadAccessTokenForUserId(ctx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String("support-agent"), UserId: aws.String("carol")})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := data.GetResourceOauth2Token(ctx, &bedrockagentcore.GetResourceOauth2TokenInput{ResourceCredentialProviderName: aws.String("corp"),
		WorkloadIdentityToken: wat.WorkloadAccessToken, Oauth2Flow: types.Oauth2FlowTypeUserFederation, Scopes: []string{"tickets.read"},
		ResourceOauth2ReturnUrl: aws.String(s.URL + "/dev/complete")})
	if err != nil || tok.AuthorizationUrl == nil {
		t.Fatalf("USER_FEDERATION: %v", err)
	}
	if code, page := behalftest.Consent(t, *tok.AuthorizationUrl, "carol", true); code != http.StatusOK {
		t.Fatalf("carol's consent: %d %s", code, page)
	}
	return &consoleWorld{s: s, corp: corp, carol: carol, base: s.URL + "/console/"}
}

// TestConsole: people sign in at corp (a dev IdP putting groups in
// alice's ID token); alice, an admin, sees every page with the server's
// data and revokes a connection through RevokeConnection, audited as
// her; bob, who is not, is refused and audited.
func TestConsole(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newConsoleWorld(t, b)
		s, corp, carol, ctx := w.s, w.corp, w.carol, t.Context()
		provider, err := s.Server.Store().GetOAuth2Provider(ctx, "corp")
		if err != nil {
			t.Fatal(err)
		}
		base := w.base

		// Not signed in: sent to sign in; a POST is refused.
		anon := behalftest.NewBrowser(t)
		anon.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		if got := anon.Get(base + "audit"); got.Status != http.StatusSeeOther {
			t.Errorf("signed out GET: %d", got.Status)
		}
		if got := anon.Send(http.MethodPost, base+"connections/revoke", url.Values{"csrf": {"x"}}); got.Status != http.StatusUnauthorized {
			t.Errorf("signed out POST: %d", got.Status)
		}

		// bob signs in but is not an admin.
		bob := behalftest.NewBrowser(t)
		if got := bob.Consent(bob.Get(base), "bob"); got.Status != http.StatusForbidden || !strings.Contains(got.Body, "not an administrator") {
			t.Errorf("bob: %d %s", got.Status, got.Body)
		}

		// alice: a cookie planted before sign-in never becomes the session.
		alice := behalftest.NewBrowser(t)
		u, _ := url.Parse(base)
		planted := &http.Cookie{Name: "behalf_console", Value: "planted-by-an-attacker", Path: u.Path} //nolint:gosec // G124: an attacker's cookie
		alice.Client.Jar.SetCookies(u, []*http.Cookie{planted})
		home := alice.Consent(alice.Get(base), "alice")
		if home.Status != http.StatusOK || home.URL != base || !strings.Contains(home.Body, "Workload identities</a></th><td>1</td>") {
			t.Fatalf("overview: %d %s %s", home.Status, home.URL, home.Body)
		}
		for _, c := range alice.Client.Jar.Cookies(u) {
			if c.Name == "behalf_console" && c.Value == planted.Value {
				t.Error("the planted cookie survived sign-in")
			}
		}
		for path, want := range map[string]string{
			"workloads":               ">support-agent</a>",
			"workloads/support-agent": "<code>tickets.read</code>",
			"providers":               ">corp</a>",
			"providers/corp":          corp.Issuer() + "/.well-known/openid-configuration",
			"principals":              consoleKeyID,
			"connections?user=" + url.QueryEscape(carol): "Revoke",
			"audit?operation=CreatePrincipal":            "Verified",
		} {
			got := alice.Get(base + path)
			if got.Status != http.StatusOK || !strings.Contains(got.Body, want) {
				t.Errorf("%s: %d, want %q in %s", path, got.Status, want, got.Body)
			}
			if strings.Contains(got.Body, "console-secret") || strings.Contains(got.Body, "<script") {
				t.Errorf("%s shows a secret or a script", path)
			}
		}
		if got := alice.Get(base + "workloads/nobody"); got.Status != http.StatusNotFound || strings.Contains(got.Body, "sql") {
			t.Errorf("a missing workload: %d %s", got.Status, got.Body)
		}

		// CSRF: a revoke without the form token, or with a wrong one, is refused.
		conns := alice.Get(base + "connections?user=" + url.QueryEscape(carol))
		form := url.Values{"provider": {"corp"}, "workload": {"support-agent"}, "user": {carol}}
		if got := alice.Send(http.MethodPost, base+"connections/revoke", form); got.Status != http.StatusForbidden {
			t.Errorf("revoke without a form token: %d", got.Status)
		}
		form.Set("csrf", "AAAA"+behalftest.CSRF(t, conns)[4:])
		if got := alice.Send(http.MethodPost, base+"connections/revoke", form); got.Status != http.StatusForbidden {
			t.Errorf("revoke with a wrong form token: %d", got.Status)
		}
		form.Set("csrf", behalftest.CSRF(t, conns))
		if got := alice.Send(http.MethodPost, base+"connections/revoke", form); got.Status != http.StatusOK || !strings.Contains(got.Body, "deleted") {
			t.Fatalf("revoke: %d %s", got.Status, got.Body)
		}
		if _, err := s.Server.Store().GetConnection(ctx, storage.ConnectionKey{ProviderID: provider.ID, Workload: "support-agent", User: carol}); err == nil {
			t.Error("the connection survived its revocation")
		}
		if got := alice.Send(http.MethodPost, base+"connections/revoke", form); got.Status != http.StatusNotFound {
			t.Errorf("revoking it again: %d %s", got.Status, got.Body)
		}

		// Sign-out: the old cookie, replayed, no longer signs in.
		old := alice.Client.Jar.Cookies(u)
		if got := alice.Send(http.MethodPost, base+"signout", url.Values{"csrf": {behalftest.CSRF(t, conns)}}); got.Status != http.StatusOK || !strings.Contains(got.Body, "signed out") {
			t.Fatalf("sign-out: %d %s", got.Status, got.Body)
		}
		replay := behalftest.NewBrowser(t)
		replay.Client.Jar.SetCookies(u, old)
		replay.Client.CheckRedirect = anon.Client.CheckRedirect
		if got := replay.Get(base); got.Status != http.StatusSeeOther {
			t.Errorf("a signed-out cookie replayed: %d", got.Status)
		}

		// The audit trail names the person with the console's principal.
		as := func(user string) string { return "console:" + consoleKeyID + "/jwt:" + corp.Issuer() + "#" + user }
		want := []string{
			"ConsoleSignIn " + as("bob") + " failure AccessDeniedException",
			"ConsoleSignIn " + as("alice") + " success ",
			"RevokeConnection " + as("alice") + " success ",
			"RevokeConnection " + as("alice") + " failure ResourceNotFoundException",
			"ConsoleSignOut " + as("alice") + " success ",
		}
		var got []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			recs, err := s.Server.Store().ListAudit(ctx, storage.AuditFilter{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			got = nil
			for _, r := range recs {
				if strings.HasPrefix(r.Principal, "console:") && r.Operation != "ListConnections" {
					got = append(got, r.Operation+" "+r.Principal+" "+r.Outcome+" "+r.ErrorType)
				}
			}
			if slices.Equal(got, want) {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("console audit records:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
