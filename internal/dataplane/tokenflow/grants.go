package tokenflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/wire"
)

// clientCredentials is the M2M flow: the client credentials grant (RFC
// 6749 §4.4), the workload acting as itself.
type clientCredentials struct{}

func (clientCredentials) Check(p access.OAuth2Provider, _ access.Verified) error {
	cfg := p.Config
	if cfg.Vendor != "CustomOauth2" && !cfg.VendorInfo().SupportsClientCredentials {
		return wire.Validation(fmt.Sprintf("credential provider %s (%s) does not support the M2M (client credentials) flow", p.Name, cfg.Vendor),
			wire.FieldError{Name: "oauth2Flow", Message: "M2M is not supported by this vendor"})
	}
	if g := cfg.Resolved.GrantTypesSupported; len(g) > 0 && !slices.Contains(g, "client_credentials") {
		return wire.Validation(fmt.Sprintf("credential provider %s does not offer the client_credentials grant", p.Name),
			wire.FieldError{Name: "oauth2Flow", Message: "M2M is not supported by this provider"})
	}
	return nil
}

func (clientCredentials) CacheKey(access.Verified) string { return "" }

func (clientCredentials) Form(context.Context, access.Verified) (url.Values, error) {
	return url.Values{"grant_type": {"client_credentials"}}, nil
}

// tokenExchange is ON_BEHALF_OF_TOKEN_EXCHANGE: an RFC 8693 token exchange
// presenting the user's own inbound JWT (carried, encrypted, in the
// workload access token) as the subject token. Its tokens are cached per
// user and user token.
type tokenExchange struct{}

func (tokenExchange) Check(p access.OAuth2Provider, v access.Verified) error {
	obo := p.Config.OnBehalfOf
	if obo == nil || obo.GrantType != "TOKEN_EXCHANGE" {
		return wire.Validation(fmt.Sprintf("credential provider %s has no onBehalfOfTokenExchangeConfig with grantType TOKEN_EXCHANGE", p.Name),
			wire.FieldError{Name: "oauth2Flow", Message: "ON_BEHALF_OF_TOKEN_EXCHANGE is not configured for this provider"})
	}
	if v.Claims.UserToken == "" {
		return wire.Validation("ON_BEHALF_OF_TOKEN_EXCHANGE needs a workload access token minted from the user's JWT (GetWorkloadAccessTokenForJWT)",
			wire.FieldError{Name: "workloadIdentityToken", Message: "carries no user JWT"})
	}
	return nil
}

func (tokenExchange) CacheKey(v access.Verified) string {
	h := sha256.Sum256([]byte(v.Claims.User + "\x00" + v.Claims.UserToken))
	return "." + hex.EncodeToString(h[:12])
}

func (tokenExchange) Form(_ context.Context, v access.Verified) (url.Values, error) {
	return url.Values{
		"grant_type":           {oauthwire.GrantTokenExchange},
		"subject_token":        {v.Claims.UserToken},
		"subject_token_type":   {oauthwire.TokenTypeAccessToken},
		"requested_token_type": {oauthwire.TokenTypeAccessToken},
	}, nil
}
