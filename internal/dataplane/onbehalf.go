package dataplane

import (
	"context"
	"fmt"
	"net/url"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// RFC 8693 §2.1 and §3.
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
)

// onBehalfOf serves ON_BEHALF_OF_TOKEN_EXCHANGE: an RFC 8693 token
// exchange at the provider's token endpoint, presenting the user's own
// inbound JWT (carried, encrypted, in the workload access token) as the
// subject token. The result is cached like an M2M token, per user.
func (s *Service) onBehalfOf(ctx context.Context, a access, p oauth2Provider, in *oauth2TokenInput) (*oauth2TokenOutput, error) {
	obo := p.cfg.OnBehalfOf
	if obo == nil || obo.GrantType != "TOKEN_EXCHANGE" {
		return nil, wire.Validation(fmt.Sprintf("credential provider %s has no onBehalfOfTokenExchangeConfig with grantType TOKEN_EXCHANGE", p.Name),
			wire.FieldError{Name: "oauth2Flow", Message: "ON_BEHALF_OF_TOKEN_EXCHANGE is not configured for this provider"})
	}
	if a.claims.UserToken == "" {
		return nil, wire.Validation("ON_BEHALF_OF_TOKEN_EXCHANGE needs a workload access token minted from the user's JWT (GetWorkloadAccessTokenForJWT)",
			wire.FieldError{Name: "workloadIdentityToken", Message: "carries no user JWT"})
	}
	w := a.workload
	key := cacheKey(in, p.UpdatedAt, w.CreatedAt) + "." + userDigest(a.claims.User, a.claims.UserToken)
	binding := vault.Binding{Kind: storage.SecretCachedToken, Owner: p.ID, Workload: w.Name, User: key}
	if token, ok := s.cachedToken(ctx, p.ID, w.Name, key, binding); ok {
		return &oauth2TokenOutput{AccessToken: token}, nil
	}
	v, err, _ := s.m2m.Do(p.ID+"\x00"+w.Name+"\x00"+key, func() (any, error) {
		if token, ok := s.cachedToken(ctx, p.ID, w.Name, key, binding); ok {
			return token, nil
		}
		secret, err := s.Vault.Open(ctx, p.ClientSecret, vault.Binding{Kind: storage.SecretOAuth2ClientSecret, Owner: p.ID})
		if err != nil {
			return nil, wire.Internal(err)
		}
		form := url.Values{
			"grant_type":           {grantTokenExchange},
			"subject_token":        {a.claims.UserToken},
			"subject_token_type":   {tokenTypeAccess},
			"requested_token_type": {tokenTypeAccess},
		}
		if len(in.Scopes) > 0 {
			form.Set("scope", p.cfg.VendorInfo().JoinScopes(in.Scopes))
		}
		addRequestParameters(form, in)
		tok, err := s.OAuth.Do(context.WithoutCancel(ctx), tokenRequest(p.cfg, string(secret), form))
		clear(secret)
		if err != nil {
			return nil, upstreamError(p.Name, err)
		}
		if err := s.putCachedToken(ctx, p.ID, w.Name, key, binding, tok.AccessToken, tok.Expiry); err != nil {
			return nil, err
		}
		return tok.AccessToken, nil
	})
	if err != nil {
		return nil, err
	}
	return &oauth2TokenOutput{AccessToken: v.(string)}, nil
}
