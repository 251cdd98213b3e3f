package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/behalf-dev/behalf/internal/storage"
)

// sealedColumn is one place a sealed secret is stored. Key rotation walks
// every entry, so a new table with a sealed column needs one more entry in
// sealedColumns and nothing else.
type sealedColumn struct {
	kind  storage.SecretKind
	table string
	// key lists the columns that identify a row. Their values are, in
	// order, the Owner, Workload and User of the vault binding, unless
	// ownerSep is set: then they are joined with it into the Owner.
	key      []string
	ownerSep string
	keyID    string
	blob     string
}

func sealedColumns() []sealedColumn {
	return []sealedColumn{
		{kind: storage.SecretPrincipal, table: "principals", key: []string{"access_key_id"}, keyID: "secret_key_id", blob: "secret"},
		{kind: storage.SecretOAuth2ClientSecret, table: "oauth2_providers", key: []string{"id"}, keyID: "client_secret_key_id", blob: "client_secret"},
		{kind: storage.SecretAPIKey, table: "api_key_providers", key: []string{"id"}, keyID: "api_key_key_id", blob: "api_key"},
		// Purposes contain no slash (CreateServerKey refuses them), so the
		// Owner "<purpose>/<id>" splits back unambiguously.
		{kind: storage.SecretServerKey, table: "server_keys", key: []string{"purpose", "id"}, ownerSep: "/", keyID: "key_key_id", blob: "key_blob"},
		{kind: storage.SecretCachedToken, table: "cached_tokens", key: []string{"provider_id", "workload", "cache_key"}, keyID: "token_key_id", blob: "token"},
		{kind: storage.SecretSession, table: "oauth_sessions", key: []string{"id", "workload", "user_key"}, keyID: "secrets_key_id", blob: "secrets"},
		{kind: storage.SecretConnection, table: "connections", key: []string{"provider_id", "workload", "user_key"}, keyID: "tokens_key_id", blob: "tokens"},
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

// ref fills the binding fields of a reference from a row's key values.
func (c sealedColumn) ref(key []string) storage.SealedRef {
	ref := storage.SealedRef{Kind: c.kind}
	if c.ownerSep != "" {
		ref.Owner = strings.Join(key, c.ownerSep)
		return ref
	}
	fields := []*string{&ref.Owner, &ref.Workload, &ref.User}
	for i, v := range key {
		*fields[i] = v
	}
	return ref
}

// keyArgs returns the key values ref names, or false when ref cannot name
// a row of the table at all.
func (c sealedColumn) keyArgs(ref storage.SealedRef) ([]any, bool) {
	var vals []string
	if c.ownerSep != "" {
		vals = strings.SplitN(ref.Owner, c.ownerSep, len(c.key))
		if len(vals) != len(c.key) || ref.Workload != "" || ref.User != "" {
			return nil, false
		}
	} else {
		fields := []string{ref.Owner, ref.Workload, ref.User}
		for _, extra := range fields[len(c.key):] {
			if extra != "" {
				return nil, false
			}
		}
		vals = fields[:len(c.key)]
	}
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return args, true
}

// keyMatch is the WHERE condition selecting one row by its key.
func (c sealedColumn) keyMatch() string {
	return strings.Join(c.key, ` = ? AND `) + ` = ?`
}

// ListStaleSecrets returns up to limit (<= 0 means 100, at most 1000) sealed
// secrets whose key id is not the one target names for their kind. Rows
// without a secret, or with a Lost one, are skipped.
func (s *Store) ListStaleSecrets(ctx context.Context, target storage.KeyTarget, limit int) ([]storage.SealedRef, error) {
	return s.ListStaleSecretsAfter(ctx, target, storage.SealedRef{}, limit)
}

// ListStaleSecretsAfter is ListStaleSecrets starting after the record after
// names, in the order of sealedColumns and then of each table's key.
func (s *Store) ListStaleSecretsAfter(ctx context.Context, target storage.KeyTarget, after storage.SealedRef, limit int) ([]storage.SealedRef, error) {
	limit = pageLimit(limit)
	columns := sealedColumns()
	var afterKey []any
	if after.Kind != "" {
		i := slices.IndexFunc(columns, func(c sealedColumn) bool { return c.kind == after.Kind })
		if i < 0 {
			return nil, fmt.Errorf("sqlstore: unknown secret kind %q", after.Kind)
		}
		var ok bool
		if afterKey, ok = columns[i].keyArgs(after); !ok {
			return nil, fmt.Errorf("sqlstore: %s of %q (workload %q, user %q) names no row to list after", after.Kind, after.Owner, after.Workload, after.User)
		}
		columns = columns[i:]
	}
	var refs []storage.SealedRef
	for i, col := range columns {
		if len(refs) >= limit {
			break
		}
		keys := strings.Join(col.key, ", ")
		where, args := col.keyID+` IS NOT NULL AND `+col.keyID+` <> ? AND length(`+col.blob+`) > 0`, []any{target(col.kind)}
		if i == 0 && afterKey != nil {
			// A row-value comparison, so the order matches ORDER BY keys.
			where += ` AND (` + keys + `) > (` + strings.Repeat("?, ", len(col.key)-1) + `?)`
			args = append(args, afterKey...)
		}
		rows, err := s.reads().query(ctx,
			`SELECT `+keys+`, `+col.keyID+`, `+col.blob+` FROM `+col.table+
				` WHERE `+where+` ORDER BY `+keys+` LIMIT ?`,
			append(args, limit-len(refs))...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list stale %s: %w", col.kind, err)
		}
		found, err := collect(rows, col.table, func(row scanner) (storage.SealedRef, error) {
			key := make([]string, len(col.key))
			dest := make([]any, 0, len(key)+2)
			for i := range key {
				dest = append(dest, &key[i])
			}
			var sealed storage.Sealed
			if err := row.Scan(append(dest, &sealed.KeyID, &sealed.Blob)...); err != nil {
				return storage.SealedRef{}, err
			}
			ref := col.ref(key)
			ref.Sealed = sealed
			return ref, nil
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
	key, ok := col.keyArgs(ref)
	if !ok {
		return fmt.Errorf("sqlstore: %s of %q (workload %q, user %q): %w", ref.Kind, ref.Owner, ref.Workload, ref.User, storage.ErrNotFound)
	}
	nextKeyID, nextBlob := sealedArgs(next)
	return s.inTx(ctx, func(tx conn) error {
		swapped, err := tx.execOne(ctx,
			`UPDATE `+col.table+` SET `+col.keyID+` = ?, `+col.blob+` = ?
			WHERE `+col.keyMatch()+` AND `+col.keyID+` = ? AND `+col.blob+` = ?`,
			append(append([]any{nextKeyID, nextBlob}, key...), ref.Sealed.KeyID, ref.Sealed.Blob)...)
		if err != nil {
			return fmt.Errorf("sqlstore: replace %s of %q: %w", ref.Kind, ref.Owner, err)
		}
		if swapped {
			return nil
		}
		var one int
		err = tx.queryRow(ctx, `SELECT 1 FROM `+col.table+` WHERE `+col.keyMatch(), key...).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlstore: %s of %q: %w", ref.Kind, ref.Owner, storage.ErrNotFound)
		case err != nil:
			return fmt.Errorf("sqlstore: replace %s of %q: %w", ref.Kind, ref.Owner, err)
		}
		return fmt.Errorf("sqlstore: %s of %q changed since it was read: %w", ref.Kind, ref.Owner, storage.ErrConflict)
	})
}
