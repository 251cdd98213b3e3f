package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/behalf-dev/behalf/internal/storage"
)

// OAuth2 credential providers.

const oauth2Columns = `name, id, vendor, config, client_secret_key_id, client_secret, secret_id, secret_json_key, created_at, updated_at`

func scanOAuth2Provider(row scanner) (storage.OAuth2Provider, error) {
	var (
		p                storage.OAuth2Provider
		secretKeyID      sql.NullString
		secret           []byte
		secretID, key    sql.NullString
		created, updated int64
	)
	if err := row.Scan(&p.Name, &p.ID, &p.Vendor, &p.Config, &secretKeyID, &secret, &secretID, &key, &created, &updated); err != nil {
		return storage.OAuth2Provider{}, err
	}
	p.ClientSecret = sealedFromColumns(secretKeyID, secret)
	p.ExternalSecret = secretRefFromColumns(secretID, key)
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return p, nil
}

// getOAuth2Provider reads the provider whose column (name or id) equals
// value.
func getOAuth2Provider(ctx context.Context, c conn, column, value, suffix string) (storage.OAuth2Provider, error) {
	p, err := scanOAuth2Provider(c.queryRow(ctx,
		`SELECT `+oauth2Columns+` FROM oauth2_providers WHERE `+column+` = ?`+suffix, value))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("sqlstore: oauth2 provider with %s %q: %w", column, value, storage.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("sqlstore: get oauth2 provider with %s %q: %w", column, value, err)
	}
	return p, nil
}

// CreateOAuth2Provider stores p and its tags in one transaction, or returns
// storage.ErrAlreadyExists for a taken name.
func (s *Store) CreateOAuth2Provider(ctx context.Context, p storage.OAuth2Provider, tags map[string]string) error {
	createdTimes(&p.CreatedAt, &p.UpdatedAt, s.timestamp())
	keyID, secret := sealedArgs(p.ClientSecret)
	secretID, jsonKey := secretRefArgs(p.ExternalSecret)
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx,
			`INSERT INTO oauth2_providers (`+oauth2Columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			p.Name, p.ID, p.Vendor, p.Config, keyID, secret, secretID, jsonKey, micros(p.CreatedAt), micros(p.UpdatedAt))
		if err != nil {
			return fmt.Errorf("sqlstore: insert oauth2 provider %q: %w", p.Name, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: oauth2 provider %q or id %q: %w", p.Name, p.ID, storage.ErrAlreadyExists)
		}
		return addTags(ctx, tx, storage.Resource{Kind: storage.KindOAuth2Provider, Name: p.Name}, tags)
	})
}

// GetOAuth2Provider returns the provider named name with its client secret
// still sealed, or storage.ErrNotFound.
func (s *Store) GetOAuth2Provider(ctx context.Context, name string) (storage.OAuth2Provider, error) {
	return getOAuth2Provider(ctx, s.reads(), "name", name, "")
}

// GetOAuth2ProviderByID returns the provider whose immutable id is id, as
// sessions and connections name it, or storage.ErrNotFound.
func (s *Store) GetOAuth2ProviderByID(ctx context.Context, id string) (storage.OAuth2Provider, error) {
	return getOAuth2Provider(ctx, s.reads(), "id", id, "")
}

// ListOAuth2Providers returns a page of OAuth2 providers in name order.
func (s *Store) ListOAuth2Providers(ctx context.Context, page storage.Page) ([]storage.OAuth2Provider, error) {
	rows, err := s.reads().query(ctx,
		`SELECT `+oauth2Columns+` FROM oauth2_providers WHERE name > ? ORDER BY name LIMIT ?`,
		page.After, pageLimit(page.Limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list oauth2 providers: %w", err)
	}
	return collect(rows, "oauth2_providers", scanOAuth2Provider)
}

// UpdateOAuth2Provider runs fn on the locked provider and stores its
// result; the provider's cached tokens are deleted with the change.
func (s *Store) UpdateOAuth2Provider(ctx context.Context, name string, fn func(storage.OAuth2Provider) (storage.OAuth2Provider, error)) (storage.OAuth2Provider, error) {
	return s.updateOAuth2Provider(ctx, name, fn, false)
}

// RepointOAuth2Provider is UpdateOAuth2Provider that also deletes the
// provider's sessions and connections in the same transaction: their
// tokens came from the authorization server the provider no longer names.
func (s *Store) RepointOAuth2Provider(ctx context.Context, name string, fn func(storage.OAuth2Provider) (storage.OAuth2Provider, error)) (storage.OAuth2Provider, error) {
	return s.updateOAuth2Provider(ctx, name, fn, true)
}

// updateOAuth2Provider runs fn on the provider and stores its result;
// dropUserGrants also deletes the provider's sessions and connections.
func (s *Store) updateOAuth2Provider(ctx context.Context, name string, fn func(storage.OAuth2Provider) (storage.OAuth2Provider, error), dropUserGrants bool) (storage.OAuth2Provider, error) {
	var stored storage.OAuth2Provider
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getOAuth2Provider(ctx, tx, "name", name, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.Name, next.ID, next.CreatedAt, next.UpdatedAt = cur.Name, cur.ID, cur.CreatedAt, s.timestamp()
		keyID, secret := sealedArgs(next.ClientSecret)
		secretID, jsonKey := secretRefArgs(next.ExternalSecret)
		if _, err := tx.exec(ctx,
			`UPDATE oauth2_providers SET vendor = ?, config = ?, client_secret_key_id = ?, client_secret = ?,
			secret_id = ?, secret_json_key = ?, updated_at = ? WHERE name = ?`,
			next.Vendor, next.Config, keyID, secret, secretID, jsonKey, micros(next.UpdatedAt), name); err != nil {
			return fmt.Errorf("sqlstore: update oauth2 provider %q: %w", name, err)
		}
		// Tokens obtained under the old configuration must not outlive it.
		if err := deleteCachedTokens(ctx, tx, "provider_id", cur.ID); err != nil {
			return err
		}
		if dropUserGrants {
			if err := deleteUserGrants(ctx, tx, "provider_id", cur.ID); err != nil {
				return err
			}
		}
		stored = next
		return nil
	})
	if err != nil {
		return storage.OAuth2Provider{}, err
	}
	return stored, nil
}

// DeleteOAuth2Provider also deletes the provider's cached tokens, sessions
// and connections. The provider row goes first: on PostgreSQL that waits
// for any PutCachedToken, CreateOAuthSession or CompleteOAuthSession
// holding it, whose token, session or connection is then deleted too.
func (s *Store) DeleteOAuth2Provider(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx conn) error {
		var id string
		err := tx.queryRow(ctx, `DELETE FROM oauth2_providers WHERE name = ? RETURNING id`, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlstore: oauth2 provider %q: %w", name, storage.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: delete oauth2 provider %q: %w", name, err)
		}
		if err := deleteCachedTokens(ctx, tx, "provider_id", id); err != nil {
			return err
		}
		if err := deleteUserGrants(ctx, tx, "provider_id", id); err != nil {
			return err
		}
		return deleteTags(ctx, tx, storage.Resource{Kind: storage.KindOAuth2Provider, Name: name})
	})
}

// API-key credential providers.

const apiKeyColumns = `name, id, api_key_key_id, api_key, secret_id, secret_json_key, created_at, updated_at` //nolint:gosec // G101: column names, not a credential

func scanAPIKeyProvider(row scanner) (storage.APIKeyProvider, error) {
	var (
		p                storage.APIKeyProvider
		keyKeyID         sql.NullString
		key              []byte
		secretID, member sql.NullString
		created, updated int64
	)
	if err := row.Scan(&p.Name, &p.ID, &keyKeyID, &key, &secretID, &member, &created, &updated); err != nil {
		return storage.APIKeyProvider{}, err
	}
	p.APIKey = sealedFromColumns(keyKeyID, key)
	p.ExternalSecret = secretRefFromColumns(secretID, member)
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return p, nil
}

func getAPIKeyProvider(ctx context.Context, c conn, name, suffix string) (storage.APIKeyProvider, error) {
	p, err := scanAPIKeyProvider(c.queryRow(ctx,
		`SELECT `+apiKeyColumns+` FROM api_key_providers WHERE name = ?`+suffix, name))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("sqlstore: api key provider %q: %w", name, storage.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("sqlstore: get api key provider %q: %w", name, err)
	}
	return p, nil
}

// CreateAPIKeyProvider stores p and its tags in one transaction, or
// returns storage.ErrAlreadyExists for a taken name.
func (s *Store) CreateAPIKeyProvider(ctx context.Context, p storage.APIKeyProvider, tags map[string]string) error {
	createdTimes(&p.CreatedAt, &p.UpdatedAt, s.timestamp())
	keyID, key := sealedArgs(p.APIKey)
	secretID, jsonKey := secretRefArgs(p.ExternalSecret)
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx,
			`INSERT INTO api_key_providers (`+apiKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			p.Name, p.ID, keyID, key, secretID, jsonKey, micros(p.CreatedAt), micros(p.UpdatedAt))
		if err != nil {
			return fmt.Errorf("sqlstore: insert api key provider %q: %w", p.Name, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: api key provider %q or id %q: %w", p.Name, p.ID, storage.ErrAlreadyExists)
		}
		return addTags(ctx, tx, storage.Resource{Kind: storage.KindAPIKeyProvider, Name: p.Name}, tags)
	})
}

// GetAPIKeyProvider returns the provider named name with its key still
// sealed, or storage.ErrNotFound.
func (s *Store) GetAPIKeyProvider(ctx context.Context, name string) (storage.APIKeyProvider, error) {
	return getAPIKeyProvider(ctx, s.reads(), name, "")
}

// ListAPIKeyProviders returns a page of API-key providers in name order.
func (s *Store) ListAPIKeyProviders(ctx context.Context, page storage.Page) ([]storage.APIKeyProvider, error) {
	rows, err := s.reads().query(ctx,
		`SELECT `+apiKeyColumns+` FROM api_key_providers WHERE name > ? ORDER BY name LIMIT ?`,
		page.After, pageLimit(page.Limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list api key providers: %w", err)
	}
	return collect(rows, "api_key_providers", scanAPIKeyProvider)
}

// UpdateAPIKeyProvider runs fn on the locked provider and stores its
// result.
func (s *Store) UpdateAPIKeyProvider(ctx context.Context, name string, fn func(storage.APIKeyProvider) (storage.APIKeyProvider, error)) (storage.APIKeyProvider, error) {
	var stored storage.APIKeyProvider
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getAPIKeyProvider(ctx, tx, name, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.Name, next.ID, next.CreatedAt, next.UpdatedAt = cur.Name, cur.ID, cur.CreatedAt, s.timestamp()
		keyID, key := sealedArgs(next.APIKey)
		secretID, jsonKey := secretRefArgs(next.ExternalSecret)
		if _, err := tx.exec(ctx,
			`UPDATE api_key_providers SET api_key_key_id = ?, api_key = ?, secret_id = ?, secret_json_key = ?, updated_at = ? WHERE name = ?`,
			keyID, key, secretID, jsonKey, micros(next.UpdatedAt), name); err != nil {
			return fmt.Errorf("sqlstore: update api key provider %q: %w", name, err)
		}
		stored = next
		return nil
	})
	if err != nil {
		return storage.APIKeyProvider{}, err
	}
	return stored, nil
}

// DeleteAPIKeyProvider removes the provider named name and its tags, or
// returns storage.ErrNotFound.
func (s *Store) DeleteAPIKeyProvider(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx, `DELETE FROM api_key_providers WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("sqlstore: delete api key provider %q: %w", name, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: api key provider %q: %w", name, storage.ErrNotFound)
		}
		return deleteTags(ctx, tx, storage.Resource{Kind: storage.KindAPIKeyProvider, Name: name})
	})
}
