package telemetry

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// With metrics on, a measurement whose attributes were seen before builds
// no attribute set: what is left is the SDK's one allocation per
// instrument recorded (its variadic options).
func TestRecordingReusesAttributeSets(t *testing.T) {
	m, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name        string
		instruments float64
		record      func()
	}{
		{"request", 2, func() { m.Request(ctx, "GetResourceApiKey", OutcomeSuccess, "", time.Millisecond) }},
		{"cache", 1, func() { m.CacheLookup(ctx, CacheConnection, true) }},
		{"vault", 1, func() { m.Vault(ctx, VaultOpen, nil) }},
		{"wat", 1, func() { m.WATMinted(ctx, WATJWT) }},
		{"refresh", 1, func() { m.Refresh(ctx, RefreshShared) }},
	} {
		c.record()
		if allocs := testing.AllocsPerRun(100, c.record); allocs > c.instruments {
			t.Errorf("%s: %v allocations, want at most %v", c.name, allocs, c.instruments)
		}
	}
}
