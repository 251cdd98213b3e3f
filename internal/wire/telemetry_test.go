package wire

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/logging"
)

// Server spans are named after the operation a request routes to, or by
// method and route for the browser routes other packages mount.
func TestSpanName(t *testing.T) {
	mux := http.NewServeMux()
	rt := NewRouter(mux, allowAll{}, allowAll{}, nil, slog.New(slog.DiscardHandler), Telemetry{})
	rt.Handle(JSON("Named", "/named", 200, func(context.Context, *Call, *shape) (*out, error) { return &out{}, nil }))
	mux.HandleFunc("GET /callback/{provider}", func(http.ResponseWriter, *http.Request) {})
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/named", "Named"},
		{"GET", "/named", "unknown"},
		{"POST", "/nowhere", "unknown"},
		{"GET", "/callback/acme?code=secret-code&state=s", "GET /callback/{provider}"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		mux.ServeHTTP(httptest.NewRecorder(), r) // sets r.Pattern, as otelhttp relies on
		if got := rt.SpanName(r); got != tc.want {
			t.Errorf("%s %s: span %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

// Lines logged in a traced call name its trace and span.
func TestLogAttrsNameTheSpan(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{0x0f, 2}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(WithRequestID(context.Background(), "req-1"), sc)
	got := map[string]string{}
	for _, a := range LogAttrs(ctx) {
		got[a.Key] = a.Value.String()
	}
	want := map[string]string{logging.KeyRequestID: "req-1", logging.KeyTraceID: sc.TraceID().String(), logging.KeySpanID: sc.SpanID().String()}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if attrs := LogAttrs(context.Background()); len(attrs) != 0 {
		t.Errorf("attributes outside a call: %v", attrs)
	}
}
