package telemetry

import (
	"context"
	"net/http"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ServerSpans wraps next so that every request it serves is a SERVER span
// continuing the caller's W3C trace context. name names a span once next
// has routed the request (the router names API calls after their
// operation; "" keeps the name next gave the span); skip exempts requests, such as health checks, from tracing.
// It records the method, path and status and nothing else of the request:
// neither the query (an authorization code) nor a header.
func (t *Telemetry) ServerSpans(next http.Handler, name func(*http.Request) string, skip func(*http.Request) bool) http.Handler {
	tracer := t.Tracers.Tracer(ScopeName)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if skip(r) {
			next.ServeHTTP(w, r)
			return
		}
		ctx := t.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		sw.attrs = sw.buf[:0]
		routed := r.WithContext(context.WithValue(ctx, serverSpanKey{}, sw))
		next.ServeHTTP(sw, routed)
		if n := name(routed); n != "" {
			span.SetName(n)
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(append(sw.attrs, semconv.HTTPResponseStatusCode(status))...)
		if status >= 500 {
			// A 4xx is the caller's error, not the server's (OpenTelemetry
			// HTTP semantic conventions, span status).
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	})
}

// SetServerAttributes describes the request of ctx on its server span.
// Under ServerSpans the attributes are set with the status when the
// request ends, in one call: each SetAttributes grows the span's
// attribute slice, on every request. Elsewhere they go on ctx's span.
func SetServerAttributes(ctx context.Context, attrs ...attribute.KeyValue) {
	if sw, ok := ctx.Value(serverSpanKey{}).(*statusWriter); ok {
		sw.attrs = append(sw.attrs, attrs...)
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(slices.Clone(attrs)...)
}

type serverSpanKey struct{}

// statusWriter remembers the status written, and the attributes handlers
// set for the server span (SetServerAttributes). Unwrap lets
// http.ResponseController reach the connection's Flusher and deadlines.
type statusWriter struct {
	http.ResponseWriter
	status int
	attrs  []attribute.KeyValue
	buf    [12]attribute.KeyValue
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
