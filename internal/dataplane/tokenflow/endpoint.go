package tokenflow

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Endpoint calls providers' token endpoints as their OAuth client.
type Endpoint struct {
	Vault *vault.Vault
	OAuth *oauthclient.Client
}

// Request sends form to p's token endpoint, authenticated with p's client
// secret or private key. A provider's refusal is an *oauthclient.ProviderError; a secret
// that does not open is an internal *wire.Error, which tells callers that
// the provider saw nothing.
func (e Endpoint) Request(ctx context.Context, p access.OAuth2Provider, form url.Values) (*oauthclient.Token, error) {
	secret, err := e.Vault.OpenClientSecret(ctx, p.OAuth2Provider)
	if err != nil {
		return nil, wire.Internal(fmt.Errorf("open client secret of %s: %w", p.Name, err))
	}
	defer clear(secret)
	endpoint := telemetry.EndpointToken
	if form.Get("grant_type") == oauthwire.GrantTokenExchange {
		endpoint = telemetry.EndpointTokenExchange
	}
	return e.OAuth.Do(telemetry.WithOutbound(ctx, p.Name, endpoint), TokenRequest(p.Config, string(secret), form))
}

// TokenRequest is the token request to a provider, in its vendor's dialect.
func TokenRequest(cfg provider.OAuth2, secret string, form url.Values) oauthclient.Request {
	v := cfg.VendorInfo()
	return oauthclient.Request{
		Endpoint: cfg.Resolved.TokenEndpoint, AuthMethod: cfg.AuthMethod(), ClientID: cfg.ClientID, ClientSecret: secret,
		SigningAlgorithm: cfg.SigningAlgorithm(), Audience: cfg.Resolved.Issuer, Form: form,
		BodyFormat: v.TokenBodyFormat, Headers: v.TokenRequestHeaders, ErrorsWithStatusOK: v.TokenErrorsWithStatusOK,
	}
}

// UpstreamError maps a token or revocation endpoint failure to an API
// error that quotes the provider's error and description.
func UpstreamError(providerName string, err error) error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
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
