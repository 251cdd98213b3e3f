// Package telemetry owns behalf's OpenTelemetry: the tracer, meter and
// logger providers built from configuration, the exporters (OTLP over HTTP
// or gRPC, and Prometheus), every metric instrument (Metrics), and the
// attribute keys spans and metrics share. Off, it hands out no-op providers
// that cost nothing measurable.
//
// Instrumented packages start child spans from the span in their context
// (Start), so only the server needs the providers; metrics are recorded
// through the *Metrics each package is given.
package telemetry

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/log"
	lognoop "go.opentelemetry.io/otel/log/noop"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of everything behalf emits.
const ScopeName = "github.com/behalf-dev/behalf"

// Config selects what behalf emits and where to. The zero value emits
// nothing.
type Config struct {
	// ServiceName is the service.name resource attribute; default
	// "behalf".
	ServiceName string
	// OTLP is where traces, metrics and logs are exported to when their
	// OTLP switch is on.
	OTLP OTLPConfig
	// Traces turns tracing on, exported over OTLP.
	Traces bool
	// SampleRatio is the share of new traces sampled (0 to 1); a call
	// whose caller's trace is sampled is always sampled (parent-based).
	SampleRatio float64
	// MetricsOTLP exports metrics over OTLP every MetricsInterval.
	MetricsOTLP     bool
	MetricsInterval time.Duration
	// Prometheus serves metrics in Prometheus' text format.
	Prometheus bool
	// LogsOTLP exports log lines over OTLP as well as writing them.
	LogsOTLP bool
	// AuditOTLP emits each audit record as an OTLP log record.
	AuditOTLP bool
}

// OTLPConfig is the collector behalf exports to. Empty fields fall back to
// the standard OTEL_EXPORTER_OTLP_* environment variables.
type OTLPConfig struct {
	// Endpoint is the collector's base URL, e.g. http://127.0.0.1:4318
	// (HTTP) or http://127.0.0.1:4317 (gRPC).
	Endpoint string
	// Protocol is "http/protobuf" (default) or "grpc".
	Protocol string
	// Headers are sent with every export, e.g. an API key.
	Headers map[string]string
	// CAFile is a PEM bundle to verify the collector's certificate.
	CAFile string
	// Timeout bounds each export; default 10s.
	Timeout time.Duration
}

// Enabled reports whether c emits anything.
func (c Config) Enabled() bool {
	return c.Traces || c.MetricsOTLP || c.Prometheus || c.LogsOTLP || c.AuditOTLP
}

// Telemetry is the running set of providers. The zero value is not usable;
// Noop returns one that emits nothing.
type Telemetry struct {
	// Tracers, Meters and Loggers are the providers; no-op where off.
	Tracers trace.TracerProvider
	Meters  metric.MeterProvider
	Loggers log.LoggerProvider
	// Propagator reads and writes W3C trace context and baggage.
	Propagator propagation.TextMapPropagator
	// Metrics holds every instrument behalf records; nil (recording
	// nothing) while metrics are off.
	Metrics *Metrics
	// Prometheus serves /metrics; nil unless Config.Prometheus.
	Prometheus http.Handler
	// Gatherer is what Prometheus serves, for reading the metrics
	// in-process (Summarize); nil unless Config.Prometheus.
	Gatherer prometheus.Gatherer
	// Started is when the metrics began to count.
	Started time.Time
	// LogsOTLP and AuditOTLP say where Loggers is meant to be used.
	LogsOTLP, AuditOTLP bool

	flush    []func(context.Context) error
	shutdown []func(context.Context) error
}

// Noop returns telemetry that emits nothing.
func Noop() *Telemetry {
	// Metrics stays nil: its record methods then return before building
	// any attribute, so metrics off cost no allocation.
	return &Telemetry{
		Tracers:    tracenoop.NewTracerProvider(),
		Meters:     metricnoop.NewMeterProvider(),
		Loggers:    lognoop.NewLoggerProvider(),
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
}

// ForceFlush exports everything buffered.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	var errs []error
	for _, f := range t.flush {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// Shutdown flushes and stops every exporter.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for i := len(t.shutdown) - 1; i >= 0; i-- {
		errs = append(errs, t.shutdown[i](ctx))
	}
	return errors.Join(errs...)
}
