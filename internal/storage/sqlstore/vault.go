package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
		next.ID, next.LastModified = id, s.timestamp()
		if _, err := tx.exec(ctx,
			`UPDATE token_vaults SET key_type = ?, kms_key_arn = ?, key_id = ?, last_modified = ? WHERE id = ?`,
			next.KeyType, next.KMSKeyARN, next.KeyID, micros(next.LastModified), id); err != nil {
			return fmt.Errorf("sqlstore: update token vault %q: %w", id, err)
		}
		stored = next
		return nil
	})
	if err != nil {
		return storage.TokenVault{}, err
	}
	return stored, nil
}
