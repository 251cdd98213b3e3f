package telemetry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"google.golang.org/grpc/credentials"
)

// Options are what New needs beyond the configuration.
type Options struct {
	// Version is behalf's version, the service.version attribute.
	Version string
	// HTTPClient sends OTLP/HTTP exports; nil uses the exporters' own.
	HTTPClient *http.Client
	// QueueSize bounds the spans, and the log records, held for export;
	// beyond it they are dropped and counted. Default 2048.
	QueueSize int
}

// Protocols of Config.OTLP.Protocol.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// cardinalityLimit bounds the attribute sets of one instrument: beyond it
// the SDK folds new sets into one overflow series.
const cardinalityLimit = 2000

// defaultExportTimeout bounds an export, retries included, when
// Config.OTLP.Timeout does not.
const defaultExportTimeout = 10 * time.Second

// New starts the providers and exporters cfg asks for; with nothing
// enabled it returns Noop(). Call Shutdown when done.
func New(ctx context.Context, cfg Config, opts Options) (_ *Telemetry, err error) {
	t := Noop()
	t.Started = time.Now()
	if !cfg.Enabled() {
		return t, nil
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "behalf"
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = defaultQueueSize
	}
	if cfg.OTLP.Timeout <= 0 {
		cfg.OTLP.Timeout = defaultExportTimeout
	}
	defer func() {
		if err != nil {
			_ = t.Shutdown(context.WithoutCancel(ctx))
		}
	}()
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(opts.Version)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tlsConfig, err := loadCA(cfg.OTLP.CAFile)
	if err != nil {
		return nil, err
	}
	if err := t.startMetrics(ctx, cfg, opts, res, tlsConfig); err != nil {
		return nil, err
	}
	if cfg.Traces {
		if err := t.startTraces(ctx, cfg, opts, res, tlsConfig); err != nil {
			return nil, err
		}
	}
	if cfg.LogsOTLP || cfg.AuditOTLP {
		if err := t.startLogs(ctx, cfg, opts, res, tlsConfig); err != nil {
			return nil, err
		}
	}
	t.LogsOTLP, t.AuditOTLP = cfg.LogsOTLP, cfg.AuditOTLP
	return t, nil
}

func (t *Telemetry) startMetrics(ctx context.Context, cfg Config, opts Options, res *resource.Resource, tlsConfig *tls.Config) error {
	// Exemplars are off: offering every measurement of a sampled call to
	// a reservoir costs the vend path more than the exemplars are worth.
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithCardinalityLimit(cardinalityLimit),
		sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter)}
	if cfg.Prometheus {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return fmt.Errorf("telemetry: prometheus: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(exp))
		t.Prometheus = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
		t.Gatherer = reg
	}
	if cfg.MetricsOTLP {
		exp, err := metricExporter(ctx, cfg.OTLP, opts, tlsConfig)
		if err != nil {
			return err
		}
		interval := cfg.MetricsInterval
		if interval <= 0 {
			interval = time.Minute
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval))))
	}
	if !cfg.Prometheus && !cfg.MetricsOTLP {
		return nil
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	t.Meters = mp
	t.flush = append(t.flush, mp.ForceFlush)
	t.shutdown = append(t.shutdown, mp.Shutdown)
	m, err := NewMetrics(mp)
	if err != nil {
		return err
	}
	t.Metrics = m
	return nil
}

func (t *Telemetry) startTraces(ctx context.Context, cfg Config, opts Options, res *resource.Resource, tlsConfig *tls.Config) error {
	exp, err := traceExporter(ctx, cfg.OTLP, opts, tlsConfig)
	if err != nil {
		return err
	}
	ratio := cfg.SampleRatio
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithSpanProcessor(newBoundedSpans(exp, opts.QueueSize, cfg.OTLP.Timeout, t.Metrics)),
	)
	t.Tracers = tp
	t.flush = append(t.flush, tp.ForceFlush)
	t.shutdown = append(t.shutdown, tp.Shutdown)
	return nil
}

func (t *Telemetry) startLogs(ctx context.Context, cfg Config, opts Options, res *resource.Resource, tlsConfig *tls.Config) error {
	if cfg.OTLP.Protocol == ProtocolGRPC {
		return fmt.Errorf("telemetry: OTLP logs are exported over HTTP only; set telemetry.otlp.protocol to %s", ProtocolHTTP)
	}
	exp, err := otlploghttp.New(ctx, exporterOptions[otlploghttp.Option]{
		endpoint: otlploghttp.WithEndpointURL, headers: otlploghttp.WithHeaders, tls: otlploghttp.WithTLSClientConfig,
		timeout: otlploghttp.WithTimeout, client: otlploghttp.WithHTTPClient,
	}.build(cfg.OTLP, "/v1/logs", opts, tlsConfig)...)
	if err != nil {
		return fmt.Errorf("telemetry: OTLP logs: %w", err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(newBoundedLogs(exp, opts.QueueSize, cfg.OTLP.Timeout, t.Metrics)))
	t.Loggers = lp
	t.flush = append(t.flush, lp.ForceFlush)
	t.shutdown = append(t.shutdown, lp.Shutdown)
	return nil
}

// exporterOptions builds one OTLP exporter's options from the
// configuration: each exporter package has its own option type and
// constructors of the same meaning.
type exporterOptions[O any] struct {
	endpoint func(string) O
	headers  func(map[string]string) O
	tls      func(*tls.Config) O
	timeout  func(time.Duration) O
	client   func(*http.Client) O // nil for gRPC
}

// build returns the options for c; path is the signal's OTLP/HTTP path,
// "" for gRPC, whose endpoint is the collector's address alone.
func (e exporterOptions[O]) build(c OTLPConfig, path string, opts Options, tlsConfig *tls.Config) []O {
	var o []O
	if c.Endpoint != "" {
		o = append(o, e.endpoint(c.Endpoint+path))
	}
	if len(c.Headers) > 0 {
		o = append(o, e.headers(c.Headers))
	}
	if tlsConfig != nil {
		o = append(o, e.tls(tlsConfig))
	}
	if c.Timeout > 0 {
		o = append(o, e.timeout(c.Timeout))
	}
	if opts.HTTPClient != nil && e.client != nil {
		o = append(o, e.client(opts.HTTPClient))
	}
	return o
}

func traceExporter(ctx context.Context, c OTLPConfig, opts Options, tlsConfig *tls.Config) (sdktrace.SpanExporter, error) {
	if c.Protocol == ProtocolGRPC {
		exp, err := otlptracegrpc.New(ctx, exporterOptions[otlptracegrpc.Option]{
			endpoint: otlptracegrpc.WithEndpointURL, headers: otlptracegrpc.WithHeaders, timeout: otlptracegrpc.WithTimeout,
			tls: func(t *tls.Config) otlptracegrpc.Option {
				return otlptracegrpc.WithTLSCredentials(credentials.NewTLS(t))
			},
		}.build(c, "", opts, tlsConfig)...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/gRPC traces: %w", err)
		}
		return exp, nil
	}
	exp, err := otlptracehttp.New(ctx, exporterOptions[otlptracehttp.Option]{
		endpoint: otlptracehttp.WithEndpointURL, headers: otlptracehttp.WithHeaders, tls: otlptracehttp.WithTLSClientConfig,
		timeout: otlptracehttp.WithTimeout, client: otlptracehttp.WithHTTPClient,
	}.build(c, "/v1/traces", opts, tlsConfig)...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP/HTTP traces: %w", err)
	}
	return exp, nil
}

func metricExporter(ctx context.Context, c OTLPConfig, opts Options, tlsConfig *tls.Config) (sdkmetric.Exporter, error) {
	if c.Protocol == ProtocolGRPC {
		exp, err := otlpmetricgrpc.New(ctx, exporterOptions[otlpmetricgrpc.Option]{
			endpoint: otlpmetricgrpc.WithEndpointURL, headers: otlpmetricgrpc.WithHeaders, timeout: otlpmetricgrpc.WithTimeout,
			tls: func(t *tls.Config) otlpmetricgrpc.Option {
				return otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(t))
			},
		}.build(c, "", opts, tlsConfig)...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/gRPC metrics: %w", err)
		}
		return exp, nil
	}
	exp, err := otlpmetrichttp.New(ctx, exporterOptions[otlpmetrichttp.Option]{
		endpoint: otlpmetrichttp.WithEndpointURL, headers: otlpmetrichttp.WithHeaders, tls: otlpmetrichttp.WithTLSClientConfig,
		timeout: otlpmetrichttp.WithTimeout, client: otlpmetrichttp.WithHTTPClient,
	}.build(c, "/v1/metrics", opts, tlsConfig)...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP/HTTP metrics: %w", err)
	}
	return exp, nil
}

func loadCA(file string) (*tls.Config, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(filepath.Clean(file))
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("telemetry: OTLP CA file %s holds no PEM certificate", file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
