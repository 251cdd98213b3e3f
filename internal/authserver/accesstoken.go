package authserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/inbound"
)

// accessTokenType is the JOSE typ of an RFC 9068 access token.
const accessTokenType = "at+jwt"

// maxAccessToken bounds what is parsed as an access token.
const maxAccessToken = 8 << 10

// AccessToken is an RFC 9068 JWT access token's claims. Sub names the
// user: wat.UserFromJWT of the identity provider's issuer and subject.
type AccessToken struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	ID       string `json:"jti"`
}

// grant is what an access token is issued for.
type grant struct {
	user, clientID, resource string
	scopes                   []string
}

// mint signs an access token for g, valid for the configured TTL.
func (s *Server) mint(g grant) (token string, claims AccessToken, err error) {
	now := s.now()
	claims = AccessToken{Issuer: s.cfg.Issuer, Subject: g.user, Audience: g.resource, ClientID: g.clientID,
		Scope: strings.Join(g.scopes, " "), IssuedAt: now.Unix(), Expiry: now.Add(s.cfg.AccessTokenTTL).Unix(), ID: rand.Text()}
	signer, err := s.keys.Signer(accessTokenType)
	if err != nil {
		return "", AccessToken{}, err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", AccessToken{}, err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", AccessToken{}, err
	}
	token, err = jws.CompactSerialize()
	return token, claims, err
}

// Errors of parseAccessToken.
var (
	errNotOurs = errors.New("not an access token of this server")
	errExpired = errors.New("access token has expired")
)

// parseAccessToken verifies an access token's signature (ES256 only, the
// typ at+jwt, RFC 9068 §4) and issuer, and returns its claims; an expired
// token is returned with errExpired.
func (s *Server) parseAccessToken(ctx context.Context, token string) (AccessToken, error) {
	if len(token) > maxAccessToken {
		return AccessToken{}, errNotOurs
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		return AccessToken{}, errNotOurs
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, accessTokenType) && !strings.EqualFold(typ, "application/"+accessTokenType) {
		return AccessToken{}, errNotOurs
	}
	pub, ok := s.keys.Public(ctx, h.KeyID)
	if !ok {
		return AccessToken{}, errNotOurs
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return AccessToken{}, errNotOurs
	}
	var c AccessToken
	if err := json.Unmarshal(payload, &c); err != nil || c.Issuer != s.cfg.Issuer || c.ID == "" || c.Subject == "" {
		return AccessToken{}, errNotOurs
	}
	if !s.now().Before(time.Unix(c.Expiry, 0)) {
		return c, errExpired
	}
	return c, nil
}

// revokedKey is the one-time id under which a revoked access token is
// recorded until it expires.
func revokedKey(jti string) string { return "oauth-at:" + jti }

// active verifies an access token and checks that it was not revoked.
func (s *Server) active(ctx context.Context, token string) (AccessToken, bool, error) {
	c, err := s.parseAccessToken(ctx, token)
	if err != nil {
		return AccessToken{}, false, nil
	}
	used, err := s.opts.Store.TokenIDUsed(ctx, revokedKey(c.ID))
	if err != nil {
		return AccessToken{}, false, err
	}
	return c, !used, nil
}

// AuthorizerName names the authorization server where inbound
// authorizers are named: a workload identity's allowedInboundAuthorizers
// lists it to accept the server's access tokens.
const AuthorizerName = config.AuthorizationServerAuthorizer

// VerifyAccessToken verifies one of the server's access tokens in
// process, for the data plane (GetWorkloadAccessTokenForJWT): signature,
// expiry, an audience among the configured resources, and not revoked.
// A refused token is an *inbound.Error.
func (s *Server) VerifyAccessToken(ctx context.Context, token string) (*inbound.Identity, error) {
	c, err := s.parseAccessToken(ctx, token)
	switch {
	case errors.Is(err, errExpired):
		return nil, &inbound.Error{Kind: inbound.KindExpired, Message: "token expired at " + time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339)}
	case err != nil:
		return nil, &inbound.Error{Kind: inbound.KindInvalidToken, Message: "token is not a valid access token of the authorization server"}
	}
	if _, ok := s.cfg.Resource(c.Audience); !ok {
		return nil, &inbound.Error{Kind: inbound.KindClaimMismatch, Message: "token audience is not one of the authorization server's resources"}
	}
	used, err := s.opts.Store.TokenIDUsed(ctx, revokedKey(c.ID))
	if err != nil {
		return nil, &inbound.Error{Kind: inbound.KindUnavailable, Message: "revocation status unavailable", Cause: err}
	}
	if used {
		return nil, &inbound.Error{Kind: inbound.KindInvalidToken, Message: "token was revoked"}
	}
	return &inbound.Identity{Authorizer: AuthorizerName, Issuer: c.Issuer, Subject: c.Subject, ClientID: c.ClientID,
		Audience: []string{c.Audience}, Scopes: strings.Fields(c.Scope), Expiry: time.Unix(c.Expiry, 0), IssuedAt: time.Unix(c.IssuedAt, 0),
		User: c.Subject}, nil
}

// IsOwnToken reports, without verifying it, whether a JWT names this
// server as its issuer, to route it to VerifyAccessToken.
func (s *Server) IsOwnToken(token string) bool {
	if len(token) > maxAccessToken {
		return false
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	raw, err := jwtPayload(token)
	return err == nil && json.Unmarshal(raw, &c) == nil && c.Issuer == s.cfg.Issuer
}

func writeJSONBody(w http.ResponseWriter, v any) {
	_ = json.NewEncoder(w).Encode(v) // only a write can fail: the client went away
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
