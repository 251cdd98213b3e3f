package telemetry_test

import (
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// TestSummarize: the totals read in-process from what /metrics serves
// follow the instruments.
func TestSummarize(t *testing.T) {
	ctx := t.Context()
	tel, err := telemetry.New(ctx, telemetry.Config{Prometheus: true}, telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(ctx) })
	if tel.Gatherer == nil || tel.Started.IsZero() {
		t.Fatal("no gatherer or start time with Prometheus on")
	}
	m := tel.Metrics
	m.Request(ctx, "ListPrincipals", telemetry.OutcomeSuccess, "", time.Millisecond)
	m.Request(ctx, "ListPrincipals", telemetry.OutcomeClientError, "ValidationException", time.Millisecond)
	m.Request(ctx, "GetResourceOauth2Token", telemetry.OutcomeServerError, "InternalServerException", time.Millisecond)
	m.Request(ctx, "ListPrincipals", telemetry.OutcomeThrottled, "ThrottlingException", time.Millisecond)
	m.RateLimited(ctx, telemetry.LimitPrincipal)
	m.Refresh(ctx, telemetry.RefreshRefreshed)
	m.Refresh(ctx, telemetry.RefreshInvalidGrant)
	m.Outbound(ctx, "corp", "token", telemetry.OutcomeSuccess, "", time.Millisecond)
	m.Outbound(ctx, "corp", "token", "network_error", "", time.Millisecond)
	got, err := telemetry.Summarize(tel.Gatherer)
	want := telemetry.Summary{Requests: 4, Errors: 2, ServerErrors: 1, Throttled: 1, Refreshes: 2, RefreshesFailed: 1, ProviderCalls: 2, ProviderFailures: 1}
	if err != nil || got != want {
		t.Errorf("Summarize: %+v %v, want %+v", got, err, want)
	}
}
