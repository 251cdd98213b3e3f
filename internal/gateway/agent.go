package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/smithy-go"

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/wat"
)

// AgentCore Runtime's headers (InvokeAgentRuntime, and what the Runtime
// sends to the agent's container).
const (
	HeaderWAT         = "X-Amz-Bedrock-AgentCore-Identity-WAT"
	HeaderWATLegacy   = "WorkloadAccessToken"
	HeaderSessionID   = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
	HeaderRequestID   = "X-Amzn-Bedrock-AgentCore-Runtime-Request-Id"
	HeaderCallbackURL = "OAuth2CallbackUrl"
	// HeaderIdentityChain is behalf's: the identity chain of a call from
	// another agent, the workloads before the callee separated by commas,
	// outermost first. Only the gateway sets it; a caller's is dropped.
	HeaderIdentityChain = "X-Behalf-Identity-Chain"
	customPrefix        = "X-Amzn-Bedrock-Agentcore-Runtime-Custom-" // canonical form
	maxSessionID        = 256
)

// agentPassThrough are the caller's headers an agent receives, besides the
// custom ones; the gateway sets the rest.
var agentPassThrough = []string{"Authorization", "Content-Type", "Accept", "Traceparent", "Tracestate", "Baggage",
	"Mcp-Session-Id", "Mcp-Protocol-Version"}

// serveAgent authenticates the caller, mints the workload access token
// for the route's workload and the caller's user, and forwards. The
// caller is, in this order: a user with a bearer JWT (any workload access
// token it also sends is ignored, and replaced); another agent presenting
// its workload access token in X-Amz-Bedrock-AgentCore-Identity-WAT (or
// WorkloadAccessToken), an identity chain, whatever else its
// Authorization holds (InvokeAgentRuntime signs with SigV4); a SigV4
// caller naming a user.
func (g *Gateway) serveAgent(w http.ResponseWriter, r *http.Request, s *callState) {
	if len(r.Header.Values("Authorization")) > 1 {
		// A singleton field (RFC 9110 §11.6.2): the agent receives the
		// caller's, so it must be the one checked.
		writeError(w, http.StatusBadRequest, "ValidationException", "a request holds at most one Authorization header")
		return
	}
	authorization := r.Header.Get("Authorization")
	jwt, isBearer := bearer(authorization)
	var ok bool
	switch callerToken := workloadToken(r.Header); {
	case isBearer:
		ok = g.jwtCaller(w, r, s, jwt)
	case callerToken != "":
		ok = g.chainedCaller(w, r, s, callerToken)
	case strings.HasPrefix(authorization, sigV4Scheme+" "):
		ok = g.sigV4Caller(w, r, s)
	default:
		challenge(w, "", "a user's bearer JWT is required")
	}
	if !ok {
		return
	}
	s.sessionID = r.Header.Get(HeaderSessionID)
	if s.sessionID == "" || len(s.sessionID) > maxSessionID {
		s.sessionID = newSessionID()
	}
	r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, s.route.MaxBodyBytes), s: s, done: bodyDeadline(w, r, s.route.Timeout)}
	g.forward(w, r, s)
}

// jwtCaller mints the token for the user of a bearer JWT
// (GetWorkloadAccessTokenForJWT). It answers the caller itself and returns
// false on any refusal.
func (g *Gateway) jwtCaller(w http.ResponseWriter, r *http.Request, s *callState, jwt string) bool {
	out, err := g.data.GetWorkloadAccessTokenForJWT(r.Context(), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
		WorkloadName: aws.String(s.route.Workload), UserToken: aws.String(jwt)})
	if err != nil {
		g.dataPlaneError(w, r, err)
		return false
	}
	s.wat, s.user = aws.ToString(out.WorkloadAccessToken), jwtSubject(jwt)
	return true
}

// workloadToken is the workload access token a request presents, under
// either of its names.
func workloadToken(h http.Header) string {
	if t := h.Get(HeaderWAT); t != "" {
		return t
	}
	return h.Get(HeaderWATLegacy)
}

// dataPlaneError answers a failed data-plane call: the caller's invalid
// token is a 401 challenge (RFC 6750 §3.1), a refusal a 403, and anything
// else a 502 that says no more.
func (g *Gateway) dataPlaneError(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "AccessDeniedException", "ValidationException", "UnauthorizedException":
			challenge(w, "invalid_token", "the token was not accepted: "+apiErr.ErrorMessage())
			return
		case "ThrottlingException":
			writeError(w, http.StatusTooManyRequests, "ThrottlingException", apiErr.ErrorMessage())
			return
		}
	}
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "data-plane call failed", logging.Err(err))
	writeError(w, http.StatusBadGateway, "BadGatewayException", "behalf could not be reached")
}

// challenge answers 401 with an RFC 6750 §3 bearer challenge.
func challenge(w http.ResponseWriter, code, message string) {
	if code == "" {
		w.Header().Set("WWW-Authenticate", `Bearer`)
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer error="`+code+`"`)
	}
	writeError(w, http.StatusUnauthorized, "UnauthorizedException", message)
}

func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// jwtSubject names the user of a JWT behalf has just accepted as audit
// records do (wat.UserFromJWT).
func jwtSubject(jwt string) string {
	var claims struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	if !unverifiedClaims(jwt, &claims) {
		return ""
	}
	return wat.UserFromJWT(claims.Iss, claims.Sub)
}

// agentHeaders are the headers an agent receives: the allow-listed ones
// of the caller's, and the Runtime's, which only the gateway sets.
func agentHeaders(in http.Header, s *callState, returnURL string) http.Header {
	out := http.Header{}
	for _, k := range agentPassThrough {
		if v := in.Values(k); len(v) > 0 {
			out[k] = v
		}
	}
	for k, v := range in {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), customPrefix) {
			out[http.CanonicalHeaderKey(k)] = v
		}
	}
	out.Set(HeaderWAT, s.wat)
	out.Set(HeaderWATLegacy, s.wat)
	out.Set(HeaderSessionID, s.sessionID)
	out.Set(HeaderRequestID, newSessionID())
	if len(s.actors) > 0 {
		out.Set(HeaderIdentityChain, strings.Join(s.actors, ","))
	}
	if returnURL != "" {
		out.Set(HeaderCallbackURL, returnURL)
	}
	return out
}

// limitedBody notes that a streamed request body went over the route's
// limit, or was not sent within the route's timeout, which the upstream
// transport reports only as a failed call; done lifts the read deadline
// once the body has been read to its end.
type limitedBody struct {
	io.ReadCloser
	s    *callState
	done func()
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.done()
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		b.s.tooLarge.Store(true)
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.s.tooSlow.Store(true)
	}
	return n, err
}

// bodyDeadline bounds the reading of r's body by the route's timeout, as
// the listeners set no ReadTimeout (which would bound every route alike):
// a caller sending a little of its body, then nothing (slowloris), would
// hold the call, and the upstream call's own deadline, for ever. The
// returned function lifts it once the whole body is read, before the
// server's read that watches for the caller leaving would time out on it
// and end the call. A body that failed keeps it: the server reads what is
// left of it before answering, and would wait for ever too.
func bodyDeadline(w http.ResponseWriter, r *http.Request, timeout time.Duration) func() {
	if r.Body == nil || r.Body == http.NoBody {
		return func() {}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(timeout)) // a writer that is no connection's has no deadline to set
	var once sync.Once
	return func() { once.Do(func() { _ = rc.SetReadDeadline(time.Time{}) }) }
}

// unverifiedClaims decodes into v the payload of a JWS compact
// serialization (RFC 7515 §7.1), without checking its signature: the
// gateway only reads tokens that behalf verifies, or issued.
func unverifiedClaims(token string, v any) bool {
	_, rest, ok := strings.Cut(token, ".")
	payload, signature, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(signature, ".") {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	return err == nil && json.Unmarshal(raw, v) == nil
}
