package control

import (
	"context"
	"fmt"
	"strings"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// KeySchedule reads a rotating key set's schedule (signingkeys.Set's
// Status, the workload access token issuer's).
type KeySchedule func() signingkeys.SetStatus

// getKeyRotationStatus reports the keys' ids and dates, never their
// material: the token vault's key-encryption keys with the count of
// secrets awaiting re-wrap, and each rotating key set as this replica
// has loaded it.
func (s *Service) getKeyRotationStatus(ctx context.Context, _ *wire.Call, _ *struct{}) (*behalfapi.GetKeyRotationStatusOutput, error) {
	tv, err := s.store.GetTokenVault(ctx, DefaultTokenVault)
	if err != nil {
		return nil, wire.StorageError(err, "token vault", DefaultTokenVault)
	}
	out := &behalfapi.GetKeyRotationStatusOutput{Vault: behalfapi.VaultKeys{KeyType: tv.KeyType, KMSKeyARN: tv.KMSKeyARN, CurrentKeyID: tv.KeyID,
		LastModified: behalfapi.Time(tv.LastModified), Keys: []behalfapi.VaultKey{}}, SigningKeys: []behalfapi.SigningKeySet{}}
	if s.Keyring != nil {
		keys, err := s.Keyring.Keys()
		if err != nil {
			return nil, fmt.Errorf("list the keyring's keys: %w", err)
		}
		for _, k := range keys {
			vk := behalfapi.VaultKey{KeyID: k.ID, Service: k.Service, Current: k.ID == tv.KeyID, Created: behalfapi.Time(k.Created)}
			if !k.Service {
				vk.KMSKeyARN = s.cfg.ARNs.KMSKeyARN(strings.TrimPrefix(k.ID, vault.LocalPrefix))
			}
			out.Vault.Keys = append(out.Vault.Keys, vk)
		}
	}
	stale, err := s.store.ListStaleSecrets(ctx, vault.Targets(s.Vault.ServiceKeyID(), tv.KeyID), behalfapi.MaxStaleCount+1)
	if err != nil {
		return nil, fmt.Errorf("count secrets awaiting re-wrap: %w", err)
	}
	out.Vault.StaleSecrets, out.Vault.StaleSecretsMore = min(len(stale), behalfapi.MaxStaleCount), len(stale) > behalfapi.MaxStaleCount
	for _, set := range s.KeySets {
		st := set()
		ks := behalfapi.SigningKeySet{Purpose: st.Purpose, RotationSeconds: int64(st.Rotation.Seconds()), NextRotation: behalfapi.Time(st.NextRotation),
			Keys: make([]behalfapi.SigningKey, len(st.Keys))}
		for i, k := range st.Keys {
			ks.Keys[i] = behalfapi.SigningKey{KeyID: k.ID, Created: behalfapi.Time(k.Created), SigningSince: behalfapi.Time(k.SigningSince), Current: k.Current}
			if !k.RetireAt.IsZero() {
				at := behalfapi.Time(k.RetireAt)
				ks.Keys[i].RetireAt = &at
			}
		}
		out.SigningKeys = append(out.SigningKeys, ks)
	}
	return out, nil
}
