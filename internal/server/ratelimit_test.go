package server_test

import (
	"errors"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/smithy-go"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestPrincipalRateLimit: past its burst a principal's calls are refused
// with ThrottlingException, which the AWS SDK recognises (its retries are
// off in these clients); another principal keeps its own allowance.
func TestPrincipalRateLimit(t *testing.T) {
	const burst = 3
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: func(f *config.File) {
		f.Limits = config.LimitsFile{RequestsPerSecond: 0.001, Burst: burst}
	}})
	admin := s.Control()
	list := func(c *bedrockagentcorecontrol.Client) error {
		_, err := c.ListWorkloadIdentities(t.Context(), &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{})
		return err
	}
	res := s.Do(t, behalftest.Raw{Path: "/behalf/CreatePrincipal", Body: []byte(`{"role":"admin"}`)})
	if res.Status != http.StatusCreated {
		t.Fatalf("CreatePrincipal: %d %s", res.Status, res.Body)
	}
	for i := 1; i < burst; i++ { // CreatePrincipal took the first token
		if err := list(admin); err != nil {
			t.Fatalf("call %d within the burst: %v", i+1, err)
		}
	}
	err := list(admin)
	var apiErr smithy.APIError
	var resErr *awshttp.ResponseError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" || !errors.As(err, &resErr) || resErr.HTTPStatusCode() != http.StatusTooManyRequests {
		t.Fatalf("call past the burst: got %v, want ThrottlingException (HTTP 429)", err)
	}

	other := res.JSON(t)
	c := s.ControlAs(other["accessKeyId"].(string), other["secretAccessKey"].(string))
	if err := list(c); err != nil {
		t.Fatalf("another principal was throttled: %v", err)
	}
}
