package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/behalf-dev/behalf/internal/storage"
)

const consentPortalColumns = `id, name, description, execution_role_arn, provider, scopes, audience, sources, created_at, updated_at`

func scanConsentPortal(row scanner) (storage.ConsentPortal, error) {
	var (
		p                storage.ConsentPortal
		scopes, sources  string
		created, updated int64
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &p.ExecutionRoleARN, &p.Provider, &scopes, &p.Audience, &sources, &created, &updated); err != nil {
		return storage.ConsentPortal{}, err
	}
	if err := decodeJSON("consent_portals.scopes", scopes, &p.Scopes); err != nil {
		return storage.ConsentPortal{}, err
	}
	if err := decodeJSON("consent_portals.sources", sources, &p.Sources); err != nil {
		return storage.ConsentPortal{}, err
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return p, nil
}

func getConsentPortal(ctx context.Context, c conn, id, suffix string) (storage.ConsentPortal, error) {
	p, err := scanConsentPortal(c.queryRow(ctx,
		`SELECT `+consentPortalColumns+` FROM consent_portals WHERE id = ?`+suffix, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("sqlstore: consent portal %q: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("sqlstore: get consent portal %q: %w", id, err)
	}
	return p, nil
}

// CreateConsentPortal stores p and its tags in one transaction, or returns
// storage.ErrAlreadyExists when p's id or name is taken.
func (s *Store) CreateConsentPortal(ctx context.Context, p storage.ConsentPortal, tags map[string]string) error {
	createdTimes(&p.CreatedAt, &p.UpdatedAt, s.timestamp())
	scopes, err := encodeJSON(p.Scopes)
	if err != nil {
		return fmt.Errorf("sqlstore: encode consent portal %q: %w", p.ID, err)
	}
	sources, err := encodeJSON(p.Sources)
	if err != nil {
		return fmt.Errorf("sqlstore: encode consent portal %q: %w", p.ID, err)
	}
	return s.inTx(ctx, func(tx conn) error {
		// Either unique column may conflict; DO NOTHING covers both.
		ok, err := tx.execOne(ctx,
			`INSERT INTO consent_portals (`+consentPortalColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			p.ID, p.Name, p.Description, p.ExecutionRoleARN, p.Provider, scopes, p.Audience, sources, micros(p.CreatedAt), micros(p.UpdatedAt))
		if err != nil {
			return fmt.Errorf("sqlstore: insert consent portal %q: %w", p.ID, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: consent portal %q (%s): %w", p.ID, p.Name, storage.ErrAlreadyExists)
		}
		return addTags(ctx, tx, storage.Resource{Kind: storage.KindConsentPortal, Name: p.ID}, tags)
	})
}

// GetConsentPortal returns the consent portal with id, or
// storage.ErrNotFound.
func (s *Store) GetConsentPortal(ctx context.Context, id string) (storage.ConsentPortal, error) {
	return getConsentPortal(ctx, s.reads(), id, "")
}

// ListConsentPortals returns a page of consent portals in id order.
func (s *Store) ListConsentPortals(ctx context.Context, page storage.Page) ([]storage.ConsentPortal, error) {
	rows, err := s.reads().query(ctx,
		`SELECT `+consentPortalColumns+` FROM consent_portals WHERE id > ? ORDER BY id LIMIT ?`,
		page.After, pageLimit(page.Limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list consent portals: %w", err)
	}
	return collect(rows, "consent_portals", scanConsentPortal)
}

// UpdateConsentPortal runs fn on the locked consent portal and stores its
// result; the id, name, sources and creation time are kept as stored.
func (s *Store) UpdateConsentPortal(ctx context.Context, id string, fn func(storage.ConsentPortal) (storage.ConsentPortal, error)) (storage.ConsentPortal, error) {
	var stored storage.ConsentPortal
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getConsentPortal(ctx, tx, id, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.ID, next.Name, next.Sources, next.CreatedAt, next.UpdatedAt = cur.ID, cur.Name, cur.Sources, cur.CreatedAt, s.timestamp()
		scopes, err := encodeJSON(next.Scopes)
		if err != nil {
			return fmt.Errorf("sqlstore: encode consent portal %q: %w", id, err)
		}
		if _, err := tx.exec(ctx,
			`UPDATE consent_portals SET description = ?, execution_role_arn = ?, provider = ?, scopes = ?, audience = ?, updated_at = ?
			WHERE id = ?`,
			next.Description, next.ExecutionRoleARN, next.Provider, scopes, next.Audience, micros(next.UpdatedAt), id); err != nil {
			return fmt.Errorf("sqlstore: update consent portal %q: %w", id, err)
		}
		stored = next
		return nil
	})
	if err != nil {
		return storage.ConsentPortal{}, err
	}
	return stored, nil
}

// DeleteConsentPortal removes the consent portal with id and its tags, or
// returns storage.ErrNotFound.
func (s *Store) DeleteConsentPortal(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx, `DELETE FROM consent_portals WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("sqlstore: delete consent portal %q: %w", id, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: consent portal %q: %w", id, storage.ErrNotFound)
		}
		return deleteTags(ctx, tx, storage.Resource{Kind: storage.KindConsentPortal, Name: id})
	})
}
