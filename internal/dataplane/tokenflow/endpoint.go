package tokenflow

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/oauthvendor"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Endpoint calls providers' token endpoints as their OAuth client.
type Endpoint struct {
	// Secrets opens providers' client secrets.
	Secrets access.Secrets
	OAuth   *oauthclient.Client
	// ClientKeys signs the client assertions of the clients whose key
	// behalf holds itself (provider.OAuth2.SignsWithOwnKey); nil refuses
	// them.
	ClientKeys ClientSigner
	// HeldKeys sign the client assertions of PRIVATE_KEY_JWT providers
	// with keys that key-management backends hold (signingkeys.Held);
	// nil refuses them.
	HeldKeys signingkeys.KeySigners
}

// ClientSigner signs with behalf's current client key (signingkeys.Set).
type ClientSigner interface {
	Signer(typ string) (jose.Signer, error)
}

// Credential is what a provider's client authenticates with at its token
// and revocation endpoints (RFC 6749 §2.3): the secret, or PEM private
// key, sealed in the provider's client secret slot; or, for a client
// whose key behalf or a key-management backend holds, a signer of that
// key, the slot unused.
type Credential struct {
	Secret string
	Signer jose.Signer
}

// Credential opens p's client credential. This is where every token,
// refresh and revocation request learns how p's client authenticates. A
// credential that does not open (sealed, or kept outside behalf) is a
// *wire.Error (ValidationException when it was lost with a deleted vault
// key), which tells callers that the provider saw nothing.
func (e Endpoint) Credential(ctx context.Context, p access.OAuth2Provider) (Credential, error) {
	if k := p.Config.PrivateKeyJWT; k != nil {
		return e.heldKey(ctx, p.Name, k)
	}
	if p.Config.SignsWithOwnKey() {
		if e.ClientKeys == nil {
			return Credential{}, wire.Internal(fmt.Errorf("credential provider %s: no client key set to sign its client assertions", p.Name))
		}
		signer, err := e.ClientKeys.Signer("JWT")
		if err != nil {
			return Credential{}, wire.Internal(fmt.Errorf("client key of %s: %w", p.Name, err))
		}
		return Credential{Signer: signer}, nil
	}
	secret, err := e.Secrets.ClientSecret(ctx, p)
	if err != nil {
		return Credential{}, err
	}
	defer clear(secret)
	return Credential{Secret: string(secret)}, nil
}

// heldKey is the credential of a PRIVATE_KEY_JWT provider: a signer of
// its key, which stays in its backend. A backend that cannot give it now
// is a 502 naming the key.
func (e Endpoint) heldKey(ctx context.Context, name string, k *provider.PrivateKeyJWT) (Credential, error) {
	if e.HeldKeys == nil {
		return Credential{}, wire.Internal(fmt.Errorf("credential provider %s: no key-management backend to sign its client assertions", name))
	}
	key, err := e.HeldKeys.Signer(ctx, k.KeyID)
	if err != nil {
		return Credential{}, wire.BadGateway("credential provider %s: its signing key %s cannot be used now: %v", name, k.KeyID, err).WithCause(err)
	}
	kid, err := oauthclient.AssertionKeyID(key.Public(), k.HeaderClaims)
	if err != nil {
		return Credential{}, wire.Internal(fmt.Errorf("credential provider %s: %w", name, err))
	}
	signer, err := oauthclient.AssertionSigner(key, k.SigningAlgorithm, kid, k.HeaderClaims)
	if err != nil {
		return Credential{}, wire.BadGateway("credential provider %s: its signing key %s %v", name, k.KeyID, err).WithCause(err)
	}
	return Credential{Signer: signer}, nil
}

// Request sends form to p's token endpoint, its client authenticated with
// its Credential. A provider's refusal is an *oauthclient.ProviderError.
func (e Endpoint) Request(ctx context.Context, p access.OAuth2Provider, form url.Values) (*oauthclient.Token, error) {
	cred, err := e.Credential(ctx, p)
	if err != nil {
		return nil, err
	}
	return e.OAuth.Do(outbound(ctx, p, form), TokenRequest(p.Config, cred, form))
}

// RequestNoClient sends form to p's token endpoint without its client's id
// or credentials (onBehalfOfAuthenticationConfig NO_CLIENT), which RFC
// 8693 §2.1 and RFC 7523 §3.1 leave optional.
func (e Endpoint) RequestNoClient(ctx context.Context, p access.OAuth2Provider, form url.Values) (*oauthclient.Token, error) {
	r := TokenRequest(p.Config, Credential{}, form)
	r.AuthMethod, r.ClientID = oauthvendor.NoClient, ""
	return e.OAuth.Do(outbound(ctx, p, form), r)
}

// outbound names the token request for telemetry.
func outbound(ctx context.Context, p access.OAuth2Provider, form url.Values) context.Context {
	endpoint := telemetry.EndpointToken
	if form.Get("grant_type") == oauthwire.GrantTokenExchange {
		endpoint = telemetry.EndpointTokenExchange
	}
	return telemetry.WithOutbound(ctx, p.Name, endpoint)
}

// TokenRequest is the token request to a provider, in its vendor's dialect.
func TokenRequest(cfg provider.OAuth2, cred Credential, form url.Values) oauthclient.Request {
	v := cfg.VendorInfo()
	return oauthclient.Request{
		Endpoint: cfg.Resolved.TokenEndpoint, AuthMethod: cfg.AuthMethod(), ClientID: cfg.ClientID, ClientSecret: cred.Secret, Signer: cred.Signer,
		SigningAlgorithm: cfg.SigningAlgorithm(), Audience: cfg.Resolved.Issuer, AssertionClaims: cfg.AssertionClaims(), Form: form,
		BodyFormat: v.TokenBodyFormat, Headers: v.TokenRequestHeaders, ErrorsWithStatusOK: v.TokenErrorsWithStatusOK,
	}
}

// Revocation is the revocation request of token (with its hint) to a
// provider, its client authenticated with cred.
func Revocation(cfg provider.OAuth2, cred Credential, endpoint string, style oauthvendor.RevocationStyle, token, hint string) oauthclient.Revocation {
	return oauthclient.Revocation{Endpoint: endpoint, Style: style, AuthMethod: cfg.AuthMethod(), ClientID: cfg.ClientID,
		ClientSecret: cred.Secret, Signer: cred.Signer, SigningAlgorithm: cfg.SigningAlgorithm(), Audience: cfg.Resolved.Issuer,
		AssertionClaims: cfg.AssertionClaims(), Headers: cfg.VendorInfo().TokenRequestHeaders, Token: token, Hint: hint}
}

// UpstreamError maps a token or revocation endpoint failure to an API
// error that quotes the provider's error and description.
func UpstreamError(providerName string, err error) error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	var se *oauthclient.SigningError
	if errors.As(err, &se) {
		return wire.BadGateway("credential provider %s: %s", providerName, se.Error()).WithCause(err)
	}
	var pe *oauthclient.ProviderError
	if !errors.As(err, &pe) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return wire.BadGateway("credential provider %s: the token request was cancelled", providerName)
		}
		return fmt.Errorf("credential provider %s: %w", providerName, err)
	}
	msg := fmt.Sprintf("credential provider %s: %s", providerName, pe.Error())
	switch {
	case pe.Status == 429 || pe.Code == "slow_down" || pe.Code == "temporarily_unavailable":
		return wire.Throttling("%s", msg)
	case slices.Contains([]string{"invalid_scope", "invalid_request", "invalid_target", "unsupported_grant_type"}, pe.Code):
		return wire.Validation(msg, wire.FieldError{Name: "scopes", Message: pe.Error()})
	case pe.Code != "":
		return wire.AccessDenied("%s", msg)
	}
	return wire.BadGateway("%s", msg)
}
