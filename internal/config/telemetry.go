package config

import (
	"math"
	"net"
	"net/url"
	"time"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// TelemetryFile configures OpenTelemetry traces, metrics and logs, the
// Prometheus endpoint and the audit trail's export (docs/observability.md).
// Everything is off by default.
type TelemetryFile struct {
	// ServiceName is the service.name resource attribute.
	ServiceName string `yaml:"serviceName"`
	// OTLP is the collector; empty fields fall back to the standard
	// OTEL_EXPORTER_OTLP_* environment variables.
	OTLP struct {
		Endpoint string            `yaml:"endpoint"`
		Protocol string            `yaml:"protocol"`
		Headers  map[string]string `yaml:"headers"`
		CAFile   string            `yaml:"caFile"`
		Timeout  time.Duration     `yaml:"timeout"`
	} `yaml:"otlp"`
	Traces struct {
		Enabled bool `yaml:"enabled"`
		// SampleRatio is the share of new traces sampled; calls in a
		// sampled caller's trace are always sampled.
		SampleRatio *float64 `yaml:"sampleRatio"`
	} `yaml:"traces"`
	Metrics struct {
		OTLP       bool          `yaml:"otlp"`
		Interval   time.Duration `yaml:"interval"`
		Prometheus struct {
			Enabled bool `yaml:"enabled"`
			// Listen serves /metrics on a separate listener; empty
			// serves it on the API listener.
			Listen string `yaml:"listen"`
		} `yaml:"prometheus"`
	} `yaml:"metrics"`
	Logs struct {
		OTLP bool `yaml:"otlp"`
	} `yaml:"logs"`
	Audit struct {
		// OTLP emits each audit record as an OTLP log record.
		OTLP bool `yaml:"otlp"`
		// File appends each audit record to this JSON Lines file.
		File string `yaml:"file"`
		// AnchorInterval is how often the audit chain's head is
		// published to the log and the exporter; 0 never.
		AnchorInterval time.Duration `yaml:"anchorInterval"`
	} `yaml:"audit"`
}

// TelemetryConfig is the validated telemetry configuration.
type TelemetryConfig struct {
	telemetry.Config
	// MetricsListen is the separate /metrics listener; empty serves it on
	// the API listener.
	MetricsListen string
	// AuditFile is the JSON Lines file audit records are appended to.
	AuditFile string
	// AuditAnchorInterval is how often the chain's head is published.
	AuditAnchorInterval time.Duration
}

func (f File) validateTelemetry(c *Config, probs *Problems) {
	c.Telemetry = f.Telemetry.validate(probs)
}

// validate returns the telemetry configuration of a telemetry section,
// server's or standalone gateway's, adding its problems under telemetry.
func (t TelemetryFile) validate(probs *Problems) TelemetryConfig {
	c := TelemetryConfig{
		Config: telemetry.Config{
			ServiceName: t.ServiceName,
			OTLP: telemetry.OTLPConfig{Endpoint: t.OTLP.Endpoint, Protocol: t.OTLP.Protocol, Headers: t.OTLP.Headers,
				CAFile: t.OTLP.CAFile, Timeout: t.OTLP.Timeout},
			Traces: t.Traces.Enabled, SampleRatio: 1,
			MetricsOTLP: t.Metrics.OTLP, MetricsInterval: t.Metrics.Interval, Prometheus: t.Metrics.Prometheus.Enabled,
			LogsOTLP: t.Logs.OTLP, AuditOTLP: t.Audit.OTLP,
		},
		MetricsListen: t.Metrics.Prometheus.Listen, AuditFile: t.Audit.File, AuditAnchorInterval: t.Audit.AnchorInterval,
	}
	if t.Traces.SampleRatio != nil {
		c.SampleRatio = *t.Traces.SampleRatio
	}
	if r := c.SampleRatio; r < 0 || r > 1 || math.IsNaN(r) {
		probs.add("telemetry.traces.sampleRatio", "must be between 0 and 1")
	}
	t.validateOTLP(probs)
	t.validateIntervals(probs)
	return c
}

func (t TelemetryFile) validateOTLP(probs *Problems) {
	switch t.OTLP.Protocol {
	case "", telemetry.ProtocolHTTP, telemetry.ProtocolGRPC:
	default:
		probs.add("telemetry.otlp.protocol", "must be %s or %s", telemetry.ProtocolHTTP, telemetry.ProtocolGRPC)
	}
	if e := t.OTLP.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			probs.add("telemetry.otlp.endpoint", "must be an http or https URL without credentials, e.g. http://127.0.0.1:4318")
		}
	}
	if t.OTLP.Timeout < 0 {
		probs.add("telemetry.otlp.timeout", "must not be negative")
	}
}

func (t TelemetryFile) validateIntervals(probs *Problems) {
	if i := t.Metrics.Interval; i != 0 && i < time.Second {
		probs.add("telemetry.metrics.interval", "must be at least 1s")
	}
	if l := t.Metrics.Prometheus.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			probs.add("telemetry.metrics.prometheus.listen", "must be host:port, e.g. 127.0.0.1:9464")
		}
		if !t.Metrics.Prometheus.Enabled {
			probs.add("telemetry.metrics.prometheus.listen", "is set but telemetry.metrics.prometheus.enabled is false")
		}
	}
	if i := t.Audit.AnchorInterval; i != 0 && i < time.Second {
		probs.add("telemetry.audit.anchorInterval", "must be 0 (never) or at least 1s")
	}
}
