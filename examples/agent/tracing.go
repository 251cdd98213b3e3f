package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// newTracer exports the agent's spans when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
// set. Without it the tracer records nothing but still passes the
// caller's trace context on (W3C Trace Context, section 3.2).
func newTracer(ctx context.Context) (trace.Tracer, func(context.Context) error, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return noop.NewTracerProvider().Tracer(""), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx) // configured by the OTEL_EXPORTER_OTLP_* variables
	if err != nil {
		return nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "examples/agent"))))
	return tp.Tracer("github.com/behalf-dev/behalf/examples/agent"), tp.Shutdown, nil
}

// tracingClient sends each request in a client span, named after the
// AWS API operation for the data plane's, with the span's traceparent.
type tracingClient struct {
	next   aws.HTTPClient
	tracer trace.Tracer
}

func (c tracingClient) Do(req *http.Request) (*http.Response, error) {
	name := awsmiddleware.GetOperationName(req.Context())
	if name == "" {
		name = req.Method + " " + req.URL.Path
	}
	ctx, span := c.tracer.Start(req.Context(), name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("server.address", req.URL.Host)))
	defer span.End()
	req = req.Clone(ctx)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	res, err := c.next.Do(req)
	switch {
	case err != nil:
		span.SetStatus(codes.Error, "request failed")
	case res.StatusCode >= 400:
		span.SetAttributes(attribute.Int("http.response.status_code", res.StatusCode))
		span.SetStatus(codes.Error, fmt.Sprintf("HTTP %d", res.StatusCode))
	default:
		span.SetAttributes(attribute.Int("http.response.status_code", res.StatusCode))
	}
	return res, err
}
