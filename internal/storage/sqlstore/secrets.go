package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/behalf-dev/behalf/internal/storage"
)

// sealedColumn is one place a sealed secret is stored. Key rotation walks
// every entry, so a new table with a sealed column needs one more entry in
// sealedColumns and nothing else.
type sealedColumn struct {
	kind  storage.SecretKind
	table string
	// owner is the column whose value the vault binds the ciphertext to.
	owner string
	keyID string
	blob  string
}

func sealedColumns() []sealedColumn {
	return []sealedColumn{
		{kind: storage.SecretPrincipal, table: "principals", owner: "access_key_id", keyID: "secret_key_id", blob: "secret"},
		{kind: storage.SecretOAuth2ClientSecret, table: "oauth2_providers", owner: "id", keyID: "client_secret_key_id", blob: "client_secret"},
		{kind: storage.SecretAPIKey, table: "api_key_providers", owner: "id", keyID: "api_key_key_id", blob: "api_key"},
	}
}

func sealedColumnOf(kind storage.SecretKind) (sealedColumn, error) {
	for _, c := range sealedColumns() {
		if c.kind == kind {
			return c, nil
		}
	}
	return sealedColumn{}, fmt.Errorf("sqlstore: unknown secret kind %q", kind)
}

// ListStaleSecrets returns up to limit (<= 0 means 100, at most 1000) sealed
// secrets whose key id is not keyID. Rows without a secret are skipped.
func (s *Store) ListStaleSecrets(ctx context.Context, keyID string, limit int) ([]storage.SealedRef, error) {
	limit = pageLimit(limit)
	var refs []storage.SealedRef
	for _, col := range sealedColumns() {
		if len(refs) >= limit {
			break
		}
		rows, err := s.reads().query(ctx,
			`SELECT `+col.owner+`, `+col.keyID+`, `+col.blob+` FROM `+col.table+
				` WHERE `+col.keyID+` IS NOT NULL AND `+col.keyID+` <> ? ORDER BY `+col.owner+` LIMIT ?`,
			keyID, limit-len(refs))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list stale %s: %w", col.kind, err)
		}
		found, err := collect(rows, col.table, func(row scanner) (storage.SealedRef, error) {
			ref := storage.SealedRef{Kind: col.kind}
			err := row.Scan(&ref.Owner, &ref.Sealed.KeyID, &ref.Sealed.Blob)
			return ref, err
		})
		if err != nil {
			return nil, err
		}
		refs = append(refs, found...)
	}
	return refs, nil
}

// ReplaceSecret swaps ref's ciphertext for next only if the stored key id
// and blob still equal ref.Sealed.
func (s *Store) ReplaceSecret(ctx context.Context, ref storage.SealedRef, next storage.Sealed) error {
	col, err := sealedColumnOf(ref.Kind)
	if err != nil {
		return err
	}
	if next.IsZero() {
		return fmt.Errorf("sqlstore: replace %s of %q: empty replacement", ref.Kind, ref.Owner)
	}
	nextKeyID, nextBlob := sealedArgs(next)
	return s.inTx(ctx, func(tx conn) error {
		swapped, err := tx.execOne(ctx,
			`UPDATE `+col.table+` SET `+col.keyID+` = ?, `+col.blob+` = ?
			WHERE `+col.owner+` = ? AND `+col.keyID+` = ? AND `+col.blob+` = ?`,
			nextKeyID, nextBlob, ref.Owner, ref.Sealed.KeyID, ref.Sealed.Blob)
		if err != nil {
			return fmt.Errorf("sqlstore: replace %s of %q: %w", ref.Kind, ref.Owner, err)
		}
		if swapped {
			return nil
		}
		var one int
		err = tx.queryRow(ctx, `SELECT 1 FROM `+col.table+` WHERE `+col.owner+` = ?`, ref.Owner).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlstore: %s of %q: %w", ref.Kind, ref.Owner, storage.ErrNotFound)
		case err != nil:
			return fmt.Errorf("sqlstore: replace %s of %q: %w", ref.Kind, ref.Owner, err)
		}
		return fmt.Errorf("sqlstore: %s of %q changed since it was read: %w", ref.Kind, ref.Owner, storage.ErrConflict)
	})
}
