package wire

import (
	"context"
	"log/slog"

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
// logging.ContextHandler: the request id.
func LogAttrs(ctx context.Context) []slog.Attr {
	if id := RequestID(ctx); id != "" {
		return []slog.Attr{slog.String(logging.KeyRequestID, id)}
	}
	return nil
}
