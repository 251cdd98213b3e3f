package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/behalf-dev/behalf/internal/storage"
)

const vaultColumns = `id, key_type, kms_key_arn, key_id, last_modified`

func getTokenVault(ctx context.Context, c conn, id, suffix string) (storage.TokenVault, error) {
	var (
		v        storage.TokenVault
		modified int64
	)
	err := c.queryRow(ctx, `SELECT `+vaultColumns+` FROM token_vaults WHERE id = ?`+suffix, id).
		Scan(&v.ID, &v.KeyType, &v.KMSKeyARN, &v.KeyID, &modified)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.TokenVault{}, fmt.Errorf("sqlstore: token vault %q: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return storage.TokenVault{}, fmt.Errorf("sqlstore: get token vault %q: %w", id, err)
	}
	v.LastModified = fromMicros(modified)
	return v, nil
}

// GetTokenVault returns the token vault id, or storage.ErrNotFound before
// its first update.
func (s *Store) GetTokenVault(ctx context.Context, id string) (storage.TokenVault, error) {
	return getTokenVault(ctx, s.reads(), id, "")
}

// UpdateTokenVault runs fn on the vault id, a zero one with ID set when
// none is stored yet, and stores its result.
func (s *Store) UpdateTokenVault(ctx context.Context, id string, fn func(storage.TokenVault) (storage.TokenVault, error)) (storage.TokenVault, error) {
	var stored storage.TokenVault
	err := s.inTx(ctx, func(tx conn) error {
		// Claim the row first, so that concurrent first updates queue on it
		// instead of racing to insert; a rollback removes the placeholder.
		inserted, err := tx.execOne(ctx,
			`INSERT INTO token_vaults (`+vaultColumns+`) VALUES (?, '', '', '', 0) ON CONFLICT (id) DO NOTHING`, id)
		if err != nil {
			return fmt.Errorf("sqlstore: create token vault %q: %w", id, err)
		}
		cur := storage.TokenVault{ID: id}
		if !inserted {
			if cur, err = getTokenVault(ctx, tx, id, s.dialect.forUpdate()); err != nil {
				return err
			}
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		stored, err = s.putTokenVault(ctx, tx, id, next)
		return err
	})
	if err != nil {
		return storage.TokenVault{}, err
	}
	return stored, nil
}

// putTokenVault stores next as the vault id, last modified now.
func (s *Store) putTokenVault(ctx context.Context, tx conn, id string, next storage.TokenVault) (storage.TokenVault, error) {
	next.ID, next.LastModified = id, s.timestamp()
	if _, err := tx.exec(ctx,
		`UPDATE token_vaults SET key_type = ?, kms_key_arn = ?, key_id = ?, last_modified = ? WHERE id = ?`,
		next.KeyType, next.KMSKeyARN, next.KeyID, micros(next.LastModified), id); err != nil {
		return storage.TokenVault{}, fmt.Errorf("sqlstore: update token vault %q: %w", id, err)
	}
	return next, nil
}

// ResetTokenVault deletes the users' tokens sealed under keyID, makes the
// providers' secrets sealed under it Lost, and stores fn's vault, in one
// transaction.
func (s *Store) ResetTokenVault(ctx context.Context, id, keyID string, fn func(storage.TokenVault, storage.VaultReset) (storage.TokenVault, error)) (storage.TokenVault, storage.VaultReset, error) {
	var (
		stored  storage.TokenVault
		removed storage.VaultReset
	)
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getTokenVault(ctx, tx, id, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		if cur.KeyID != keyID {
			return fmt.Errorf("sqlstore: token vault %q is under key %s, not %s: %w", id, cur.KeyID, keyID, storage.ErrConflict)
		}
		removed = storage.VaultReset{}
		for _, d := range []struct {
			kind storage.SecretKind
			n    *int
		}{{storage.SecretConnection, &removed.Connections}, {storage.SecretSession, &removed.Sessions}, {storage.SecretCachedToken, &removed.CachedTokens}} {
			col, err := sealedColumnOf(d.kind)
			if err != nil {
				return err
			}
			deleted, err := tx.execCount(ctx, `DELETE FROM `+col.table+` WHERE `+col.keyID+` = ?`, keyID)
			if err != nil {
				return fmt.Errorf("sqlstore: delete %s sealed under %s: %w", d.kind, keyID, err)
			}
			*d.n = int(deleted)
		}
		now := micros(s.timestamp())
		if removed.ClientSecrets, err = loseSecrets(ctx, tx, storage.SecretOAuth2ClientSecret, keyID, now); err != nil {
			return err
		}
		if removed.APIKeys, err = loseSecrets(ctx, tx, storage.SecretAPIKey, keyID, now); err != nil {
			return err
		}
		next, err := fn(cur, removed)
		if err != nil {
			return err
		}
		stored, err = s.putTokenVault(ctx, tx, id, next)
		return err
	})
	if err != nil {
		return storage.TokenVault{}, storage.VaultReset{}, err
	}
	return stored, removed, nil
}

// loseSecrets removes the ciphertext of the providers' secrets of kind
// sealed under keyID, keeping the key id, so that they read as Lost, and
// returns the providers' names in order.
func loseSecrets(ctx context.Context, tx conn, kind storage.SecretKind, keyID string, now int64) ([]string, error) {
	col, err := sealedColumnOf(kind)
	if err != nil {
		return nil, err
	}
	rows, err := tx.query(ctx, `UPDATE `+col.table+` SET `+col.blob+` = ?, updated_at = ? WHERE `+col.keyID+` = ? AND length(`+col.blob+`) > 0 RETURNING name`,
		[]byte{}, now, keyID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: remove %s sealed under %s: %w", kind, keyID, err)
	}
	names, err := collect(rows, col.table, func(row scanner) (string, error) {
		var name string
		return name, row.Scan(&name)
	})
	slices.Sort(names)
	return names, err
}
