package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/behalf-dev/behalf/internal/secretsource"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Secrets opens credential providers' secrets where they are kept: sealed
// in behalf's vault (secret source MANAGED), or outside behalf (EXTERNAL),
// read when used through the external secrets resolver. Every use of a
// provider's client secret or API key gets it here.
type Secrets struct {
	Vault *vault.Vault
	// External reads EXTERNAL secrets; nil reads none.
	External *secretsource.Resolver
}

// ClientSecret opens p's client secret; the caller clears it after use.
// Every failure is a *wire.Error: a sealed secret lost with a deleted
// vault key a ValidationException, one that does not open an internal
// one, an external secret that cannot be read a 502 naming its secret id
// and JSON key.
func (s Secrets) ClientSecret(ctx context.Context, p OAuth2Provider) ([]byte, error) {
	if ref := p.ExternalSecret; ref != nil {
		return s.external(ctx, p.Name, *ref)
	}
	secret, err := s.Vault.OpenClientSecret(ctx, p.OAuth2Provider)
	if errors.Is(err, vault.ErrSecretLost) {
		return nil, SecretLost(p.Name, "client credential", p.Config.UpdateOperation())
	}
	if err != nil {
		return nil, wire.Internal(fmt.Errorf("open client secret of %s: %w", p.Name, err))
	}
	return secret, nil
}

// APIKey opens p's API key, as ClientSecret does a client secret.
func (s Secrets) APIKey(ctx context.Context, p storage.APIKeyProvider) ([]byte, error) {
	if ref := p.ExternalSecret; ref != nil {
		return s.external(ctx, p.Name, *ref)
	}
	key, err := s.Vault.OpenAPIKey(ctx, p)
	if errors.Is(err, vault.ErrSecretLost) {
		return nil, SecretLost(p.Name, "API key", "UpdateApiKeyCredentialProvider")
	}
	if err != nil {
		return nil, wire.Internal(fmt.Errorf("open API key of %s: %w", p.Name, err))
	}
	return key, nil
}

// external reads a provider's secret from outside behalf. It fails closed:
// a source that is down, or a secret missing or malformed, withholds the
// credential.
func (s Secrets) external(ctx context.Context, provider string, ref storage.SecretRef) ([]byte, error) {
	secret, err := s.External.Resolve(telemetry.WithOutbound(ctx, provider, telemetry.EndpointSecretsManager), ref)
	if err != nil {
		var e *secretsource.Error
		if !errors.As(err, &e) {
			return nil, wire.Internal(fmt.Errorf("external secret of %s: %w", provider, err))
		}
		return nil, wire.BadGateway("credential provider %s: its %s", provider, e.Describe()).WithCause(err)
	}
	return secret, nil
}
