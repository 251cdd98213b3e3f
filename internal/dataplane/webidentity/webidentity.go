// Package webidentity serves GetWorkloadJWT, behalf's analogue of AWS STS
// GetWebIdentityToken: a short-lived JWT, signed by behalf's own workload
// identity issuer (package workloadjwt), naming the workload identity of
// the caller's workload access token, for the relying parties it names.
package webidentity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/wire"
	"github.com/behalf-dev/behalf/internal/workloadjwt"
)

// Service vends workload JWTs.
type Service struct {
	access *access.Checker
	issuer *workloadjwt.Issuer
}

// New returns the service.
func New(a *access.Checker, issuer *workloadjwt.Issuer) *Service {
	return &Service{access: a, issuer: issuer}
}

// Operations lists GetWorkloadJWT; every call is audited.
func (s *Service) Operations() []wire.Operation {
	return wire.Audited(wire.JSON("GetWorkloadJWT", "/behalf/GetWorkloadJWT", http.StatusOK, s.getWorkloadJWT))
}

// ResourcePrefix names a JWT by its jti in the call's record.
const ResourcePrefix = "workload-jwt/"

// MaxAudiences bounds the audiences of one JWT, as GetWebIdentityToken's
// Audience list is bounded.
const MaxAudiences = 10

// audiencePattern is a StringOrURI (RFC 7519 §2) of visible ASCII: no
// spaces, so that the record lists audiences unambiguously.
var audiencePattern = wire.Pattern(`[\x21-\x7E]+`)

type input behalfapi.GetWorkloadJWTInput

func (in *input) Validate(c *wire.Checker) {
	c.String("workloadIdentityToken", in.WorkloadIdentityToken, 1, 131072, nil)
	c.Strings("audience", in.Audience, 1, MaxAudiences, 1, 1024, audiencePattern)
	for i, a := range in.Audience {
		if slices.Contains(in.Audience[:i], a) {
			c.Failf(fmt.Sprintf("audience[%d]", i), "names an audience already named")
		}
	}
	c.Range("durationSeconds", in.DurationSeconds, int(workloadjwt.MinLifetime/time.Second), int(workloadjwt.MaxLifetime/time.Second))
}

// getWorkloadJWT checks the workload access token as every vend does (the
// caller may act for its workload, its minter still may, the workload
// still exists) and signs a JWT for that workload expiring no later than
// the token. The record names the JWT's jti and audiences, never the JWT.
func (s *Service) getWorkloadJWT(ctx context.Context, c *wire.Call, in *input) (*behalfapi.GetWorkloadJWTOutput, error) {
	c.Audit.Resource = ResourcePrefix + " " + strings.Join(in.Audience, " ")
	claims, err := s.access.Open(ctx, in.WorkloadIdentityToken)
	if err != nil {
		return nil, err
	}
	c.Audit.User, c.Audit.Actors = claims.User, claims.Actors
	if _, err := s.access.Check(ctx, c.Caller, claims, c.ActFor); err != nil {
		return nil, err
	}
	lifetime := workloadjwt.DefaultLifetime
	if in.DurationSeconds != nil {
		lifetime = time.Duration(*in.DurationSeconds) * time.Second
	}
	tok, err := s.issuer.Sign(claims.Workload, in.Audience, lifetime, time.Unix(claims.Expiry, 0))
	switch {
	case errors.Is(err, workloadjwt.ErrExpired):
		return nil, wire.Unauthorized("the workload access token expires now; get a fresh one")
	case err != nil:
		return nil, fmt.Errorf("sign a workload JWT: %w", err)
	}
	c.Audit.Resource = ResourcePrefix + tok.ID + " " + strings.Join(in.Audience, " ")
	return &behalfapi.GetWorkloadJWTOutput{JWT: tok.JWT, ExpiresAt: behalfapi.Time(tok.Expiry)}, nil
}
