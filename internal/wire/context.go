package wire

import "context"

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
