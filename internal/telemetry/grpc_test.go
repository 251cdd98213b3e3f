package telemetry_test

import (
	"context"
	"net"
	"sync"
	"testing"

	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// grpcCollector is an OTLP/gRPC receiver: the collector services of the
// OTLP protocol, keeping the span names and metric names exported to it.
type grpcCollector struct {
	coltrace.UnimplementedTraceServiceServer
	mu             sync.Mutex
	spans, metrics []string
}

func (c *grpcCollector) Export(_ context.Context, r *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range r.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, s.Name)
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

type grpcMetrics struct {
	colmetrics.UnimplementedMetricsServiceServer
	c *grpcCollector
}

func (m grpcMetrics) Export(_ context.Context, r *colmetrics.ExportMetricsServiceRequest) (*colmetrics.ExportMetricsServiceResponse, error) {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	for _, rm := range r.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, x := range sm.Metrics {
				m.c.metrics = append(m.c.metrics, x.Name)
			}
		}
	}
	return &colmetrics.ExportMetricsServiceResponse{}, nil
}

// Traces and metrics reach a collector over OTLP/gRPC when the protocol
// says grpc.
func TestExportOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	c := &grpcCollector{}
	coltrace.RegisterTraceServiceServer(srv, c)
	colmetrics.RegisterMetricsServiceServer(srv, grpcMetrics{c: c})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	ctx := context.Background()
	tel, err := telemetry.New(ctx, telemetry.Config{
		OTLP:   telemetry.OTLPConfig{Endpoint: "http://" + ln.Addr().String(), Protocol: telemetry.ProtocolGRPC},
		Traces: true, SampleRatio: 1, MetricsOTLP: true,
	}, telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Tracers.Tracer(telemetry.ScopeName).Start(ctx, "grpc-exported")
	span.End()
	tel.Metrics.RateLimited(ctx, telemetry.LimitPrincipal)
	if err := tel.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.spans) != 1 || c.spans[0] != "grpc-exported" {
		t.Errorf("spans received over gRPC: %v", c.spans)
	}
	found := false
	for _, m := range c.metrics {
		found = found || m == "behalf.ratelimit.rejections"
	}
	if !found {
		t.Errorf("metrics received over gRPC: %v", c.metrics)
	}
}
