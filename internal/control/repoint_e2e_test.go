package control_test

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	dptypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// tokenRequests counts the token-endpoint requests an IdP receives and the
// client secrets they carried.
type tokenRequests struct {
	mu      sync.Mutex
	secrets []string
}

func (r *tokenRequests) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/token") {
			_, secret, _ := req.BasicAuth()
			if err := req.ParseForm(); err == nil && req.PostForm.Get("client_secret") != "" {
				secret = req.PostForm.Get("client_secret")
			}
			r.mu.Lock()
			r.secrets = append(r.secrets, secret)
			r.mu.Unlock()
		}
		next.ServeHTTP(w, req)
	})
}

func (r *tokenRequests) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.secrets...)
}

// TestUpdateOAuth2ProviderRepoint: moving a provider to another
// authorization server requires its client secret again, so the stored
// secret and users' refresh tokens are never sent to a server they were
// not given for; the move drops the provider's connections and open
// sessions, and an update that stays on the same server keeps them.
func TestUpdateOAuth2ProviderRepoint(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		idpA := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "secret-a"}}})
		var atB tokenRequests
		idpBServer := startDevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "secret-b"}}}, atB.wrap)
		s := behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) { f.Development = true }})
		c, data, cx := s.Control(), s.Data(), ctx(t)
		returnURL := s.URL + "/dev/complete"
		if _, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
			Name: aws.String("agent-w"), AllowedResourceOauth2ReturnUrls: []string{returnURL}}); err != nil {
			t.Fatal(err)
		}
		config := func(discovery string, secret *string) types.Oauth2ProviderConfigInput {
			return &types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: types.CustomOauth2ProviderConfigInput{
				ClientId: aws.String("agent"), ClientSecret: secret,
				OauthDiscovery: &types.Oauth2DiscoveryMemberDiscoveryUrl{Value: discovery + "/.well-known/openid-configuration"}}}
		}
		if _, err := c.CreateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("idp"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: config(idpA.Issuer(), aws.String("secret-a")),
		}); err != nil {
			t.Fatal(err)
		}
		update := func(discovery string, secret *string) error {
			_, err := c.UpdateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
				Name: aws.String("idp"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
				Oauth2ProviderConfigInput: config(discovery, secret),
			})
			return err
		}
		request := func(user string, sessionURI *string) (*bedrockagentcore.GetResourceOauth2TokenOutput, error) {
			wat, err := data.GetWorkloadAccessTokenForUserId(cx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
				WorkloadName: aws.String("agent-w"), UserId: aws.String(user)})
			if err != nil {
				t.Fatal(err)
			}
			return data.GetResourceOauth2Token(cx, &bedrockagentcore.GetResourceOauth2TokenInput{
				WorkloadIdentityToken: wat.WorkloadAccessToken, ResourceCredentialProviderName: aws.String("idp"),
				Oauth2Flow: dptypes.Oauth2FlowTypeUserFederation, Scopes: []string{"openid"},
				ResourceOauth2ReturnUrl: aws.String(returnURL), SessionUri: sessionURI,
			})
		}
		wantToken := func(what, user string) {
			t.Helper()
			out, err := request(user, nil)
			if err != nil || out.AccessToken == nil {
				t.Fatalf("%s: %s's stored token: %+v, %v", what, user, out, err)
			}
		}

		// alice connects at A; bob's authorization stays open.
		out, err := request("alice", nil)
		if err != nil || out.AuthorizationUrl == nil {
			t.Fatalf("alice's first request: %+v, %v", out, err)
		}
		if status, page := behalftest.Consent(t, *out.AuthorizationUrl, "alice", true); status != http.StatusOK {
			t.Fatalf("consent: %d %s", status, page)
		}
		if out, err = request("alice", out.SessionUri); err != nil || out.AccessToken == nil {
			t.Fatalf("alice after consent: %+v, %v", out, err)
		}
		wantToken("after consent", "alice")
		bob, err := request("bob", nil)
		if err != nil || bob.SessionUri == nil {
			t.Fatalf("bob's first request: %+v, %v", bob, err)
		}

		// Pointing the provider at B without the secret is refused and
		// changes nothing.
		err = update(idpBServer, nil)
		v := wantAPIError[*types.ValidationException](t, err)
		if !strings.Contains(v.ErrorMessage(), "clientSecret") || len(v.FieldList) != 1 || !strings.HasSuffix(aws.ToString(v.FieldList[0].Name), ".clientSecret") {
			t.Fatalf("validation error %q, fields %+v: want it to name clientSecret", v.ErrorMessage(), v.FieldList)
		}
		got, err := c.GetOauth2CredentialProvider(cx, &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String("idp")})
		if err != nil {
			t.Fatal(err)
		}
		if d := got.Oauth2ProviderConfigOutput.(*types.Oauth2ProviderConfigOutputMemberCustomOauth2ProviderConfig).Value.OauthDiscovery; !strings.HasPrefix(
			d.(*types.Oauth2DiscoveryMemberDiscoveryUrl).Value, idpA.Issuer()) {
			t.Fatalf("the refused update changed the discovery URL: %+v", d)
		}
		wantToken("after the refused update", "alice")

		// An update that stays at A keeps the stored secret and the
		// users' grants.
		if err := update(idpA.Issuer(), nil); err != nil {
			t.Fatalf("update at the same server without a secret: %v", err)
		}
		wantToken("after an update at the same server", "alice")

		// With B's secret the move succeeds: alice must consent again
		// (at B), bob's open session is gone, and B saw only its own
		// secret.
		if err := update(idpBServer, aws.String("secret-b")); err != nil {
			t.Fatalf("move to B with its secret: %v", err)
		}
		out, err = request("alice", nil)
		if err != nil || out.AccessToken != nil || out.AuthorizationUrl == nil || !strings.HasPrefix(*out.AuthorizationUrl, idpBServer) {
			t.Fatalf("alice after the move: %+v, %v; want a new authorization at B", out, err)
		}
		_, err = request("bob", bob.SessionUri)
		wantAPIError[*dptypes.ResourceNotFoundException](t, err)
		if status, page := behalftest.Consent(t, *out.AuthorizationUrl, "alice", true); status != http.StatusOK {
			t.Fatalf("consent at B: %d %s", status, page)
		}
		wantToken("after consent at B", "alice")
		for _, secret := range atB.seen() {
			if secret != "secret-b" {
				t.Errorf("B's token endpoint received client secret %q", secret)
			}
		}
		if len(atB.seen()) == 0 {
			t.Error("B's token endpoint was never called")
		}
	})
}

// startDevIDP runs a dev IdP on loopback whose routes go through wrap, and
// returns its issuer.
func startDevIDP(t *testing.T, opts devidp.Options, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Issuer = "http://" + ln.Addr().String()
	idp, err := devidp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: wrap(idp.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return opts.Issuer
}
