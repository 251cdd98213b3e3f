// Package metrictest reads behalf's metrics in tests: New gives a
// *telemetry.Metrics on an OpenTelemetry SDK meter provider with a manual
// reader, and Counts and HistogramCounts collect what was recorded.
package metrictest

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// Reader collects the metrics recorded through Metrics.
type Reader struct {
	Metrics *telemetry.Metrics
	reader  *sdkmetric.ManualReader
}

// New returns metrics recorded into a manual reader.
func New(t testing.TB) *Reader {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(t.Context()) })
	m, err := telemetry.NewMetrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	return &Reader{Metrics: m, reader: reader}
}

func (r *Reader) find(t testing.TB, name string) (metricdata.Aggregation, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data, true
			}
		}
	}
	return nil, false
}

// Counts returns counter name's totals by the value of attribute key.
func (r *Reader) Counts(t testing.TB, name string, key attribute.Key) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	data, ok := r.find(t, name)
	if !ok {
		return out
	}
	sum, ok := data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, not an int64 sum", name, data)
	}
	for _, dp := range sum.DataPoints {
		v, _ := dp.Attributes.Value(key)
		out[v.AsString()] += dp.Value
	}
	return out
}

// HistogramCounts returns how many values histogram name recorded and
// their sum.
func (r *Reader) HistogramCounts(t testing.TB, name string) (count uint64, sum int64) {
	t.Helper()
	data, ok := r.find(t, name)
	if !ok {
		return 0, 0
	}
	h, ok := data.(metricdata.Histogram[int64])
	if !ok {
		t.Fatalf("%s is a %T, not an int64 histogram", name, data)
	}
	for _, dp := range h.DataPoints {
		count += dp.Count
		sum += dp.Sum
	}
	return count, sum
}

// Gauge returns int64 gauge name's value; ok is false when it reported
// none.
func (r *Reader) Gauge(t testing.TB, name string) (value int64, ok bool) {
	t.Helper()
	data, found := r.find(t, name)
	if !found {
		return 0, false
	}
	g, isGauge := data.(metricdata.Gauge[int64])
	if !isGauge || len(g.DataPoints) != 1 {
		t.Fatalf("%s is %#v, not one int64 gauge point", name, data)
	}
	return g.DataPoints[0].Value, true
}

// HistogramOutcomes returns how many values histogram name recorded, by
// their behalf.outcome attribute.
func (r *Reader) HistogramOutcomes(t testing.TB, name string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	data, ok := r.find(t, name)
	if !ok {
		return out
	}
	h, ok := data.(metricdata.Histogram[int64])
	if !ok {
		t.Fatalf("%s is a %T, not an int64 histogram", name, data)
	}
	for _, dp := range h.DataPoints {
		v, _ := dp.Attributes.Value(telemetry.Outcome)
		out[v.AsString()] += dp.Count
	}
	return out
}
