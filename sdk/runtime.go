package sdk

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
)

// The headers AgentCore Runtime (and behalf gateway) send with an
// invocation. The workload access token comes under two names: the newer
// one is read first.
const (
	HeaderWorkloadToken       = "X-Amz-Bedrock-AgentCore-Identity-WAT" //nolint:gosec // a header's name, not a credential
	HeaderWorkloadTokenLegacy = "WorkloadAccessToken"
	HeaderSessionID           = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
	HeaderRequestID           = "X-Amzn-Bedrock-AgentCore-Runtime-Request-Id"
	HeaderUserID              = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"
	HeaderCallbackURL         = "OAuth2CallbackUrl"
	HeaderCustomPrefix        = "X-Amzn-Bedrock-AgentCore-Runtime-Custom-"
)

// Invocation is what the runtime told the agent about one request.
type Invocation struct {
	WorkloadToken string // the workload access token: this agent, acting for UserID
	SessionID     string
	RequestID     string // generated when the runtime sent none
	UserID        string
	CallbackURL   string // the default ResourceOauth2ReturnUrl for USER_FEDERATION
	// Headers holds the allow-listed request headers: Authorization (when
	// the runtime propagates the caller's JWT) and the
	// X-Amzn-Bedrock-AgentCore-Runtime-Custom-* headers.
	Headers http.Header
}

type invocationKey struct{}

// NewContext returns ctx carrying inv, as Middleware does; use it to call
// a tool function outside an HTTP handler, or in a test.
func NewContext(ctx context.Context, inv Invocation) context.Context {
	return context.WithValue(ctx, invocationKey{}, inv)
}

// FromContext returns the invocation ctx carries, if any.
func FromContext(ctx context.Context) (Invocation, bool) {
	inv, ok := ctx.Value(invocationKey{}).(Invocation)
	return inv, ok
}

// WorkloadToken returns the workload access token of ctx's invocation, or "".
func WorkloadToken(ctx context.Context) string { inv, _ := FromContext(ctx); return inv.WorkloadToken }

// SessionID returns the runtime session id of ctx's invocation, or "".
func SessionID(ctx context.Context) string { inv, _ := FromContext(ctx); return inv.SessionID }

// RequestID returns the request id of ctx's invocation, or "".
func RequestID(ctx context.Context) string { inv, _ := FromContext(ctx); return inv.RequestID }

// UserID returns the user id the runtime named, or "".
func UserID(ctx context.Context) string { inv, _ := FromContext(ctx); return inv.UserID }

// CallbackURL returns the OAuth2 callback URL of ctx's invocation, or "".
func CallbackURL(ctx context.Context) string { inv, _ := FromContext(ctx); return inv.CallbackURL }

// RequestHeaders returns the allow-listed request headers of ctx's
// invocation (never nil).
func RequestHeaders(ctx context.Context) http.Header {
	inv, _ := FromContext(ctx)
	if inv.Headers == nil {
		return http.Header{}
	}
	return inv.Headers
}

// Middleware reads the runtime's headers into the request's context, where
// the accessors above and the credential functions of this package find
// them. It rejects nothing: an agent called without a workload token gets
// an error only when it asks for a credential.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), ReadInvocation(r.Header))))
	})
}

// ReadInvocation reads an invocation from request headers.
func ReadInvocation(h http.Header) Invocation {
	inv := Invocation{
		WorkloadToken: h.Get(HeaderWorkloadToken),
		SessionID:     h.Get(HeaderSessionID),
		RequestID:     h.Get(HeaderRequestID),
		UserID:        h.Get(HeaderUserID),
		CallbackURL:   h.Get(HeaderCallbackURL),
		Headers:       http.Header{},
	}
	if inv.WorkloadToken == "" {
		inv.WorkloadToken = h.Get(HeaderWorkloadTokenLegacy)
	}
	if inv.RequestID == "" {
		inv.RequestID = newUUID()
	}
	for name, values := range h {
		if strings.EqualFold(name, "Authorization") || len(name) > len(HeaderCustomPrefix) && strings.EqualFold(name[:len(HeaderCustomPrefix)], HeaderCustomPrefix) {
			inv.Headers[name] = append([]string(nil), values...)
		}
	}
	return inv
}

// newUUID returns a random (version 4) UUID, RFC 9562 §5.4.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
