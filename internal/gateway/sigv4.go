package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/wire"
)

const (
	sigV4Scheme  = "AWS4-HMAC-SHA256"
	headerUserID = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"
	// nameUsers is the operation a SigV4 caller must be allowed to call
	// to name a user: the gateway calls it on the caller's behalf.
	nameUsers = "GetWorkloadAccessTokenForUserId"
)

// sigV4Caller authenticates a caller that signed with SigV4 and names the
// user in X-Amzn-Bedrock-AgentCore-Runtime-User-Id, as AgentCore Runtime
// accepts IAM callers: it must be a principal allowed to act for the
// route's workload and to name users (GetWorkloadAccessTokenForUserId).
// The gateway then mints the token for that user. The body is read (the
// signature covers it) and the caller's Authorization is not forwarded.
// It answers the caller itself and returns false on any refusal.
func (g *Gateway) sigV4Caller(w http.ResponseWriter, r *http.Request, s *callState) bool {
	if g.sigV4 == nil {
		writeError(w, http.StatusUnauthorized, "UnauthorizedException",
			"callers signing with SigV4 need the gateway mounted in behalf serve; a separate gateway accepts a user's bearer JWT")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.route.MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "ValidationException", "the request body could not be read within this route's limit")
		return false
	}
	signed := s.signed
	if signed == nil {
		signed = r
	}
	caller, err := g.sigV4.Authenticate(r.Context(), signed, body)
	if err == nil {
		err = authz.Authorizer{}.Authorize(nameUsers, caller)
	}
	if err == nil {
		err = authz.CheckActsFor(caller, s.route.Workload)
	}
	if err != nil {
		e := wire.AsError(err)
		if e.Hidden() || e.Status >= http.StatusInternalServerError {
			writeError(w, http.StatusBadGateway, "BadGatewayException", "the caller could not be authenticated")
			return false
		}
		writeError(w, e.Status, e.Type, e.Message)
		return false
	}
	user := r.Header.Get(headerUserID)
	if user == "" {
		writeError(w, http.StatusBadRequest, "ValidationException", "a SigV4 caller must name the user in "+headerUserID)
		return false
	}
	out, err := g.data.GetWorkloadAccessTokenForUserId(r.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String(s.route.Workload), UserId: aws.String(user)})
	if err != nil {
		var denied *deniedError
		if errors.As(refusal(err), &denied) {
			writeError(w, denied.status, denied.errType, denied.message)
		} else {
			g.dataPlaneError(w, r, err)
		}
		return false
	}
	s.wat, s.user = aws.ToString(out.WorkloadAccessToken), "id:"+user
	r.Header.Del("Authorization")
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return true
}
