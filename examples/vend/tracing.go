package main

import (
	"context"
	"errors"
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
)

// traceCalls traces this run when the standard OTEL_EXPORTER_OTLP_ENDPOINT
// (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: a span for the run and a
// client span for each call, whose W3C traceparent (W3C Trace Context,
// section 3.2) goes with the request, so that behalf's spans continue the
// agent's trace. It returns the run's context and finish, which ends the
// run's span and flushes the spans to the collector.
func traceCalls(ctx context.Context, cfg *aws.Config) (context.Context, func(error) error, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return ctx, func(err error) error { return err }, nil
	}
	exp, err := otlptracehttp.New(ctx) // configured by the OTEL_EXPORTER_OTLP_* variables
	if err != nil {
		return ctx, nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "examples/vend"))))
	tracer := tp.Tracer("github.com/behalf-dev/behalf/examples/vend")
	next := cfg.HTTPClient
	if next == nil {
		next = http.DefaultClient
	}
	cfg.HTTPClient = tracingClient{next: next, tracer: tracer}
	ctx, span := tracer.Start(ctx, "vend")
	return ctx, func(runErr error) error {
		if runErr != nil {
			span.SetStatus(codes.Error, "vend failed")
		}
		span.End()
		return errors.Join(runErr, tp.Shutdown(context.WithoutCancel(ctx)))
	}, nil
}

// tracingClient sends each request of the AWS SDK in a client span named
// after the API operation, with the span's traceparent.
type tracingClient struct {
	next   aws.HTTPClient
	tracer trace.Tracer
}

func (c tracingClient) Do(req *http.Request) (*http.Response, error) {
	ctx, span := c.tracer.Start(req.Context(), awsmiddleware.GetOperationName(req.Context()), trace.WithSpanKind(trace.SpanKindClient),
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
