// Package logging names the keys of behalf's log lines, once, and adds
// request attributes carried by a context to every line logged with it.
package logging

import (
	"context"
	"log/slog"
)

// The keys of behalf's log lines. Every line uses these, so a search for
// one request, principal or workload finds all of its lines.
const (
	KeyRequestID = "request_id"
	// KeyTraceID and KeySpanID name the trace and span a line was logged
	// in (W3C Trace Context hex).
	KeyTraceID   = "trace_id"
	KeySpanID    = "span_id"
	KeyOp        = "op"
	KeyPrincipal = "principal"
	KeyWorkload  = "workload"
	KeyUser      = "user"
	KeyProvider  = "provider"
	KeySession   = "session"
	KeyStatus    = "status"
	KeyErrorType = "error_type"
	KeyMessage   = "message"
	KeyError     = "error"
	KeyDuration  = "duration"
	KeyCount     = "count"
	KeyKeyID     = "key_id"
	KeyPath      = "path"
	KeyMode      = "mode"
	KeyMethod    = "method"
	KeyHost      = "host"
	// KeyKind and KeyOwner name a stored secret (vault.Ref).
	KeyKind        = "kind"
	KeyOwner       = "owner"
	KeyRewrapped   = "rewrapped"
	KeySkipped     = "skipped"
	KeyDeferred    = "deferred"
	KeyRetryIn     = "retry_in"
	KeyAccessKeyID = "access_key_id"
	KeyCertFile    = "cert_file"
	KeyListen      = "listen"
	KeyPublicURL   = "public_url"
	KeyStorage     = "storage"
	// KeyRoute, KeyUserHash and KeyUpstreamStatus describe a gateway
	// call; a user appears only as a keyed hash.
	KeyRoute          = "route"
	KeyUserHash       = "user_hash"
	KeyUpstreamStatus = "upstream_status"
	KeyEndpoint       = "endpoint"
	// KeyAnchor is the audit chain's head as SEQ:HASH.
	KeyAnchor = "anchor"
)

// Err is the attribute of an error, under KeyError.
func Err(err error) slog.Attr { return slog.String(KeyError, err.Error()) }

// ContextHandler adds the attributes that Attrs finds in a line's context
// to every line, unless the line already carries an attribute of that key.
type ContextHandler struct {
	Inner slog.Handler
	// Attrs returns the attributes a context carries (a request id); nil
	// for none.
	Attrs func(context.Context) []slog.Attr
}

// Enabled reports whether Inner handles level.
func (h ContextHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.Inner.Enabled(ctx, level)
}

// Handle adds the context's attributes to r and passes it to Inner.
func (h ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if attrs := h.Attrs(ctx); len(attrs) > 0 {
			r = r.Clone()
			r.AddAttrs(missing(r, attrs)...)
		}
	}
	return h.Inner.Handle(ctx, r)
}

// missing returns the attributes of attrs whose keys r does not carry.
func missing(r slog.Record, attrs []slog.Attr) []slog.Attr {
	out := attrs[:0:0]
	for _, a := range attrs {
		found := false
		r.Attrs(func(have slog.Attr) bool {
			found = have.Key == a.Key
			return !found
		})
		if !found {
			out = append(out, a)
		}
	}
	return out
}

// WithAttrs returns a ContextHandler over Inner.WithAttrs(attrs).
func (h ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ContextHandler{Inner: h.Inner.WithAttrs(attrs), Attrs: h.Attrs}
}

// WithGroup returns a ContextHandler over Inner.WithGroup(name).
func (h ContextHandler) WithGroup(name string) slog.Handler {
	return ContextHandler{Inner: h.Inner.WithGroup(name), Attrs: h.Attrs}
}
