package control_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	dptypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestProviderGrantCoversResourcesAudiencesAndParameters: a workload's
// provider grant limits the resources, audiences and custom parameters of
// a token request as it limits scopes, so a grant of scope openid no
// longer yields a token for another audience; a refused request never
// reaches the provider.
func TestProviderGrantCoversResourcesAudiencesAndParameters(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		var atIDP tokenRequests
		issuer := startDevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}}}, atIDP.wrap)
		s := behalftest.Start(t, b, behalftest.Options{})
		c, data, cx := s.Control(), s.Data(), ctx(t)
		if _, err := c.CreateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("idp"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: types.CustomOauth2ProviderConfigInput{
				ClientId: aws.String("agent"), ClientSecret: aws.String("agent-secret"),
				OauthDiscovery: &types.Oauth2DiscoveryMemberDiscoveryUrl{Value: issuer + "/.well-known/openid-configuration"}}},
		}); err != nil {
			t.Fatal(err)
		}
		setGrant := func(op string, g behalfapi.ProviderGrant) {
			t.Helper()
			body, _ := json.Marshal(map[string]any{"name": "agent-w", "allowedCredentialProviders": []behalfapi.ProviderGrant{g}})
			want := http.StatusOK
			if op == "CreateWorkloadIdentity" {
				want = http.StatusCreated
			}
			if res := s.Do(t, behalftest.Raw{Path: "/identities/" + op, Body: body}); res.Status != want {
				t.Fatalf("%s: %d %s", op, res.Status, res.Body)
			}
		}
		const payments = "https://payments.internal.example/"
		setGrant("CreateWorkloadIdentity", behalfapi.ProviderGrant{Provider: "idp", Scopes: []string{"openid"}})
		wat, err := data.GetWorkloadAccessToken(cx, &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String("agent-w")})
		if err != nil {
			t.Fatal(err)
		}
		type request struct {
			resources, audiences []string
			params               map[string]string
		}
		vend := func(r request) (string, error) {
			out, err := data.GetResourceOauth2Token(cx, &bedrockagentcore.GetResourceOauth2TokenInput{
				WorkloadIdentityToken: wat.WorkloadAccessToken, ResourceCredentialProviderName: aws.String("idp"),
				Oauth2Flow: dptypes.Oauth2FlowTypeM2m, Scopes: []string{"openid"},
				Resources: r.resources, Audiences: r.audiences, CustomParameters: r.params,
			})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.AccessToken), nil
		}
		allowed := func(what string, r request) string {
			t.Helper()
			token, err := vend(r)
			if err != nil || token == "" {
				t.Fatalf("%s: %q, %v; want a token", what, token, err)
			}
			return token
		}
		denied := func(what string, r request, mention string) {
			t.Helper()
			before := len(atIDP.seen())
			_, err := vend(r)
			e := wantAPIError[*dptypes.AccessDeniedException](t, err)
			if !strings.Contains(e.ErrorMessage(), mention) {
				t.Errorf("%s: %q does not mention %q", what, e.ErrorMessage(), mention)
			}
			if n := len(atIDP.seen()); n != before {
				t.Errorf("%s: the provider received %d token requests", what, n-before)
			}
		}

		allowed("scope openid", request{})
		denied("a resource beyond scope openid", request{resources: []string{payments}}, "resource")
		denied("an audience beyond scope openid", request{audiences: []string{payments}}, "audience")
		denied("a custom parameter beyond scope openid", request{params: map[string]string{"login_hint": "x"}}, "custom parameter")

		// Listed values are allowed, others still not.
		setGrant("UpdateWorkloadIdentity", behalfapi.ProviderGrant{Provider: "idp", Scopes: []string{"openid"},
			Resources: []string{payments}, Audiences: []string{"urn:reports"}, CustomParameters: []string{"login_hint"}})
		token := allowed("the listed resource", request{resources: []string{payments}, audiences: []string{"urn:reports"}, params: map[string]string{"login_hint": "x"}})
		if aud := audienceOf(t, token); !slices.Contains(aud, payments) {
			t.Errorf("token aud %v, want the granted resource", aud)
		}
		denied("another resource", request{resources: []string{payments, "https://admin.internal.example/"}}, "https://admin.internal.example/")
		denied("another audience", request{audiences: []string{"urn:other"}}, "urn:other")
		denied("another custom parameter", request{params: map[string]string{"login_hint": "x", "prompt_hint": "y"}}, "prompt_hint")

		// * allows any value.
		setGrant("UpdateWorkloadIdentity", behalfapi.ProviderGrant{Provider: "idp", Scopes: []string{"openid"},
			Resources: []string{"*"}, Audiences: []string{"*"}, CustomParameters: []string{"*"}})
		allowed("any value", request{resources: []string{"https://admin.internal.example/"}, audiences: []string{"urn:other"}, params: map[string]string{"prompt_hint": "y"}})

		got, err := c.GetWorkloadIdentity(cx, &bedrockagentcorecontrol.GetWorkloadIdentityInput{Name: aws.String("agent-w")})
		if err != nil || got == nil {
			t.Fatal(err)
		}
		res := s.Do(t, behalftest.Raw{Path: "/identities/GetWorkloadIdentity", Body: []byte(`{"name":"agent-w"}`)})
		var out struct {
			Providers []behalfapi.ProviderGrant `json:"allowedCredentialProviders"`
		}
		if err := json.Unmarshal(res.Body, &out); err != nil || len(out.Providers) != 1 || !slices.Equal(out.Providers[0].Audiences, []string{"*"}) ||
			!slices.Equal(out.Providers[0].CustomParameters, []string{"*"}) || !slices.Equal(out.Providers[0].Resources, []string{"*"}) {
			t.Fatalf("GetWorkloadIdentity: %s", res.Body)
		}
	})
}

// audienceOf reads a JWT's aud claim without verifying it; the dev IdP
// puts the RFC 8707 resources there.
func audienceOf(t *testing.T, token string) []string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.20s…", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	var many []string
	if json.Unmarshal(claims.Aud, &many) == nil {
		return many
	}
	var one string
	_ = json.Unmarshal(claims.Aud, &one)
	return []string{one}
}

// TestProviderGrantValidation: a grant's lists are bounded, and "*" stands
// alone.
func TestProviderGrantValidation(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	for name, grant := range map[string]string{
		"* provider with an audience":    `{"provider":"*","audiences":["urn:a"]}`,
		"* among resources":              `{"provider":"idp","resources":["*","https://a.example/"]}`,
		"a custom parameter name":        `{"provider":"idp","customParameters":["bad name"]}`,
		"an audience listed twice":       `{"provider":"idp","audiences":["urn:a","urn:a"]}`,
		"an empty resource":              `{"provider":"idp","resources":[""]}`,
		"too many audiences":             `{"provider":"idp","audiences":[` + strings.Repeat(`"urn:x",`, 50) + `"urn:y"]}`,
		"a resource longer than 2048":    `{"provider":"idp","resources":["https://a.example/` + strings.Repeat("x", 2048) + `"]}`,
		"an unknown member of the grant": `{"provider":"idp","resourcez":["https://a.example/"]}`,
		"a custom parameter name of 257": `{"provider":"idp","customParameters":["` + strings.Repeat("p", 257) + `"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			res := s.Do(t, behalftest.Raw{Path: "/identities/CreateWorkloadIdentity",
				Body: []byte(`{"name":"agent-v","allowedCredentialProviders":[` + grant + `]}`)})
			if res.Status != http.StatusBadRequest || res.ErrType != "ValidationException" {
				t.Fatalf("%d %s %s", res.Status, res.ErrType, res.Body)
			}
		})
	}
}
