package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// BenchmarkTracedVend is what telemetry costs one vend, apart from the
// vend itself: the telemetry a GetResourceApiKey call records — its
// server span with the router's attributes, the vault.open and
// audit.commit child spans, and their metrics — around a handler that
// does nothing else, with traces at 100% exported over OTLP/HTTP to a
// receiver that discards them, and Prometheus metrics on. "off" is the
// same harness with telemetry off. It reports the process's CPU time a
// call, user and system, so that the span processor's and exporter's
// goroutines and the garbage collector are counted with the call.
func BenchmarkTracedVend(b *testing.B) {
	receiver := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(receiver.Close)
	on, err := telemetry.New(b.Context(), telemetry.Config{
		OTLP: telemetry.OTLPConfig{Endpoint: receiver.URL}, Traces: true, SampleRatio: 1, Prometheus: true,
	}, telemetry.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = on.Shutdown(context.Background()) })
	users := telemetry.NewUserHasher([]byte("0123456789abcdef0123456789abcdef"))
	for _, c := range []struct {
		name string
		tel  *telemetry.Telemetry
	}{{"off", telemetry.Noop()}, {"on", on}} {
		b.Run(c.name, func(b *testing.B) {
			tel := c.tel
			h := tel.ServerSpans(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				vendTelemetry(ctx, tel, users)
				w.WriteHeader(http.StatusOK)
			}), func(*http.Request) string { return "GetResourceApiKey" }, func(*http.Request) bool { return false })
			req := httptest.NewRequest(http.MethodPost, "/identities/api-key", nil)
			req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			cpu := processCPU()
			for b.Loop() {
				h.ServeHTTP(discard{}, req)
			}
			if err := tel.ForceFlush(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N)/1e3, "cpu-µs/call")
		})
	}
}

// vendTelemetry records what the router, the vault and the audit log
// record for one GetResourceApiKey call.
func vendTelemetry(ctx context.Context, tel *telemetry.Telemetry, users telemetry.UserHasher) {
	start := time.Now()
	vctx, span := telemetry.Start(ctx, "vault.open")
	telemetry.End(span, nil, "")
	tel.Metrics.Vault(vctx, telemetry.VaultOpen, nil)
	tel.Metrics.CacheLookup(ctx, telemetry.CacheWorkloadToken, true)
	_, span = telemetry.Start(ctx, "audit.commit")
	telemetry.End(span, nil, "audit")
	tel.Metrics.Request(ctx, "GetResourceApiKey", telemetry.OutcomeSuccess, "", time.Since(start))
	if telemetry.Recording(ctx) {
		telemetry.SetServerAttributes(ctx, telemetry.Operation.String("GetResourceApiKey"), telemetry.Outcome.String(telemetry.OutcomeSuccess),
			telemetry.Principal.String("BHLFEZZWJ26SR2XGLLFT"), telemetry.Workload.String("bench-agent"),
			telemetry.Provider.String("bench-key"), telemetry.UserHashKey.String(users.Hash("alice@example.com")))
	}
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
