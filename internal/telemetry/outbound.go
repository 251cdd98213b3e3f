package telemetry

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Endpoint kinds of calls to providers.
const (
	EndpointDiscovery     = "discovery"
	EndpointJWKS          = "jwks"
	EndpointToken         = "token"
	EndpointRevocation    = "revocation"
	EndpointTokenExchange = "token_exchange"
	// EndpointSecretsManager is AWS Secrets Manager, read for a provider
	// whose secret is kept there (secretsource).
	EndpointSecretsManager = "secrets_manager"
)

// Outcomes of a call to a provider, as the outbound metric counts them.
const (
	OutboundSuccess      = "success"
	OutboundOAuthError   = "oauth_error"
	OutboundHTTPError    = "http_error"
	OutboundNetworkError = "network_error"
)

// Outbound is what a caller says about its call to a provider, for the
// HTTP client that instruments the call (package egress).
type Outbound struct {
	Provider, Endpoint string

	mu         sync.Mutex
	oauthError string
}

type outboundKey struct{}

// WithOutbound labels the provider calls made with ctx: the provider's
// name and the endpoint kind (an Endpoint constant). Calls made with one
// labelled context must be made one at a time.
func WithOutbound(ctx context.Context, provider, endpoint string) context.Context {
	return context.WithValue(ctx, outboundKey{}, &Outbound{Provider: provider, Endpoint: endpoint})
}

// OutboundOf returns ctx's labels; nil when it has none.
func OutboundOf(ctx context.Context) *Outbound {
	o, _ := ctx.Value(outboundKey{}).(*Outbound)
	return o
}

// SetOAuthError notes the OAuth error code (RFC 6749 §5.2 "error", never
// its description) the provider answered the call in progress with, before
// its response body is closed. A code outside the registered ones is
// noted as "other": a provider's text must not grow the metrics.
func SetOAuthError(ctx context.Context, code string) {
	if code == "" {
		return
	}
	if !oauthErrors[code] {
		code = "other"
	}
	if o := OutboundOf(ctx); o != nil {
		o.mu.Lock()
		o.oauthError = code
		o.mu.Unlock()
	}
}

// oauthErrors are the registered OAuth error codes: RFC 6749 §4.1.2.1 and
// §5.2, RFC 7009 §2.2.1, RFC 8628 §3.5 and RFC 8693 §2.2.2.
var oauthErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "access_denied": true, "unsupported_response_type": true,
	"server_error": true, "temporarily_unavailable": true, "unsupported_token_type": true,
	"authorization_pending": true, "slow_down": true, "expired_token": true, "invalid_target": true,
}

// TakeOAuthError returns the code SetOAuthError noted and forgets it, so
// that the next call with the same labels starts without one.
func (o *Outbound) TakeOAuthError() string {
	if o == nil {
		return ""
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	code := o.oauthError
	o.oauthError = ""
	return code
}

// StartClient starts a CLIENT span named name as a child of ctx's span;
// like Start, a call that is not traced starts a no-op span.
func StartClient(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(ScopeName).Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}
