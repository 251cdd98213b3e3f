package tokenflow

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/wire"
	"github.com/behalf-dev/behalf/internal/workloadjwt"
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

func (clientCredentials) NoClient() bool { return false }

func (clientCredentials) Form(context.Context, access.Verified) (url.Values, error) {
	return url.Values{"grant_type": {"client_credentials"}}, nil
}

// onBehalfOf is ON_BEHALF_OF_TOKEN_EXCHANGE, presenting the user's own
// inbound JWT (carried, encrypted, in the workload access token) to the
// provider's token endpoint by the configured grantType: TOKEN_EXCHANGE,
// an RFC 8693 token exchange with it as the subject token (and an actor
// token, §2.1, per actorTokenContent: M2M, the provider's own
// client-credentials token; AWS_IAM_ID_TOKEN_JWT, behalf's workload JWT
// for the workload), or JWT_AUTHORIZATION_GRANT, RFC 7523 §2.1's
// jwt-bearer grant with it as the assertion; with NO_CLIENT, without the
// client's id or credentials. Its tokens are cached per user and user
// token.
type onBehalfOf struct {
	grantType string
	noClient  bool
	// actor returns the actor token and its RFC 8693 §3 type; nil sends
	// none.
	actor func(context.Context) (token, tokenType string, err error)
}

func (onBehalfOf) Check(p access.OAuth2Provider, v access.Verified) error {
	obo := p.Config.OnBehalfOf
	if obo == nil || (obo.GrantType != provider.GrantTokenExchange && obo.GrantType != provider.GrantJWTAuthorization) {
		return wire.Validation(fmt.Sprintf("credential provider %s has no onBehalfOfTokenExchangeConfig", p.Name),
			wire.FieldError{Name: "oauth2Flow", Message: "ON_BEHALF_OF_TOKEN_EXCHANGE is not configured for this provider"})
	}
	if v.Claims.UserToken == "" {
		return wire.Validation("ON_BEHALF_OF_TOKEN_EXCHANGE needs a workload access token minted from the user's JWT (GetWorkloadAccessTokenForJWT)",
			wire.FieldError{Name: "workloadIdentityToken", Message: "carries no user JWT"})
	}
	return nil
}

func (g onBehalfOf) NoClient() bool { return g.noClient }

func (onBehalfOf) CacheKey(v access.Verified) string {
	h := sha256.Sum256([]byte(v.Claims.User + "\x00" + v.Claims.UserToken))
	return "." + hex.EncodeToString(h[:12])
}

// requestedTokenUse is Microsoft Entra ID's parameter naming the
// on-behalf-of flow in a jwt-bearer request; it is always sent, since
// servers that do not know it ignore it (RFC 6749 §3.2).
const requestedTokenUse = "on_behalf_of"

func (g onBehalfOf) Form(ctx context.Context, v access.Verified) (url.Values, error) {
	if g.grantType == provider.GrantJWTAuthorization {
		return url.Values{
			"grant_type":          {oauthwire.GrantJWTBearer},
			"assertion":           {v.Claims.UserToken},
			"requested_token_use": {requestedTokenUse},
		}, nil
	}
	form := url.Values{
		"grant_type":           {oauthwire.GrantTokenExchange},
		"subject_token":        {v.Claims.UserToken},
		"subject_token_type":   {subjectTokenType(v.Claims.UserToken)},
		"requested_token_type": {oauthwire.TokenTypeAccessToken},
	}
	if g.actor != nil {
		actor, actorType, err := g.actor(ctx)
		if err != nil {
			return nil, err
		}
		form.Set("actor_token", actor)
		form.Set("actor_token_type", actorType)
	}
	return form, nil
}

// subjectTokenType names the kind of the user's JWT for RFC 8693 §2.1's
// subject_token_type. behalf verified the JWT when the workload access
// token was minted, but keeps no record of whether its issuer meant it as
// an access or an ID token, so the JWT says: typ at+jwt (RFC 9068 §2.1)
// makes an access token; nonce, at_hash, c_hash or s_hash (OpenID Connect
// Core §2, §3.1.3.6, §3.3.2.11; FAPI's s_hash), which only ID tokens
// carry, make an ID token; anything else is RFC 8693 §3's plain jwt.
// Claims such as scope or client_id are not taken as signs of an access
// token: some providers put them in ID tokens too.
func subjectTokenType(jwt string) string {
	parts := strings.SplitN(jwt, ".", 3)
	if len(parts) != 3 {
		return oauthwire.TokenTypeJWT
	}
	var header struct {
		Typ string `json:"typ"`
	}
	if decodeSegment(parts[0], &header) == nil {
		if t := strings.ToLower(header.Typ); t == "at+jwt" || t == "application/at+jwt" {
			return oauthwire.TokenTypeAccessToken
		}
	}
	var claims map[string]json.RawMessage
	if decodeSegment(parts[1], &claims) == nil {
		for _, c := range []string{"nonce", "at_hash", "c_hash", "s_hash"} {
			if _, ok := claims[c]; ok {
				return oauthwire.TokenTypeIDToken
			}
		}
	}
	return oauthwire.TokenTypeJWT
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// onBehalfOf is the grant for provider p's onBehalfOfTokenExchangeConfig.
// An M2M actor token is the provider's own client-credentials token for
// actorTokenScopes, obtained and cached as GetResourceOauth2Token's M2M
// flow would. An AWS_IAM_ID_TOKEN_JWT actor token, which AgentCore gets
// from AWS STS, is behalf's own workload JWT for the workload instead
// (package workloadjwt).
func (s *Service) onBehalfOf(v access.Verified, p access.OAuth2Provider) onBehalfOf {
	obo := p.Config.OnBehalfOf
	if obo == nil {
		return onBehalfOf{}
	}
	g := onBehalfOf{grantType: obo.GrantType, noClient: obo.ClientAuthenticationMethod == provider.OnBehalfOfNoClient}
	if obo.GrantType != provider.GrantTokenExchange {
		return g
	}
	switch obo.ActorTokenContent {
	case provider.ActorM2M:
		actorReq := &Request{Flow: FlowM2M, Scopes: obo.ActorTokenScopes}
		g.actor = func(ctx context.Context) (string, string, error) {
			tok, err := s.issue(ctx, clientCredentials{}, v, p, actorReq)
			return tok, oauthwire.TokenTypeAccessToken, err
		}
	case provider.ActorAWSIAMIDToken:
		g.actor = func(context.Context) (string, string, error) {
			tok, err := s.workloadActor(v, p)
			return tok, oauthwire.TokenTypeJWT, err
		}
	}
	return g
}

// actorLifetime is how long a workload JWT sent as an actor token lives:
// it is sent at once, as a client assertion is.
const actorLifetime = 2 * time.Minute

// workloadActor signs the workload's JWT for p's authorization server,
// named by its issuer identifier as behalf's client assertions name it
// (RFC 7523 §3 leaves the value to agreement; the OAuth working group's
// update of RFC 7523 settles on the issuer), else its token endpoint,
// where the JWT is sent. It expires no later than the workload access
// token.
func (s *Service) workloadActor(v access.Verified, p access.OAuth2Provider) (string, error) {
	if s.WorkloadJWTs == nil {
		return "", wire.Internal(fmt.Errorf("credential provider %s: no workload JWT issuer to sign its actor tokens", p.Name))
	}
	aud := p.Config.Resolved.Issuer
	if aud == "" {
		aud = p.Config.Resolved.TokenEndpoint
	}
	tok, err := s.WorkloadJWTs.Sign(v.Workload.Name, []string{aud}, actorLifetime, time.Unix(v.Claims.Expiry, 0))
	if errors.Is(err, workloadjwt.ErrExpired) {
		return "", wire.Unauthorized("the workload access token expires now; get a fresh one")
	}
	if err != nil {
		return "", fmt.Errorf("sign the actor token: %w", err)
	}
	return tok.JWT, nil
}
