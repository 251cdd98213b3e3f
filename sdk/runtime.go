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
	// HeaderIdentityChain is behalf gateway's, on a call from another
	// agent: the workloads the call came through, comma-separated,
	// outermost first. AgentCore Runtime does not send it.
	HeaderIdentityChain = "X-Behalf-Identity-Chain"
)

// maxActors bounds the identity chain an invocation names, as behalf
// bounds it.
const maxActors = 8

// Invocation is what the runtime told the agent about one request.
type Invocation struct {
	WorkloadToken string // the workload access token: this agent, acting for UserID
	SessionID     string
	RequestID     string // generated when the runtime sent none
	UserID        string
	CallbackURL   string // the default ResourceOauth2ReturnUrl for USER_FEDERATION
	// Actors is the identity chain of a call from another agent through
	// behalf gateway: the workload identities it came through before this
	// agent, outermost first (a user's agent A calling this one: [A]).
	// Nil for a call from a user. The workload token carries the same
	// chain, which is what behalf enforces and records; this copy is for
	// the agent's own decisions and logs, and to be trusted only when the
	// agent is reachable through the gateway alone, which drops a
	// caller's copy of the header.
	Actors []string
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

// Actors returns the identity chain of ctx's invocation (see
// Invocation.Actors), or nil for a call from a user.
func Actors(ctx context.Context) []string { inv, _ := FromContext(ctx); return inv.Actors }

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
	inv.Actors = readActors(h.Get(HeaderIdentityChain))
	for name, values := range h {
		if strings.EqualFold(name, "Authorization") || len(name) > len(HeaderCustomPrefix) && strings.EqualFold(name[:len(HeaderCustomPrefix)], HeaderCustomPrefix) {
			inv.Headers[name] = append([]string(nil), values...)
		}
	}
	return inv
}

// readActors splits an identity chain header; a malformed one (an empty
// name, more names than behalf allows) is no chain.
func readActors(v string) []string {
	if v == "" {
		return nil
	}
	actors := strings.Split(v, ",")
	for i, a := range actors {
		actors[i] = strings.TrimSpace(a)
		if actors[i] == "" {
			return nil
		}
	}
	if len(actors) > maxActors {
		return nil
	}
	return actors
}

// newUUID returns a random (version 4) UUID, RFC 9562 §5.4.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
