package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// The README's data-plane walk-through, as a test: the dev IdP as the
// user's identity provider and as an OAuth2 provider, behalf configured to
// trust it, and this program exchanging a user's JWT for a workload access
// token, an API key and an M2M token.
func TestVend(t *testing.T) {
	idp := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}}})
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: func(f *config.File) {
		f.InboundAuthorizers = []config.InboundAuthorizerFile{{Name: "dev-idp", DiscoveryURL: idp.Issuer() + "/.well-known/openid-configuration", AllowedAudience: []string{"agent"}}}
	}})
	ctx := context.Background()
	c := s.Control()
	if _, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("my-agent")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{Name: aws.String("weather"), ApiKey: aws.String("weather-api-key-123")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String("dev-idp"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String("agent"), ClientSecret: aws.String("agent-secret"),
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: idp.Issuer() + "/.well-known/openid-configuration"}}},
	}); err != nil {
		t.Fatal(err)
	}

	// The README's curl: a user's token by the password grant.
	req, _ := http.NewRequest("POST", idp.Issuer()+"/token", strings.NewReader(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}, "scope": {"openid"}}.Encode()))
	req.SetBasicAuth("agent", "agent-secret")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		IDToken string `json:"id_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()

	var out bytes.Buffer
	err = run(ctx, behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret), input{
		Endpoint: s.URL, Workload: "my-agent", UserJWT: tok.IDToken, APIKey: "weather", OAuth2M2M: "dev-idp"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"workload access token for my-agent", "API key from weather: weather-… (19 characters)", "M2M access token from dev-idp: eyJ"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "weather-api-key-123") {
		t.Error("the example printed the whole API key")
	}
}
