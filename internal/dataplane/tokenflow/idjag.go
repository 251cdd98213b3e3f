package tokenflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
)

// idJAG is enterprise-managed authorization for an MCP server provider
// whose configuration names the enterprise IdP's provider: the Identity
// Assertion JWT Authorization Grant
// (draft-ietf-oauth-identity-assertion-authz-grant). behalf trades the
// user's ID token — the JWT the workload access token was minted from —
// at the IdP for an ID-JAG naming the server's authorization server and
// resource (RFC 8693, "Token Exchange"), then redeems it there with the
// jwt-bearer grant (RFC 7523 §2.1). No consent page: the IdP's policy
// decides. Tokens are cached per user; each new one is redeemed with a
// new ID-JAG, so an assertion is never kept, nor used near its expiry.
type idJAG struct {
	endpoint Endpoint
	idp      access.OAuth2Provider
	// audience is the authorization server's issuer, resource the
	// server's canonical URI, scopes those requested.
	audience, resource string
	scopes             []string
}

// newIDJAG is the grant for an MCP server provider p whose enterprise IdP
// is idp.
func newIDJAG(e Endpoint, p, idp access.OAuth2Provider, scopes []string) idJAG {
	return idJAG{endpoint: e, idp: idp, audience: p.Config.MCP.Issuer, resource: p.Config.MCP.Resource, scopes: scopes}
}

func (g idJAG) Check(p access.OAuth2Provider, v access.Verified) error {
	const needs = "obtains its tokens with ID-JAGs from the enterprise IdP (%s), which needs a workload access token minted from the user's ID token there (GetWorkloadAccessTokenForJWT)"
	if v.Claims.UserToken == "" {
		return wire.Validation(fmt.Sprintf("credential provider %s "+needs, p.Name, g.idp.Name),
			wire.FieldError{Name: "workloadIdentityToken", Message: "carries no user JWT"})
	}
	// The user's token goes to the IdP that issued it, and nowhere else:
	// the user key names its issuer (wat.UserFromJWT).
	if iss := g.idp.Config.Resolved.Issuer; iss == "" || !strings.HasPrefix(v.Claims.User, wat.UserFromJWT(iss, "")) {
		return wire.Validation(fmt.Sprintf("credential provider %s "+needs+"; the user's JWT was issued by another", p.Name, g.idp.Name),
			wire.FieldError{Name: "workloadIdentityToken", Message: "was minted from a JWT of another issuer than the enterprise IdP"})
	}
	return nil
}

// CacheKey: the token is the user's, whichever of their ID tokens
// obtained it.
func (idJAG) CacheKey(v access.Verified) string {
	h := sha256.Sum256([]byte(v.Claims.User))
	return ".user." + hex.EncodeToString(h[:12])
}

func (idJAG) NoClient() bool { return false }

func (g idJAG) Form(ctx context.Context, v access.Verified) (url.Values, error) {
	exchange := url.Values{
		"grant_type":           {oauthwire.GrantTokenExchange},
		"requested_token_type": {oauthwire.TokenTypeIDJAG},
		"subject_token":        {v.Claims.UserToken},
		"subject_token_type":   {oauthwire.TokenTypeIDToken},
		"audience":             {g.audience},
		"resource":             {g.resource},
	}
	if len(g.scopes) > 0 {
		exchange.Set("scope", strings.Join(g.scopes, " "))
	}
	tok, err := g.endpoint.Request(ctx, g.idp, exchange)
	if err != nil {
		return nil, UpstreamError(g.idp.Name, err)
	}
	if tok.IssuedTokenType != oauthwire.TokenTypeIDJAG {
		return nil, wire.BadGateway("credential provider %s: the enterprise IdP answered the ID-JAG request with a token of another type", g.idp.Name)
	}
	return url.Values{"grant_type": {oauthwire.GrantJWTBearer}, "assertion": {tok.AccessToken}}, nil
}
