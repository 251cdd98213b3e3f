package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/behalf-dev/behalf/internal/storage"
)

// resourceRow names the table and key column of the row a taggable resource
// lives in: the resource exists exactly when that row does.
func resourceRow(kind storage.ResourceKind) (table, key string, err error) {
	switch kind {
	case storage.KindWorkloadIdentity:
		return "workload_identities", "name", nil
	case storage.KindOAuth2Provider:
		return "oauth2_providers", "name", nil
	case storage.KindAPIKeyProvider:
		return "api_key_providers", "name", nil
	case storage.KindTokenVault:
		return "token_vaults", "id", nil
	case storage.KindConsentPortal:
		return "consent_portals", "id", nil
	}
	return "", "", fmt.Errorf("sqlstore: resource kind %q cannot be tagged", kind)
}

// findResource returns ErrNotFound unless r exists. With suffix FOR UPDATE
// it also locks the resource row, which serialises every tag change to r.
func findResource(ctx context.Context, c conn, r storage.Resource, suffix string) error {
	table, key, err := resourceRow(r.Kind)
	if err != nil {
		return err
	}
	var one int
	err = c.queryRow(ctx, `SELECT 1 FROM `+table+` WHERE `+key+` = ?`+suffix, r.Name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: %s %q: %w", r.Kind, r.Name, storage.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: find %s %q: %w", r.Kind, r.Name, err)
	}
	return nil
}

// addTags merges tags into r's and fails with ErrTooManyTags when r would end
// up with more than storage.MaxTags; the caller's transaction then rolls the
// merge back.
func addTags(ctx context.Context, tx conn, r storage.Resource, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	if len(tags) > storage.MaxTags {
		return fmt.Errorf("sqlstore: tag %s %q: %w", r.Kind, r.Name, storage.ErrTooManyTags)
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if _, err := tx.exec(ctx,
			`INSERT INTO tags (resource_kind, resource_name, tag_key, tag_value) VALUES (?, ?, ?, ?)
			ON CONFLICT (resource_kind, resource_name, tag_key) DO UPDATE SET tag_value = excluded.tag_value`,
			string(r.Kind), r.Name, k, tags[k]); err != nil {
			return fmt.Errorf("sqlstore: tag %s %q: %w", r.Kind, r.Name, err)
		}
	}
	var n int
	if err := tx.queryRow(ctx,
		`SELECT COUNT(*) FROM tags WHERE resource_kind = ? AND resource_name = ?`,
		string(r.Kind), r.Name).Scan(&n); err != nil {
		return fmt.Errorf("sqlstore: count tags of %s %q: %w", r.Kind, r.Name, err)
	}
	if n > storage.MaxTags {
		return fmt.Errorf("sqlstore: tag %s %q: %d tags: %w", r.Kind, r.Name, n, storage.ErrTooManyTags)
	}
	return nil
}

func deleteTags(ctx context.Context, tx conn, r storage.Resource) error {
	if _, err := tx.exec(ctx, `DELETE FROM tags WHERE resource_kind = ? AND resource_name = ?`,
		string(r.Kind), r.Name); err != nil {
		return fmt.Errorf("sqlstore: delete tags of %s %q: %w", r.Kind, r.Name, err)
	}
	return nil
}

// TagResource adds or replaces tags on r, or returns storage.ErrNotFound
// when r does not exist.
func (s *Store) TagResource(ctx context.Context, r storage.Resource, tags map[string]string) error {
	return s.inTx(ctx, func(tx conn) error {
		if err := findResource(ctx, tx, r, s.dialect.forUpdate()); err != nil {
			return err
		}
		return addTags(ctx, tx, r, tags)
	})
}

// UntagResource removes the tags keys from r (absent keys are no error),
// or returns storage.ErrNotFound when r does not exist.
func (s *Store) UntagResource(ctx context.Context, r storage.Resource, keys []string) error {
	return s.inTx(ctx, func(tx conn) error {
		if err := findResource(ctx, tx, r, s.dialect.forUpdate()); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.exec(ctx,
				`DELETE FROM tags WHERE resource_kind = ? AND resource_name = ? AND tag_key = ?`,
				string(r.Kind), r.Name, k); err != nil {
				return fmt.Errorf("sqlstore: untag %s %q: %w", r.Kind, r.Name, err)
			}
		}
		return nil
	})
}

// ListTags returns r's tags, or storage.ErrNotFound when r does not exist.
func (s *Store) ListTags(ctx context.Context, r storage.Resource) (map[string]string, error) {
	c := s.reads()
	if err := findResource(ctx, c, r, ""); err != nil {
		return nil, err
	}
	// A resource never carries more than MaxTags; the limit only bounds
	// what a corrupted table could make us read.
	rows, err := c.query(ctx,
		`SELECT tag_key, tag_value FROM tags WHERE resource_kind = ? AND resource_name = ? ORDER BY tag_key LIMIT ?`,
		string(r.Kind), r.Name, storage.MaxTags)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list tags of %s %q: %w", r.Kind, r.Name, err)
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
	tags := make(map[string]string)
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("sqlstore: read tags of %s %q: %w", r.Kind, r.Name, err)
		}
		tags[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: read tags of %s %q: %w", r.Kind, r.Name, err)
	}
	return tags, nil
}
