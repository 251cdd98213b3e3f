package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/behalf-dev/behalf/internal/logging"
)

// MetricsPath is where Prometheus scrapes metrics.
const MetricsPath = "/metrics"

// ListenMetrics opens a listener of its own at addr for Prometheus
// metrics, and the server that serves them there; nil when addr is empty
// or Prometheus is off. /metrics there needs no credentials: keep the
// address private (docs/observability.md).
func (t *Telemetry) ListenMetrics(ctx context.Context, addr string, log *slog.Logger) (*http.Server, net.Listener, error) {
	if addr == "" || t.Prometheus == nil {
		return nil, nil, nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, t.Prometheus)
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return hs, ln, nil
}

// ServeMetrics serves hs on ln until it is shut down.
func ServeMetrics(ctx context.Context, hs *http.Server, ln net.Listener, log *slog.Logger) {
	log.LogAttrs(ctx, slog.LevelInfo, "serving Prometheus metrics", slog.String(logging.KeyListen, ln.Addr().String()))
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.LogAttrs(ctx, slog.LevelError, "metrics listener failed", logging.Err(err))
	}
}
