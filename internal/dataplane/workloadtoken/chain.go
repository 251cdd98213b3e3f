package workloadtoken

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
)

// maxAllowedCallers bounds a route's callers, as behalf gateway's
// configuration does.
const maxAllowedCallers = 64

// maxCallerToken bounds the caller's token: a workload access token is a
// few hundred bytes, or a few kilobytes when it carries a user's JWT (at
// most 128 KiB, userToken's bound).
const maxCallerToken = 192 << 10

type chainInput behalfapi.GetWorkloadAccessTokenForChainInput

func (in *chainInput) Validate(c *wire.Checker) {
	c.String("workloadName", in.WorkloadName, 3, 255, access.WorkloadNamePattern)
	c.String("callerToken", in.CallerToken, 1, maxCallerToken, nil)
	c.Strings("allowedCallers", in.AllowedCallers, 1, maxAllowedCallers, 3, 255, access.WorkloadNamePattern)
}

// getWorkloadAccessTokenForChain serves GetWorkloadAccessTokenForChain,
// behalf's identity chains: an agent calls another through behalf gateway
// with its own workload access token, and the gateway's principal gets
// the callee's token for the same user, naming the chain. The caller's
// token is checked as any presented token is (access.Checker.Check); the
// principal must be granted both workloads; the caller's workload must be
// one the route allows. The callee's token keeps the caller's user (and
// the user's JWT, for on-behalf-of exchanges), names the caller's chain
// followed by the caller, and expires no later than the caller's token.
// The record names the callee, the user and that chain, refused or not.
func (s *Service) getWorkloadAccessTokenForChain(ctx context.Context, c *wire.Call, in *chainInput) (*behalfapi.GetWorkloadAccessTokenForChainOutput, error) {
	if err := c.ActFor(in.WorkloadName); err != nil {
		return nil, err
	}
	caller, err := s.access.Open(ctx, in.CallerToken)
	if err != nil {
		return nil, err
	}
	actors := append(slices.Clone(caller.Actors), caller.Workload)
	c.Audit.User, c.Audit.Actors = caller.User, actors
	if _, err := s.access.Check(ctx, c.Caller, caller, c.MayActFor); err != nil {
		return nil, err
	}
	if !slices.Contains(in.AllowedCallers, caller.Workload) {
		return nil, wire.AccessDenied("workload identity %s may not call %s: it is not among the route's callers", caller.Workload, in.WorkloadName)
	}
	w, err := s.access.Workload(ctx, in.WorkloadName)
	if err != nil {
		return nil, wire.StorageError(err, "workload identity", in.WorkloadName)
	}
	token, err := s.mint(ctx, c, telemetry.WATChain, w, wat.Claims{User: caller.User, UserToken: caller.UserToken, Actors: actors}, time.Unix(caller.Expiry, 0))
	if errors.Is(err, wat.ErrChainTooLong) {
		return nil, wire.AccessDenied("the identity chain would name %d workloads before %s; at most %d may call through one another", len(actors), in.WorkloadName, wat.MaxActors)
	}
	if err != nil {
		return nil, err
	}
	return &behalfapi.GetWorkloadAccessTokenForChainOutput{WorkloadAccessToken: token.Token, Actors: actors, User: caller.User}, nil
}
