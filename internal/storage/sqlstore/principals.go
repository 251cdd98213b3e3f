package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/behalf-dev/behalf/internal/storage"
)

const principalColumns = `access_key_id, secret_key_id, secret, role, workloads, operations, description, created_at, updated_at`

// bootstrapLockKey names the PostgreSQL advisory lock that serialises
// BootstrapPrincipal across replicas.
const bootstrapLockKey int64 = 0x6265_6861_6c66_0001

func scanPrincipal(row scanner) (storage.Principal, error) {
	var (
		p                storage.Principal
		role, workloads  string
		operations       string
		secretKeyID      sql.NullString
		secret           []byte
		created, updated int64
	)
	if err := row.Scan(&p.AccessKeyID, &secretKeyID, &secret, &role, &workloads, &operations, &p.Description, &created, &updated); err != nil {
		return storage.Principal{}, err
	}
	p.Secret = sealedFromColumns(secretKeyID, secret)
	p.Role = storage.Role(role)
	if err := decodeJSON("principals.workloads", workloads, &p.Workloads); err != nil {
		return storage.Principal{}, err
	}
	if err := decodeJSON("principals.operations", operations, &p.Operations); err != nil {
		return storage.Principal{}, err
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return p, nil
}

func getPrincipal(ctx context.Context, c conn, accessKeyID, suffix string) (storage.Principal, error) {
	p, err := scanPrincipal(c.queryRow(ctx,
		`SELECT `+principalColumns+` FROM principals WHERE access_key_id = ?`+suffix, accessKeyID))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("sqlstore: principal %q: %w", accessKeyID, storage.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("sqlstore: get principal %q: %w", accessKeyID, err)
	}
	return p, nil
}

// insertPrincipal inserts p and reports false when its access key id is
// taken.
func insertPrincipal(ctx context.Context, c conn, p storage.Principal) (bool, error) {
	workloads, operations, err := encodePrincipalLists(p)
	if err != nil {
		return false, err
	}
	keyID, secret := sealedArgs(p.Secret)
	ok, err := c.execOne(ctx,
		`INSERT INTO principals (`+principalColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		p.AccessKeyID, keyID, secret, string(p.Role), workloads, operations, p.Description, micros(p.CreatedAt), micros(p.UpdatedAt))
	if err != nil {
		return false, fmt.Errorf("sqlstore: insert principal %q: %w", p.AccessKeyID, err)
	}
	return ok, nil
}

func encodePrincipalLists(p storage.Principal) (workloads, operations string, err error) {
	if workloads, err = encodeJSON(p.Workloads); err == nil {
		operations, err = encodeJSON(p.Operations)
	}
	if err != nil {
		return "", "", fmt.Errorf("sqlstore: encode principal %q: %w", p.AccessKeyID, err)
	}
	return workloads, operations, nil
}

// CreatePrincipal stores p, or returns storage.ErrAlreadyExists for a
// taken access key id.
func (s *Store) CreatePrincipal(ctx context.Context, p storage.Principal) error {
	createdTimes(&p.CreatedAt, &p.UpdatedAt, s.timestamp())
	return s.inTx(ctx, func(tx conn) error {
		ok, err := insertPrincipal(ctx, tx, p)
		if err == nil && !ok {
			err = fmt.Errorf("sqlstore: principal %q: %w", p.AccessKeyID, storage.ErrAlreadyExists)
		}
		return err
	})
}

// BootstrapPrincipal stores p only while no principal exists, in one
// transaction, so that of replicas starting together one bootstraps. It
// reports whether p was stored.
func (s *Store) BootstrapPrincipal(ctx context.Context, p storage.Principal) (bool, error) {
	createdTimes(&p.CreatedAt, &p.UpdatedAt, s.timestamp())
	var created bool
	err := s.inTx(ctx, func(tx conn) error {
		// SQLite's IMMEDIATE transaction already excludes other writers;
		// PostgreSQL needs a lock that also covers the empty table.
		if s.dialect == dialectPostgres {
			if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, bootstrapLockKey); err != nil {
				return fmt.Errorf("sqlstore: bootstrap lock: %w", err)
			}
		}
		var exists bool
		if err := tx.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM principals)`).Scan(&exists); err != nil {
			return fmt.Errorf("sqlstore: count principals: %w", err)
		}
		if exists {
			return nil
		}
		ok, err := insertPrincipal(ctx, tx, p)
		created = ok
		return err
	})
	return created && err == nil, err
}

// GetPrincipal returns the principal of accessKeyID with its secret still
// sealed, or storage.ErrNotFound.
func (s *Store) GetPrincipal(ctx context.Context, accessKeyID string) (storage.Principal, error) {
	return getPrincipal(ctx, s.reads(), accessKeyID, "")
}

// ListPrincipals returns a page of principals in access key id order.
func (s *Store) ListPrincipals(ctx context.Context, page storage.Page) ([]storage.Principal, error) {
	rows, err := s.reads().query(ctx,
		`SELECT `+principalColumns+` FROM principals WHERE access_key_id > ? ORDER BY access_key_id LIMIT ?`,
		page.After, pageLimit(page.Limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list principals: %w", err)
	}
	return collect(rows, "principals", scanPrincipal)
}

// UpdatePrincipal runs fn on the locked principal and stores its result.
func (s *Store) UpdatePrincipal(ctx context.Context, accessKeyID string, fn func(storage.Principal) (storage.Principal, error)) (storage.Principal, error) {
	var stored storage.Principal
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getPrincipal(ctx, tx, accessKeyID, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.AccessKeyID, next.CreatedAt, next.UpdatedAt = cur.AccessKeyID, cur.CreatedAt, s.timestamp()
		workloads, operations, err := encodePrincipalLists(next)
		if err != nil {
			return err
		}
		keyID, secret := sealedArgs(next.Secret)
		if _, err := tx.exec(ctx,
			`UPDATE principals SET secret_key_id = ?, secret = ?, role = ?, workloads = ?, operations = ?, description = ?, updated_at = ?
			WHERE access_key_id = ?`,
			keyID, secret, string(next.Role), workloads, operations, next.Description, micros(next.UpdatedAt), accessKeyID); err != nil {
			return fmt.Errorf("sqlstore: update principal %q: %w", accessKeyID, err)
		}
		stored = next
		return nil
	})
	if err != nil {
		return storage.Principal{}, err
	}
	return stored, nil
}

// DeletePrincipal removes the principal of accessKeyID, or returns
// storage.ErrNotFound.
func (s *Store) DeletePrincipal(ctx context.Context, accessKeyID string) error {
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx, `DELETE FROM principals WHERE access_key_id = ?`, accessKeyID)
		if err != nil {
			return fmt.Errorf("sqlstore: delete principal %q: %w", accessKeyID, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: principal %q: %w", accessKeyID, storage.ErrNotFound)
		}
		return nil
	})
}
