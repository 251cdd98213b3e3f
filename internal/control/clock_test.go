package control_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// The control plane dates what it creates by the server's clock, the one
// storage and the data plane judge times by.
func TestCreatedTimesFollowTheServerClock(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.New(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
		s := behalftest.Start(t, b, behalftest.Options{Now: clock.Now})
		c, cx := s.Control(), ctx(t)
		if _, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("clocked-agent")}); err != nil {
			t.Fatal(err)
		}
		w, err := c.GetWorkloadIdentity(cx, &bedrockagentcorecontrol.GetWorkloadIdentityInput{Name: aws.String("clocked-agent")})
		if err != nil {
			t.Fatal(err)
		}
		if !aws.ToTime(w.CreatedTime).Equal(clock.Now()) {
			t.Errorf("workload identity created at %v, want the server's %v", aws.ToTime(w.CreatedTime), clock.Now())
		}
		clock.Advance(time.Hour)
		k, err := c.CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{Name: aws.String("clocked"), ApiKey: aws.String("sk-clocked-0123456789")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.GetApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.GetApiKeyCredentialProviderInput{Name: k.Name})
		if err != nil {
			t.Fatal(err)
		}
		if !aws.ToTime(got.CreatedTime).Equal(clock.Now()) {
			t.Errorf("API key provider created at %v, want the server's %v", aws.ToTime(got.CreatedTime), clock.Now())
		}
	})
}
