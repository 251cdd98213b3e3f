package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/contrib/bridges/otelslog"

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wire"
)

// serverLog is the server's logger: log, with every line logged with a
// call's context carrying its request id and, when traced, its trace and
// span ids; when logs are exported, each line is also sent over OTLP with
// the trace and span of its context.
func (s *Server) serverLog(log *slog.Logger) *slog.Logger {
	h := log.Handler()
	written := logging.ContextHandler{Inner: h, Attrs: wire.LogAttrs}
	if !s.tel.LogsOTLP {
		return slog.New(written)
	}
	// An OTLP log record carries its trace and span natively: the
	// exported line gets the request id only.
	otlp := logging.ContextHandler{
		Inner: otelslog.NewHandler(telemetry.ScopeName, otelslog.WithLoggerProvider(s.tel.Loggers)),
		Attrs: func(ctx context.Context) []slog.Attr {
			return slices.DeleteFunc(wire.LogAttrs(ctx), func(a slog.Attr) bool {
				return a.Key == logging.KeyTraceID || a.Key == logging.KeySpanID
			})
		},
	}
	return slog.New(slog.NewMultiHandler(written, sameLevel{Handler: otlp, as: h}))
}

// sameLevel exports the lines its sibling writes, and no others: the log
// level configured for the log holds for its export too.
type sameLevel struct {
	slog.Handler
	as slog.Handler
}

func (h sameLevel) Enabled(ctx context.Context, l slog.Level) bool { return h.as.Enabled(ctx, l) }

func (h sameLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return sameLevel{Handler: h.Handler.WithAttrs(attrs), as: h.as.WithAttrs(attrs)}
}

func (h sameLevel) WithGroup(name string) slog.Handler {
	return sameLevel{Handler: h.Handler.WithGroup(name), as: h.as.WithGroup(name)}
}

// listenMetrics opens the separate Prometheus listener when one is
// configured; nil otherwise. /metrics there needs no credentials: keep the
// address private (docs/observability.md).
func (s *Server) listenMetrics(ctx context.Context) (*http.Server, net.Listener, error) {
	addr := s.cfg.Telemetry.MetricsListen
	if addr == "" || s.tel.Prometheus == nil {
		return nil, nil, nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.tel.Prometheus)
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return hs, ln, nil
}

// serveMetrics serves hs on ln until it is shut down.
func (s *Server) serveMetrics(ctx context.Context, hs *http.Server, ln net.Listener) {
	s.log.LogAttrs(ctx, slog.LevelInfo, "serving Prometheus metrics", slog.String(logging.KeyListen, ln.Addr().String()))
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.LogAttrs(ctx, slog.LevelError, "metrics listener failed", logging.Err(err))
	}
}

// publishAnchor logs the audit chain's head and exports it, so that a
// later truncation of the audit table shows against a copy kept outside
// the database (docs/audit.md, "Anchors").
func (s *Server) publishAnchor(ctx context.Context) {
	head, err := s.store.GetAuditHead(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelError, "reading the audit chain's head", logging.Err(err))
		}
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "audit chain head", slog.String(logging.KeyAnchor, anchorString(head)))
	s.auditExport.anchor(head)
}

// PublishAnchor publishes the audit chain's head now; for tests.
func (s *Server) PublishAnchor(ctx context.Context) { s.publishAnchor(ctx) }
