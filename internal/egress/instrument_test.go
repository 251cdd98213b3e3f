package egress_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// A call to a provider made in a traced call gets a CLIENT span under the
// caller's span, labelled with the provider, the endpoint kind, the status
// and the OAuth error code the caller read (never the description), and is
// counted; the provider receives no trace context. A client without
// Metrics, as the telemetry exporter's, is not instrumented.
func TestInstrumentedCalls(t *testing.T) {
	var headers http.Header
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"grant-description-TEST"}`)
	}))
	defer provider.Close()

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	metrics, err := telemetry.NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	call := func(c *http.Client) {
		ctx := telemetry.WithOutbound(ctx, "acme", telemetry.EndpointToken)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, provider.URL+"/token", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(res.Body)
		telemetry.SetOAuthError(ctx, "invalid_grant") // as oauthclient does
		_ = res.Body.Close()
	}

	call(egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}}))
	if n := len(spans.Ended()); n != 0 {
		t.Fatalf("an uninstrumented client made %d spans", n)
	}
	call(egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}, Metrics: metrics}))
	parent.End()

	for _, h := range []string{"Traceparent", "Tracestate", "Baggage"} {
		if v := headers.Get(h); v != "" {
			t.Errorf("the provider received %s: %s", h, v)
		}
	}
	var client sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client = s
		}
	}
	if client == nil || client.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("no CLIENT span under the caller's: %v", spans.Ended())
	}
	want := map[attribute.Key]string{
		"behalf.provider": "acme", "behalf.endpoint": "token", "oauth.error": "invalid_grant",
		"error.type": "invalid_grant", "http.request.method": "POST", "http.response.status_code": "400",
	}
	got := map[attribute.Key]string{}
	for _, kv := range client.Attributes() {
		got[kv.Key] = kv.Value.String()
		if kv.Value.String() == "grant-description-TEST" {
			t.Errorf("the error description is on the span as %s", kv.Key)
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if client.Status().Code != codes.Error || client.Name() != "POST token" {
		t.Errorf("span %q status %v, want POST token, error", client.Name(), client.Status())
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counted := int64(0)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "behalf.outbound.requests" {
				for _, dp := range sum.DataPoints {
					if v, _ := dp.Attributes.Value("oauth.error"); v.AsString() == "invalid_grant" {
						counted += dp.Value
					}
				}
			}
		}
	}
	if counted != 1 {
		t.Errorf("outbound calls counted with oauth.error=invalid_grant: %d, want 1", counted)
	}
}

// A code that no RFC registers is counted as "other", so a provider's
// text cannot grow the metrics.
func TestUnregisteredOAuthErrorIsOther(t *testing.T) {
	ctx := telemetry.WithOutbound(context.Background(), "acme", telemetry.EndpointToken)
	telemetry.SetOAuthError(ctx, "made_up_by_the_provider_8f3a")
	if got := telemetry.OutboundOf(ctx).TakeOAuthError(); got != "other" {
		t.Errorf("code %q, want other", got)
	}
	telemetry.SetOAuthError(ctx, "invalid_scope")
	if got := telemetry.OutboundOf(ctx).TakeOAuthError(); got != "invalid_scope" {
		t.Errorf("code %q, want invalid_scope", got)
	}
}

// A client with Spans alone (the gateway's tool routes) makes a CLIENT
// span under the caller's, named after the method alone and naming no
// provider or endpoint, and sends the upstream no trace context.
func TestSpansWithoutMetrics(t *testing.T) {
	var headers http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { headers = r.Header.Clone() }))
	defer upstream.Close()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, upstream.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}, Spans: true}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	parent.End()
	ended := spans.Ended()
	if len(ended) != 2 || ended[0].SpanKind() != trace.SpanKindClient || ended[0].Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans %v, want a CLIENT span under the caller's", ended)
	}
	if ended[0].Name() != http.MethodGet {
		t.Errorf("span named %q, want %q", ended[0].Name(), http.MethodGet)
	}
	for _, a := range ended[0].Attributes() {
		if a.Key == telemetry.Provider || a.Key == telemetry.Endpoint {
			t.Errorf("a call to no provider has %s %q", a.Key, a.Value.String())
		}
	}
	if v := headers.Get("Traceparent"); v != "" {
		t.Errorf("the upstream received traceparent %s", v)
	}
}
