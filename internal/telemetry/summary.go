package telemetry

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Summary is a few totals of the metrics since they began to count, for
// the admin console's overview (docs/console.md): what an operator reads
// at a glance before turning to a dashboard.
type Summary struct {
	// Requests are the API calls answered (behalf.requests); Errors those
	// that failed for any reason but a rate limit, ServerErrors those
	// that failed on behalf's side.
	Requests, Errors, ServerErrors int64
	// Throttled are the calls a rate limit refused
	// (behalf.ratelimit.rejections).
	Throttled int64
	// Refreshes are USER_FEDERATION token refreshes; RefreshesFailed
	// those that ended in invalid_grant or failed.
	Refreshes, RefreshesFailed int64
	// ProviderCalls are calls to providers' endpoints
	// (behalf.outbound.requests); ProviderFailures those whose outcome
	// was not success.
	ProviderCalls, ProviderFailures int64
}

// Prometheus names of the series Summarize reads, and their labels
// (docs/observability.md).
const (
	promRequests   = "behalf_requests_total"
	promRejections = "behalf_ratelimit_rejections_total"
	promRefreshes  = "behalf_token_refreshes_total"
	promOutbound   = "behalf_outbound_requests_total"
	promOutcome    = "behalf_outcome"
	promResult     = "behalf_result"
)

// Summarize reads g, the Prometheus registry /metrics serves, in-process.
func Summarize(g prometheus.Gatherer) (Summary, error) {
	families, err := g.Gather()
	if err != nil {
		return Summary{}, fmt.Errorf("telemetry: gather metrics: %w", err)
	}
	var s Summary
	for _, f := range families {
		for _, m := range f.GetMetric() {
			n := int64(m.GetCounter().GetValue())
			switch f.GetName() {
			case promRequests:
				s.Requests += n
				switch label(m, promOutcome) {
				case OutcomeSuccess, OutcomeThrottled:
				case OutcomeServerError:
					s.Errors += n
					s.ServerErrors += n
				default:
					s.Errors += n
				}
			case promRejections:
				s.Throttled += n
			case promRefreshes:
				s.Refreshes += n
				if r := label(m, promResult); r == RefreshInvalidGrant || r == RefreshFailed {
					s.RefreshesFailed += n
				}
			case promOutbound:
				s.ProviderCalls += n
				if label(m, promOutcome) != OutcomeSuccess {
					s.ProviderFailures += n
				}
			}
		}
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
