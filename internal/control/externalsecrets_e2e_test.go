package control_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/oauthvendor"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/fakesecretsmanager"
)

// startWithExternalSecrets runs a server that reads external secrets from
// the fake Secrets Manager and from files in dir.
func startWithExternalSecrets(t *testing.T, b behalftest.Backend) (*behalftest.Server, *fakesecretsmanager.Server, string) {
	t.Helper()
	fake := fakesecretsmanager.Start(t, "eu-west-1")
	dir := t.TempDir()
	s := behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) {
		f.ExternalSecrets = config.ExternalSecretsFile{
			AWSSecretsManager: &config.AWSSecretsManagerFile{Region: "eu-west-1", Endpoint: fake.URL},
			Files:             &config.SecretFilesFile{Directories: []string{dir}},
		}
	}})
	return s, fake, dir
}

// externalInput is oauth2Input with the client secret kept outside behalf.
func externalInput(v oauthvendor.Vendor, idp string, ref *types.SecretReference) types.Oauth2ProviderConfigInput {
	in := oauth2Input(v, idp)
	ext := types.SecretSourceTypeExternal
	switch m := in.(type) {
	case *types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig:
		m.Value.ClientSecret, m.Value.ClientSecretSource, m.Value.ClientSecretConfig = nil, ext, ref
	case *types.Oauth2ProviderConfigInputMemberGoogleOauth2ProviderConfig:
		m.Value.ClientSecret, m.Value.ClientSecretSource, m.Value.ClientSecretConfig = nil, ext, ref
	case *types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig:
		m.Value.ClientSecret, m.Value.ClientSecretSource, m.Value.ClientSecretConfig = nil, ext, ref
	case *types.Oauth2ProviderConfigInputMemberSlackOauth2ProviderConfig:
		m.Value.ClientSecret, m.Value.ClientSecretSource, m.Value.ClientSecretConfig = nil, ext, ref
	case *types.Oauth2ProviderConfigInputMemberSalesforceOauth2ProviderConfig:
		m.Value.ClientSecret, m.Value.ClientSecretSource, m.Value.ClientSecretConfig = nil, ext, ref
	case *types.Oauth2ProviderConfigInputMemberMicrosoftOauth2ProviderConfig:
		m.Value.ClientSecret, m.Value.ClientSecretSource, m.Value.ClientSecretConfig = nil, ext, ref
	case *types.Oauth2ProviderConfigInputMemberAtlassianOauth2ProviderConfig:
		m.Value.ClientSecret, m.Value.ClientSecretSource, m.Value.ClientSecretConfig = nil, ext, ref
	case *types.Oauth2ProviderConfigInputMemberLinkedinOauth2ProviderConfig:
		m.Value.ClientSecret, m.Value.ClientSecretSource, m.Value.ClientSecretConfig = nil, ext, ref
	case *types.Oauth2ProviderConfigInputMemberIncludedOauth2ProviderConfig:
		m.Value.ClientSecret, m.Value.ClientSecretSource, m.Value.ClientSecretConfig = nil, ext, ref
	default:
		panic(fmt.Sprintf("%T", in))
	}
	return in
}

func secretRef(id, key string) *types.SecretReference {
	return &types.SecretReference{SecretId: aws.String(id), JsonKey: aws.String(key)}
}

// TestExternalSecretProviders: every vendor's configuration member, and
// API key providers, take clientSecretSource / apiKeySecretSource
// EXTERNAL with a SecretReference through the official client; the
// outputs give the source, the JSON key and the secret id, and storage
// holds the reference in place of a sealed secret. Nothing is read from
// the sources at Create or Update.
func TestExternalSecretProviders(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s, fake, dir := startWithExternalSecrets(t, b)
		c, cx, st := s.Control(), ctx(t), s.Server.Store()
		idp := discoveryServer(t, nil)

		ids := []string{"prod/oauth", fake.ARN("prod/oauth"), "file:" + dir + "/oauth.json", dir + "/k8s/oauth.json"}
		idOf := map[string]string{}
		for i, v := range oauthvendor.All() {
			name, id := "e-"+strings.ToLower(v.Name), ids[i%len(ids)]
			idOf[name] = id
			out, err := c.CreateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
				Name: aws.String(name), CredentialProviderVendor: types.CredentialProviderVendorType(v.Name),
				Oauth2ProviderConfigInput: externalInput(v, idp.URL, secretRef(id, "clientSecret")),
			})
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			if out.ClientSecretSource != types.SecretSourceTypeExternal || aws.ToString(out.ClientSecretJsonKey) != "clientSecret" ||
				out.ClientSecretArn == nil || aws.ToString(out.ClientSecretArn.SecretArn) != id {
				t.Fatalf("%s: create output %+v", v.Name, out)
			}
			got, err := c.GetOauth2CredentialProvider(cx, &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String(name)})
			if err != nil || got.ClientSecretSource != types.SecretSourceTypeExternal || aws.ToString(got.ClientSecretJsonKey) != "clientSecret" ||
				aws.ToString(got.ClientSecretArn.SecretArn) != id {
				t.Fatalf("%s: get %+v %v", v.Name, got, err)
			}
			p, err := st.GetOAuth2Provider(cx, name)
			if err != nil || !p.ClientSecret.IsZero() || p.ExternalSecret == nil || *p.ExternalSecret != (storage.SecretRef{SecretID: id, JSONKey: "clientSecret"}) {
				t.Fatalf("%s: stored %+v %v", v.Name, p, err)
			}
		}

		// The change's audit record names the reference.
		var found bool
		for _, r := range auditRecords(t, st) {
			if r.Operation == "CreateOauth2CredentialProvider" && r.Provider == "e-githuboauth2" {
				found = r.Resource == "external-secret/"+idOf["e-githuboauth2"]+" clientSecret"
			}
		}
		if !found {
			t.Error("the create's audit record does not name the external secret")
		}

		// EXTERNAL → MANAGED: the secret is sealed and the reference gone.
		const gh = "e-githuboauth2"
		github := mustVendor("GithubOauth2")
		up, err := c.UpdateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
			Name: aws.String(gh), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2, Oauth2ProviderConfigInput: oauth2Input(github, idp.URL)})
		if err != nil || up.ClientSecretSource != types.SecretSourceTypeManaged || up.ClientSecretJsonKey != nil ||
			!strings.HasPrefix(aws.ToString(up.ClientSecretArn.SecretArn), "arn:aws:secretsmanager:us-east-1:000000000000:secret:") {
			t.Fatalf("to MANAGED: %+v %v", up, err)
		}
		p, _ := st.GetOAuth2Provider(cx, gh)
		if p.ClientSecret.IsZero() || p.ExternalSecret != nil {
			t.Fatalf("stored after the switch to MANAGED: %+v", p)
		}
		// MANAGED → EXTERNAL: the sealed secret is dropped.
		if _, err := c.UpdateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
			Name: aws.String(gh), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
			Oauth2ProviderConfigInput: externalInput(github, idp.URL, secretRef("prod/github", "secret"))}); err != nil {
			t.Fatal(err)
		}
		p, _ = st.GetOAuth2Provider(cx, gh)
		if !p.ClientSecret.IsZero() || p.ExternalSecret == nil || p.ExternalSecret.SecretID != "prod/github" {
			t.Fatalf("stored after the switch to EXTERNAL: %+v", p)
		}
		// An update that gives no secret keeps the reference.
		if _, err := c.UpdateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
			Name: aws.String(gh), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
			Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: types.GithubOauth2ProviderConfigInput{ClientId: aws.String("renamed")}}}); err != nil {
			t.Fatal(err)
		}
		if p, _ = st.GetOAuth2Provider(cx, gh); p.ExternalSecret == nil || p.ExternalSecret.SecretID != "prod/github" || !p.ClientSecret.IsZero() {
			t.Fatalf("an update without a secret changed it: %+v", p)
		}

		// API key providers, both ways.
		key, err := c.CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
			Name: aws.String("weather"), ApiKeySecretSource: types.SecretSourceTypeExternal, ApiKeySecretConfig: secretRef("file:"+dir+"/weather.json", "apiKey")})
		if err != nil || key.ApiKeySecretSource != types.SecretSourceTypeExternal || aws.ToString(key.ApiKeySecretJsonKey) != "apiKey" ||
			aws.ToString(key.ApiKeySecretArn.SecretArn) != "file:"+dir+"/weather.json" {
			t.Fatalf("create API key provider: %+v %v", key, err)
		}
		gotKey, err := c.GetApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.GetApiKeyCredentialProviderInput{Name: aws.String("weather")})
		if err != nil || gotKey.ApiKeySecretSource != types.SecretSourceTypeExternal || aws.ToString(gotKey.ApiKeySecretJsonKey) != "apiKey" {
			t.Fatalf("get API key provider: %+v %v", gotKey, err)
		}
		upKey, err := c.UpdateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.UpdateApiKeyCredentialProviderInput{Name: aws.String("weather"), ApiKey: aws.String("sk-managed-now")})
		if err != nil || upKey.ApiKeySecretSource != types.SecretSourceTypeManaged || upKey.ApiKeySecretJsonKey != nil {
			t.Fatalf("API key to MANAGED: %+v %v", upKey, err)
		}
		if a, _ := st.GetAPIKeyProvider(cx, "weather"); a.APIKey.IsZero() || a.ExternalSecret != nil {
			t.Fatalf("stored API key provider after the switch to MANAGED: %+v", a)
		}
		if _, err := c.UpdateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.UpdateApiKeyCredentialProviderInput{Name: aws.String("weather"),
			ApiKeySecretSource: types.SecretSourceTypeExternal, ApiKeySecretConfig: secretRef(fake.ARN("weather"), "apiKey")}); err != nil {
			t.Fatal(err)
		}
		if a, _ := st.GetAPIKeyProvider(cx, "weather"); !a.APIKey.IsZero() || a.ExternalSecret == nil || a.ExternalSecret.SecretID != fake.ARN("weather") {
			t.Fatalf("stored API key provider after the switch to EXTERNAL: %+v", a)
		}
		if fake.Calls() != 0 {
			t.Errorf("Create and Update read %d secrets; the first use reads them", fake.Calls())
		}
	})
}

// TestExternalSecretValidation: every malformed or unreadable reference is
// a ValidationException naming the member.
func TestExternalSecretValidation(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s, _, dir := startWithExternalSecrets(t, b)
		c, cx := s.Control(), ctx(t)
		const member = "oauth2ProviderConfigInput.githubOauth2ProviderConfig."
		ext, managed := types.SecretSourceTypeExternal, types.SecretSourceTypeManaged
		github := func(in types.GithubOauth2ProviderConfigInput) *bedrockagentcorecontrol.CreateOauth2CredentialProviderInput {
			in.ClientId = aws.String("c")
			return &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{Name: aws.String("gh"), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
				Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: in}}
		}
		for name, tc := range map[string]struct {
			in    *bedrockagentcorecontrol.CreateOauth2CredentialProviderInput
			field string
		}{
			"config without source": {github(types.GithubOauth2ProviderConfigInput{ClientSecret: aws.String("s"), ClientSecretConfig: secretRef("a", "b")}), member + "clientSecretConfig"},
			"managed with config":   {github(types.GithubOauth2ProviderConfigInput{ClientSecretSource: managed, ClientSecret: aws.String("s"), ClientSecretConfig: secretRef("a", "b")}), member + "clientSecretConfig"},
			"external, no config":   {github(types.GithubOauth2ProviderConfigInput{ClientSecretSource: ext}), member + "clientSecretConfig"},
			"external and a secret": {github(types.GithubOauth2ProviderConfigInput{ClientSecretSource: ext, ClientSecret: aws.String("s"), ClientSecretConfig: secretRef("a", "b")}), member + "clientSecret"},
			"empty secret id":       {github(types.GithubOauth2ProviderConfigInput{ClientSecretSource: ext, ClientSecretConfig: secretRef("", "b")}), member + "clientSecretConfig.secretId"},
			"long secret id":        {github(types.GithubOauth2ProviderConfigInput{ClientSecretSource: ext, ClientSecretConfig: secretRef(strings.Repeat("a", 2049), "b")}), member + "clientSecretConfig.secretId"},
			"long json key":         {github(types.GithubOauth2ProviderConfigInput{ClientSecretSource: ext, ClientSecretConfig: secretRef("a", strings.Repeat("k", 129))}), member + "clientSecretConfig.jsonKey"},
			"unknown source":        {github(types.GithubOauth2ProviderConfigInput{ClientSecretSource: "VAULT", ClientSecret: aws.String("s")}), member + "clientSecretSource"},
			"file outside":          {github(types.GithubOauth2ProviderConfigInput{ClientSecretSource: ext, ClientSecretConfig: secretRef("file:"+dir+"/../keyring.json", "k")}), member + "clientSecretConfig.secretId"},
			"relative file":         {github(types.GithubOauth2ProviderConfigInput{ClientSecretSource: ext, ClientSecretConfig: secretRef("file:secrets/gh.json", "k")}), member + "clientSecretConfig.secretId"},
			"not a secret's ARN":    {github(types.GithubOauth2ProviderConfigInput{ClientSecretSource: ext, ClientSecretConfig: secretRef("arn:aws:kms:eu-west-1:123456789012:key/k", "k")}), member + "clientSecretConfig.secretId"},
		} {
			_, err := c.CreateOauth2CredentialProvider(cx, tc.in)
			ve := wantAPIError[*types.ValidationException](t, err)
			if len(ve.FieldList) == 0 || aws.ToString(ve.FieldList[0].Name) != tc.field {
				t.Errorf("%s: fields %+v, want %s: %v", name, ve.FieldList, tc.field, ve)
			}
		}
		for name, in := range map[string]*bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
			"external, no config": {Name: aws.String("k1"), ApiKeySecretSource: ext},
			"config, no source":   {Name: aws.String("k2"), ApiKeySecretConfig: secretRef("a", "b")},
			"external and a key":  {Name: aws.String("k3"), ApiKey: aws.String("k"), ApiKeySecretSource: ext, ApiKeySecretConfig: secretRef("a", "b")},
			"file outside":        {Name: aws.String("k4"), ApiKeySecretSource: ext, ApiKeySecretConfig: secretRef("/etc/passwd", "b")},
		} {
			_, err := c.CreateApiKeyCredentialProvider(cx, in)
			if ve := wantAPIError[*types.ValidationException](t, err); len(ve.FieldList) == 0 || !strings.HasPrefix(aws.ToString(ve.FieldList[0].Name), "apiKey") {
				t.Errorf("%s: fields %+v", name, ve.FieldList)
			}
		}
	})
}

// TestExternalSecretsNotConfigured: with no externalSecrets configuration,
// an EXTERNAL secret is refused at Create, naming the member and why.
func TestExternalSecretsNotConfigured(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	_, err := s.Control().CreateApiKeyCredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
		Name: aws.String("weather"), ApiKeySecretSource: types.SecretSourceTypeExternal, ApiKeySecretConfig: secretRef("prod/weather", "apiKey")})
	ve := wantAPIError[*types.ValidationException](t, err)
	if len(ve.FieldList) != 1 || aws.ToString(ve.FieldList[0].Name) != "apiKeySecretConfig.secretId" ||
		!strings.Contains(aws.ToString(ve.Message), "externalSecrets") || !strings.Contains(aws.ToString(ve.Message), `"prod/weather"`) {
		t.Fatalf("%+v", ve)
	}
}
