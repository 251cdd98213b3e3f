package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/sigv4"
)

const sigV4Scheme = "AWS4-HMAC-SHA256"

// sigV4Caller serves a caller that signed with SigV4 and names the user
// in X-Amzn-Bedrock-AgentCore-Runtime-User-Id, as AgentCore Runtime
// accepts IAM callers. The gateway holds no principal's secret, so it
// cannot verify the signature: it reads the body (the signature covers
// it) within the route's limit and passes the signed request on, the body
// by its SHA-256, to behalf (GetWorkloadAccessTokenForSignedCaller), which
// verifies it as it verifies its own callers, checks that the signer may
// name users and act for the route's workload, and mints the token for
// that user. The caller's Authorization is not forwarded. It answers the
// caller itself and returns false on any refusal.
func (g *Gateway) sigV4Caller(w http.ResponseWriter, r *http.Request, s *callState) bool {
	user := r.Header.Get(behalfapi.RuntimeUserIDHeader)
	if user == "" {
		writeError(w, http.StatusBadRequest, "ValidationException", "a SigV4 caller must name the user in "+behalfapi.RuntimeUserIDHeader)
		return false
	}
	lift := bodyDeadline(w, r, s.route.Timeout)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.route.MaxBodyBytes))
	if err != nil {
		bodyRefused(w, err)
		return false
	}
	lift()
	signed := s.signed
	if signed == nil {
		signed = r
	}
	sum := sha256.Sum256(body)
	var out behalfapi.GetWorkloadAccessTokenForSignedCallerOutput
	err = g.callExtension(r.Context(), "GetWorkloadAccessTokenForSignedCaller", behalfapi.GetWorkloadAccessTokenForSignedCallerInput{
		WorkloadName: s.route.Workload, UserID: user, SignedRequest: signedRequest(signed, hex.EncodeToString(sum[:]))}, &out)
	if err != nil {
		g.signedCallerRefused(w, r, s.route, err)
		return false
	}
	s.wat, s.user = out.WorkloadAccessToken, out.User
	r.Header.Del("Authorization")
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return true
}

// signedRequest is r as the caller signed it: its target as sent,
// Authorization and the headers its SignedHeaders names (Host among
// them), and its body's SHA-256. An Authorization behalf will refuse goes
// alone, for behalf to say why.
func signedRequest(r *http.Request, payloadSHA256 string) behalfapi.SignedRequest {
	path, query := r.URL.EscapedPath(), r.URL.RawQuery
	if strings.HasPrefix(r.RequestURI, "/") {
		path, query, _ = strings.Cut(r.RequestURI, "?")
	}
	headers := map[string][]string{"Authorization": r.Header.Values("Authorization")}
	names, _ := sigv4.SignedHeaders(r.Header.Get("Authorization"))
	for _, name := range names {
		if name == "host" {
			headers["Host"] = []string{r.Host} // where net/http's server keeps it
		} else if vs := r.Header.Values(name); len(vs) > 0 {
			headers[http.CanonicalHeaderKey(name)] = vs
		}
	}
	return behalfapi.SignedRequest{Method: r.Method, Path: path, RawQuery: query, Headers: headers, PayloadSHA256: payloadSHA256}
}

// signedCallerRefused answers a signed caller behalf refused with
// behalf's status, type and message: a signature that does not verify,
// a signer not allowed to name users or not granted the workload, a
// throttled one. Anything else is a 502 that says no more.
func (g *Gateway) signedCallerRefused(w http.ResponseWriter, r *http.Request, rt *route, err error) {
	var refused *extensionError
	if !errors.As(err, &refused) || refused.status >= http.StatusInternalServerError || refused.errType == "" {
		g.log.LogAttrs(r.Context(), slog.LevelWarn, "signed caller not authenticated", slog.String(logging.KeyRoute, rt.Name), logging.Err(err))
		writeError(w, http.StatusBadGateway, "BadGatewayException", "the caller could not be authenticated")
		return
	}
	writeError(w, refused.status, refused.errType, refused.message)
}
