package wire

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/logging"
)

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id the router gave a
// call, for the log lines of everything the call does.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries; empty outside a call.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// LogAttrs returns the attributes of a call that ctx carries, for
// logging.ContextHandler: the request id, and the trace and span ids when
// the call is traced.
func LogAttrs(ctx context.Context) []slog.Attr {
	var attrs []slog.Attr
	if id := RequestID(ctx); id != "" {
		attrs = append(attrs, slog.String(logging.KeyRequestID, id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, slog.String(logging.KeyTraceID, sc.TraceID().String()), slog.String(logging.KeySpanID, sc.SpanID().String()))
	}
	return attrs
}
