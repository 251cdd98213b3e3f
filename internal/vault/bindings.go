package vault

import (
	"context"

	"github.com/behalf-dev/behalf/internal/storage"
)

// Every secret's binding is built here, and only here: a handler names the
// record a secret belongs to, and this file decides which of its fields
// the ciphertext is bound to. Key rotation maps a stored reference back to
// the same binding (BindingFor).

// PrincipalSecretBinding binds a principal's secret access key to its
// access key id.
func PrincipalSecretBinding(accessKeyID string) Binding {
	return Binding{Kind: storage.SecretPrincipal, Owner: accessKeyID}
}

// ClientSecretBinding binds an OAuth2 provider's client secret to the
// provider record.
func ClientSecretBinding(providerID string) Binding {
	return Binding{Kind: storage.SecretOAuth2ClientSecret, Owner: providerID}
}

// APIKeyBinding binds an API key to its provider record.
func APIKeyBinding(providerID string) Binding {
	return Binding{Kind: storage.SecretAPIKey, Owner: providerID}
}

// ServerKeyBinding binds a server key to its purpose and id.
func ServerKeyBinding(purpose, id string) Binding {
	return Binding{Kind: storage.SecretServerKey, Owner: purpose + "/" + id}
}

// CachedTokenBinding binds a cached provider token to its provider,
// workload and the request it answers.
func CachedTokenBinding(providerID, workload, key string) Binding {
	return Binding{Kind: storage.SecretCachedToken, Owner: providerID, Workload: workload, User: key}
}

// SessionBinding ties a session's secrets to its id, workload and user, so
// a row re-pointed at another user or workload no longer opens.
func SessionBinding(sessionID, workload, user string) Binding {
	return Binding{Kind: storage.SecretSession, Owner: sessionID, Workload: workload, User: user}
}

// ConnectionBinding binds a user's tokens to their connection.
func ConnectionBinding(k storage.ConnectionKey) Binding {
	return Binding{Kind: storage.SecretConnection, Owner: k.ProviderID, Workload: k.Workload, User: k.User}
}

// BindingFor returns the binding of a stored secret, as the helpers above
// built it when it was sealed.
func BindingFor(ref storage.SealedRef) Binding {
	switch ref.Kind {
	case storage.SecretPrincipal:
		return PrincipalSecretBinding(ref.Owner)
	case storage.SecretOAuth2ClientSecret:
		return ClientSecretBinding(ref.Owner)
	case storage.SecretAPIKey:
		return APIKeyBinding(ref.Owner)
	case storage.SecretCachedToken:
		return CachedTokenBinding(ref.Owner, ref.Workload, ref.User)
	case storage.SecretSession:
		return SessionBinding(ref.Owner, ref.Workload, ref.User)
	case storage.SecretConnection:
		return ConnectionBinding(storage.ConnectionKey{ProviderID: ref.Owner, Workload: ref.Workload, User: ref.User})
	}
	// Server keys (Owner "<purpose>/<id>") and kinds added later keep the
	// reference's fields as they are.
	return Binding{Kind: ref.Kind, Owner: ref.Owner, Workload: ref.Workload, User: ref.User}
}

// OpenClientSecret opens an OAuth2 provider's client secret. The caller
// clears it after use.
func (v *Vault) OpenClientSecret(ctx context.Context, p storage.OAuth2Provider) ([]byte, error) {
	return v.Open(ctx, p.ClientSecret, ClientSecretBinding(p.ID))
}

// SealClientSecret seals the client secret of the provider with id
// providerID.
func (v *Vault) SealClientSecret(ctx context.Context, providerID string, secret []byte) (storage.Sealed, error) {
	return v.Seal(ctx, secret, ClientSecretBinding(providerID))
}

// OpenAPIKey opens an API key provider's key.
func (v *Vault) OpenAPIKey(ctx context.Context, p storage.APIKeyProvider) ([]byte, error) {
	return v.Open(ctx, p.APIKey, APIKeyBinding(p.ID))
}

// SealAPIKey seals the key of the API key provider with id providerID.
func (v *Vault) SealAPIKey(ctx context.Context, providerID string, key []byte) (storage.Sealed, error) {
	return v.Seal(ctx, key, APIKeyBinding(providerID))
}
