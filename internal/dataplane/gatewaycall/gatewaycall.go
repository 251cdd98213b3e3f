// Package gatewaycall serves RecordGatewayCall: the audit record of one
// call `behalf gateway` served, reported by the gateway's principal. The
// router writes the record as for any audited operation; the call's own
// outcome is the outcome the gateway reports.
package gatewaycall

import (
	"context"
	"net/http"
	"strconv"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Service records gateway calls.
type Service struct {
	tokens *wat.Issuer
}

// New returns the service; tokens opens the workload access tokens tool
// callers presented.
func New(tokens *wat.Issuer) *Service { return &Service{tokens: tokens} }

// Operations lists RecordGatewayCall; every call is audited.
func (s *Service) Operations() []wire.Operation {
	return wire.Audited(wire.JSON("RecordGatewayCall", "/behalf/RecordGatewayCall", http.StatusOK, s.record))
}

// ResourcePrefix names a gateway route in the record's resource.
const ResourcePrefix = "gateway-route/"

var (
	routePattern     = wire.Pattern(`[A-Za-z0-9][A-Za-z0-9_-]*`)
	errorTypePattern = wire.Pattern(`[A-Za-z0-9]+`)
	// An mcp route's rule: a JSON-RPC method, tools/call:<tool name>, or
	// "scopes".
	rulePattern = wire.Pattern(`[A-Za-z0-9_./-]+(:[A-Za-z0-9_.-]+)?`)
	// RFC 6749 §3.3 scope-token.
	scopePattern = wire.Pattern(`[\x21\x23-\x5B\x5D-\x7E]+`)
)

type input behalfapi.RecordGatewayCallInput

func (in *input) Validate(c *wire.Checker) {
	c.String("route", in.Route, 1, 64, routePattern)
	c.Enum("kind", in.Kind, true, "agent", "tool", "mcp")
	if in.Workload != "" {
		c.String("workload", in.Workload, 1, 255, access.WorkloadNamePattern)
	}
	c.String("user", in.User, 0, 1024, nil)
	if in.Status < 100 || in.Status > 599 {
		c.Failf("status", "must be an HTTP status")
	}
	if in.UpstreamStatus != 0 && (in.UpstreamStatus < 100 || in.UpstreamStatus > 599) {
		c.Failf("upstreamStatus", "must be an HTTP status or absent")
	}
	if in.ErrorType != "" {
		c.String("errorType", in.ErrorType, 1, 128, errorTypePattern)
	}
	c.Strings("actors", in.Actors, 0, wat.MaxActors, 3, 255, access.WorkloadNamePattern)
	if len(in.Actors) > 0 && in.Workload == "" {
		c.Failf("actors", "name the workloads before the route's workload, which is required with them")
	}
	in.validateCallerToken(c)
	in.validateRule(c)
}

// validateCallerToken checks the workload access token that names a tool
// or mcp route's caller, which the call's other names must leave to it.
func (in *input) validateCallerToken(c *wire.Checker) {
	if in.CallerToken == "" {
		return
	}
	c.String("callerToken", in.CallerToken, 1, 131072, nil)
	if in.Kind != "tool" && in.Kind != "mcp" || in.Workload != "" || in.User != "" || len(in.Actors) > 0 {
		c.Failf("callerToken", "is only for a tool or mcp route's call, whose workload, user and chain behalf reads from it")
	}
}

// validateRule checks an mcp route's refusing rule and the scopes the
// call needed, which come together.
func (in *input) validateRule(c *wire.Checker) {
	if in.Rule != "" {
		c.String("rule", in.Rule, 1, 140, rulePattern)
	}
	c.Strings("scopes", in.Scopes, 0, 128, 1, 255, scopePattern)
	if (in.Rule == "") != (len(in.Scopes) == 0) {
		c.Failf("rule", "a refusing rule and the scopes the call needed come together")
	}
}

// record names the route, workload, user and identity chain in the
// call's record (on a tool route, those of the caller's token) and reports the gateway call's outcome: a failure carries
// the typed error the gateway answered with, or Upstream<status> for an
// upstream's own error passed through. An error type with a success status
// is a response that failed after it started (a cut stream): a failure too.
func (s *Service) record(ctx context.Context, c *wire.Call, in *input) (*struct{}, error) {
	c.Audit.Resource, c.Audit.User, c.Audit.Actors, c.Audit.Scopes = ResourcePrefix+in.Route, in.User, in.Actors, in.Scopes
	if in.Rule != "" {
		c.Audit.Resource += "/" + in.Rule
	}
	if in.CallerToken != "" {
		// Naming the caller is not acting for it: the record is written
		// whoever the token names, and a token that does not open (the
		// call was refused for it) names no one.
		if claims, err := s.tokens.Open(ctx, in.CallerToken); err == nil {
			c.Audit.Workload, c.Audit.User, c.Audit.Actors = claims.Workload, claims.User, claims.Actors
		}
	}
	if in.Workload != "" {
		if err := c.ActFor(in.Workload); err != nil {
			return nil, err
		}
	}
	if in.Status >= http.StatusBadRequest || in.ErrorType != "" {
		c.Audit.Outcome, c.Audit.ErrorType = "failure", in.ErrorType
		if c.Audit.ErrorType == "" && in.UpstreamStatus != 0 {
			c.Audit.ErrorType = "Upstream" + strconv.Itoa(in.UpstreamStatus)
		}
		if c.Audit.ErrorType == "" {
			c.Audit.ErrorType = "Status" + strconv.Itoa(in.Status)
		}
	}
	return &struct{}{}, nil
}
