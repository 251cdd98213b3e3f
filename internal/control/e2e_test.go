package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/aws/smithy-go"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/oauthvendor"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/vault"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// wantAPIError asserts err is the typed SDK error T and returns it.
func wantAPIError[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("got %T %v, want %T", err, err, target)
	}
	return target
}

func TestWorkloadIdentities(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		c, cx := s.Control(), ctx(t)

		created, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
			Name:                            aws.String("agent.one"),
			AllowedResourceOauth2ReturnUrls: []string{"https://app.example.com/done", "http://127.0.0.1:9090/cb"},
			Tags:                            map[string]string{"team": "core"},
		})
		if err != nil {
			t.Fatal(err)
		}
		wantARN := "arn:aws:bedrock-agentcore:us-east-1:000000000000:workload-identity-directory/default/workload-identity/agent.one"
		if aws.ToString(created.WorkloadIdentityArn) != wantARN || len(created.AllowedResourceOauth2ReturnUrls) != 2 {
			t.Fatalf("create: %+v", created)
		}

		got, err := c.GetWorkloadIdentity(cx, &bedrockagentcorecontrol.GetWorkloadIdentityInput{Name: aws.String("agent.one")})
		if err != nil {
			t.Fatal(err)
		}
		if got.CreatedTime == nil || time.Since(*got.CreatedTime) > time.Minute || got.LastUpdatedTime == nil {
			t.Fatalf("timestamps: %+v", got)
		}

		up, err := c.UpdateWorkloadIdentity(cx, &bedrockagentcorecontrol.UpdateWorkloadIdentityInput{
			Name: aws.String("agent.one"), AllowedResourceOauth2ReturnUrls: []string{"https://other.example.com/cb"},
		})
		if err != nil || !slices.Equal(up.AllowedResourceOauth2ReturnUrls, []string{"https://other.example.com/cb"}) {
			t.Fatalf("update: %+v %v", up, err)
		}
		cleared, err := c.UpdateWorkloadIdentity(cx, &bedrockagentcorecontrol.UpdateWorkloadIdentityInput{
			Name: aws.String("agent.one"), AllowedResourceOauth2ReturnUrls: []string{},
		})
		if err != nil || len(cleared.AllowedResourceOauth2ReturnUrls) != 0 {
			t.Fatalf("clear: %+v %v", cleared, err)
		}

		_, err = c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("agent.one")})
		wantAPIError[*types.ConflictException](t, err)

		for name, in := range map[string]*bedrockagentcorecontrol.CreateWorkloadIdentityInput{
			"short name":     {Name: aws.String("ab")},
			"bad characters": {Name: aws.String("my agent!")},
			"plain http":     {Name: aws.String("agent-x"), AllowedResourceOauth2ReturnUrls: []string{"http://example.com/cb"}},
			"script scheme":  {Name: aws.String("agent-x"), AllowedResourceOauth2ReturnUrls: []string{"javascript:alert(1)"}},
			"relative":       {Name: aws.String("agent-x"), AllowedResourceOauth2ReturnUrls: []string{"/cb"}},
		} {
			_, err := c.CreateWorkloadIdentity(cx, in)
			ve := wantAPIError[*types.ValidationException](t, err)
			if len(ve.FieldList) == 0 || ve.Reason != types.ValidationExceptionReasonFieldValidationFailed {
				t.Errorf("%s: no field list in %+v", name, ve)
			}
		}

		for i := range 25 {
			if _, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String(fmt.Sprintf("bulk-%02d", i))}); err != nil {
				t.Fatal(err)
			}
		}
		var names []string
		pages := 0
		p := bedrockagentcorecontrol.NewListWorkloadIdentitiesPaginator(c, &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{MaxResults: aws.Int32(10)})
		for p.HasMorePages() {
			page, err := p.NextPage(cx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, w := range page.WorkloadIdentities {
				names = append(names, aws.ToString(w.Name))
			}
		}
		if len(names) != 26 || pages != 3 || !slices.IsSorted(names) {
			t.Fatalf("listed %d names in %d pages: %v", len(names), pages, names)
		}
		_, err = c.ListWorkloadIdentities(cx, &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{MaxResults: aws.Int32(21)})
		wantAPIError[*types.ValidationException](t, err)
		_, err = c.ListWorkloadIdentities(cx, &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{NextToken: aws.String("forged")})
		wantAPIError[*types.ValidationException](t, err)

		if _, err := c.DeleteWorkloadIdentity(cx, &bedrockagentcorecontrol.DeleteWorkloadIdentityInput{Name: aws.String("agent.one")}); err != nil {
			t.Fatal(err)
		}
		_, err = c.GetWorkloadIdentity(cx, &bedrockagentcorecontrol.GetWorkloadIdentityInput{Name: aws.String("agent.one")})
		wantAPIError[*types.ResourceNotFoundException](t, err)
		_, err = c.DeleteWorkloadIdentity(cx, &bedrockagentcorecontrol.DeleteWorkloadIdentityInput{Name: aws.String("agent.one")})
		wantAPIError[*types.ResourceNotFoundException](t, err)
	})
}

// discoveryServer serves an OpenID Connect discovery document for its own
// URL, like any IdP.
func discoveryServer(t *testing.T, mutate func(doc map[string]any)) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		doc := map[string]any{
			"issuer":                                srv.URL,
			"authorization_endpoint":                srv.URL + "/authorize",
			"token_endpoint":                        srv.URL + "/token",
			"revocation_endpoint":                   srv.URL + "/revoke",
			"jwks_uri":                              srv.URL + "/keys",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
			"code_challenge_methods_supported":      []string{"S256"},
		}
		if mutate != nil {
			mutate(doc)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// oauth2Input builds a valid configuration for any vendor.
func oauth2Input(v oauthvendor.Vendor, idp string) types.Oauth2ProviderConfigInput {
	id, secret := aws.String("client-"+strings.ToLower(v.Name)), aws.String("secret-"+v.Name+"-value")
	switch v.ConfigMember {
	case oauthvendor.MemberCustom:
		return &types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: types.CustomOauth2ProviderConfigInput{
			ClientId: id, ClientSecret: secret,
			OauthDiscovery: &types.Oauth2DiscoveryMemberDiscoveryUrl{Value: idp + "/.well-known/openid-configuration"}}}
	case oauthvendor.MemberGoogle:
		return &types.Oauth2ProviderConfigInputMemberGoogleOauth2ProviderConfig{Value: types.GoogleOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret}}
	case oauthvendor.MemberGithub:
		return &types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: types.GithubOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret}}
	case oauthvendor.MemberSlack:
		return &types.Oauth2ProviderConfigInputMemberSlackOauth2ProviderConfig{Value: types.SlackOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret}}
	case oauthvendor.MemberSalesforce:
		return &types.Oauth2ProviderConfigInputMemberSalesforceOauth2ProviderConfig{Value: types.SalesforceOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret}}
	case oauthvendor.MemberMicrosoft:
		return &types.Oauth2ProviderConfigInputMemberMicrosoftOauth2ProviderConfig{Value: types.MicrosoftOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret, TenantId: aws.String("contoso.onmicrosoft.com")}}
	case oauthvendor.MemberAtlassian:
		return &types.Oauth2ProviderConfigInputMemberAtlassianOauth2ProviderConfig{Value: types.AtlassianOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret}}
	case oauthvendor.MemberLinkedin:
		return &types.Oauth2ProviderConfigInputMemberLinkedinOauth2ProviderConfig{Value: types.LinkedinOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret}}
	}
	in := types.IncludedOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret}
	if v.TenantScoped {
		in.Issuer = aws.String(idp)
	}
	return &types.Oauth2ProviderConfigInputMemberIncludedOauth2ProviderConfig{Value: in}
}

// configOf extracts the client id and discovery of an output union.
func discoveryOf(t *testing.T, out types.Oauth2ProviderConfigOutput) (clientID string, d types.Oauth2Discovery) {
	t.Helper()
	raw, _ := json.Marshal(out)
	var m struct {
		Value struct {
			ClientID       *string `json:"ClientId"`
			OauthDiscovery json.RawMessage
		}
	}
	json.Unmarshal(raw, &m)
	switch v := out.(type) {
	case *types.Oauth2ProviderConfigOutputMemberGithubOauth2ProviderConfig:
		return aws.ToString(v.Value.ClientId), v.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberCustomOauth2ProviderConfig:
		return aws.ToString(v.Value.ClientId), v.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberIncludedOauth2ProviderConfig:
		return aws.ToString(v.Value.ClientId), v.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberMicrosoftOauth2ProviderConfig:
		return aws.ToString(v.Value.ClientId), v.Value.OauthDiscovery
	}
	return aws.ToString(m.Value.ClientID), nil
}

func TestOAuth2Providers(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		rec := &behalftest.Recorder{}
		c := bedrockagentcorecontrol.NewFromConfig(behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret), func(o *bedrockagentcorecontrol.Options) {
			o.BaseEndpoint, o.HTTPClient = aws.String(s.URL), rec
		})
		cx := ctx(t)
		idp := discoveryServer(t, nil)

		// Every one of the 25 vendors can be configured.
		for _, v := range oauthvendor.All() {
			name := "p-" + strings.ToLower(v.Name)
			out, err := c.CreateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
				Name: aws.String(name), CredentialProviderVendor: types.CredentialProviderVendorType(v.Name),
				Oauth2ProviderConfigInput: oauth2Input(v, idp.URL),
			})
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			if !strings.HasPrefix(aws.ToString(out.CallbackUrl), s.URL+"/identities/oauth2/callback/") || out.Status != types.StatusReady ||
				out.ClientSecretArn == nil || !strings.HasPrefix(aws.ToString(out.ClientSecretArn.SecretArn), "arn:aws:secretsmanager:") {
				t.Fatalf("%s: %+v", v.Name, out)
			}
			got, err := c.GetOauth2CredentialProvider(cx, &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String(name)})
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			if string(got.CredentialProviderVendor) != v.Name || got.Oauth2ProviderConfigOutput == nil || got.CreatedTime == nil {
				t.Fatalf("%s: get %+v", v.Name, got)
			}
		}

		got, err := c.GetOauth2CredentialProvider(cx, &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String("p-githuboauth2")})
		if err != nil {
			t.Fatal(err)
		}
		id, d := discoveryOf(t, got.Oauth2ProviderConfigOutput)
		md, ok := d.(*types.Oauth2DiscoveryMemberAuthorizationServerMetadata)
		if id != "client-githuboauth2" || !ok || aws.ToString(md.Value.TokenEndpoint) != "https://github.com/login/oauth/access_token" {
			t.Fatalf("github output: %q %#v", id, d)
		}
		got, _ = c.GetOauth2CredentialProvider(cx, &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String("p-customoauth2")})
		if _, d := discoveryOf(t, got.Oauth2ProviderConfigOutput); d == nil {
			t.Fatal("custom output has no discovery")
		} else if du, ok := d.(*types.Oauth2DiscoveryMemberDiscoveryUrl); !ok || du.Value != idp.URL+"/.well-known/openid-configuration" {
			t.Fatalf("custom discovery %#v", d)
		}

		// Explicit metadata instead of discovery.
		_, err = c.CreateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("meta"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: types.CustomOauth2ProviderConfigInput{
				ClientId: aws.String("c"), ClientSecret: aws.String("meta-secret-value"),
				ClientAuthenticationMethod: types.ClientAuthenticationMethodTypeClientSecretPost,
				OauthDiscovery: &types.Oauth2DiscoveryMemberAuthorizationServerMetadata{Value: types.Oauth2AuthorizationServerMetadata{
					Issuer: aws.String("https://as.example.com"), AuthorizationEndpoint: aws.String("https://as.example.com/authorize"),
					TokenEndpoint: aws.String("https://as.example.com/token")}},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}

		// Rejections, each with a field list.
		mismatched := discoveryServer(t, func(doc map[string]any) { doc["issuer"] = "https://evil.example.com" })
		for name, in := range map[string]*bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			"vendor and member disagree": {Name: aws.String("x1"), CredentialProviderVendor: types.CredentialProviderVendorTypeGoogleOauth2,
				Oauth2ProviderConfigInput: oauth2Input(mustVendor("GithubOauth2"), idp.URL)},
			"unknown vendor": {Name: aws.String("x2"), CredentialProviderVendor: "MySpaceOauth2", Oauth2ProviderConfigInput: oauth2Input(mustVendor("GithubOauth2"), idp.URL)},
			"tenant-scoped without issuer": {Name: aws.String("x3"), CredentialProviderVendor: types.CredentialProviderVendorTypeOktaOauth2,
				Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberIncludedOauth2ProviderConfig{Value: types.IncludedOauth2ProviderConfigInput{ClientId: aws.String("c"), ClientSecret: aws.String("s")}}},
			"issuer mismatch": {Name: aws.String("x4"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
				Oauth2ProviderConfigInput: oauth2Input(mustVendor("CustomOauth2"), mismatched.URL)},
			"unreachable discovery": {Name: aws.String("x5"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
				Oauth2ProviderConfigInput: oauth2Input(mustVendor("CustomOauth2"), "http://127.0.0.1:1")},
			"missing secret": {Name: aws.String("x6"), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
				Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: types.GithubOauth2ProviderConfigInput{ClientId: aws.String("c")}}},
			"external secret": {Name: aws.String("x7"), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
				Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: types.GithubOauth2ProviderConfigInput{
					ClientId: aws.String("c"), ClientSecretSource: types.SecretSourceTypeExternal,
					ClientSecretConfig: &types.SecretReference{SecretId: aws.String("s"), JsonKey: aws.String("k")}}}},
			"private key jwt": {Name: aws.String("x8"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
				Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: types.CustomOauth2ProviderConfigInput{
					ClientId: aws.String("c"), ClientSecret: aws.String("s"), ClientAuthenticationMethod: types.ClientAuthenticationMethodTypePrivateKeyJwt,
					OauthDiscovery: &types.Oauth2DiscoveryMemberDiscoveryUrl{Value: idp.URL + "/.well-known/openid-configuration"}}}},
			"plain http endpoint": {Name: aws.String("x9"), CredentialProviderVendor: types.CredentialProviderVendorTypeOktaOauth2,
				Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberIncludedOauth2ProviderConfig{Value: types.IncludedOauth2ProviderConfigInput{
					ClientId: aws.String("c"), ClientSecret: aws.String("s"),
					AuthorizationEndpoint: aws.String("http://okta.example.com/authorize"), TokenEndpoint: aws.String("http://okta.example.com/token")}}},
			"bad name": {Name: aws.String("has space"), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
				Oauth2ProviderConfigInput: oauth2Input(mustVendor("GithubOauth2"), idp.URL)},
		} {
			_, err := c.CreateOauth2CredentialProvider(cx, in)
			ve := wantAPIError[*types.ValidationException](t, err)
			if len(ve.FieldList) == 0 {
				t.Errorf("%s: no field list: %v", name, ve)
			}
		}

		_, err = c.CreateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("p-githuboauth2"), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
			Oauth2ProviderConfigInput: oauth2Input(mustVendor("GithubOauth2"), idp.URL),
		})
		wantAPIError[*types.ConflictException](t, err)

		// Update without a secret keeps the stored one.
		before, err := s.Server.Store().GetOAuth2Provider(cx, "p-githuboauth2")
		if err != nil {
			t.Fatal(err)
		}
		up, err := c.UpdateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
			Name: aws.String("p-githuboauth2"), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
			Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: types.GithubOauth2ProviderConfigInput{ClientId: aws.String("new-client")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := discoveryOf(t, up.Oauth2ProviderConfigOutput); id != "new-client" {
			t.Fatalf("update output client id %q", id)
		}
		after, _ := s.Server.Store().GetOAuth2Provider(cx, "p-githuboauth2")
		if string(after.ClientSecret.Blob) != string(before.ClientSecret.Blob) || after.ID != before.ID {
			t.Fatal("update without a secret replaced the stored secret")
		}

		var listed []string
		p := bedrockagentcorecontrol.NewListOauth2CredentialProvidersPaginator(c, &bedrockagentcorecontrol.ListOauth2CredentialProvidersInput{MaxResults: aws.Int32(7)})
		for p.HasMorePages() {
			page, err := p.NextPage(cx)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.CredentialProviders {
				listed = append(listed, aws.ToString(it.Name))
				if it.CredentialProviderVendor == "" || it.CreatedTime == nil {
					t.Fatalf("list item %+v", it)
				}
			}
		}
		if len(listed) != 26 {
			t.Fatalf("listed %d providers", len(listed))
		}

		if _, err := c.DeleteOauth2CredentialProvider(cx, &bedrockagentcorecontrol.DeleteOauth2CredentialProviderInput{Name: aws.String("meta")}); err != nil {
			t.Fatal(err)
		}
		_, err = c.GetOauth2CredentialProvider(cx, &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String("meta")})
		wantAPIError[*types.ResourceNotFoundException](t, err)

		// No response ever carried a client secret.
		for _, v := range oauthvendor.All() {
			if rec.Contains("secret-" + v.Name + "-value") {
				t.Fatalf("a response contained the %s client secret", v.Name)
			}
		}
		if rec.Contains("meta-secret-value") || rec.Count() < 50 {
			t.Fatalf("secret leaked or too few responses recorded (%d)", rec.Count())
		}
	})
}

func mustVendor(name string) oauthvendor.Vendor {
	v, ok := oauthvendor.Lookup(name)
	if !ok {
		panic(name)
	}
	return v
}

func TestAPIKeyProviders(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		s := behalftest.Start(t, b, behalftest.Options{Now: clock.Now})
		rec := &behalftest.Recorder{}
		c := bedrockagentcorecontrol.NewFromConfig(behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret), func(o *bedrockagentcorecontrol.Options) {
			o.BaseEndpoint, o.HTTPClient = aws.String(s.URL), rec
		})
		cx := ctx(t)

		out, err := c.CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
			Name: aws.String("openai"), ApiKey: aws.String("sk-live-0123456789"), Tags: map[string]string{"env": "prod"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.CredentialProviderArn) != "arn:aws:bedrock-agentcore:us-east-1:000000000000:token-vault/default/apikeycredentialprovider/openai" ||
			out.ApiKeySecretArn == nil {
			t.Fatalf("create: %+v", out)
		}
		_, err = c.CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{Name: aws.String("openai"), ApiKey: aws.String("x")})
		wantAPIError[*types.ConflictException](t, err)
		for _, in := range []*bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
			{Name: aws.String("empty")},
			{Name: aws.String("empty2"), ApiKey: aws.String("")},
			{Name: aws.String("ext"), ApiKeySecretSource: types.SecretSourceTypeExternal, ApiKeySecretConfig: &types.SecretReference{SecretId: aws.String("a"), JsonKey: aws.String("b")}},
			{Name: aws.String("bad/name"), ApiKey: aws.String("k")},
			{Name: aws.String("huge"), ApiKey: aws.String(strings.Repeat("k", 65537))},
		} {
			_, err := c.CreateApiKeyCredentialProvider(cx, in)
			wantAPIError[*types.ValidationException](t, err)
		}

		got, err := c.GetApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.GetApiKeyCredentialProviderInput{Name: aws.String("openai")})
		if err != nil || got.CreatedTime == nil {
			t.Fatalf("get: %+v %v", got, err)
		}
		clock.Advance(time.Second)
		up, err := c.UpdateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.UpdateApiKeyCredentialProviderInput{Name: aws.String("openai"), ApiKey: aws.String("sk-live-rotated-999")})
		if err != nil || !up.LastUpdatedTime.After(*got.LastUpdatedTime) {
			t.Fatalf("update: %+v %v", up, err)
		}
		_, err = c.UpdateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.UpdateApiKeyCredentialProviderInput{Name: aws.String("nope"), ApiKey: aws.String("k")})
		wantAPIError[*types.ResourceNotFoundException](t, err)

		for i := range 12 {
			if _, err := c.CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{Name: aws.String(fmt.Sprintf("k%02d", i)), ApiKey: aws.String("key")}); err != nil {
				t.Fatal(err)
			}
		}
		page, err := c.ListApiKeyCredentialProviders(cx, &bedrockagentcorecontrol.ListApiKeyCredentialProvidersInput{MaxResults: aws.Int32(5)})
		if err != nil || len(page.CredentialProviders) != 5 || page.NextToken == nil {
			t.Fatalf("list page: %+v %v", page, err)
		}
		_, err = c.ListApiKeyCredentialProviders(cx, &bedrockagentcorecontrol.ListApiKeyCredentialProvidersInput{MaxResults: aws.Int32(101)})
		wantAPIError[*types.ValidationException](t, err)

		if _, err := c.DeleteApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.DeleteApiKeyCredentialProviderInput{Name: aws.String("openai")}); err != nil {
			t.Fatal(err)
		}
		_, err = c.GetApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.GetApiKeyCredentialProviderInput{Name: aws.String("openai")})
		wantAPIError[*types.ResourceNotFoundException](t, err)

		if rec.Contains("sk-live-0123456789") || rec.Contains("sk-live-rotated-999") {
			t.Fatal("a response contained an API key")
		}
	})
}

func TestTags(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		c, cx := s.Control(), ctx(t)
		w, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("tagged"), Tags: map[string]string{"a": "1"}})
		if err != nil {
			t.Fatal(err)
		}
		k, err := c.CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{Name: aws.String("key"), ApiKey: aws.String("v")})
		if err != nil {
			t.Fatal(err)
		}
		vaultARN := "arn:aws:bedrock-agentcore:us-east-1:000000000000:token-vault/default"
		for _, arn := range []string{aws.ToString(w.WorkloadIdentityArn), aws.ToString(k.CredentialProviderArn), vaultARN} {
			if _, err := c.TagResource(cx, &bedrockagentcorecontrol.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"owner": "team a", "b": "2"}}); err != nil {
				t.Fatalf("tag %s: %v", arn, err)
			}
			if _, err := c.UntagResource(cx, &bedrockagentcorecontrol.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"b", "missing"}}); err != nil {
				t.Fatalf("untag %s: %v", arn, err)
			}
			got, err := c.ListTagsForResource(cx, &bedrockagentcorecontrol.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
			if err != nil || got.Tags["owner"] != "team a" || got.Tags["b"] != "" {
				t.Fatalf("list %s: %+v %v", arn, got, err)
			}
		}
		got, _ := c.ListTagsForResource(cx, &bedrockagentcorecontrol.ListTagsForResourceInput{ResourceArn: w.WorkloadIdentityArn})
		if got.Tags["a"] != "1" {
			t.Fatalf("tags given at creation: %v", got.Tags)
		}

		_, err = c.ListTagsForResource(cx, &bedrockagentcorecontrol.ListTagsForResourceInput{
			ResourceArn: aws.String("arn:aws:bedrock-agentcore:us-east-1:000000000000:workload-identity-directory/default/workload-identity/ghost")})
		wantAPIError[*types.ResourceNotFoundException](t, err)
		_, err = c.ListTagsForResource(cx, &bedrockagentcorecontrol.ListTagsForResourceInput{
			ResourceArn: aws.String("arn:aws:bedrock-agentcore:eu-west-1:111111111111:workload-identity-directory/default/workload-identity/tagged")})
		wantAPIError[*types.ResourceNotFoundException](t, err)
		_, err = c.ListTagsForResource(cx, &bedrockagentcorecontrol.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:s3:::bucket-name-here")})
		wantAPIError[*types.ValidationException](t, err)

		many := map[string]string{}
		for i := range 49 {
			many[fmt.Sprintf("k%d", i)] = "v"
		}
		_, err = c.TagResource(cx, &bedrockagentcorecontrol.TagResourceInput{ResourceArn: w.WorkloadIdentityArn, Tags: many})
		wantAPIError[*types.ServiceQuotaExceededException](t, err)
		many["k49"], many["k50"] = "v", "v"
		_, err = c.TagResource(cx, &bedrockagentcorecontrol.TagResourceInput{ResourceArn: w.WorkloadIdentityArn, Tags: many})
		wantAPIError[*types.ValidationException](t, err)

		// Deleting a resource deletes its tags: a new one of that name starts bare.
		c.DeleteWorkloadIdentity(cx, &bedrockagentcorecontrol.DeleteWorkloadIdentityInput{Name: aws.String("tagged")})
		c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("tagged")})
		got, err = c.ListTagsForResource(cx, &bedrockagentcorecontrol.ListTagsForResourceInput{ResourceArn: w.WorkloadIdentityArn})
		if err != nil || len(got.Tags) != 0 {
			t.Fatalf("tags survived deletion: %v %v", got.Tags, err)
		}
	})
}

func TestTokenVaultKeyRotation(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		c, cx := s.Control(), ctx(t)
		st := s.Server.Store()

		v, err := c.GetTokenVault(cx, &bedrockagentcorecontrol.GetTokenVaultInput{})
		if err != nil || aws.ToString(v.TokenVaultId) != "default" || v.KmsConfiguration.KeyType != types.KeyTypeServiceManagedKey || v.LastModifiedDate == nil {
			t.Fatalf("get vault: %+v %v", v, err)
		}
		initial, _ := st.GetTokenVault(cx, "default")
		serviceKey := initial.KeyID
		_, err = c.GetTokenVault(cx, &bedrockagentcorecontrol.GetTokenVaultInput{TokenVaultId: aws.String("other")})
		wantAPIError[*types.ResourceNotFoundException](t, err)

		for i := range 30 {
			if _, err := c.CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
				Name: aws.String(fmt.Sprintf("key-%02d", i)), ApiKey: aws.String(fmt.Sprintf("value-%02d", i))}); err != nil {
				t.Fatal(err)
			}
		}

		_, err = c.SetTokenVaultCMK(cx, &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &types.KmsConfiguration{
			KeyType: types.KeyTypeCustomerManagedKey, KmsKeyArn: aws.String("arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000")}})
		wantAPIError[*types.ValidationException](t, err)
		_, err = c.SetTokenVaultCMK(cx, &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &types.KmsConfiguration{KeyType: types.KeyTypeCustomerManagedKey}})
		wantAPIError[*types.ValidationException](t, err)

		res := s.Do(t, behalftest.Raw{Path: "/behalf/CreateVaultKey", Body: []byte(`{}`)})
		if res.Status != http.StatusCreated {
			t.Fatalf("CreateVaultKey: %d %s", res.Status, res.Body)
		}
		keyARN := res.JSON(t)["kmsKeyArn"].(string)

		// Keep reading through the control plane while the key changes.
		stop := make(chan struct{})
		readErrs := make(chan error, 1)
		go func() {
			defer close(readErrs)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.GetApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.GetApiKeyCredentialProviderInput{Name: aws.String("key-07")}); err != nil {
					readErrs <- err
					return
				}
			}
		}()
		set, err := c.SetTokenVaultCMK(cx, &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &types.KmsConfiguration{
			KeyType: types.KeyTypeCustomerManagedKey, KmsKeyArn: aws.String(keyARN)}})
		if err != nil || aws.ToString(set.KmsConfiguration.KmsKeyArn) != keyARN {
			t.Fatalf("set CMK: %+v %v", set, err)
		}
		tv, _ := st.GetTokenVault(cx, "default")
		deadline := time.Now().Add(20 * time.Second)
		for {
			stale, err := st.ListStaleSecrets(cx, vault.Targets(serviceKey, tv.KeyID), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(stale) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d secrets still under the old key", len(stale))
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(stop)
		if err := <-readErrs; err != nil {
			t.Fatalf("a read failed during rotation: %v", err)
		}
		// The admin's own secret is behalf's, not the token vault's: it
		// stays under the service key, and still signs.
		if admin, err := st.GetPrincipal(cx, behalftest.AdminKeyID); err != nil || admin.Secret.KeyID != serviceKey {
			t.Fatalf("the admin's secret moved to %s: %v", admin.Secret.KeyID, err)
		}
		if _, err := c.GetTokenVault(cx, &bedrockagentcorecontrol.GetTokenVaultInput{}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Server.Rewrap(cx); err != nil || n != 0 {
			t.Fatalf("second re-wrap did %d: %v", n, err)
		}

		back, err := c.SetTokenVaultCMK(cx, &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &types.KmsConfiguration{KeyType: types.KeyTypeServiceManagedKey}})
		if err != nil || back.KmsConfiguration.KeyType != types.KeyTypeServiceManagedKey || back.KmsConfiguration.KmsKeyArn != nil {
			t.Fatalf("back to service key: %+v %v", back, err)
		}
		if _, err := s.Server.Rewrap(cx); err != nil {
			t.Fatal(err)
		}
		if stale, _ := st.ListStaleSecrets(cx, storage.AllUnder(serviceKey), 10); len(stale) != 0 {
			t.Fatalf("%d secrets not re-wrapped back", len(stale))
		}
	})
}

func TestPrincipals(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		cx := ctx(t)

		res := s.Do(t, behalftest.Raw{Path: "/behalf/CreatePrincipal", Body: []byte(`{"role":"runtime","workloads":["agent-a"],"description":"the agent runtime"}`)})
		if res.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", res.Status, res.Body)
		}
		p := res.JSON(t)
		id, secret := p["accessKeyId"].(string), p["secretAccessKey"].(string)
		if len(id) != 20 || len(secret) != 40 {
			t.Fatalf("generated key %q / %d-char secret", id, len(secret))
		}
		// The secret is shown once.
		res = s.Do(t, behalftest.Raw{Path: "/behalf/GetPrincipal", Body: []byte(`{"accessKeyId":"` + id + `"}`)})
		if res.Status != 200 || strings.Contains(string(res.Body), secret) {
			t.Fatalf("get: %d %s", res.Status, res.Body)
		}

		// A runtime principal may not use the control plane.
		_, err := s.ControlAs(id, secret).ListWorkloadIdentities(cx, &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{})
		ade := wantAPIError[*types.AccessDeniedException](t, err)
		if !strings.Contains(aws.ToString(ade.Message), "not allowed to call ListWorkloadIdentities") {
			t.Fatalf("message %q", aws.ToString(ade.Message))
		}
		res = s.Do(t, behalftest.Raw{Path: "/behalf/CreatePrincipal", Body: []byte(`{"role":"admin"}`), KeyID: id, Secret: secret})
		if res.Status != 403 || res.ErrType != "AccessDeniedException" {
			t.Fatalf("runtime creating an admin: %d %s", res.Status, res.Body)
		}

		for body, want := range map[string]string{
			`{"role":"root"}`:                                        "role",
			`{"role":"admin","workloads":["a-b-c"]}`:                 "workloads",
			`{"role":"runtime","workloads":["no spaces"]}`:           "workloads[0]",
			`{"role":"runtime","accessKeyId":"lowercase0123456789"}`: "accessKeyId",
		} {
			res := s.Do(t, behalftest.Raw{Path: "/behalf/CreatePrincipal", Body: []byte(body)})
			if res.ErrType != "ValidationException" || !strings.Contains(string(res.Body), want) {
				t.Errorf("%s: %d %s", body, res.Status, res.Body)
			}
		}

		// The last admin cannot be removed or demoted.
		res = s.Do(t, behalftest.Raw{Path: "/behalf/DeletePrincipal", Body: []byte(`{"accessKeyId":"` + behalftest.AdminKeyID + `"}`)})
		if res.ErrType != "ConflictException" {
			t.Fatalf("deleting the last admin: %d %s", res.Status, res.Body)
		}
		res = s.Do(t, behalftest.Raw{Path: "/behalf/UpdatePrincipal", Body: []byte(`{"accessKeyId":"` + behalftest.AdminKeyID + `","role":"runtime"}`)})
		if res.ErrType != "ConflictException" {
			t.Fatalf("demoting the last admin: %d %s", res.Status, res.Body)
		}

		res = s.Do(t, behalftest.Raw{Path: "/behalf/UpdatePrincipal", Body: []byte(`{"accessKeyId":"` + id + `","workloads":["agent-a","agent-b"]}`)})
		if res.Status != 200 || !strings.Contains(string(res.Body), "agent-b") {
			t.Fatalf("update: %d %s", res.Status, res.Body)
		}

		// Deleting a principal revokes its key at once.
		res = s.Do(t, behalftest.Raw{Path: "/behalf/DeletePrincipal", Body: []byte(`{"accessKeyId":"` + id + `"}`)})
		if res.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", res.Status, res.Body)
		}
		_, err = s.ControlAs(id, secret).ListWorkloadIdentities(cx, &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{})
		wantAPIError[*types.UnauthorizedException](t, err)

		res = s.Do(t, behalftest.Raw{Path: "/behalf/ListPrincipals", Body: []byte(`{}`)})
		if res.Status != 200 || len(res.JSON(t)["principals"].([]any)) != 1 {
			t.Fatalf("list: %s", res.Body)
		}
	})
}

func TestSigV4Rejections(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		cx := ctx(t)
		list := func(c *bedrockagentcorecontrol.Client) error {
			_, err := c.ListWorkloadIdentities(cx, &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{})
			return err
		}
		wantAPIError[*types.AccessDeniedException](t, list(s.ControlAs(behalftest.AdminKeyID, "wrong-secret-wrong-secret-wrong-secret00")))
		wantAPIError[*types.UnauthorizedException](t, list(s.ControlAs("AKIDUNKNOWN000000000", "whatever-secret-0000000000000000000000")))
		wrongRegion := bedrockagentcorecontrol.NewFromConfig(behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret), func(o *bedrockagentcorecontrol.Options) {
			o.BaseEndpoint, o.Region = aws.String(s.URL), "eu-west-1"
		})
		wantAPIError[*types.AccessDeniedException](t, list(wrongRegion))

		body := []byte(`{"name":"signed-name"}`)
		for name, tc := range map[string]struct {
			raw  behalftest.Raw
			want string
		}{
			"tampered body": {behalftest.Raw{Path: "/identities/CreateWorkloadIdentity", Body: body, Tamper: func(r *http.Request) {
				r.Body = http.NoBody
				tampered := []byte(`{"name":"other-name"}`)
				r.Body, r.ContentLength = nopCloser(tampered), int64(len(tampered))
			}}, "AccessDeniedException"},
			"too old":      {behalftest.Raw{Path: "/identities/ListWorkloadIdentities", Body: []byte(`{}`), SignedAt: time.Now().Add(-6 * time.Minute)}, "AccessDeniedException"},
			"too new":      {behalftest.Raw{Path: "/identities/ListWorkloadIdentities", Body: []byte(`{}`), SignedAt: time.Now().Add(6 * time.Minute)}, "AccessDeniedException"},
			"unsigned":     {behalftest.Raw{Path: "/identities/ListWorkloadIdentities", Body: []byte(`{}`), Unsigned: true}, "UnauthorizedException"},
			"wrong region": {behalftest.Raw{Path: "/identities/ListWorkloadIdentities", Body: []byte(`{}`), Region: "ap-south-1"}, "AccessDeniedException"},
			"garbage auth": {behalftest.Raw{Path: "/identities/ListWorkloadIdentities", Body: []byte(`{}`), Tamper: func(r *http.Request) {
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=garbage")
			}}, "UnauthorizedException"},
		} {
			res := s.Do(t, tc.raw)
			if res.ErrType != tc.want || res.Status >= 500 {
				t.Errorf("%s: %d %s %s", name, res.Status, res.ErrType, res.Body)
			}
			if m := res.JSON(t); m["__type"] != tc.want || m["message"] == "" {
				t.Errorf("%s: body %s", name, res.Body)
			}
		}
		if _, err := s.Server.Store().GetWorkloadIdentity(cx, "other-name"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatal("a tampered request took effect")
		}
	})
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

func nopCloser(b []byte) readCloser { return readCloser{strings.NewReader(string(b))} }

// TestBadInputNeverFails500 sends malformed and hostile bodies to every
// control-plane operation: each gets a typed 4xx, never a 5xx.
func TestBadInputNeverFails500(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	paths := []string{
		"CreateWorkloadIdentity", "GetWorkloadIdentity", "UpdateWorkloadIdentity", "DeleteWorkloadIdentity", "ListWorkloadIdentities",
		"CreateOauth2CredentialProvider", "GetOauth2CredentialProvider", "UpdateOauth2CredentialProvider", "DeleteOauth2CredentialProvider", "ListOauth2CredentialProviders",
		"CreateApiKeyCredentialProvider", "GetApiKeyCredentialProvider", "UpdateApiKeyCredentialProvider", "DeleteApiKeyCredentialProvider", "ListApiKeyCredentialProviders",
		"get-token-vault", "set-token-vault-cmk",
		"CreateConsentPortal", "GetConsentPortal", "UpdateConsentPortal", "DeleteConsentPortal", "ListConsentPortals",
	}
	bodies := []string{
		`{`, `[]`, `null`, `"x"`, `{"name":null}`, `{"name":123}`, `{"name":"` + strings.Repeat("a", 5000) + `"}`,
		`{"name":"ok-name","name":"dup"}`, `{"Name":"case"}`, `{"unknown":1}`, `{"maxResults":-1}`, `{"maxResults":1e99}`,
		`{"nextToken":"n1.!!!"}`, `{"name":"a\u0000b"}`, `{"name":"\ud800"}`,
		`{"consentPortalIdentifier":"arn:aws:bedrock-agentcore:us-east-1:000000000000:consent-portal/` + strings.Repeat("a", 2100) + `"}`,
		`{"name":"p","executionRoleArn":"arn:aws:iam::123456789012:role/r","idpConfig":{"credentialProviderArn":"x","scopes":[null]},"sources":[{}]}`,
		`{"name":"p","credentialProviderVendor":"CustomOauth2","oauth2ProviderConfigInput":{}}`,
		`{"name":"p","credentialProviderVendor":"CustomOauth2","oauth2ProviderConfigInput":{"customOauth2ProviderConfig":{"oauthDiscovery":{}}}}`,
		`{"name":"p","credentialProviderVendor":"GithubOauth2","oauth2ProviderConfigInput":{"githubOauth2ProviderConfig":null}}`,
		`{"kmsConfiguration":{"keyType":"CustomerManagedKey","kmsKeyArn":"arn:aws:kms:us-east-1:000000000000:key/` + strings.Repeat("a", 36) + `"}}`,
		strings.Repeat(`{"a":`, 100) + strings.Repeat(`}`, 100),
	}
	for _, p := range paths {
		for _, body := range bodies {
			res := s.Do(t, behalftest.Raw{Path: "/identities/" + p, Body: []byte(body)})
			if res.Status >= 500 || res.ErrType == "" || res.Status < 400 {
				if res.Status < 300 {
					continue // a body that happened to be valid
				}
				t.Errorf("%s %.60s: %d %q %s", p, body, res.Status, res.ErrType, res.Body)
			}
		}
	}
	for name, tc := range map[string]struct {
		raw    behalftest.Raw
		status int
		typ    string
	}{
		"oversized":        {behalftest.Raw{Path: "/identities/ListWorkloadIdentities", Body: []byte(`{"nextToken":"` + strings.Repeat("a", 1<<20) + `"}`)}, 413, "ValidationException"},
		"wrong type":       {behalftest.Raw{Path: "/identities/ListWorkloadIdentities", Body: []byte(`{}`), ContentType: "text/plain"}, 400, "ValidationException"},
		"unknown path":     {behalftest.Raw{Path: "/identities/DoSomethingElse", Body: []byte(`{}`)}, 404, "UnknownOperationException"},
		"wrong method":     {behalftest.Raw{Method: "GET", Path: "/identities/ListWorkloadIdentities"}, 405, "UnknownOperationException"},
		"root":             {behalftest.Raw{Method: "GET", Path: "/"}, 404, "UnknownOperationException"},
		"unknown member":   {behalftest.Raw{Path: "/identities/ListWorkloadIdentities", Body: []byte(`{"maxresults":5}`)}, 400, "ValidationException"},
		"malformed":        {behalftest.Raw{Path: "/identities/ListWorkloadIdentities", Body: []byte(`{"maxResults":`)}, 400, "ValidationException"},
		"tag path garbage": {behalftest.Raw{Method: "GET", Path: "/tags/not-an-arn"}, 400, "ValidationException"},
	} {
		res := s.Do(t, tc.raw)
		if res.Status != tc.status || (tc.typ != "" && res.ErrType != tc.typ) {
			t.Errorf("%s: %d %q %.200s", name, res.Status, res.ErrType, res.Body)
		}
	}
	// The server is still healthy.
	if _, err := s.Control().ListWorkloadIdentities(ctx(t), &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{}); err != nil {
		t.Fatal(err)
	}
}

// TestSDKErrorsAreTyped checks the error shape itself: header, __type and
// message, which is what lets the SDK return typed errors.
func TestSDKErrorsAreTyped(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	_, err := s.Control().GetWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.GetWorkloadIdentityInput{Name: aws.String("nobody")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ResourceNotFoundException" || !strings.Contains(apiErr.ErrorMessage(), "nobody") {
		t.Fatalf("got %v", err)
	}
	res := s.Do(t, behalftest.Raw{Path: "/identities/GetWorkloadIdentity", Body: []byte(`{"name":"nobody"}`)})
	m := res.JSON(t)
	if res.Status != 404 || res.ErrType != "ResourceNotFoundException" || m["__type"] != "ResourceNotFoundException" || res.Header.Get("X-Amzn-RequestId") == "" {
		t.Fatalf("%d %v %v", res.Status, res.Header, m)
	}
}

// TestKeyRotationStatus: GetKeyRotationStatus names the vault's keys and
// the signing key sets' keys by id and date, never their material; it is
// admin-only.
func TestKeyRotationStatus(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		cx := ctx(t)
		keyARN := s.Do(t, behalftest.Raw{Path: "/behalf/CreateVaultKey", Body: []byte(`{}`)}).JSON(t)["kmsKeyArn"].(string)
		if _, err := s.Control().SetTokenVaultCMK(cx, &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &types.KmsConfiguration{
			KeyType: types.KeyTypeCustomerManagedKey, KmsKeyArn: aws.String(keyARN)}}); err != nil {
			t.Fatal(err)
		}
		res := s.Do(t, behalftest.Raw{Path: "/behalf/GetKeyRotationStatus", Body: []byte(`{}`)})
		if res.Status != http.StatusOK {
			t.Fatalf("GetKeyRotationStatus: %d %s", res.Status, res.Body)
		}
		var out behalfapi.GetKeyRotationStatusOutput
		if err := json.Unmarshal(res.Body, &out); err != nil {
			t.Fatal(err)
		}
		v := out.Vault
		if v.KeyType != "CustomerManagedKey" || v.KMSKeyARN != keyARN || len(v.Keys) != 2 || !v.Keys[0].Service || v.Keys[0].Current ||
			v.Keys[1].KMSKeyARN != keyARN || !v.Keys[1].Current || v.Keys[1].KeyID != v.CurrentKeyID {
			t.Errorf("vault: %+v", v)
		}
		purposes := map[string]behalfapi.SigningKeySet{}
		for _, set := range out.SigningKeys {
			purposes[set.Purpose] = set
		}
		st := s.Server.Store()
		for _, purpose := range []string{"mcp-client-signing", "workload-access-token", "workload-jwt"} {
			set, ok := purposes[purpose]
			if !ok || len(set.Keys) != 1 || !set.Keys[0].Current || set.Keys[0].RetireAt != nil || set.RotationSeconds <= 0 {
				t.Errorf("%s: %+v", purpose, set)
			}
			stored, err := st.ListServerKeys(cx, purpose)
			if err != nil || len(stored) != 1 || stored[0].ID != set.Keys[0].KeyID {
				t.Fatalf("%s stored: %+v %v", purpose, stored, err)
			}
			// Neither the sealed key nor anything of it is in the answer.
			if sealed, _ := json.Marshal(stored[0].Key.Blob); strings.Contains(string(res.Body), strings.Trim(string(sealed), `"`)) {
				t.Errorf("%s: the sealed key is in the answer", purpose)
			}
		}
		for _, field := range []string{`"material"`, `"d"`, `"k"`, `"blob"`, `"key"`} {
			if strings.Contains(string(res.Body), field) {
				t.Errorf("the answer has a field %s: %s", field, res.Body)
			}
		}

		runtime := s.Do(t, behalftest.Raw{Path: "/behalf/CreatePrincipal", Body: []byte(`{"role":"runtime","workloads":["*"]}`)}).JSON(t)
		c := s.ControlAs(runtime["accessKeyId"].(string), runtime["secretAccessKey"].(string))
		_, err := c.GetTokenVault(cx, &bedrockagentcorecontrol.GetTokenVaultInput{})
		wantAPIError[*types.AccessDeniedException](t, err)
		if res := s.Do(t, behalftest.Raw{Path: "/behalf/GetKeyRotationStatus", Body: []byte(`{}`), KeyID: runtime["accessKeyId"].(string),
			Secret: runtime["secretAccessKey"].(string)}); res.Status != http.StatusForbidden {
			t.Errorf("a runtime principal: %d %s", res.Status, res.Body)
		}
	})
}
