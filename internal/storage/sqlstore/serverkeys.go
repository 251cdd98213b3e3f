package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/behalf-dev/behalf/internal/storage"
)

const serverKeyColumns = `purpose, id, key_key_id, key_blob, created_at`

// CreateServerKey stores k, refusing an empty purpose or id, a purpose
// with "/" (the vault binds a key to "<purpose>/<id>") and a key without
// a secret.
func (s *Store) CreateServerKey(ctx context.Context, k storage.ServerKey) error {
	switch {
	case k.Purpose == "" || k.ID == "":
		return fmt.Errorf("sqlstore: server key %q/%q: empty purpose or id", k.Purpose, k.ID)
	case strings.Contains(k.Purpose, "/"):
		// The vault binds the key to "<purpose>/<id>", which a slash in the
		// purpose would make ambiguous.
		return fmt.Errorf("sqlstore: server key purpose %q contains a slash", k.Purpose)
	case k.Key.IsZero():
		return fmt.Errorf("sqlstore: server key %s/%s: no key", k.Purpose, k.ID)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.timestamp()
	}
	keyID, blob := sealedArgs(k.Key)
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx,
			`INSERT INTO server_keys (`+serverKeyColumns+`) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			k.Purpose, k.ID, keyID, blob, micros(k.CreatedAt))
		if err != nil {
			return fmt.Errorf("sqlstore: insert server key %s/%s: %w", k.Purpose, k.ID, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: server key %s/%s: %w", k.Purpose, k.ID, storage.ErrAlreadyExists)
		}
		return nil
	})
}

// ListServerKeys reads every key of a purpose: rotation keeps only a few,
// and a truncated list would drop the newest.
func (s *Store) ListServerKeys(ctx context.Context, purpose string) ([]storage.ServerKey, error) {
	rows, err := s.reads().query(ctx,
		`SELECT `+serverKeyColumns+` FROM server_keys WHERE purpose = ? ORDER BY created_at, id`, purpose)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list server keys of %q: %w", purpose, err)
	}
	return collect(rows, "server_keys", func(row scanner) (storage.ServerKey, error) {
		var (
			k       storage.ServerKey
			keyID   sql.NullString
			blob    []byte
			created int64
		)
		if err := row.Scan(&k.Purpose, &k.ID, &keyID, &blob, &created); err != nil {
			return storage.ServerKey{}, err
		}
		k.Key = sealedFromColumns(keyID, blob)
		k.CreatedAt = fromMicros(created)
		return k, nil
	})
}

// DeleteServerKey removes the key id of purpose, or returns
// storage.ErrNotFound.
func (s *Store) DeleteServerKey(ctx context.Context, purpose, id string) error {
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx, `DELETE FROM server_keys WHERE purpose = ? AND id = ?`, purpose, id)
		if err != nil {
			return fmt.Errorf("sqlstore: delete server key %s/%s: %w", purpose, id, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: server key %s/%s: %w", purpose, id, storage.ErrNotFound)
		}
		return nil
	})
}
