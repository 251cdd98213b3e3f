package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"

	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
	"github.com/behalf-dev/behalf/internal/testutil/promtest"
)

// hangingCollector accepts connections and never answers until the
// client gives up: a collector too slow to be waited for.
func hangingCollector(t *testing.T) string {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		// The server notices the client hanging up only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	return srv.URL
}

func startTelemetry(t *testing.T, endpoint string, queue int) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.New(t.Context(), telemetry.Config{
		OTLP:   telemetry.OTLPConfig{Endpoint: endpoint, Timeout: 200 * time.Millisecond},
		Traces: true, SampleRatio: 1, Prometheus: true, LogsOTLP: true,
	}, telemetry.Options{QueueSize: queue})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

func dropped(t *testing.T, tel *telemetry.Telemetry, signal string) float64 {
	return promtest.ScrapeHandler(t, tel.Prometheus).Value(t, "behalf_telemetry_dropped_total", map[string]string{"behalf_signal": signal})
}

// emit ends n spans and emits n log records, as fast as they come.
func emit(tel *telemetry.Telemetry, n int) time.Duration {
	tracer, logger := tel.Tracers.Tracer("test"), tel.Loggers.Logger("test")
	start := time.Now()
	for range n {
		ctx, span := tracer.Start(context.Background(), "call")
		var rec log.Record
		rec.SetBody(attribute.StringValue("line"))
		logger.Emit(ctx, rec)
		span.End()
	}
	return time.Since(start)
}

// With the collector hanging, every span and log record is dropped and
// counted: those beyond the queue at once, the rest when their export
// times out; and ending spans never waits for the collector.
func TestDroppedWhenCollectorHangs(t *testing.T) {
	const n, queue = 200, 8
	tel := startTelemetry(t, hangingCollector(t), queue)
	if took := emit(tel, n); took > 2*time.Second {
		t.Errorf("emitting %d spans and log records took %v: the caller waited for the collector", n, took)
	}
	for _, signal := range []string{telemetry.SignalTraces, telemetry.SignalLogs} {
		if d := dropped(t, tel, signal); d < n-queue {
			t.Errorf("%s: %v dropped before any export returned, want at least %d (beyond the queue of %d)", signal, d, n-queue, queue)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := tel.ForceFlush(ctx); err == nil {
		t.Error("ForceFlush to a hanging collector succeeded")
	}
	for _, signal := range []string{telemetry.SignalTraces, telemetry.SignalLogs} {
		if d := dropped(t, tel, signal); d != n {
			t.Errorf("%s: %v counted dropped after the flush, want all %d", signal, d, n)
		}
	}
}

// A collector that answers 503 loses the exports' items, each counted;
// once it is back, nothing more is dropped.
func TestDroppedWhenCollectorFails(t *testing.T) {
	recv := otlptest.New(t)
	recv.Fail(http.StatusServiceUnavailable)
	tel := startTelemetry(t, recv.URL, 2048)
	emit(tel, 10)
	if err := tel.ForceFlush(t.Context()); err == nil {
		t.Error("ForceFlush to a failing collector succeeded")
	}
	for _, signal := range []string{telemetry.SignalTraces, telemetry.SignalLogs} {
		if d := dropped(t, tel, signal); d != 10 {
			t.Errorf("%s: %v dropped, want 10", signal, d)
		}
	}
	recv.Fail(0)
	emit(tel, 5)
	if err := tel.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, signal := range []string{telemetry.SignalTraces, telemetry.SignalLogs} {
		if d := dropped(t, tel, signal); d != 10 {
			t.Errorf("%s: %v dropped after the collector came back, want still 10", signal, d)
		}
	}
	if got := len(recv.Spans()); got != 5 {
		t.Errorf("received %d spans, want 5", got)
	}
	if got := len(recv.Logs()); got != 5 {
		t.Errorf("received %d log records, want 5", got)
	}
}
