package server

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"

	"github.com/behalf-dev/behalf/internal/console"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wire"
)

// serverLog is the server's logger: log, with every line logged with a
// call's context carrying its request id and trace and span ids, exported
// over OTLP too when logs are (telemetry.Logger).
func (s *Server) serverLog(log *slog.Logger) *slog.Logger { return s.tel.Logger(log, wire.LogAttrs) }

// listenMetrics opens the separate Prometheus listener when one is
// configured; nil otherwise.
func (s *Server) listenMetrics(ctx context.Context) (*http.Server, net.Listener, error) {
	return s.tel.ListenMetrics(ctx, s.cfg.Telemetry.MetricsListen, s.log)
}

// serveMetrics serves hs on ln until it is shut down.
func (s *Server) serveMetrics(ctx context.Context, hs *http.Server, ln net.Listener) {
	telemetry.ServeMetrics(ctx, hs, ln, s.log)
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
	s.lastAnchor.Store(&console.Anchor{Seq: head.Seq, Hash: hex.EncodeToString(head.Hash), Published: s.now()})
}

// PublishAnchor publishes the audit chain's head now; for tests.
func (s *Server) PublishAnchor(ctx context.Context) { s.publishAnchor(ctx) }
