package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// The README's consent walk-through, as a test: the program asks for the
// user's token, the "user" consents in a browser at the dev IdP, behalf's
// development page binds the session, the program gets the token, and
// behalf refreshes it when it nears expiry.
func TestConsent(t *testing.T) {
	idp := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}}, AccessTokenTTL: 3 * time.Second})
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: func(f *config.File) { f.Development = true }})
	ctx := context.Background()
	c := s.Control()
	if _, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
		Name: aws.String("my-agent"), AllowedResourceOauth2ReturnUrls: []string{s.URL + "/dev/complete"}}); err != nil {
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

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret), input{
			Endpoint: s.URL, Workload: "my-agent", User: "alice", Provider: "dev-idp", ReturnURL: s.URL + "/dev/complete",
			Scopes: []string{"openid", "profile"}, Poll: 100 * time.Millisecond, Watch: 5 * time.Second, Every: time.Second,
		}, pw)
		pw.Close()
	}()
	var lines []string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "http"); ok && strings.Contains(u, "/authorize?") {
			status, page := behalftest.Consent(t, "http"+u, "alice", true)
			if status != 200 || !strings.Contains(page, "Connected") {
				t.Fatalf("consent ended on %d:\n%s", status, page)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	out := strings.Join(lines, "\n")
	if !strings.Contains(out, "access token for alice at dev-idp: eyJ") || !strings.Contains(out, "behalf refreshed the token") {
		t.Fatalf("output:\n%s", out)
	}
}
