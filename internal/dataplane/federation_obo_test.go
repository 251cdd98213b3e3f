package dataplane_test

// ON_BEHALF_OF_TOKEN_EXCHANGE (issue 4, item 5; issue 14, items 1 and 3):
// an RFC 8693 exchange at the provider's token endpoint, with the user's
// own inbound JWT — carried in the workload access token — as the subject
// token, optionally with the provider's own client-credentials token, or
// behalf's own workload JWT, as the actor token; or RFC 7523's jwt-bearer
// grant with that JWT as the assertion. Dex's token exchange needs
// connector_id=mock, passed as a custom parameter.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
)

const (
	oboProvider         = "dex-obo"
	oboActorProvider    = "dex-obo-actor"
	oboWorkloadProvider = "dex-obo-workload"
	oboJWTProvider      = "dex-obo-jwt"
)

// createOBOProvider creates a CustomOauth2 provider for Dex's client
// fedClientID with the given on-behalf-of configuration.
func createOBOProvider(t *testing.T, fw *fedWorld, name string, obo *ctltypes.OnBehalfOfTokenExchangeConfigType) error {
	t.Helper()
	_, err := fw.s.Control().CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String(name), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String(fedClientID), ClientSecret: aws.String(fedClientSecret),
			OauthDiscovery:                &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: fw.dex.DiscoveryURL},
			OnBehalfOfTokenExchangeConfig: obo,
		}},
	})
	return err
}

func oboInput(token, provider string) *oauth2Input {
	return &oauth2Input{WorkloadIdentityToken: aws.String(token), ResourceCredentialProviderName: aws.String(provider),
		Oauth2Flow: types.Oauth2FlowTypeOnBehalfOfTokenExchange, Scopes: []string{"openid", "email"},
		CustomParameters: map[string]string{"connector_id": dextest.CallbackConnectorID}}
}

func TestFederationOnBehalfOf(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{dex: dextest.Options{TokenExchange: true}, extraProviders: []string{oboProvider}})
		if err := createOBOProvider(t, fw, oboProvider, &ctltypes.OnBehalfOfTokenExchangeConfigType{
			GrantType: ctltypes.OnBehalfOfTokenExchangeGrantTypeTypeTokenExchange}); err != nil {
			t.Fatal(err)
		}
		obo := oboInput
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
			f.Get("subject_token_type") != dextest.TokenTypeID || f.Has("actor_token") || f.Has("actor_token_type") {
			t.Errorf("exchange request: subject is the user's JWT %v, connector_id %q, scope %q, client %q, subject_token_type %q (Dex's ID token), actor token %v",
				f.Get("subject_token") == fw.aliceJWT, f.Get("connector_id"), f.Get("scope"), f.Get("(basic client_id)"), f.Get("subject_token_type"), f.Has("actor_token"))
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

// TestFederationOnBehalfOfActorToken: with actorTokenContent M2M the
// exchange carries the provider's own client-credentials token for
// actorTokenScopes as the actor token (RFC 8693 §2.1), obtained from Dex
// and cached as the M2M flow's, so a second user's exchange reuses it.
// Resources and audiences given at GetResourceOauth2Token go along.
func TestFederationOnBehalfOfActorToken(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{dex: dextest.Options{TokenExchange: true}, extraProviders: []string{oboActorProvider}})
		if err := createOBOProvider(t, fw, oboActorProvider, &ctltypes.OnBehalfOfTokenExchangeConfigType{
			GrantType: ctltypes.OnBehalfOfTokenExchangeGrantTypeTypeTokenExchange,
			TokenExchangeGrantTypeConfig: &ctltypes.TokenExchangeGrantTypeConfigType{
				ActorTokenContent: ctltypes.ActorTokenContentTypeM2m, ActorTokenScopes: []string{"openid"}},
		}); err != nil {
			t.Fatal(err)
		}
		in := oboInput(mintForJWT(t, fw.rt, fw.aliceJWT), oboActorProvider)
		in.Resources, in.Audiences = []string{"https://api.example.com/"}, []string{"api"}
		fw.token(t, in)

		cc := fw.tokens.grant("client_credentials")
		ex := fw.tokens.grant(dextest.GrantTypeTokenExchange)
		if len(cc) != 1 || len(ex) != 1 {
			t.Fatalf("%d client credentials and %d exchange requests, want 1 and 1", len(cc), len(ex))
		}
		if cc[0].Get("scope") != "openid" || cc[0].Has("resource") || cc[0].Has("audience") {
			t.Errorf("actor token request: scope %q, resource %q, audience %q", cc[0].Get("scope"), cc[0]["resource"], cc[0]["audience"])
		}
		actor := verifyAccessToken(t, fw.dex, fedClientID, ex[0].Get("actor_token"))
		if actor["sub"] != dextest.Subject(fedClientID, "") || ex[0].Get("actor_token_type") != dextest.TokenTypeAccess {
			t.Errorf("actor token: sub %v, type %q", actor["sub"], ex[0].Get("actor_token_type"))
		}
		if ex[0].Get("resource") != "https://api.example.com/" || ex[0].Get("audience") != "api" {
			t.Errorf("exchange: resource %q, audience %q", ex[0]["resource"], ex[0]["audience"])
		}

		// Another user: a new exchange, the cached actor token.
		fw.token(t, oboInput(mintForJWT(t, fw.rt, fw.callbackSubjectJWT(t)), oboActorProvider))
		ex = fw.tokens.grant(dextest.GrantTypeTokenExchange)
		if n := len(fw.tokens.grant("client_credentials")); n != 1 || len(ex) != 2 || ex[1].Get("actor_token") != ex[0].Get("actor_token") {
			t.Errorf("%d client credentials requests, %d exchanges; the actor token was reused: %v", n, len(ex), len(ex) == 2 && ex[1].Get("actor_token") == ex[0].Get("actor_token"))
		}
	})
}

// TestFederationOnBehalfOfWorkloadActorToken: with actorTokenContent
// AWS_IAM_ID_TOKEN_JWT the exchange carries behalf's own workload JWT for
// W1 as the actor token (RFC 8693 §2.1, actor_token_type jwt), for Dex's
// issuer. Dex reads no actor token, so fakeActorCheck — a fake token
// endpoint's check in front of Dex — verifies it as an authorization
// server would, through behalf's discovery document and JWK set with an
// ES256 allow-list, then lets Dex answer the exchange. A second user's
// exchange carries a JWT of its own.
func TestFederationOnBehalfOfWorkloadActorToken(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{dex: dextest.Options{TokenExchange: true}, extraProviders: []string{oboWorkloadProvider}})
		if err := createOBOProvider(t, fw, oboWorkloadProvider, &ctltypes.OnBehalfOfTokenExchangeConfigType{
			GrantType: ctltypes.OnBehalfOfTokenExchangeGrantTypeTypeTokenExchange,
			TokenExchangeGrantTypeConfig: &ctltypes.TokenExchangeGrantTypeConfigType{
				ActorTokenContent: ctltypes.ActorTokenContentTypeAwsIamIdTokenJwt},
		}); err != nil {
			t.Fatal(err)
		}
		var actors []map[string]any
		fakeActorCheck := func(w http.ResponseWriter, form url.Values) bool {
			if form.Get("grant_type") != dextest.GrantTypeTokenExchange {
				return false
			}
			claims, err := verifyWorkloadJWT(t, fw.s, fw.dex.Issuer, form.Get("actor_token"), nil)
			if err != nil || form.Get("actor_token_type") != "urn:ietf:params:oauth:token-type:jwt" {
				t.Errorf("actor token: %v, type %q", err, form.Get("actor_token_type"))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
				return true
			}
			actors = append(actors, claims)
			return false
		}
		fw.tokens.setFault(fakeActorCheck)

		tok := fw.token(t, oboInput(mintForJWT(t, fw.rt, fw.aliceJWT), oboWorkloadProvider))
		if claims := verifyAccessToken(t, fw.dex, fedClientID, tok); claims["sub"] != dextest.CallbackSubject {
			t.Errorf("exchanged token for %v", claims["sub"])
		}
		fw.token(t, oboInput(mintForJWT(t, fw.rt, fw.callbackSubjectJWT(t)), oboWorkloadProvider))
		ex := fw.tokens.grant(dextest.GrantTypeTokenExchange)
		if len(actors) != 2 || len(ex) != 2 || ex[0].Get("subject_token") != fw.aliceJWT {
			t.Fatalf("%d actor tokens verified, %d exchanges", len(actors), len(ex))
		}
		for i, a := range actors {
			if a["sub"] != workloadARN(fw.s, workloadW1) || a["aud"] != fw.dex.Issuer || a["iss"] != fw.s.URL+"/workload-identity" ||
				a["exp"].(float64)-a["iat"].(float64) != 120 {
				t.Errorf("actor token %d: %v", i, a)
			}
		}
		if actors[0]["jti"] == actors[1]["jti"] || len(fw.tokens.grant("client_credentials")) != 0 {
			t.Errorf("one actor token per exchange, and no M2M token: jti %v %v", actors[0]["jti"], actors[1]["jti"])
		}
		// Neither the actor tokens nor anything else secret reached the
		// caller or the audit trail.
		_, bodies := listAudit(t, fw.s, nil)
		for _, f := range ex {
			sig := strings.Split(f.Get("actor_token"), ".")[2]
			if fw.rec.Contains(sig) || slices.ContainsFunc(bodies, func(b []byte) bool { return strings.Contains(string(b), sig) }) {
				t.Error("an actor token came back to the caller or into the audit trail")
			}
		}
	})
}

// TestFederationOnBehalfOfJWTAuthorizationGrant: grantType
// JWT_AUTHORIZATION_GRANT presents the user's JWT as an RFC 7523 §2.1
// assertion, with Microsoft Entra ID's requested_token_use. Dex has no
// jwt-bearer grant, so fakeJWTBearer — a fake answering in front of Dex's
// token endpoint — checks the exact form and answers.
func TestFederationOnBehalfOfJWTAuthorizationGrant(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{extraProviders: []string{oboJWTProvider}})
		if err := createOBOProvider(t, fw, oboJWTProvider, &ctltypes.OnBehalfOfTokenExchangeConfigType{
			GrantType: ctltypes.OnBehalfOfTokenExchangeGrantTypeTypeJwtAuthorizationGrant}); err != nil {
			t.Fatal(err)
		}
		const issued = "fake-obo-token-0123456789"
		fakeJWTBearer := func(w http.ResponseWriter, form url.Values) bool {
			if form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
				return false
			}
			want := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {fw.aliceJWT},
				"requested_token_use": {"on_behalf_of"}, "scope": {"openid email"}, "connector_id": {dextest.CallbackConnectorID},
				"(basic client_id)": {fedClientID}}
			w.Header().Set("Content-Type", "application/json")
			if got := url.Values(form); got.Encode() != want.Encode() {
				t.Errorf("jwt-bearer request:\n got %v\nwant %v", got, want)
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request"})
				return true
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": issued, "token_type": "Bearer", "expires_in": 300})
			return true
		}
		fw.tokens.setFault(fakeJWTBearer)
		in := oboInput(mintForJWT(t, fw.rt, fw.aliceJWT), oboJWTProvider)
		if tok := fw.token(t, in); tok != issued {
			t.Errorf("token %q, want the fake's", tok)
		}
		if tok := fw.token(t, in); tok != issued || len(fw.tokens.grant("urn:ietf:params:oauth:grant-type:jwt-bearer")) != 1 {
			t.Errorf("the second call was not served from the cache: %d requests", len(fw.tokens.grant("urn:ietf:params:oauth:grant-type:jwt-bearer")))
		}
	})
}

// TestOnBehalfOfConfigValidation: what behalf refuses in
// onBehalfOfTokenExchangeConfig, and why.
func TestOnBehalfOfConfigValidation(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		te := ctltypes.OnBehalfOfTokenExchangeGrantTypeTypeTokenExchange
		for _, tc := range []struct {
			name string
			obo  *ctltypes.OnBehalfOfTokenExchangeConfigType
			want string
		}{
			{"actor scopes without M2M", &ctltypes.OnBehalfOfTokenExchangeConfigType{GrantType: te, TokenExchangeGrantTypeConfig: &ctltypes.TokenExchangeGrantTypeConfigType{
				ActorTokenContent: ctltypes.ActorTokenContentTypeNone, ActorTokenScopes: []string{"a"}}}, "only with actorTokenContent M2M"},
			{"token exchange settings on jwt-bearer", &ctltypes.OnBehalfOfTokenExchangeConfigType{GrantType: ctltypes.OnBehalfOfTokenExchangeGrantTypeTypeJwtAuthorizationGrant,
				TokenExchangeGrantTypeConfig: &ctltypes.TokenExchangeGrantTypeConfigType{ActorTokenContent: ctltypes.ActorTokenContentTypeM2m}}, "TOKEN_EXCHANGE only"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := createOBOProvider(t, fw, "obo-invalid", tc.obo)
				ve := wantAPIError[*ctltypes.ValidationException](t, err)
				if msg := aws.ToString(ve.Message); !strings.Contains(msg, tc.want) {
					t.Errorf("message %q does not say %q", msg, tc.want)
				}
			})
		}
	})
}
