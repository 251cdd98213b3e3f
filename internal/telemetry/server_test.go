package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

func TestServerSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel := telemetry.Noop()
	tel.Tracers = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !trace.SpanFromContext(r.Context()).SpanContext().IsValid() {
			t.Error("the handler's context carries no span")
		}
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the status writer: %v", err)
		}
		telemetry.SetServerAttributes(r.Context(), telemetry.Operation.String("Get"), telemetry.Outcome.String("success"))
		telemetry.SetServerAttributes(r.Context(), telemetry.Workload.String("agent"))
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	mux.HandleFunc("GET /denied", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) })
	h := tel.ServerSpans(mux, func(r *http.Request) string { return "route " + r.Pattern },
		func(r *http.Request) bool { return r.URL.Path == "/healthz" })

	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	for _, path := range []string{"/ok/7?code=secret-code", "/fail", "/denied", "/healthz"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		propagation.TraceContext{}.Inject(trace.ContextWithRemoteSpanContext(context.Background(), parent), propagation.HeaderCarrier(req.Header))
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3 (the health check is not traced)", len(spans))
	}
	want := []struct {
		name   string
		status int64
		code   codes.Code
	}{{"route GET /ok/{id}", 200, codes.Unset}, {"route GET /fail", 502, codes.Error}, {"route GET /denied", 403, codes.Unset}}
	for i, s := range spans {
		if s.Name() != want[i].name || s.SpanKind() != trace.SpanKindServer || s.Status().Code != want[i].code {
			t.Errorf("span %d: %q kind %v status %v, want %q server %v", i, s.Name(), s.SpanKind(), s.Status().Code, want[i].name, want[i].code)
		}
		if s.Parent().TraceID() != parent.TraceID() || s.Parent().SpanID() != parent.SpanID() {
			t.Errorf("span %d does not continue the caller's trace", i)
		}
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if i == 0 && (attrs["behalf.operation"] != "Get" || attrs["behalf.outcome"] != "success" || attrs["behalf.workload"] != "agent" || attrs["url.path"] != "/ok/7") {
			t.Errorf("span %d: attributes %v, want the handler's and the request's", i, attrs)
		}
		if attrs["http.response.status_code"] != strconv.FormatInt(want[i].status, 10) {
			t.Errorf("span %d: status attribute %q, want %d", i, attrs["http.response.status_code"], want[i].status)
		}
		for k, v := range attrs {
			if v == "secret-code" || k == "url.query" || k == "url.full" {
				t.Errorf("span %d records the query: %s=%s", i, k, v)
			}
		}
	}
}

// Outside ServerSpans, SetServerAttributes describes the context's span
// at once.
func TestSetServerAttributesWithoutServerSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	ctx, span := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test").Start(context.Background(), "call")
	telemetry.SetServerAttributes(ctx, telemetry.Operation.String("Get"))
	span.End()
	if got := rec.Ended()[0].Attributes(); len(got) != 1 || got[0] != telemetry.Operation.String("Get") {
		t.Errorf("attributes %v, want behalf.operation=Get", got)
	}
	telemetry.SetServerAttributes(context.Background(), telemetry.Operation.String("Get")) // no span: nothing to do
}
