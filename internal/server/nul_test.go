package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	datatypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// A NUL character, which PostgreSQL cannot store in text, is a
// ValidationException on both engines, in every operation, control and
// data plane alike.
func TestNULIsAValidationError(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		c, d, ctx := s.Control(), s.Data(), context.Background()
		w, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("agent")})
		if err != nil {
			t.Fatal(err)
		}
		for name, call := range map[string]func() error{
			"CreateWorkloadIdentity tag": func() error {
				_, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
					Name: aws.String("other"), Tags: map[string]string{"team": "a\x00b"}})
				return err
			},
			"TagResource": func() error {
				_, err := c.TagResource(ctx, &bedrockagentcorecontrol.TagResourceInput{
					ResourceArn: w.WorkloadIdentityArn, Tags: map[string]string{"team\x00": "a"}})
				return err
			},
			"CreateApiKeyCredentialProvider": func() error {
				_, err := c.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
					Name: aws.String("openai"), ApiKey: aws.String("sk-\x00")})
				return err
			},
			"GetWorkloadAccessTokenForUserId": func() error {
				_, err := d.GetWorkloadAccessTokenForUserId(ctx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
					WorkloadName: aws.String("agent"), UserId: aws.String("alice\x00")})
				return err
			},
			"GetResourceOauth2Token": func() error {
				_, err := d.GetResourceOauth2Token(ctx, &bedrockagentcore.GetResourceOauth2TokenInput{
					ResourceCredentialProviderName: aws.String("github"), Oauth2Flow: datatypes.Oauth2FlowTypeUserFederation,
					Scopes: []string{"repo"}, WorkloadIdentityToken: aws.String("token"),
					CustomState: aws.String("\x00"), CustomParameters: map[string]string{"prompt": "consent\x00"}})
				return err
			},
		} {
			var ve interface{ ErrorCode() string }
			if err := call(); !errors.As(err, &ve) || ve.ErrorCode() != "ValidationException" {
				t.Errorf("%s with a NUL: %v, want a ValidationException", name, err)
			}
		}
		// Invalid UTF-8, which the SDK would not send.
		res := s.Do(t, behalftest.Raw{Path: "/identities/CreateWorkloadIdentity", Body: []byte("{\"name\":\"x\",\"tags\":{\"k\":\"\xff\"}}")})
		if res.Status != 400 || res.ErrType != "ValidationException" {
			t.Errorf("invalid UTF-8: %d %s %s", res.Status, res.ErrType, res.Body)
		}
	})
}
