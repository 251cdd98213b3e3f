package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

const cachedTokenColumns = `provider_id, workload, cache_key, token_key_id, token, expires_at, created_at` //nolint:gosec // G101: column names, not a credential

// GetCachedToken returns the token cached for (providerID, workload, key)
// with its secret still sealed, expired or not, or storage.ErrNotFound.
func (s *Store) GetCachedToken(ctx context.Context, providerID, workload, key string) (storage.CachedToken, error) {
	var (
		t                storage.CachedToken
		keyID            sql.NullString
		blob             []byte
		expires, created int64
	)
	err := s.reads().queryRow(ctx,
		`SELECT `+cachedTokenColumns+` FROM cached_tokens WHERE provider_id = ? AND workload = ? AND cache_key = ?`,
		providerID, workload, key).
		Scan(&t.ProviderID, &t.Workload, &t.Key, &keyID, &blob, &expires, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.CachedToken{}, fmt.Errorf("sqlstore: cached token of provider %q for %q: %w", providerID, workload, storage.ErrNotFound)
	}
	if err != nil {
		return storage.CachedToken{}, fmt.Errorf("sqlstore: get cached token of provider %q for %q: %w", providerID, workload, err)
	}
	t.Token = sealedFromColumns(keyID, blob)
	t.ExpiresAt, t.CreatedAt = fromMicros(expires), fromMicros(created)
	return t, nil
}

// PutCachedToken returns ErrNotFound when the provider id or the workload
// identity does not exist. It holds both rows (FOR SHARE on PostgreSQL)
// until it commits, so a token fetched while its provider or workload is
// being deleted or updated is either deleted with them or never stored.
func (s *Store) PutCachedToken(ctx context.Context, t storage.CachedToken) error {
	if t.Token.IsZero() {
		return fmt.Errorf("sqlstore: cached token of provider %q for %q: no token", t.ProviderID, t.Workload)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.timestamp()
	}
	keyID, blob := sealedArgs(t.Token)
	return s.inTx(ctx, func(tx conn) error {
		for _, parent := range []struct{ what, table, column, value string }{
			{"oauth2 provider with id", "oauth2_providers", "id", t.ProviderID},
			{"workload identity", "workload_identities", "name", t.Workload},
		} {
			var one int
			err := tx.queryRow(ctx,
				`SELECT 1 FROM `+parent.table+` WHERE `+parent.column+` = ?`+s.dialect.forShare(), parent.value).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("sqlstore: cache token: %s %q: %w", parent.what, parent.value, storage.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("sqlstore: cache token: find %s %q: %w", parent.what, parent.value, err)
			}
		}
		if _, err := tx.exec(ctx,
			`INSERT INTO cached_tokens (`+cachedTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (provider_id, workload, cache_key) DO UPDATE SET
				token_key_id = excluded.token_key_id, token = excluded.token,
				expires_at = excluded.expires_at, created_at = excluded.created_at`,
			t.ProviderID, t.Workload, t.Key, keyID, blob, micros(t.ExpiresAt), micros(t.CreatedAt)); err != nil {
			return fmt.Errorf("sqlstore: put cached token of provider %q for %q: %w", t.ProviderID, t.Workload, err)
		}
		return nil
	})
}

// DeleteExpiredCachedTokens removes the tokens that expired before t and
// reports how many.
func (s *Store) DeleteExpiredCachedTokens(ctx context.Context, t time.Time) (int, error) {
	return s.deleteBefore(ctx, "cached_tokens", "expires_at", "expired cached tokens", t)
}

// deleteCachedTokens deletes the tokens whose column equals value, inside
// the transaction that deletes or changes their owner.
func deleteCachedTokens(ctx context.Context, tx conn, column, value string) error {
	if _, err := tx.exec(ctx, `DELETE FROM cached_tokens WHERE `+column+` = ?`, value); err != nil {
		return fmt.Errorf("sqlstore: delete cached tokens with %s %q: %w", column, value, err)
	}
	return nil
}
