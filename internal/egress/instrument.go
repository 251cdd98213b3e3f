package egress

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// instrumented gives each outbound call a CLIENT span and counts it. It
// adds trace context (W3C traceparent) to the request only with a
// propagator: a provider is a third party, and learns nothing of behalf's
// traces.
type instrumented struct {
	base       http.RoundTripper
	metrics    *telemetry.Metrics
	propagator propagation.TextMapPropagator
}

func (t *instrumented) RoundTrip(req *http.Request) (*http.Response, error) {
	labels := telemetry.OutboundOf(req.Context())
	if labels != nil {
		labels.TakeOAuthError() // a code left by an earlier call is not this call's
	} else {
		labels = &telemetry.Outbound{}
	}
	ctx, span := telemetry.StartClient(req.Context(), spanName(req.Method, labels), clientAttributes(req, labels)...)
	c := &outboundCall{ctx: ctx, span: span, labels: labels, metrics: t.metrics, start: time.Now()}
	req = req.WithContext(ctx)
	if t.propagator != nil && span.SpanContext().IsValid() {
		req.Header = req.Header.Clone()
		t.propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	res, err := t.base.RoundTrip(req)
	if err != nil {
		c.end(0)
		return nil, err
	}
	res.Body = &endOnClose{ReadCloser: res.Body, end: func() { c.end(res.StatusCode) }}
	return res, nil
}

// spanName is the method, and the endpoint kind of a call to a provider
// ("POST token").
func spanName(method string, labels *telemetry.Outbound) string {
	if labels.Endpoint == "" {
		return method
	}
	return method + " " + labels.Endpoint
}

// clientAttributes are a CLIENT span's attributes; a call that is not to a
// provider (the gateway's upstreams) names none.
func clientAttributes(req *http.Request, labels *telemetry.Outbound) []attribute.KeyValue {
	attrs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(req.Method), semconv.ServerAddress(req.URL.Hostname())}
	if labels.Provider != "" {
		attrs = append(attrs, telemetry.Provider.String(labels.Provider))
	}
	if labels.Endpoint != "" {
		attrs = append(attrs, telemetry.Endpoint.String(labels.Endpoint))
	}
	return attrs
}

// outboundCall is one call in progress, ended when its response body is
// closed: the caller has by then read the provider's OAuth error code.
type outboundCall struct {
	ctx     context.Context
	span    trace.Span
	labels  *telemetry.Outbound
	metrics *telemetry.Metrics
	start   time.Time
}

// end records the call, answered with status (0: no answer).
func (c *outboundCall) end(status int) {
	code := c.labels.TakeOAuthError()
	outcome, errType := telemetry.OutboundSuccess, ""
	switch {
	case status == 0:
		outcome, errType = telemetry.OutboundNetworkError, telemetry.OutboundNetworkError
	case code != "":
		outcome, errType = telemetry.OutboundOAuthError, code
	case status/100 != 2:
		outcome, errType = telemetry.OutboundHTTPError, strconv.Itoa(status)
	}
	if status != 0 {
		c.span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	if code != "" {
		c.span.SetAttributes(telemetry.OAuthError.String(code))
	}
	if errType != "" {
		c.span.SetAttributes(telemetry.ErrorType.String(errType))
		c.span.SetStatus(codes.Error, errType)
	}
	c.span.End()
	c.metrics.Outbound(c.ctx, c.labels.Provider, c.labels.Endpoint, outcome, code, time.Since(c.start))
}

// endOnClose ends the call once, when its body is first closed.
type endOnClose struct {
	io.ReadCloser
	end  func()
	once sync.Once
}

func (b *endOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.end)
	return err
}

// Traced wraps base so that each call is a CLIENT span whose trace context
// the callee receives, and is not counted: for calls to behalf itself,
// which shares its callers' traces (a standalone gateway's data-plane
// client), made under no egress policy of behalf's.
func Traced(base http.RoundTripper, p propagation.TextMapPropagator) http.RoundTripper {
	return &instrumented{base: base, propagator: p}
}
