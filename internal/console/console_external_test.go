package console_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestConsoleExternalSecrets: a provider whose secret is kept outside
// behalf shows where, offers no form to set it, and refuses a posted one
// with the reason, leaving the provider as it was.
func TestConsoleExternalSecrets(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		dir := t.TempDir()
		w := newConsoleWorld(t, b, func(f *config.File) {
			f.ExternalSecrets.Files = &config.SecretFilesFile{Directories: []string{dir}}
		})
		s, base, ctx := w.s, w.base, t.Context()
		keyPath, ghPath := filepath.Join(dir, "weather.json"), filepath.Join(dir, "github.json")
		if _, err := s.Control().CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
			Name: aws.String("weather"), ApiKeySecretSource: ctltypes.SecretSourceTypeExternal,
			ApiKeySecretConfig: &ctltypes.SecretReference{SecretId: aws.String(keyPath), JsonKey: aws.String("apiKey")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Control().CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("github"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeGithubOauth2,
			Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: ctltypes.GithubOauth2ProviderConfigInput{
				ClientId: aws.String("Iv1.console"), ClientSecretSource: ctltypes.SecretSourceTypeExternal,
				ClientSecretConfig: &ctltypes.SecretReference{SecretId: aws.String(ghPath), JsonKey: aws.String("clientSecret")}}},
		}); err != nil {
			t.Fatal(err)
		}
		alice := behalftest.NewBrowser(t)
		if got := alice.Consent(alice.Get(base), "alice"); got.Status != http.StatusOK {
			t.Fatalf("sign-in: %d %s", got.Status, got.Body)
		}
		var csrf string
		for path, where := range map[string]string{"apikeys/weather": keyPath, "providers/github": ghPath} {
			page := alice.Get(base + path)
			if page.Status != http.StatusOK || !strings.Contains(page.Body, "kept outside behalf, in <code>"+where+"</code>") ||
				strings.Contains(page.Body, `type="password"`) {
				t.Fatalf("%s: %d %s", path, page.Status, page.Body)
			}
			csrf = behalftest.CSRF(t, page)
		}
		for path, field := range map[string]string{"apikeys/weather/key": "apiKey", "providers/github/secret": "clientSecret"} {
			got := alice.Send(http.MethodPost, base+path, url.Values{"csrf": {csrf}, field: {"typed-into-the-console"}})
			if got.Status != http.StatusBadRequest || !strings.Contains(got.Body, "is kept outside behalf") {
				t.Errorf("POST %s: %d %s", path, got.Status, got.Body)
			}
		}
		if k, _ := s.Server.Store().GetAPIKeyProvider(ctx, "weather"); k.ExternalSecret == nil || !k.APIKey.IsZero() {
			t.Errorf("the API key provider changed: %+v", k)
		}
		if p, _ := s.Server.Store().GetOAuth2Provider(ctx, "github"); p.ExternalSecret == nil || !p.ClientSecret.IsZero() {
			t.Errorf("the OAuth2 provider changed: %+v", p)
		}
	})
}
