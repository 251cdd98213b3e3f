package devcollector

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// lockedBuffer is what the collector prints to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPrintsATraceAsATree exports, with the OpenTelemetry SDK's own
// OTLP/HTTP exporters, a server span continuing a caller's trace with a
// failed token-endpoint call under it, and a log record written inside
// it; the collector prints one tree and one line.
func TestPrintsATraceAsATree(t *testing.T) {
	var out lockedBuffer
	now := time.Unix(1_700_000_000, 0)
	var clock sync.Mutex
	c := New(&out, Options{Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	ctx := t.Context()

	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) })
	callerTrace, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	callerSpan, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	callerCtx := trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: callerTrace, SpanID: callerSpan, TraceFlags: trace.FlagsSampled, Remote: true}))
	tracer := tp.Tracer("test")
	sctx, server := tracer.Start(callerCtx, "GetResourceOauth2Token", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("behalf.operation", "GetResourceOauth2Token"), attribute.String("behalf.flow", "M2M"),
			attribute.String("server.address", "127.0.0.1"), attribute.String("user_agent.original", "aws-sdk-go-v2/1.47.7")))
	_, client := tracer.Start(sctx, "POST token endpoint", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("http.response.status_code", 400), attribute.String("server.address", "idp.example")))
	client.SetStatus(codes.Error, "invalid_client")
	client.End()

	lexp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(srv.URL+"/v1/logs"))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(lexp)))
	t.Cleanup(func() { _ = lp.Shutdown(context.WithoutCancel(ctx)) })
	var rec otellog.Record
	rec.SetBody(attribute.StringValue("provider refused the client"))
	rec.SetSeverity(otellog.SeverityWarn)
	rec.SetSeverityText("WARN")
	rec.AddAttributes(attribute.String("provider", "dev-idp"))
	rec.SetTimestamp(time.Unix(1_700_000_000, 0))
	lp.Logger("test").Emit(sctx, rec)
	server.End()

	logLine := regexp.MustCompile(`(?m)^log \d\d:\d\d:\d\d\.\d{3} WARN  "provider refused the client"  provider=dev-idp  trace=4bf92f3577b34da6a3ce929d0e0e4736 span=[0-9a-f]{16}$`)
	if !logLine.MatchString(out.String()) {
		t.Errorf("no log line in:\n%s", out.String())
	}
	c.Flush(false)
	if strings.Contains(out.String(), "trace 4bf9") {
		t.Fatalf("the trace was printed before it had been quiet:\n%s", out.String())
	}
	clock.Lock()
	now = now.Add(DefaultQuiet)
	clock.Unlock()
	c.Flush(false)
	tree := regexp.MustCompile(`(?m)^trace 4bf92f3577b34da6a3ce929d0e0e4736  2 span\(s\), continuing the caller's trace
└─ GetResourceOauth2Token  server  [0-9.µm]+s  behalf.flow=M2M behalf.operation=GetResourceOauth2Token
   └─ POST token endpoint  client  [0-9.µm]+s  ERROR invalid_client  http.response.status_code=400 server.address=idp.example
`)
	if !tree.MatchString(out.String()) {
		t.Errorf("no trace tree in:\n%s", out.String())
	}
	before := out.String()
	c.Flush(true)
	if out.String() != before {
		t.Errorf("a printed trace was printed again:\n%s", out.String())
	}

	// A span that arrives after its trace was printed, as another
	// process's batch does, is printed as the trace's continuation.
	_, late := tracer.Start(sctx, "audit.commit")
	late.End()
	c.Flush(true)
	continued := "trace 4bf92f3577b34da6a3ce929d0e0e4736  1 span(s), continued: more spans of a trace printed above\n└─ audit.commit  internal  "
	if !strings.Contains(strings.TrimPrefix(out.String(), before), continued) {
		t.Errorf("no continuation in:\n%s", strings.TrimPrefix(out.String(), before))
	}
}

// TestAcceptsGzip takes a gzipped export, as an SDK with
// OTEL_EXPORTER_OTLP_COMPRESSION=gzip sends.
func TestAcceptsGzip(t *testing.T) {
	var out lockedBuffer
	c := New(&out, Options{})
	export, err := proto.Marshal(&coltrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8},
			Name: "GetWorkloadAccessToken", Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: 1_000_000, EndTimeUnixNano: 3_500_000,
		}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(export)
	_ = zw.Close()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/traces", &gz)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "gzip")
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("HTTP %d %s: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	c.Flush(true)
	want := "trace 0102030405060708090a0b0c0d0e0f10  1 span(s)\n└─ GetWorkloadAccessToken  server  2.5ms\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

func TestRefusesWhatIsNotAnExport(t *testing.T) {
	const pb = "application/x-protobuf"
	c := New(&lockedBuffer{}, Options{})
	for _, tc := range []struct {
		method, path, contentType, encoding, body string
		status                                    int
	}{
		{http.MethodGet, "/v1/traces", pb, "", "", http.StatusMethodNotAllowed},
		{http.MethodPost, "/v1/profiles", pb, "", "", http.StatusNotFound},
		{http.MethodPost, "/v1/traces", pb, "", "\xff\xff not protobuf", http.StatusBadRequest},
		{http.MethodPost, "/v1/traces", "application/json", "", "{}", http.StatusBadRequest},
		{http.MethodPost, "/v1/logs", pb, "br", "x", http.StatusBadRequest},
		{http.MethodPost, "/v1/metrics", pb, "gzip", "not gzip", http.StatusBadRequest},
		{http.MethodPost, "/v1/traces", pb, "", strings.Repeat("\x00", maxBody+1), http.StatusBadRequest},
	} {
		req := httptest.NewRequestWithContext(t.Context(), tc.method, tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.contentType)
		if tc.encoding != "" {
			req.Header.Set("Content-Encoding", tc.encoding)
		}
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s %s (%s): HTTP %d, want %d", tc.method, tc.path, tc.encoding, rec.Code, tc.status)
		}
	}
}
