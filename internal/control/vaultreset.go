package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

type resetTokenVaultInput struct {
	TokenVaultID string `json:"tokenVaultId"`
}

func (in *resetTokenVaultInput) Validate(c *wire.Checker) {
	c.String("tokenVaultId", in.TokenVaultID, 1, 64, tokenVaultIDPattern)
}

type resetTokenVaultOutput struct {
	tokenVaultOutput
	// Reset is behalf's extension member.
	Reset behalfapi.VaultReset `json:"keyMaterialReset"`
}

// resetTokenVaultKeyMaterial starts the token vault afresh under the
// service key once its customer managed key was deleted
// (ResetTokenVaultKeyMaterial). What that key sealed is lost for good:
// users' tokens, sessions and cached tokens are deleted, and providers'
// client secrets and API keys must be set again; the providers stay.
// Secrets under other keys are re-wrapped under the service key in the
// background. A key that still exists, even disabled or pending deletion,
// is refused, as AgentCore refuses it: the vault works again once the key
// does.
func (s *Service) resetTokenVaultKeyMaterial(ctx context.Context, c *wire.Call, in *resetTokenVaultInput) (*resetTokenVaultOutput, error) {
	arn := s.cfg.ARNs.Resource(storage.Resource{Kind: storage.KindTokenVault, Name: DefaultTokenVault})
	c.Audit.Resource = arn
	id, err := vaultID(&in.TokenVaultID)
	if err != nil {
		return nil, err
	}
	tv, err := s.store.GetTokenVault(ctx, id)
	if err != nil {
		return nil, wire.StorageError(err, "token vault", id)
	}
	if err := s.checkKeyDeleted(ctx, tv); err != nil {
		return nil, err
	}
	serviceKey := s.Vault.ServiceKeyID()
	v, removed, err := c.Change(s.store).ResetTokenVault(ctx, id, tv.KeyID, func(v storage.TokenVault, r storage.VaultReset) (storage.TokenVault, error) {
		c.Audit.Resource = arn + " " + resetSummary(r)
		v.KeyType, v.KMSKeyARN, v.KeyID = serviceManagedKey, "", serviceKey
		return v, nil
	})
	if err != nil {
		return nil, wire.StorageError(err, "token vault", id)
	}
	s.forgetReset(removed)
	if err := s.Vault.SetCurrent(ctx, serviceKey); err != nil {
		return nil, fmt.Errorf("use the service key %s: %w", serviceKey, err)
	}
	s.Rewrap()
	return &resetTokenVaultOutput{tokenVaultOutput: *vaultOut(v), Reset: behalfapi.VaultReset{
		DeletedConnections: removed.Connections, DeletedSessions: removed.Sessions, DeletedCachedTokens: removed.CachedTokens,
		LostClientSecrets: nonNil(removed.ClientSecrets), LostAPIKeys: nonNil(removed.APIKeys),
	}}, nil
}

// checkKeyDeleted refuses a reset unless the vault's customer managed key
// was deleted.
func (s *Service) checkKeyDeleted(ctx context.Context, tv storage.TokenVault) error {
	refuse := func(msg string) error {
		return wire.Validation(msg, wire.FieldError{Name: "tokenVaultId", Message: msg})
	}
	if tv.KeyType != customerManagedKey {
		return refuse("the token vault uses the service-managed key; only a vault whose customer managed key was deleted can be reset")
	}
	switch err := s.Keys.Check(ctx, tv.KeyID); {
	case errors.Is(err, vault.ErrKeyGone):
		return nil
	case err == nil:
		return refuse("the token vault's customer managed key " + tv.KMSKeyARN + " still exists; only a vault whose key was deleted can be reset (to use another key, call SetTokenVaultCMK)")
	default:
		// The cause may name the key-management system's endpoint or
		// the keyring's path: it is logged, not sent.
		e := wire.Validation("the token vault's customer managed key "+tv.KMSKeyARN+" still exists but cannot be used now (disabled, pending deletion, "+
			"or its key-management system unreachable); enable it or cancel its deletion to use the vault again. Only a vault whose key was deleted can be reset",
			wire.FieldError{Name: "tokenVaultId", Message: "its key cannot be used now, but was not deleted"})
		e.Err = err
		return e
	}
}

// forgetReset drops this replica's cached copies of what the reset
// removed; other replicas' caches expire within their TTL.
func (s *Service) forgetReset(r storage.VaultReset) {
	if s.Connections != nil && r.Connections > 0 {
		s.Connections.ForgetAll()
	}
	for _, name := range r.ClientSecrets {
		s.changed(storage.KindOAuth2Provider, name)
	}
	for _, name := range r.APIKeys {
		s.changed(storage.KindAPIKeyProvider, name)
	}
}

// resetSummary is what a reset removed, for its audit record: counts, no
// names and no secrets.
func resetSummary(r storage.VaultReset) string {
	return fmt.Sprintf("(reset: deleted %d connections, %d sessions, %d cached tokens; lost %d client secrets, %d API keys)",
		r.Connections, r.Sessions, r.CachedTokens, len(r.ClientSecrets), len(r.APIKeys))
}
