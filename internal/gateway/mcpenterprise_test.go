package gateway_test

// Enterprise-managed authorization, obtained by behalf as the agent's
// credential broker: an MCP server provider that names the enterprise
// IdP's OAuth2 provider gets each user's token by trading the user's ID
// token (the JWT of the workload access token) at the IdP for an ID-JAG
// (RFC 8693) and redeeming it at the server's authorization server
// (RFC 7523 §2.1) — here behalf's own — with no consent page.

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/wat"
)

// TestMCPServerProviderEnterprise: on SQLite and PostgreSQL, alice's
// agent asks for her token for the MCP route with USER_FEDERATION and no
// scopes; behalf selects the route's, exchanges her ID token at the
// enterprise IdP, redeems the ID-JAG as its pre-registered client and
// returns the token at once, which the MCP SDK's client uses; the next
// request is served from the cache. Nothing reaches behalf's authorization
// endpoint. A workload access token without her ID token, or minted from
// another IdP's JWT, is refused before anything is sent; an IdP that
// refuses the exchange is reported with its error.
func TestMCPServerProviderEnterprise(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		ew := newEnterpriseWorld(t, b)
		ew.do(t, "/identities/UpdateWorkloadIdentity", map[string]any{"name": workload,
			"allowedInboundAuthorizers": []string{"dev", entAuthorizer, config.AuthorizationServerAuthorizer}, "allowedResourceOauth2ReturnUrls": []string{ew.returnURL}}, http.StatusOK)
		ew.createOAuth2Provider(t, "enterprise-idp", ssoClient, ssoSecret, ew.ent.Issuer()+"/.well-known/openid-configuration")
		out := ew.createMCPProvider(t, "notes", ew.resource, func(in *behalfapi.CreateMcpServerCredentialProviderInput) {
			in.ClientID, in.ClientSecret, in.IdentityProvider = aws.String(entAgent), aws.String(entSecret), aws.String("enterprise-idp")
			in.TokenEndpointAuthMethod = aws.String("client_secret_post")
		})
		if out.IdentityProvider != "enterprise-idp" || out.Registration != "PREREGISTERED" {
			t.Fatalf("created: %+v", out)
		}
		ctx := t.Context()
		idToken, err := ssoConfig(ew.ent).PasswordCredentialsToken(ctx, "alice", "pw")
		if err != nil {
			t.Fatal(err)
		}
		request := func(userToken string) *bedrockagentcore.GetResourceOauth2TokenInput {
			t.Helper()
			w, err := ew.s.Data().GetWorkloadAccessTokenForJWT(ctx, &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
				WorkloadName: aws.String(workload), UserToken: aws.String(userToken)})
			if err != nil {
				t.Fatal(err)
			}
			return &bedrockagentcore.GetResourceOauth2TokenInput{ResourceCredentialProviderName: aws.String("notes"), WorkloadIdentityToken: w.WorkloadAccessToken,
				Scopes: []string{}, Oauth2Flow: types.Oauth2FlowTypeUserFederation, ResourceOauth2ReturnUrl: aws.String(ew.returnURL)}
		}
		req := request(idToken.Extra("id_token").(string))
		got, err := ew.s.Data().GetResourceOauth2Token(ctx, req)
		if err != nil || aws.ToString(got.AccessToken) == "" || got.AuthorizationUrl != nil {
			t.Fatalf("USER_FEDERATION with the enterprise IdP: %+v %v", got, err)
		}
		ew.callWithToken(t, aws.ToString(got.AccessToken))
		again, err := ew.s.Data().GetResourceOauth2Token(ctx, req)
		if err != nil || aws.ToString(again.AccessToken) != aws.ToString(got.AccessToken) {
			t.Fatalf("the second request: %v, want the cached token", err)
		}

		alice := wat.UserFromJWT(ew.ent.Issuer(), "alice")
		var grants, brokered int
		for _, r := range ew.auditRecords(t) {
			switch {
			case r.Operation == "OAuthAuthorize" || r.Operation == "OAuthConsent":
				t.Errorf("the enterprise flow was recorded at the authorization endpoint: %+v", r)
			case r.Operation == "OAuthToken" && r.Flow == config.GrantJWTBearer && r.Outcome == "success":
				grants++
				if r.User != alice || r.Principal != "client:"+entAgent || r.Resource != ew.resource || !slices.Equal(r.Scopes, []string{mcpScope}) {
					t.Errorf("the ID-JAG's redemption: %+v, want alice's for %s with %s", r, ew.resource, mcpScope)
				}
			case r.Operation == "GetResourceOauth2Token" && r.Provider == "notes":
				brokered++
				if r.Outcome != "success" || r.User != alice || !slices.Equal(r.Scopes, []string{mcpScope}) {
					t.Errorf("the broker's record: %+v", r)
				}
			}
		}
		if grants != 1 || brokered != 2 {
			t.Errorf("%d ID-JAGs redeemed and %d token requests recorded, want 1 and 2", grants, brokered)
		}

		for _, c := range []struct {
			name   string
			req    func() *bedrockagentcore.GetResourceOauth2TokenInput
			reason string
		}{
			{"a user id", func() *bedrockagentcore.GetResourceOauth2TokenInput {
				w, err := ew.s.Data().GetWorkloadAccessTokenForUserId(ctx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
					WorkloadName: aws.String(workload), UserId: aws.String("alice")})
				if err != nil {
					t.Fatal(err)
				}
				r := *req
				r.WorkloadIdentityToken = w.WorkloadAccessToken
				return &r
			}, "needs a workload access token minted from the user's ID token"},
			{"another IdP's JWT", func() *bedrockagentcore.GetResourceOauth2TokenInput { return request(ew.userJWT(t, "alice")) }, "issued by another"},
		} {
			_, err := ew.s.Data().GetResourceOauth2Token(ctx, c.req())
			if err == nil || !strings.Contains(err.Error(), "ValidationException") || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("%s: %v, want a ValidationException saying it %s", c.name, err, c.reason)
			}
		}

		// An IdP that refuses the exchange (here behalf's client secret
		// there is wrong) is named with its error, the secret nowhere; an
		// IdP provider deleted is named as missing.
		ew.createOAuth2Provider(t, "wrong-idp", ssoClient, "not-the-secret", ew.ent.Issuer()+"/.well-known/openid-configuration")
		ew.do(t, "/behalf/UpdateMcpServerCredentialProvider", map[string]any{"name": "notes", "identityProvider": "wrong-idp"}, http.StatusOK)
		_, err = ew.s.Data().GetResourceOauth2Token(ctx, req)
		if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") || !strings.Contains(err.Error(), "wrong-idp: the provider answered invalid_client") ||
			strings.Contains(err.Error(), "not-the-secret") {
			t.Errorf("an IdP refusing behalf's client: %v", err)
		}
		ew.do(t, "/identities/DeleteOauth2CredentialProvider", map[string]any{"name": "wrong-idp"}, http.StatusNoContent)
		_, err = ew.s.Data().GetResourceOauth2Token(ctx, req)
		if err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") || !strings.Contains(err.Error(), "wrong-idp") {
			t.Errorf("an IdP provider deleted: %v", err)
		}
	})
}
