// Package workloadtoken serves the operations that mint workload access
// tokens: GetWorkloadAccessToken (the agent acting alone),
// GetWorkloadAccessTokenForJWT (for a user vouched for by their identity
// provider's JWT), GetWorkloadAccessTokenForUserId (for a user the caller
// names), and behalf's GetWorkloadAccessTokenForChain (for the user of
// another agent's token, when that agent calls this one) and
// GetWorkloadAccessTokenForSignedCaller (for the user a caller signing
// with SigV4 names, when behalf gateway passes its request on).
package workloadtoken

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Service mints workload access tokens.
type Service struct {
	access  *access.Checker
	tokens  *wat.Issuer
	metrics *telemetry.Metrics
	signers PayloadHashAuthenticator
}

// New returns the service; metrics counts the tokens minted, by kind (nil
// counts nothing); signers authenticates the callers behalf gateway passes
// on (nil refuses them).
func New(a *access.Checker, tokens *wat.Issuer, metrics *telemetry.Metrics, signers PayloadHashAuthenticator) *Service {
	return &Service{access: a, tokens: tokens, metrics: metrics, signers: signers}
}

// Operations lists the minting operations; every call is audited.
func (s *Service) Operations() []wire.Operation {
	return wire.Audited(
		wire.JSON("GetWorkloadAccessToken", "/identities/GetWorkloadAccessToken", http.StatusOK, s.getWorkloadAccessToken),
		wire.JSON("GetWorkloadAccessTokenForJWT", "/identities/GetWorkloadAccessTokenForJWT", http.StatusOK, s.getWorkloadAccessTokenForJWT),
		wire.JSON("GetWorkloadAccessTokenForUserId", "/identities/GetWorkloadAccessTokenForUserId", http.StatusOK, s.getWorkloadAccessTokenForUserID),
		// behalf's extension: identity chains, for behalf gateway.
		wire.JSON("GetWorkloadAccessTokenForChain", "/behalf/GetWorkloadAccessTokenForChain", http.StatusOK, s.getWorkloadAccessTokenForChain),
		// behalf's extension: callers signing with SigV4, for behalf gateway.
		wire.JSON("GetWorkloadAccessTokenForSignedCaller", "/behalf/GetWorkloadAccessTokenForSignedCaller", http.StatusOK,
			s.getWorkloadAccessTokenForSignedCaller),
	)
}

// workloadForMinting loads the workload a token is being minted for and
// checks the caller may act for it.
func (s *Service) workloadForMinting(ctx context.Context, c *wire.Call, name string) (storage.WorkloadIdentity, error) {
	if err := c.ActFor(name); err != nil {
		return storage.WorkloadIdentity{}, err
	}
	w, err := s.access.Workload(ctx, name)
	return w, wire.StorageError(err, "workload identity", name)
}

type tokenOutput struct {
	Token string `json:"workloadAccessToken"`
}

// mint mints a token of kind (a telemetry.WAT constant) for w, binding
// the user, user token and actors of base, and the caller as the minting
// principal. The token expires no later than notAfter (zero: no bound
// but the TTL). Errors of wat.Mint other than ErrExpired are returned
// wrapped.
func (s *Service) mint(ctx context.Context, c *wire.Call, kind string, w storage.WorkloadIdentity, base wat.Claims, notAfter time.Time) (*tokenOutput, error) {
	c.Audit.User = base.User
	base.Workload, base.WorkloadVersion = w.Name, w.CreatedAt.UnixMicro()
	base.Principal, base.PrincipalVersion = c.Caller.AccessKeyID, c.Caller.CreatedAt.UnixMicro()
	token, _, err := s.tokens.Mint(base, notAfter)
	if errors.Is(err, wat.ErrExpired) {
		return nil, wire.Unauthorized("the token this one would be minted from expires now; get a fresh one")
	}
	if err != nil {
		return nil, fmt.Errorf("mint a workload access token: %w", err)
	}
	s.metrics.WATMinted(ctx, kind)
	return &tokenOutput{Token: token}, nil
}

type workloadInput struct {
	WorkloadName string `json:"workloadName"`
}

func (in *workloadInput) Validate(c *wire.Checker) {
	c.String("workloadName", in.WorkloadName, 3, 255, access.WorkloadNamePattern)
}

func (s *Service) getWorkloadAccessToken(ctx context.Context, c *wire.Call, in *workloadInput) (*tokenOutput, error) {
	w, err := s.workloadForMinting(ctx, c, in.WorkloadName)
	if err != nil {
		return nil, err
	}
	return s.mint(ctx, c, telemetry.WATWorkload, w, wat.Claims{}, time.Time{})
}

type forJWTInput struct {
	workloadInput
	UserToken string `json:"userToken"`
}

func (in *forJWTInput) Validate(c *wire.Checker) {
	in.workloadInput.Validate(c)
	c.String("userToken", in.UserToken, 1, 131072, nil)
	if in.UserToken != "" && len(in.UserToken) <= 131072 && !isCompactJWT(in.UserToken) {
		c.Failf("userToken", "must be a JWT (three base64url segments separated by dots)")
	}
}

func (s *Service) getWorkloadAccessTokenForJWT(ctx context.Context, c *wire.Call, in *forJWTInput) (*tokenOutput, error) {
	w, err := s.workloadForMinting(ctx, c, in.WorkloadName)
	if err != nil {
		return nil, err
	}
	id, err := s.access.VerifyUser(ctx, in.UserToken, w.AllowedAuthorizers)
	if err != nil {
		return nil, err
	}
	return s.mint(ctx, c, telemetry.WATJWT, w, wat.Claims{User: access.UserOf(id), UserToken: in.UserToken}, id.Expiry)
}

type forUserIDInput struct {
	workloadInput
	UserID string `json:"userId"`
}

func (in *forUserIDInput) Validate(c *wire.Checker) {
	in.workloadInput.Validate(c)
	c.String("userId", in.UserID, 1, 128, nil)
}

func (s *Service) getWorkloadAccessTokenForUserID(ctx context.Context, c *wire.Call, in *forUserIDInput) (*tokenOutput, error) {
	w, err := s.workloadForMinting(ctx, c, in.WorkloadName)
	if err != nil {
		return nil, err
	}
	return s.mint(ctx, c, telemetry.WATUserID, w, wat.Claims{User: wat.UserFromID(in.UserID)}, time.Time{})
}

// isCompactJWT reports whether s has the shape of AgentCore's
// UserTokenType (the AWS API reference of GetWorkloadAccessTokenForJWT):
// three non-empty segments of base64url characters (and '=') separated by
// dots. A loop rather than a regular expression: this runs on every call.
func isCompactJWT(s string) bool {
	dots, segment := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if segment == 0 || dots == 2 {
				return false
			}
			dots, segment = dots+1, 0
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '=':
			segment++
		default:
			return false
		}
	}
	return dots == 2 && segment > 0
}
