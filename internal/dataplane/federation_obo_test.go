package dataplane_test

// ON_BEHALF_OF_TOKEN_EXCHANGE (issue 4, item 5): an RFC 8693 exchange at
// the provider's token endpoint, with the user's own inbound JWT — carried
// in the workload access token — as the subject token. Dex's token
// exchange needs connector_id=mock, passed as a custom parameter.

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
)

const oboProvider = "dex-obo"

func TestFederationOnBehalfOf(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{dex: dextest.Options{TokenExchange: true}, extraProviders: []string{oboProvider}})
		_, err := fw.s.Control().CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String(oboProvider), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
				ClientId: aws.String(fedClientID), ClientSecret: aws.String(fedClientSecret),
				OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: fw.dex.DiscoveryURL},
				OnBehalfOfTokenExchangeConfig: &ctltypes.OnBehalfOfTokenExchangeConfigType{
					GrantType: ctltypes.OnBehalfOfTokenExchangeGrantTypeTypeTokenExchange},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		obo := func(token, provider string) *oauth2Input {
			return &oauth2Input{WorkloadIdentityToken: aws.String(token), ResourceCredentialProviderName: aws.String(provider),
				Oauth2Flow: types.Oauth2FlowTypeOnBehalfOfTokenExchange, Scopes: []string{"openid", "email"},
				CustomParameters: map[string]string{"connector_id": dextest.CallbackConnectorID}}
		}
		alice := mintForJWT(t, fw.rt, fw.aliceJWT)

		tok := fw.token(t, obo(alice, oboProvider))
		claims := verifyAccessToken(t, fw.dex, fedClientID, tok)
		if claims["sub"] != dextest.CallbackSubject || claims["aud"] != fedClientID || claims["email"] != dextest.UserEmail {
			t.Errorf("exchanged token: sub %v, aud %v, email %v", claims["sub"], claims["aud"], claims["email"])
		}
		ex := fw.tokens.grant(dextest.GrantTypeTokenExchange)
		if len(ex) != 1 {
			t.Fatalf("%d token exchanges, want 1", len(ex))
		}
		f := ex[0]
		if f.Get("subject_token") != fw.aliceJWT || f.Get("connector_id") != dextest.CallbackConnectorID ||
			strings.Join(strings.Fields(f.Get("scope")), " ") != "openid email" || f.Get("(basic client_id)") != fedClientID ||
			!strings.HasPrefix(f.Get("subject_token_type"), "urn:ietf:params:oauth:token-type:") {
			t.Errorf("exchange request: subject is the user's JWT %v, connector_id %q, scope %q, client %q, subject_token_type %q",
				f.Get("subject_token") == fw.aliceJWT, f.Get("connector_id"), f.Get("scope"), f.Get("(basic client_id)"), f.Get("subject_token_type"))
		}

		// Cached for this user.
		if again := fw.token(t, obo(alice, oboProvider)); again != tok || len(fw.tokens.grant(dextest.GrantTypeTokenExchange)) != 1 {
			t.Error("the second call was not served from the cache")
		}
		// Another user's JWT is exchanged on its own.
		otherJWT := fw.callbackSubjectJWT(t)
		fw.token(t, obo(mintForJWT(t, fw.rt, otherJWT), oboProvider))
		if ex := fw.tokens.grant(dextest.GrantTypeTokenExchange); len(ex) != 2 || ex[1].Get("subject_token") != otherJWT {
			t.Errorf("%d exchanges; the second for the other user's JWT: %v", len(ex), len(ex) == 2 && ex[1].Get("subject_token") == otherJWT)
		}

		for _, tc := range []struct {
			name, token, provider, want string
		}{
			{"ForUserId token", mintForUser(t, fw.rt, workloadW1, "alice"), oboProvider, "GetWorkloadAccessTokenForJWT"},
			{"workload-only token", mintPlain(t, fw.rt, workloadW1), oboProvider, "GetWorkloadAccessTokenForJWT"},
			{"provider without the configuration", alice, fedProvider, "onBehalfOfTokenExchangeConfig"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n := fw.tokens.count()
				out, err := fw.data.GetResourceOauth2Token(ctx(t), obo(tc.token, tc.provider))
				ve := wantAPIError[*types.ValidationException](t, err)
				if msg := aws.ToString(ve.Message); !strings.Contains(msg, tc.want) || out != nil {
					t.Errorf("message %q does not say %q", msg, tc.want)
				}
				if fw.tokens.count() != n {
					t.Error("a refused call reached the provider")
				}
			})
		}
	})
}
