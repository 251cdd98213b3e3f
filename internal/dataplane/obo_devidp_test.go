package dataplane_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestOnBehalfOfDevIDP: ON_BEHALF_OF_TOKEN_EXCHANGE at behalf dev-idp,
// which, unlike Dex, takes actor tokens and, when told to, unauthenticated
// exchanges. With actorTokenContent M2M the token it issues has the user
// as sub and behalf's client, whose client-credentials token was the
// actor, in act (RFC 8693 §4.1). With onBehalfOfAuthenticationConfig
// NO_CLIENT the exchange reaches the dev IdP without client
// authentication (its event names no client), and GetOauth2Credential
// Provider echoes the configuration.
func TestOnBehalfOfDevIDP(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		var mu sync.Mutex
		var exchanges []devidp.Event
		idp := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}}, AnonymousTokenExchange: true,
			Observe: func(ev devidp.Event) {
				if ev.GrantType == "urn:ietf:params:oauth:grant-type:token-exchange" {
					mu.Lock()
					exchanges = append(exchanges, ev)
					mu.Unlock()
				}
			}})
		discovery := idp.Issuer() + "/.well-known/openid-configuration"
		s := behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) {
			f.InboundAuthorizers = []config.InboundAuthorizerFile{{Name: "dev-idp", DiscoveryURL: discovery, AllowedAudience: []string{"agent"}}}
		}})
		c, data := s.Control(), s.Data()
		if _, err := c.CreateWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String(workloadW1)}); err != nil {
			t.Fatal(err)
		}
		m2mActor := &ctltypes.TokenExchangeGrantTypeConfigType{ActorTokenContent: ctltypes.ActorTokenContentTypeM2m, ActorTokenScopes: []string{"agents"}}
		create := func(name string, obo *ctltypes.OnBehalfOfTokenExchangeConfigType) error {
			_, err := c.CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
				Name: aws.String(name), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
				Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
					ClientId: aws.String("agent"), ClientSecret: aws.String("agent-secret"),
					OauthDiscovery:                &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: discovery},
					OnBehalfOfTokenExchangeConfig: obo}},
			})
			return err
		}
		te := ctltypes.OnBehalfOfTokenExchangeGrantTypeTypeTokenExchange
		if err := create("obo-actor", &ctltypes.OnBehalfOfTokenExchangeConfigType{GrantType: te, TokenExchangeGrantTypeConfig: m2mActor}); err != nil {
			t.Fatal(err)
		}
		noClient := &ctltypes.OnBehalfOfAuthenticationConfig{ClientAuthenticationMethod: ctltypes.OnBehalfOfClientAuthenticationMethodNoClient}
		if err := create("obo-no-client", &ctltypes.OnBehalfOfTokenExchangeConfigType{GrantType: te, TokenExchangeGrantTypeConfig: m2mActor,
			OnBehalfOfAuthenticationConfig: noClient}); err != nil {
			t.Fatal(err)
		}
		err := create("obo-bad", &ctltypes.OnBehalfOfTokenExchangeConfigType{GrantType: te,
			OnBehalfOfAuthenticationConfig: &ctltypes.OnBehalfOfAuthenticationConfig{ClientAuthenticationMethod: "CLIENT_SECRET_BASIC"}})
		if ve := wantAPIError[*ctltypes.ValidationException](t, err); !strings.Contains(aws.ToString(ve.Message), "onBehalfOfAuthenticationConfig.clientAuthenticationMethod") {
			t.Errorf("message %q", aws.ToString(ve.Message))
		}

		got, err := c.GetOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String("obo-no-client")})
		if err != nil {
			t.Fatal(err)
		}
		custom, _ := got.Oauth2ProviderConfigOutput.(*ctltypes.Oauth2ProviderConfigOutputMemberCustomOauth2ProviderConfig)
		if custom == nil || custom.Value.OnBehalfOfTokenExchangeConfig == nil || custom.Value.OnBehalfOfTokenExchangeConfig.OnBehalfOfAuthenticationConfig == nil ||
			custom.Value.OnBehalfOfTokenExchangeConfig.OnBehalfOfAuthenticationConfig.ClientAuthenticationMethod != ctltypes.OnBehalfOfClientAuthenticationMethodNoClient ||
			custom.Value.OnBehalfOfTokenExchangeConfig.TokenExchangeGrantTypeConfig.ActorTokenContent != ctltypes.ActorTokenContentTypeM2m {
			t.Fatalf("GetOauth2CredentialProvider: %+v", got.Oauth2ProviderConfigOutput)
		}

		wat := mintForJWT(t, data, behalftest.DevIDToken(t, idp, "agent", "agent-secret", "alice"))
		obo := func(provider string, audiences ...string) map[string]any {
			t.Helper()
			out, err := data.GetResourceOauth2Token(ctx(t), &bedrockagentcore.GetResourceOauth2TokenInput{
				WorkloadIdentityToken: aws.String(wat), ResourceCredentialProviderName: aws.String(provider),
				Oauth2Flow: types.Oauth2FlowTypeOnBehalfOfTokenExchange, Scopes: []string{"read"}, Audiences: audiences})
			if err != nil {
				t.Fatalf("%s: %v", provider, err)
			}
			return jwtClaims(t, aws.ToString(out.AccessToken))
		}
		act := func(cl map[string]any) string { b, _ := json.Marshal(cl["act"]); return string(b) }

		if cl := obo("obo-actor"); cl["sub"] != "alice" || act(cl) != `{"sub":"agent"}` || cl["client_id"] != "agent" || cl["scope"] != "read" {
			t.Errorf("with an M2M actor: %v", cl)
		}
		if cl := obo("obo-no-client", "billing"); cl["sub"] != "alice" || act(cl) != `{"sub":"agent"}` || cl["client_id"] != nil || cl["aud"] != "billing" {
			t.Errorf("NO_CLIENT: %v", cl)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(exchanges) != 2 || exchanges[0].ClientID != "agent" || exchanges[1].ClientID != "" || exchanges[1].Actor != "agent" || exchanges[1].Error != "" {
			t.Errorf("the dev IdP's token exchanges: %+v; want the second without a client", exchanges)
		}
	})
}

// jwtClaims decodes a JWT's claims without verifying it: the token came
// straight from the IdP through behalf.
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	var m map[string]any
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(raw, &m) != nil {
		t.Fatalf("JWT claims: %v", err)
	}
	return m
}
