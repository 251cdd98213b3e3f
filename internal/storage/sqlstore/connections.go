package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// Users' connections and their refresh leases. Error messages name the
// provider id and the workload but not the user.

const connectionColumns = `provider_id, workload, user_key, status, scopes, details, tokens_key_id, tokens, expires_at, version, lease_owner, lease_until, lease_token, created_at, updated_at, last_used_at`

const connectionKeyMatch = `provider_id = ? AND workload = ? AND user_key = ?`

func connectionKeyArgs(k storage.ConnectionKey) []any {
	return []any{k.ProviderID, k.Workload, k.User}
}

func scanConnection(row scanner) (storage.Connection, error) {
	var (
		c                         storage.Connection
		status, scopes            string
		tokensKeyID               sql.NullString
		tokens                    []byte
		expires, leaseUntil       sql.NullInt64
		created, updated, lastUse int64
	)
	if err := row.Scan(&c.ProviderID, &c.Workload, &c.User, &status, &scopes, bytesColumn{&c.Details}, &tokensKeyID, &tokens,
		&expires, &c.Version, &c.LeaseOwner, &leaseUntil, &c.LeaseToken, &created, &updated, &lastUse); err != nil {
		return storage.Connection{}, err
	}
	c.Status = storage.ConnectionStatus(status)
	if err := decodeJSON("connections.scopes", scopes, &c.Scopes); err != nil {
		return storage.Connection{}, err
	}
	c.Tokens = sealedFromColumns(tokensKeyID, tokens)
	c.ExpiresAt, c.LeaseUntil = fromNullableMicros(expires), fromNullableMicros(leaseUntil)
	c.CreatedAt, c.UpdatedAt, c.LastUsedAt = fromMicros(created), fromMicros(updated), fromMicros(lastUse)
	return c, nil
}

func getConnection(ctx context.Context, c conn, k storage.ConnectionKey, suffix string) (storage.Connection, error) {
	got, err := scanConnection(c.queryRow(ctx,
		`SELECT `+connectionColumns+` FROM connections WHERE `+connectionKeyMatch+suffix, connectionKeyArgs(k)...))
	if errors.Is(err, sql.ErrNoRows) {
		return got, fmt.Errorf("sqlstore: connection of %q for %q: %w", k.ProviderID, k.Workload, storage.ErrNotFound)
	}
	if err != nil {
		return got, fmt.Errorf("sqlstore: get connection of %q for %q: %w", k.ProviderID, k.Workload, err)
	}
	return got, nil
}

// GetConnection returns the connection k with its tokens still sealed, or
// storage.ErrNotFound.
func (s *Store) GetConnection(ctx context.Context, k storage.ConnectionKey) (storage.Connection, error) {
	return getConnection(ctx, s.reads(), k, "")
}

// ListConnections walks the primary key: a cursor compares as a row value.
func (s *Store) ListConnections(ctx context.Context, f storage.ConnectionFilter) ([]storage.Connection, error) {
	var (
		where []string
		args  []any
	)
	if f.After != (storage.ConnectionKey{}) {
		where = append(where, `(provider_id, workload, user_key) > (?, ?, ?)`)
		args = append(args, connectionKeyArgs(f.After)...)
	}
	for _, eq := range []struct{ column, value string }{
		{"provider_id", f.ProviderID},
		{"workload", f.Workload},
		{"user_key", f.User},
	} {
		if eq.value != "" {
			where = append(where, eq.column+` = ?`)
			args = append(args, eq.value)
		}
	}
	query := `SELECT ` + connectionColumns + ` FROM connections`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := s.reads().query(ctx, query+` ORDER BY provider_id, workload, user_key LIMIT ?`,
		append(args, pageLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list connections: %w", err)
	}
	return collect(rows, "connections", scanConnection)
}

// nextConnection returns what an updater's result next stores over cur:
// the key, CreatedAt and lease as stored, Version one up when Tokens or
// Status changed, UpdatedAt now, times as stored, and a zero LastUsedAt
// left as stored.
func (s *Store) nextConnection(cur, next storage.Connection) storage.Connection {
	next.ConnectionKey, next.CreatedAt = cur.ConnectionKey, cur.CreatedAt
	next.LeaseOwner, next.LeaseUntil, next.LeaseToken = cur.LeaseOwner, cur.LeaseUntil, cur.LeaseToken
	next.Version = cur.Version
	if next.Status != cur.Status || next.Tokens.KeyID != cur.Tokens.KeyID || !bytes.Equal(next.Tokens.Blob, cur.Tokens.Blob) {
		next.Version++
	}
	if next.LastUsedAt.IsZero() {
		next.LastUsedAt = cur.LastUsedAt
	}
	next.ExpiresAt, next.LastUsedAt, next.UpdatedAt = asStored(next.ExpiresAt), asStored(next.LastUsedAt), s.timestamp()
	return next
}

// storeConnection writes every column of an existing connection but its
// key and creation time.
func storeConnection(ctx context.Context, tx conn, c storage.Connection) error {
	scopes, err := encodeJSON(c.Scopes)
	if err != nil {
		return fmt.Errorf("sqlstore: encode connection of %q for %q: %w", c.ProviderID, c.Workload, err)
	}
	keyID, tokens := sealedArgs(c.Tokens)
	if _, err := tx.exec(ctx,
		`UPDATE connections SET status = ?, scopes = ?, details = ?, tokens_key_id = ?, tokens = ?, expires_at = ?,
			version = ?, lease_owner = ?, lease_until = ?, lease_token = ?, updated_at = ?, last_used_at = ?
		WHERE `+connectionKeyMatch,
		append([]any{string(c.Status), scopes, c.Details, keyID, tokens, nullableMicros(c.ExpiresAt),
			c.Version, c.LeaseOwner, nullableMicros(c.LeaseUntil), c.LeaseToken, micros(c.UpdatedAt), micros(c.LastUsedAt)},
			connectionKeyArgs(c.ConnectionKey)...)...); err != nil {
		return fmt.Errorf("sqlstore: update connection of %q for %q: %w", c.ProviderID, c.Workload, err)
	}
	return nil
}

// UpdateConnection runs fn on the locked row and stores its result, keeping
// the key, CreatedAt and the lease as stored and bumping Version when the
// tokens or the status changed.
func (s *Store) UpdateConnection(ctx context.Context, k storage.ConnectionKey, fn func(storage.Connection) (storage.Connection, error)) (storage.Connection, error) {
	var stored storage.Connection
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getConnection(ctx, tx, k, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next = s.nextConnection(cur, next)
		if err := storeConnection(ctx, tx, next); err != nil {
			return err
		}
		stored = next
		return nil
	})
	if err != nil {
		return storage.Connection{}, err
	}
	return stored, nil
}

// DeleteConnection removes the connection k, or returns
// storage.ErrNotFound.
func (s *Store) DeleteConnection(ctx context.Context, k storage.ConnectionKey) error {
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx, `DELETE FROM connections WHERE `+connectionKeyMatch, connectionKeyArgs(k)...)
		if err != nil {
			return fmt.Errorf("sqlstore: delete connection of %q for %q: %w", k.ProviderID, k.Workload, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: connection of %q for %q: %w", k.ProviderID, k.Workload, storage.ErrNotFound)
		}
		return nil
	})
}

// AcquireRefreshLease takes the lease in one short transaction on the
// locked row (FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE transaction
// already excludes every other writer). The lease's expiry is judged by
// this process's clock.
func (s *Store) AcquireRefreshLease(ctx context.Context, k storage.ConnectionKey, owner string, until time.Time) (storage.Connection, error) {
	switch {
	case owner == "":
		return storage.Connection{}, fmt.Errorf("sqlstore: refresh lease of %q for %q: empty owner", k.ProviderID, k.Workload)
	case until.IsZero():
		return storage.Connection{}, fmt.Errorf("sqlstore: refresh lease of %q for %q: no expiry", k.ProviderID, k.Workload)
	}
	var stored storage.Connection
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getConnection(ctx, tx, k, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		stored = cur
		if cur.LeaseOwner != "" && s.timestamp().Before(cur.LeaseUntil) {
			return fmt.Errorf("sqlstore: refresh lease of %q for %q is held until %s: %w",
				k.ProviderID, k.Workload, cur.LeaseUntil.Format(time.RFC3339Nano), storage.ErrConflict)
		}
		next := cur
		next.LeaseOwner, next.LeaseUntil, next.LeaseToken = owner, asStored(until), cur.LeaseToken+1
		if _, err := tx.exec(ctx,
			`UPDATE connections SET lease_owner = ?, lease_until = ?, lease_token = ? WHERE `+connectionKeyMatch,
			append([]any{next.LeaseOwner, micros(next.LeaseUntil), next.LeaseToken}, connectionKeyArgs(k)...)...); err != nil {
			return fmt.Errorf("sqlstore: take refresh lease of %q for %q: %w", k.ProviderID, k.Workload, err)
		}
		stored = next
		return nil
	})
	switch {
	case errors.Is(err, storage.ErrConflict):
		return stored, err
	case err != nil:
		return storage.Connection{}, err
	}
	return stored, nil
}

// RenewRefreshLease moves the lease's end while owner still holds the
// lease granted with leaseToken.
func (s *Store) RenewRefreshLease(ctx context.Context, k storage.ConnectionKey, owner string, leaseToken int64, until time.Time) error {
	switch {
	case owner == "":
		return fmt.Errorf("sqlstore: renew refresh lease of %q for %q: empty owner", k.ProviderID, k.Workload)
	case until.IsZero():
		return fmt.Errorf("sqlstore: renew refresh lease of %q for %q: no expiry", k.ProviderID, k.Workload)
	}
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx,
			`UPDATE connections SET lease_until = ? WHERE `+connectionKeyMatch+` AND lease_owner = ? AND lease_token = ?`,
			append(append([]any{micros(asStored(until))}, connectionKeyArgs(k)...), owner, leaseToken)...)
		switch {
		case err != nil:
			return fmt.Errorf("sqlstore: renew refresh lease of %q for %q: %w", k.ProviderID, k.Workload, err)
		case ok:
			return nil
		}
		if _, err := getConnection(ctx, tx, k, ""); err != nil {
			return err
		}
		return fmt.Errorf("sqlstore: renew refresh lease %d of %q for %q: no longer held: %w", leaseToken, k.ProviderID, k.Workload, storage.ErrConflict)
	})
}

// FinishRefresh checks the fence and stores fn's result in one transaction
// on the locked row, so that a holder whose lease was taken over can never
// overwrite the newer holder's result.
func (s *Store) FinishRefresh(ctx context.Context, k storage.ConnectionKey, owner string, leaseToken int64, fn func(storage.Connection) (storage.Connection, error)) (storage.Connection, error) {
	if owner == "" {
		// An empty owner would match a connection no one holds.
		return storage.Connection{}, fmt.Errorf("sqlstore: finish refresh of %q for %q: empty owner", k.ProviderID, k.Workload)
	}
	var stored storage.Connection
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getConnection(ctx, tx, k, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		stored = cur
		if cur.LeaseOwner != owner || cur.LeaseToken != leaseToken {
			return fmt.Errorf("sqlstore: finish refresh of %q for %q: lease %d is no longer held: %w",
				k.ProviderID, k.Workload, leaseToken, storage.ErrConflict)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next = s.nextConnection(cur, next)
		next.LeaseOwner, next.LeaseUntil = "", time.Time{}
		if err := storeConnection(ctx, tx, next); err != nil {
			return err
		}
		stored = next
		return nil
	})
	switch {
	case errors.Is(err, storage.ErrConflict):
		return stored, err
	case err != nil:
		return storage.Connection{}, err
	}
	return stored, nil
}

// DeleteIdleConnections removes the connections last used before before,
// whatever their lease, and reports how many.
func (s *Store) DeleteIdleConnections(ctx context.Context, before time.Time) (int, error) {
	return s.deleteBefore(ctx, "connections", "last_used_at", "idle connections", before)
}
