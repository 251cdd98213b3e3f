package workloadtoken

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/sigv4"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
)

// PayloadHashAuthenticator authenticates the signer of a request another
// party received, its body known by its SHA-256 (lowercase hex): the
// API's own authenticator, so that a signed caller is verified, limited
// and named exactly as the API's callers are.
type PayloadHashAuthenticator interface {
	AuthenticatePayloadHash(ctx context.Context, r *http.Request, payloadSHA256 string) (wire.Caller, error)
}

// nameUsers is the operation whose permission lets a principal name the
// user it acts for: a signed caller must hold it, as a caller of
// GetWorkloadAccessTokenForUserId would.
const nameUsers = "GetWorkloadAccessTokenForUserId"

// Bounds of a signed request: its target, and its headers as both
// listeners bound a request's (http.Server.MaxHeaderBytes).
const (
	maxRequestTarget = 8 << 10
	maxHeaderBytes   = 64 << 10
	maxHeaderValues  = 128
)

var (
	methodPattern     = wire.Pattern(`[A-Z]+`)
	headerNamePattern = wire.Pattern(`[A-Za-z0-9._-]+`)
	sha256Pattern     = wire.Pattern(`[0-9a-f]{64}`)
)

type signedCallerInput behalfapi.GetWorkloadAccessTokenForSignedCallerInput

func (in *signedCallerInput) Validate(c *wire.Checker) {
	c.String("workloadName", in.WorkloadName, 3, 255, access.WorkloadNamePattern)
	c.String("userId", in.UserID, 1, 128, nil)
	r := &in.SignedRequest
	c.String("signedRequest.method", r.Method, 1, 16, methodPattern)
	if !strings.HasPrefix(r.Path, "/") {
		c.Failf("signedRequest.path", "must start with '/'")
	} else {
		checkTarget(c, "signedRequest.path", r.Path, "?#")
	}
	checkTarget(c, "signedRequest.rawQuery", r.RawQuery, "#")
	c.String("signedRequest.payloadSha256", r.PayloadSHA256, 64, 64, sha256Pattern)
	checkHeaders(c, r.Headers)
}

// checkTarget checks a part of the request target as sent (RFC 9112
// §3.2, origin form): visible ASCII, without the delimiters that end it.
func checkTarget(c *wire.Checker, member, v, delimiters string) {
	switch {
	case len(v) > maxRequestTarget:
		c.Failf(member, "must be at most %d characters long", maxRequestTarget)
	case strings.ContainsAny(v, delimiters) || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r > '~' }):
		c.Failf(member, "must be visible ASCII characters as sent, without %q", delimiters)
	}
}

// checkHeaders bounds the signed request's headers: at most the headers
// a signature may cover and Authorization, each named once, their values
// what a request line may carry.
func checkHeaders(c *wire.Checker, headers map[string][]string) {
	const member = "signedRequest.headers"
	if len(headers) > sigv4.MaxSignedHeaders+1 {
		c.Failf(member, "must have at most %d entries: the headers the signature covers and Authorization", sigv4.MaxSignedHeaders+1)
		return
	}
	seen := map[string]bool{}
	size, values := 0, 0
	for _, k := range slices.Sorted(maps.Keys(headers)) {
		key := http.CanonicalHeaderKey(k)
		switch {
		case len(k) > 128 || !headerNamePattern.MatchString(k):
			c.Failf(member, "%.128q is not a header name", k)
		case seen[key]:
			c.Failf(member, "name %s more than once", key)
		case len(headers[k]) == 0:
			c.Failf(member+"["+key+"]", "must have at least one value")
		}
		seen[key] = true
		values += len(headers[k])
		size += len(k)
		valid := true
		for _, v := range headers[k] {
			size += len(v)
			valid = valid && httpguts.ValidHeaderFieldValue(v)
		}
		if !valid {
			c.Failf(member+"["+key+"]", "must hold no control characters")
		}
	}
	switch {
	case !seen["Authorization"]:
		c.Failf(member, "must hold Authorization")
	case values > maxHeaderValues:
		c.Failf(member, "must have at most %d values", maxHeaderValues)
	case size > maxHeaderBytes:
		c.Failf(member, "must have at most %d bytes of names and values", maxHeaderBytes)
	}
}

// getWorkloadAccessTokenForSignedCaller serves
// GetWorkloadAccessTokenForSignedCaller, with which behalf gateway serves
// callers that sign with SigV4 and name a user, as AgentCore Runtime's
// InvokeAgentRuntime accepts IAM callers: the gateway passes the caller's
// signed request on, and behalf verifies it as it verifies its own
// callers. The calling principal (the gateway's) must be granted the
// workload; the signing caller must be allowed to name users
// (GetWorkloadAccessTokenForUserId) and granted the workload too, and its
// signature must cover the user it names. The token is minted for that
// user as GetWorkloadAccessTokenForUserId mints it, the calling principal
// its minting principal. The record names the workload, the user and the
// signing caller (principal/<access key id>).
func (s *Service) getWorkloadAccessTokenForSignedCaller(ctx context.Context, c *wire.Call, in *signedCallerInput) (*behalfapi.GetWorkloadAccessTokenForSignedCallerOutput, error) {
	w, err := s.workloadForMinting(ctx, c, in.WorkloadName)
	if err != nil {
		return nil, err
	}
	caller, err := s.signedCaller(ctx, c, in)
	if err != nil {
		return nil, err
	}
	user := wat.UserFromID(in.UserID)
	c.Audit.User = user
	if err := (authz.Authorizer{}).Authorize(nameUsers, caller); err != nil {
		return nil, err
	}
	if err := authz.CheckActsFor(caller, in.WorkloadName); err != nil {
		return nil, err
	}
	token, err := s.mint(ctx, c, telemetry.WATUserID, w, wat.Claims{User: user}, time.Time{})
	if err != nil {
		return nil, err
	}
	return &behalfapi.GetWorkloadAccessTokenForSignedCallerOutput{WorkloadAccessToken: token.Token, User: user}, nil
}

// signedCaller authenticates the signer of the caller's request, naming
// it in the record, and checks that its signature covers the user named.
func (s *Service) signedCaller(ctx context.Context, c *wire.Call, in *signedCallerInput) (wire.Caller, error) {
	if s.signers == nil {
		return wire.Caller{}, wire.Internal(errors.New("no authenticator for signed callers"))
	}
	r, signed, err := signedRequest(ctx, &in.SignedRequest)
	if err != nil {
		return wire.Caller{}, err
	}
	caller, err := s.signers.AuthenticatePayloadHash(ctx, r, in.SignedRequest.PayloadSHA256)
	if err != nil {
		return wire.Caller{}, err
	}
	c.Audit.Resource = "principal/" + caller.AccessKeyID // as the control plane's records name principals
	named := r.Header[http.CanonicalHeaderKey(behalfapi.RuntimeUserIDHeader)]
	if !slices.Contains(signed, strings.ToLower(behalfapi.RuntimeUserIDHeader)) || len(named) != 1 || named[0] != in.UserID {
		return wire.Caller{}, wire.AccessDenied("the caller's signature must cover the user it names, in %s", behalfapi.RuntimeUserIDHeader)
	}
	return caller, nil
}

// signedRequest rebuilds the caller's request as the gateway received it,
// and lists the headers its signature covers. A header it does not cover,
// but Authorization, has no business here.
func signedRequest(ctx context.Context, in *behalfapi.SignedRequest) (*http.Request, []string, error) {
	target := in.Path
	if in.RawQuery != "" {
		target += "?" + in.RawQuery
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, nil, invalid("signedRequest.path", "is not a request target")
	}
	h := make(http.Header, len(in.Headers))
	for k, vs := range in.Headers {
		h[http.CanonicalHeaderKey(k)] = vs
	}
	// net/http's server keeps Host in r.Host, where Verify reads it.
	host := h.Get("Host")
	h.Del("Host")
	r := (&http.Request{Method: in.Method, URL: u, RequestURI: target, Host: host, Header: h, Body: http.NoBody,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(ctx)
	signed, err := sigv4.SignedHeaders(h.Get("Authorization"))
	if err != nil {
		return r, nil, nil // Verify refuses it with the error the API gives
	}
	for k := range h {
		if k != "Authorization" && !slices.Contains(signed, strings.ToLower(k)) {
			return nil, nil, invalid("signedRequest.headers", "holds "+k+", which the signature does not cover")
		}
	}
	return r, signed, nil
}

// invalid is the ValidationException of one member.
func invalid(member, message string) error {
	var c wire.Checker
	c.Failf(member, "%s", message)
	return c.Err()
}
