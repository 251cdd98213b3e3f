package vault

import (
	"context"
	"fmt"

	"github.com/behalf-dev/behalf/internal/storage"
)

// ServiceSealed reports whether secrets of kind are behalf's own —
// principals' secret access keys and server keys (signing keys, the audit
// chain's key, cookie keys) — which the service key seals, never the token
// vault's key. Were they under a customer managed key that was deleted,
// the server could neither start nor authenticate the call that resets the
// vault (ResetTokenVaultKeyMaterial). The token vault's key seals what
// AgentCore's token vault holds: client secrets, API keys and tokens.
func ServiceSealed(kind storage.SecretKind) bool {
	return kind == storage.SecretPrincipal || kind == storage.SecretServerKey
}

// Targets names the key each kind of secret belongs under: serviceID for
// behalf's own (ServiceSealed), vaultKeyID, the token vault's key, for the
// others.
func Targets(serviceID, vaultKeyID string) storage.KeyTarget {
	return func(kind storage.SecretKind) string {
		if ServiceSealed(kind) {
			return serviceID
		}
		return vaultKeyID
	}
}

// Targets names the key each kind of secret is sealed under now.
func (v *Vault) Targets() storage.KeyTarget { return Targets(v.ServiceKeyID(), v.CurrentKeyID()) }

// currentKey is the token vault's key; kek is nil while the key cannot be
// used (see SetCurrent).
type currentKey struct {
	id  string
	kek KeyWrapper
}

// sealingKey returns the key that seals secrets of kind now.
func (v *Vault) sealingKey(ctx context.Context, kind storage.SecretKind) (KeyWrapper, error) {
	if ServiceSealed(kind) {
		return v.service, nil
	}
	return v.vaultKey(ctx)
}

// vaultKey returns the token vault's key, trying again to resolve one that
// SetCurrent could not.
func (v *Vault) vaultKey(ctx context.Context) (KeyWrapper, error) {
	cur := v.current.Load()
	if cur.kek != nil {
		return cur.kek, nil
	}
	kek, err := v.keys.Key(ctx, cur.id)
	if err != nil {
		return nil, fmt.Errorf("vault: the token vault's key %s cannot be used: %w", cur.id, err)
	}
	v.current.CompareAndSwap(cur, &currentKey{id: cur.id, kek: kek})
	return kek, nil
}
