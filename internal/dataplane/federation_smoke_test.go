package dataplane_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
)

func TestSmokeUserFederation(t *testing.T) {
	w := newWorld(t, behalftest.Backends[0], worldOptions{dex: dextest.Options{RotateRefreshTokens: true}})
	returnURL := "http://127.0.0.1:9999/after-consent"
	if _, err := w.s.Control().UpdateWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.UpdateWorkloadIdentityInput{
		Name: aws.String(workloadW1), AllowedResourceOauth2ReturnUrls: []string{returnURL}}); err != nil {
		t.Fatal(err)
	}
	p, err := w.s.Server.Store().GetOAuth2Provider(ctx(t), m2mProvider)
	if err != nil {
		t.Fatal(err)
	}
	w.dex.SetRedirectURIs(t, m2mClientID, w.s.URL+"/identities/oauth2/callback/"+p.ID)

	wat := mintForUser(t, w.rt, workloadW1, "alice")
	in := &bedrockagentcore.GetResourceOauth2TokenInput{WorkloadIdentityToken: aws.String(wat), ResourceCredentialProviderName: aws.String(m2mProvider),
		Oauth2Flow: types.Oauth2FlowTypeUserFederation, Scopes: []string{"openid", "offline_access"}, ResourceOauth2ReturnUrl: aws.String(returnURL),
		CustomState: aws.String("csrf-123")}
	out, err := w.rt.GetResourceOauth2Token(ctx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.AuthorizationUrl == nil || out.SessionUri == nil || out.SessionStatus != types.SessionStatusInProgress {
		t.Fatalf("start: %+v", out)
	}
	toCallback := w.dex.Authorize(t, *out.AuthorizationUrl)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(toCallback.String())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), returnURL) || loc.Query().Get("session_id") != *out.SessionUri || loc.Query().Get("state") != "csrf-123" {
		t.Fatalf("callback: %d %s", res.StatusCode, loc)
	}
	if _, err := w.rt.CompleteResourceTokenAuth(ctx(t), &bedrockagentcore.CompleteResourceTokenAuthInput{SessionUri: out.SessionUri,
		UserIdentifier: &types.UserIdentifierMemberUserId{Value: "mallory"}}); err == nil {
		t.Fatal("another user completed the session")
	}
	if _, err := w.rt.CompleteResourceTokenAuth(ctx(t), &bedrockagentcore.CompleteResourceTokenAuthInput{SessionUri: out.SessionUri,
		UserIdentifier: &types.UserIdentifierMemberUserId{Value: "alice"}}); err != nil {
		t.Fatal(err)
	}
	in.SessionUri = out.SessionUri
	got, err := w.rt.GetResourceOauth2Token(ctx(t), in)
	if err != nil || got.AccessToken == nil {
		t.Fatalf("after binding: %+v %v", got, err)
	}
	in.SessionUri = nil
	again, err := w.rt.GetResourceOauth2Token(ctx(t), in)
	if err != nil || aws.ToString(again.AccessToken) != aws.ToString(got.AccessToken) {
		t.Fatalf("stored token: %+v %v", again, err)
	}
	t.Logf("refresh requests so far: %d", w.dex.TokenRequests("refresh_token"))
}
