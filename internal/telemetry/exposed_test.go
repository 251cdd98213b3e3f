package telemetry

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// auditQueueDepth is the gauge the audit writer registers with
// Metrics.Gauge; it is documented and charted like the instruments
// NewMetrics creates.
const auditQueueDepth = "behalf.audit.queue.depth"

// instruments returns every instrument NewMetrics creates, and the audit
// queue's gauge, as an SDK reader collects them: the source of truth the
// documentation and the operator artefacts are checked against.
func instruments(t *testing.T) []metricdata.Metrics {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	m, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	recordEach(t, m)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	var all []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		all = append(all, sm.Metrics...)
	}
	return all
}

// recordEach records one value on every instrument, so that every one is
// collected; an instrument without a data point is not exported.
func recordEach(t *testing.T, m *Metrics) {
	t.Helper()
	ctx := t.Context()
	m.Request(ctx, "GetResourceOauth2Token", OutcomeSuccess, "", time.Millisecond)
	m.GatewayCall(ctx, "my-agent", "agent", OutcomeSuccess, "", time.Millisecond)
	m.Outbound(ctx, "p", "token", OutcomeSuccess, "", time.Millisecond)
	m.Refresh(ctx, RefreshRefreshed)
	m.Session(ctx, SessionStarted)
	m.WATMinted(ctx, "jwt")
	m.Vault(ctx, "seal", nil)
	m.Rewrapped(ctx, "rewrapped", 1)
	m.KeyBackendCall(ctx, "aws-kms", "Decrypt", KeyOutcomeSuccess, time.Millisecond)
	m.AuditBatch(ctx, 1, time.Millisecond, errors.New("x"))
	m.CacheLookup(ctx, CacheM2MToken, true)
	m.RateLimited(ctx, "sessions")
	m.Dropped(ctx, "traces", 1)
	if err := m.Gauge(auditQueueDepth, "{record}", "Audit records waiting to be committed.", func() int64 { return 1 }); err != nil {
		t.Fatal(err)
	}
}

// exposition is what /metrics exposes of behalf's instruments.
type exposition struct {
	// family maps each instrument's name to its Prometheus family name.
	family map[string]string
	// series are the names a query can use: the family for a counter or
	// gauge, its _bucket, _sum and _count for a histogram.
	series map[string]bool
	// labels are the label names of those series.
	labels map[string]bool
}

// exposed returns what /metrics exposes of behalf's instruments, read
// from the Prometheus exporter behalf serves /metrics with.
func exposed(t *testing.T) exposition {
	t.Helper()
	byDescription := map[string]string{}
	for _, md := range instruments(t) {
		byDescription[md.Description] = md.Name
	}
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)))
	if err != nil {
		t.Fatal(err)
	}
	recordEach(t, m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	e := exposition{family: map[string]string{}, series: map[string]bool{}, labels: map[string]bool{}}
	for _, f := range families {
		name, ok := byDescription[f.GetHelp()]
		if !ok {
			continue // target_info
		}
		e.family[name] = f.GetName()
		if f.GetType() == dto.MetricType_HISTOGRAM {
			e.series[f.GetName()+"_bucket"], e.series[f.GetName()+"_sum"], e.series[f.GetName()+"_count"] = true, true, true
			e.labels["le"] = true
		} else {
			e.series[f.GetName()] = true
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				e.labels[l.GetName()] = true
			}
		}
	}
	if len(e.family) != len(byDescription) {
		t.Fatalf("Prometheus exposes %d of the %d instruments: %v", len(e.family), len(byDescription), e.family)
	}
	return e
}
