package console_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestConsoleEdits: alice sets an API key provider's key and an OAuth2
// provider's client secret, and edits a workload identity's
// credential-provider allow-list, each through its API operation and
// audited as her; a form without its token is refused, the operation's
// validation error is shown as a page; she deletes the workload identity
// after a confirmation page; and no new secret is in any page,
// log line or audit record.
func TestConsoleEdits(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newConsoleWorld(t, b)
		s, base, ctx := w.s, w.base, t.Context()
		if _, err := s.Control().CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
			Name: aws.String("weather"), ApiKey: aws.String("old-weather-key-0123")}); err != nil {
			t.Fatal(err)
		}
		const newKey, newSecret = "new-weather-key-never-shown", "new-corp-secret-never-shown"
		var bodies []string
		alice := behalftest.NewBrowser(t)
		if got := alice.Consent(alice.Get(base), "alice"); got.Status != http.StatusOK {
			t.Fatalf("sign-in: %d %s", got.Status, got.Body)
		}
		get := func(path, want string) behalftest.Page {
			t.Helper()
			got := alice.Get(base + path)
			bodies = append(bodies, got.Body)
			if got.Status != http.StatusOK || !strings.Contains(got.Body, want) {
				t.Fatalf("%s: %d, want %q in %s", path, got.Status, want, got.Body)
			}
			return got
		}
		post := func(path string, form url.Values, status int, want string) {
			t.Helper()
			got := alice.Send(http.MethodPost, base+path, form)
			bodies = append(bodies, got.Body)
			if got.Status != status || !strings.Contains(got.Body, want) {
				t.Errorf("POST %s: %d, want %d with %q in %s", path, got.Status, status, want, got.Body)
			}
		}

		// The API key.
		get("providers", `href="`+base+`apikeys/weather"`)
		page := get("apikeys/weather", `name="apiKey" type="password" autocomplete="off"`)
		csrf := behalftest.CSRF(t, page)
		post("apikeys/weather/key", url.Values{"apiKey": {newKey}}, http.StatusForbidden, "expired")
		post("apikeys/weather/key", url.Values{"csrf": {"AAAA" + csrf[4:]}, "apiKey": {newKey}}, http.StatusForbidden, "expired")
		post("apikeys/weather/key", url.Values{"csrf": {csrf}, "apiKey": {""}}, http.StatusBadRequest, "apiKey")
		post("apikeys/weather/key", url.Values{"csrf": {csrf}, "apiKey": {newKey}}, http.StatusOK, "new API key of weather was set")

		// The client secret: the configuration is kept, the secret replaced,
		// and carol's connection survives (no move to another server).
		before, err := s.Server.Store().GetOAuth2Provider(ctx, "corp")
		if err != nil {
			t.Fatal(err)
		}
		get("providers/corp", `name="clientSecret" type="password" autocomplete="off"`)
		post("providers/corp/secret", url.Values{"clientSecret": {newSecret}}, http.StatusForbidden, "expired")
		post("providers/corp/secret", url.Values{"csrf": {csrf}, "clientSecret": {""}}, http.StatusBadRequest, "clientSecret")
		post("providers/corp/secret", url.Values{"csrf": {csrf}, "clientSecret": {newSecret}}, http.StatusOK, "new client secret of corp was set")
		after, err := s.Server.Store().GetOAuth2Provider(ctx, "corp")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after.Config, before.Config) || bytes.Equal(after.ClientSecret.Blob, before.ClientSecret.Blob) {
			t.Errorf("the update changed the configuration %v or kept the secret %v",
				!bytes.Equal(after.Config, before.Config), bytes.Equal(after.ClientSecret.Blob, before.ClientSecret.Blob))
		}
		if _, err := s.Server.Store().GetConnection(ctx, storage.ConnectionKey{ProviderID: after.ID, Workload: "support-agent", User: w.carol}); err != nil {
			t.Errorf("carol's connection after the new secret: %v", err)
		}

		// A named vendor's member is sent back with its client id only.
		if _, err := s.Control().CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("github"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeGithubOauth2,
			Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: ctltypes.GithubOauth2ProviderConfigInput{
				ClientId: aws.String("Iv1.console"), ClientSecret: aws.String("old-github-secret")}},
		}); err != nil {
			t.Fatal(err)
		}
		before, _ = s.Server.Store().GetOAuth2Provider(ctx, "github")
		post("providers/github/secret", url.Values{"csrf": {csrf}, "clientSecret": {newSecret}}, http.StatusOK, "new client secret of github was set")
		after, _ = s.Server.Store().GetOAuth2Provider(ctx, "github")
		if !bytes.Equal(after.Config, before.Config) || bytes.Equal(after.ClientSecret.Blob, before.ClientSecret.Blob) {
			t.Errorf("github: the update changed the configuration or kept the secret")
		}

		// The allow-list: shown in the form, refused with the operation's
		// message, then replaced; corp keeps what the form does not show.
		get("workloads/support-agent", "corp tickets.read\n</textarea>")
		post("workloads/support-agent/providers", url.Values{"providers": {"weather"}}, http.StatusForbidden, "expired")
		post("workloads/support-agent/providers", url.Values{"csrf": {csrf}, "providers": {"corp\nbad/name"}}, http.StatusBadRequest,
			"allowedCredentialProviders[1].provider")
		post("workloads/support-agent/providers", url.Values{"csrf": {csrf}, "providers": {"corp tickets.read tickets.write\r\nweather\n"}},
			http.StatusOK, "The allow-list was changed")
		wl, err := s.Server.Store().GetWorkloadIdentity(ctx, "support-agent")
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := json.Marshal(wl.AllowedProviders); string(got) != `[{"provider":"corp","scopes":["tickets.read","tickets.write"]},{"provider":"weather"}]` {
			t.Errorf("allow-list: %s", got)
		}
		// support-agent may now fetch weather's key: the new one.
		data := s.Data()
		wat, err := data.GetWorkloadAccessToken(ctx, &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String("support-agent")})
		if err != nil {
			t.Fatal(err)
		}
		key, err := data.GetResourceApiKey(ctx, &bedrockagentcore.GetResourceApiKeyInput{ResourceCredentialProviderName: aws.String("weather"),
			WorkloadIdentityToken: wat.WorkloadAccessToken})
		if err != nil || aws.ToString(key.ApiKey) != newKey {
			t.Errorf("weather's key: %v", err)
		}
		post("workloads/support-agent/providers", url.Values{"csrf": {csrf}, "providers": {"corp tickets.read"}}, http.StatusOK, "<code>tickets.read</code>")

		// Deleting support-agent: a confirmation first, which changes nothing.
		get("workloads/support-agent", `href="`+base+`workloads/support-agent/delete"`)
		get("workloads/support-agent/delete", "cannot be undone")
		if _, err := s.Server.Store().GetWorkloadIdentity(ctx, "support-agent"); err != nil {
			t.Fatalf("after the confirmation page: %v", err)
		}
		post("workloads/support-agent/delete", url.Values{}, http.StatusForbidden, "expired")
		post("workloads/support-agent/delete", url.Values{"csrf": {csrf}}, http.StatusOK, "<code>support-agent</code> was deleted")
		if _, err := s.Server.Store().GetWorkloadIdentity(ctx, "support-agent"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("after deletion: %v", err)
		}
		post("workloads/support-agent/delete", url.Values{"csrf": {csrf}}, http.StatusNotFound, "support-agent")
		if _, err := data.GetWorkloadAccessToken(ctx, &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String("support-agent")}); err == nil {
			t.Error("a workload access token for the deleted workload identity")
		}

		// The audit trail names alice; nothing holds a new secret.
		as := "console:" + consoleKeyID + "/jwt:" + w.corp.Issuer() + "#alice"
		want := []string{
			"UpdateApiKeyCredentialProvider failure ValidationException",
			"UpdateApiKeyCredentialProvider success ",
			"UpdateOauth2CredentialProvider failure ValidationException",
			"UpdateOauth2CredentialProvider success ",
			"UpdateOauth2CredentialProvider success ",
			"UpdateWorkloadIdentity failure ValidationException",
			"UpdateWorkloadIdentity success ",
			"UpdateWorkloadIdentity success ",
			"DeleteWorkloadIdentity success ",
			"DeleteWorkloadIdentity failure ResourceNotFoundException",
		}
		recs := auditTrail(t, s, func(r storage.AuditRecord) string {
			if !strings.HasPrefix(r.Operation, "Update") && !strings.HasPrefix(r.Operation, "Delete") {
				return ""
			}
			if r.Principal != as {
				t.Errorf("%s by %s", r.Operation, r.Principal)
			}
			return r.Operation + " " + r.Outcome + " " + r.ErrorType
		}, want)
		records, _ := json.Marshal(recs)
		if w.logs.String() == "" {
			t.Error("no server log was captured to search")
		}
		for _, secret := range []string{newKey, newSecret} {
			for i, body := range bodies {
				if strings.Contains(body, secret) {
					t.Errorf("page %d shows a secret: %s", i, body)
				}
			}
			if strings.Contains(w.logs.String(), secret) || bytes.Contains(records, []byte(secret)) {
				t.Errorf("the log or the audit records hold a secret")
			}
		}
	})
}
