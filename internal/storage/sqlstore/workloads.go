package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/behalf-dev/behalf/internal/storage"
)

const workloadColumns = `name, allowed_return_urls, allowed_authorizers, allowed_providers, created_at, updated_at`

func scanWorkload(row scanner) (storage.WorkloadIdentity, error) {
	var (
		w                               storage.WorkloadIdentity
		returnURLs, authorizers, grants string
		created, updated                int64
	)
	if err := row.Scan(&w.Name, &returnURLs, &authorizers, &grants, &created, &updated); err != nil {
		return storage.WorkloadIdentity{}, err
	}
	for _, col := range []struct {
		name, text string
		dst        any
	}{
		{"allowed_return_urls", returnURLs, &w.AllowedReturnURLs},
		{"allowed_authorizers", authorizers, &w.AllowedAuthorizers},
		{"allowed_providers", grants, &w.AllowedProviders},
	} {
		if err := decodeJSON("workload_identities."+col.name, col.text, col.dst); err != nil {
			return storage.WorkloadIdentity{}, err
		}
	}
	w.CreatedAt, w.UpdatedAt = fromMicros(created), fromMicros(updated)
	return w, nil
}

// workloadLists encodes the JSON list columns of w.
func workloadLists(w storage.WorkloadIdentity) (returnURLs, authorizers, grants string, err error) {
	if returnURLs, err = encodeJSON(w.AllowedReturnURLs); err != nil {
		return "", "", "", err
	}
	if authorizers, err = encodeJSON(w.AllowedAuthorizers); err != nil {
		return "", "", "", err
	}
	if grants, err = encodeJSON(w.AllowedProviders); err != nil {
		return "", "", "", err
	}
	return returnURLs, authorizers, grants, nil
}

func getWorkload(ctx context.Context, c conn, name, suffix string) (storage.WorkloadIdentity, error) {
	w, err := scanWorkload(c.queryRow(ctx,
		`SELECT `+workloadColumns+` FROM workload_identities WHERE name = ?`+suffix, name))
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("sqlstore: workload identity %q: %w", name, storage.ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("sqlstore: get workload identity %q: %w", name, err)
	}
	return w, nil
}

// CreateWorkloadIdentity stores w and its tags in one transaction, or
// returns storage.ErrAlreadyExists for a taken name.
func (s *Store) CreateWorkloadIdentity(ctx context.Context, w storage.WorkloadIdentity, tags map[string]string) error {
	createdTimes(&w.CreatedAt, &w.UpdatedAt, s.timestamp())
	returnURLs, authorizers, grants, err := workloadLists(w)
	if err != nil {
		return fmt.Errorf("sqlstore: encode workload identity %q: %w", w.Name, err)
	}
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx,
			`INSERT INTO workload_identities (`+workloadColumns+`) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			w.Name, returnURLs, authorizers, grants, micros(w.CreatedAt), micros(w.UpdatedAt))
		if err != nil {
			return fmt.Errorf("sqlstore: insert workload identity %q: %w", w.Name, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: workload identity %q: %w", w.Name, storage.ErrAlreadyExists)
		}
		return addTags(ctx, tx, storage.Resource{Kind: storage.KindWorkloadIdentity, Name: w.Name}, tags)
	})
}

// GetWorkloadIdentity returns the workload identity named name, or
// storage.ErrNotFound.
func (s *Store) GetWorkloadIdentity(ctx context.Context, name string) (storage.WorkloadIdentity, error) {
	return getWorkload(ctx, s.reads(), name, "")
}

// ListWorkloadIdentities returns a page of workload identities in name
// order.
func (s *Store) ListWorkloadIdentities(ctx context.Context, page storage.Page) ([]storage.WorkloadIdentity, error) {
	rows, err := s.reads().query(ctx,
		`SELECT `+workloadColumns+` FROM workload_identities WHERE name > ? ORDER BY name LIMIT ?`,
		page.After, pageLimit(page.Limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list workload identities: %w", err)
	}
	return collect(rows, "workload_identities", scanWorkload)
}

// UpdateWorkloadIdentity runs fn on the locked workload identity and
// stores its result.
func (s *Store) UpdateWorkloadIdentity(ctx context.Context, name string, fn func(storage.WorkloadIdentity) (storage.WorkloadIdentity, error)) (storage.WorkloadIdentity, error) {
	var stored storage.WorkloadIdentity
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getWorkload(ctx, tx, name, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.Name, next.CreatedAt, next.UpdatedAt = cur.Name, cur.CreatedAt, s.timestamp()
		returnURLs, authorizers, grants, err := workloadLists(next)
		if err != nil {
			return fmt.Errorf("sqlstore: encode workload identity %q: %w", name, err)
		}
		if _, err := tx.exec(ctx,
			`UPDATE workload_identities SET allowed_return_urls = ?, allowed_authorizers = ?, allowed_providers = ?, updated_at = ?
			WHERE name = ?`,
			returnURLs, authorizers, grants, micros(next.UpdatedAt), name); err != nil {
			return fmt.Errorf("sqlstore: update workload identity %q: %w", name, err)
		}
		stored = next
		return nil
	})
	if err != nil {
		return storage.WorkloadIdentity{}, err
	}
	return stored, nil
}

// DeleteWorkloadIdentity removes the workload identity named name with
// its tags, sessions, connections and cached tokens, or returns
// storage.ErrNotFound.
func (s *Store) DeleteWorkloadIdentity(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx, `DELETE FROM workload_identities WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("sqlstore: delete workload identity %q: %w", name, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: workload identity %q: %w", name, storage.ErrNotFound)
		}
		// The row is gone (and locked on PostgreSQL) before its tokens,
		// sessions and connections go, so a concurrent PutCachedToken,
		// CreateOAuthSession or CompleteOAuthSession cannot leave one behind.
		if err := deleteCachedTokens(ctx, tx, "workload", name); err != nil {
			return err
		}
		if err := deleteUserGrants(ctx, tx, "workload", name); err != nil {
			return err
		}
		return deleteTags(ctx, tx, storage.Resource{Kind: storage.KindWorkloadIdentity, Name: name})
	})
}
