package telemetry

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys of behalf's spans and metrics. Values are names, counts
// and outcomes, never a secret or a user id: a user appears only as
// UserHash.
const (
	Operation   = attribute.Key("behalf.operation")
	Outcome     = attribute.Key("behalf.outcome")
	ErrorType   = attribute.Key("error.type")
	Principal   = attribute.Key("behalf.principal")
	Workload    = attribute.Key("behalf.workload")
	Provider    = attribute.Key("behalf.provider")
	Flow        = attribute.Key("behalf.flow")
	ScopesCount = attribute.Key("behalf.scopes.count")
	UserHashKey = attribute.Key("behalf.user.hash")
	Endpoint    = attribute.Key("behalf.endpoint")
	OAuthError  = attribute.Key("oauth.error")
	Result      = attribute.Key("behalf.result")
	Event       = attribute.Key("behalf.event")
	Kind        = attribute.Key("behalf.kind")
	Cache       = attribute.Key("behalf.cache")
	Limit       = attribute.Key("behalf.limit")
	Signal      = attribute.Key("behalf.signal")
	VaultOp     = attribute.Key("behalf.vault.operation")
	Route       = attribute.Key("behalf.gateway.route")
	// KeyBackend names a key-management backend: "local", "aws-kms",
	// "pkcs11".
	KeyBackend = attribute.Key("behalf.key_backend")
	// Actors is a call's identity chain: the workloads it came through
	// before its own, outermost first (names, as behalf.workload is).
	Actors = attribute.Key("behalf.actors")
	// AuditBound marks a storage transaction that commits an audit record
	// with its change.
	AuditBound = attribute.Key("behalf.audit.bound")
	// DBSystem is the OpenTelemetry semantic convention's db.system.name.
	DBSystem = attribute.Key("db.system.name")
)

// Outcomes of an API call, as the requests metric counts them.
const (
	OutcomeSuccess      = "success"
	OutcomeClientError  = "client_error"
	OutcomeServerError  = "server_error"
	OutcomeThrottled    = "throttled"
	OutcomeAccessDenied = "access_denied"
)

// UserHasher names a user in telemetry by a keyed hash: stable within one
// deployment, so one user's calls can be followed, and useless for
// guessing who the user is without the key. The zero value hashes nothing.
type UserHasher struct{ macs *sync.Pool }

// NewUserHasher returns a hasher keyed with key (a server secret).
func NewUserHasher(key []byte) UserHasher {
	if len(key) == 0 {
		return UserHasher{}
	}
	key = bytes.Clone(key)
	return UserHasher{macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// Hash returns user's pseudonym: 32 hex digits; "" for no user.
func (h UserHasher) Hash(user string) string {
	if user == "" || h.macs == nil {
		return ""
	}
	m := h.macs.Get().(hash.Hash)
	defer h.macs.Put(m)
	m.Reset()
	m.Write([]byte("behalf telemetry user\x00"))
	m.Write([]byte(user))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0])[:16])
}

// Start starts a span named name as a child of ctx's span, with the
// tracer provider that made it. A call that is not traced, or whose span
// is not recorded (sampled out), gets its own span back and ctx
// unchanged, at no cost; attrs are best passed only when the span
// records (Recording), as building them allocates.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return tracerOf(parent.TracerProvider()).Start(ctx, name, trace.WithAttributes(attrs...))
}

// providerTracer is an SDK tracer provider and behalf's tracer from it.
type providerTracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

// lastTracer remembers the tracer Start last took from an SDK provider: a
// process has one, and asking it for a tracer takes a lock and a map
// lookup, on every span of every call.
var lastTracer atomic.Pointer[providerTracer]

func tracerOf(p trace.TracerProvider) trace.Tracer {
	sdk, ok := p.(*sdktrace.TracerProvider)
	if !ok {
		return p.Tracer(ScopeName)
	}
	if last := lastTracer.Load(); last != nil && last.provider == sdk {
		return last.tracer
	}
	t := sdk.Tracer(ScopeName)
	lastTracer.Store(&providerTracer{provider: sdk, tracer: t})
	return t
}

// Recording reports whether ctx's span records, so that a caller builds
// span attributes only when they will be kept.
func Recording(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }

// End ends span, marking it failed with err's type (errType, e.g. an API
// error type or an OAuth error code) when err is not nil. The error's
// message is not recorded: it may quote what a provider sent.
func End(span trace.Span, err error, errType string) {
	if err != nil && span.IsRecording() {
		if errType == "" {
			errType = "error"
		}
		span.SetAttributes(ErrorType.String(errType))
		span.SetStatus(codes.Error, errType)
	}
	span.End()
}
