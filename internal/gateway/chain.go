package gateway

import (
	"errors"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// chainedCaller serves a call from another agent presenting its own
// workload access token (callerToken): an identity chain. The route must
// name its callers; behalf (GetWorkloadAccessTokenForChain) then checks
// the caller's token, that its workload is one of them, and mints the
// route workload's token for the same user, naming the chain, which the
// agent also receives in X-Behalf-Identity-Chain and the call's span and
// record carry. The caller's Authorization (an InvokeAgentRuntime
// caller's SigV4 signature) is neither checked nor forwarded: the token
// is the credential. It answers the caller itself and returns false on
// any refusal.
func (g *Gateway) chainedCaller(w http.ResponseWriter, r *http.Request, s *callState, callerToken string) bool {
	rt := s.route
	if len(rt.Callers) == 0 {
		writeError(w, http.StatusForbidden, "AccessDeniedException", "route "+rt.Name+" accepts no calls from other agents: it names no callers")
		return false
	}
	var out behalfapi.GetWorkloadAccessTokenForChainOutput
	err := g.callExtension(r.Context(), "GetWorkloadAccessTokenForChain", behalfapi.GetWorkloadAccessTokenForChainInput{
		WorkloadName: rt.Workload, CallerToken: callerToken, AllowedCallers: rt.Callers}, &out)
	if err != nil {
		g.chainRefused(w, r, rt, err)
		return false
	}
	s.wat, s.user, s.actors = out.WorkloadAccessToken, out.User, out.Actors
	trace.SpanFromContext(r.Context()).SetAttributes(telemetry.Actors.StringSlice(out.Actors))
	r.Header.Del("Authorization")
	return true
}

// chainRefused answers a chain behalf refused: a caller token it did not
// accept is a 401 challenge (RFC 6750 §3.1), a caller the route does not
// allow (or a principal not granted both workloads) a 403, any other
// refusal with its status and type, and anything else a 502 that says no
// more.
func (g *Gateway) chainRefused(w http.ResponseWriter, r *http.Request, rt *route, err error) {
	var refused *extensionError
	switch {
	case !errors.As(err, &refused) || refused.status >= http.StatusInternalServerError || refused.errType == "":
		g.log.LogAttrs(r.Context(), slog.LevelWarn, "identity chain not minted", slog.String(logging.KeyRoute, rt.Name), logging.Err(err))
		writeError(w, http.StatusBadGateway, "BadGatewayException", "behalf could not be reached")
	case refused.status == http.StatusUnauthorized, refused.errType == "ValidationException":
		challenge(w, "invalid_token", "the caller's workload access token was not accepted: "+refused.message)
	default:
		writeError(w, refused.status, refused.errType, refused.message)
	}
}
