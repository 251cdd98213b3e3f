package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// Tag keys starting with "aws:", in any case, are reserved for AWS, which
// refuses them from callers with a ValidationException.
func TestReservedTagKeysAreRefused(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	c, ctx := s.Control(), context.Background()
	w, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("agent")})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"aws:team", "AWS:team", "Aws:cost-center"} {
		tags := map[string]string{key: "x"}
		for name, call := range map[string]func() error{
			"TagResource": func() error {
				_, err := c.TagResource(ctx, &bedrockagentcorecontrol.TagResourceInput{ResourceArn: w.WorkloadIdentityArn, Tags: tags})
				return err
			},
			"CreateWorkloadIdentity": func() error {
				_, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("other"), Tags: tags})
				return err
			},
			"CreateApiKeyCredentialProvider": func() error {
				_, err := c.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
					Name: aws.String("openai"), ApiKey: aws.String("sk-1"), Tags: tags})
				return err
			},
		} {
			var ve interface{ ErrorCode() string }
			if err := call(); !errors.As(err, &ve) || ve.ErrorCode() != "ValidationException" {
				t.Errorf("%s with tag key %q: %v, want a ValidationException", name, key, err)
			}
		}
	}
	// A key that merely contains "aws" is the caller's.
	if _, err := c.TagResource(ctx, &bedrockagentcorecontrol.TagResourceInput{ResourceArn: w.WorkloadIdentityArn,
		Tags: map[string]string{"my:aws:team": "x", "awsteam": "y"}}); err != nil {
		t.Fatal(err)
	}
}
