package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// The authorization server's clients, authorization requests, refresh
// tokens, consents and one-time token ids (storage.AuthorizationServer).
// Lookups by a hash take the raw SHA-256; a value of another length is a
// caller's bug, refused as such rather than reported as not found.

// maxTokenIDKey bounds a one-time token id's key, in bytes.
const maxTokenIDKey = 1024

// checkHash refuses a hash that is not a SHA-256; empty passes when
// optional.
func checkHash(what string, h []byte, optional bool) error {
	if len(h) == sha256.Size || optional && len(h) == 0 {
		return nil
	}
	return fmt.Errorf("sqlstore: %s of %d bytes, want %d", what, len(h), sha256.Size)
}

// nullableBytes is NULL for an empty value.
func nullableBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// rowsDeleted runs a DELETE and reports how many rows it removed.
func rowsDeleted(ctx context.Context, tx conn, what, query string, args ...any) (int64, error) {
	n, err := tx.execCount(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete %s: %w", what, err)
	}
	return n, nil
}

// Clients.

const oauthClientColumns = `id, metadata, secret_hash, created_at`

// CreateOAuthClient refuses an empty id or metadata, an id a metadata
// document URL could be, and a secret hash that is neither empty nor a
// SHA-256.
func (s *Store) CreateOAuthClient(ctx context.Context, c storage.OAuthClient) error {
	switch {
	case c.ID == "":
		return errors.New("sqlstore: create oauth client: empty id")
	case strings.HasPrefix(c.ID, "https://"):
		return fmt.Errorf("sqlstore: create oauth client %q: a registered client's id is never a URL", c.ID)
	case len(c.Metadata) == 0:
		return fmt.Errorf("sqlstore: create oauth client %q: no metadata", c.ID)
	}
	if err := checkHash(fmt.Sprintf("oauth client %q: secret hash", c.ID), c.SecretHash, true); err != nil {
		return err
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.timestamp()
	}
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx,
			`INSERT INTO oauth_clients (`+oauthClientColumns+`) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			c.ID, c.Metadata, nullableBytes(c.SecretHash), micros(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("sqlstore: insert oauth client %q: %w", c.ID, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: oauth client %q: %w", c.ID, storage.ErrAlreadyExists)
		}
		return nil
	})
}

// GetOAuthClient returns the registered client id, or storage.ErrNotFound.
func (s *Store) GetOAuthClient(ctx context.Context, id string) (storage.OAuthClient, error) {
	var (
		c       storage.OAuthClient
		created int64
	)
	err := s.reads().queryRow(ctx, `SELECT `+oauthClientColumns+` FROM oauth_clients WHERE id = ?`, id).
		Scan(&c.ID, bytesColumn{&c.Metadata}, bytesColumn{&c.SecretHash}, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.OAuthClient{}, fmt.Errorf("sqlstore: oauth client %q: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return storage.OAuthClient{}, fmt.Errorf("sqlstore: get oauth client %q: %w", id, err)
	}
	c.CreatedAt = fromMicros(created)
	return c, nil
}

// DeleteOAuthClient deletes the client row first, so that on PostgreSQL a
// concurrent delete of the same client waits for this one and then finds
// nothing.
func (s *Store) DeleteOAuthClient(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx, `DELETE FROM oauth_clients WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("sqlstore: delete oauth client %q: %w", id, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: oauth client %q: %w", id, storage.ErrNotFound)
		}
		for _, table := range []string{"oauth_consents", "oauth_auth_requests", "oauth_refresh_tokens"} {
			if _, err := rowsDeleted(ctx, tx, table+" of oauth client "+fmt.Sprintf("%q", id),
				`DELETE FROM `+table+` WHERE client_id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// Authorization requests.

const authRequestColumns = `id, login_state_hash, code_hash, status, client_id, redirect_uri, state, code_challenge, resource, scopes, user_key, refresh_family, expires_at, created_at, updated_at`

func scanAuthRequest(row scanner) (storage.AuthRequest, error) {
	var (
		a                         storage.AuthRequest
		status, scopes            string
		expires, created, updated int64
	)
	if err := row.Scan(&a.ID, &a.LoginStateHash, &a.CodeHash, &status, &a.ClientID, &a.RedirectURI, &a.State,
		&a.CodeChallenge, &a.Resource, &scopes, &a.User, &a.RefreshFamily, &expires, &created, &updated); err != nil {
		return storage.AuthRequest{}, err
	}
	if len(a.CodeHash) == 0 {
		a.CodeHash = nil
	}
	if err := decodeJSON("oauth_auth_requests.scopes", scopes, &a.Scopes); err != nil {
		return storage.AuthRequest{}, err
	}
	a.Status = storage.AuthRequestStatus(status)
	a.ExpiresAt, a.CreatedAt, a.UpdatedAt = fromMicros(expires), fromMicros(created), fromMicros(updated)
	return a, nil
}

// getAuthRequest reads the request whose column (id, login_state_hash or
// code_hash) equals value; what names it in errors without repeating a
// secret-derived value.
func getAuthRequest(ctx context.Context, c conn, column string, value any, what, suffix string) (storage.AuthRequest, error) {
	a, err := scanAuthRequest(c.queryRow(ctx,
		`SELECT `+authRequestColumns+` FROM oauth_auth_requests WHERE `+column+` = ?`+suffix, value))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("sqlstore: authorization request %s: %w", what, storage.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("sqlstore: get authorization request %s: %w", what, err)
	}
	return a, nil
}

// CreateAuthRequest also refuses a code hash that is neither empty nor a
// SHA-256; a taken code hash is storage.ErrAlreadyExists.
func (s *Store) CreateAuthRequest(ctx context.Context, a storage.AuthRequest) error {
	switch {
	case a.ID == "":
		return errors.New("sqlstore: create authorization request: empty id")
	case a.Status != storage.AuthRequestLogin:
		return fmt.Errorf("sqlstore: create authorization request %q in status %q, want %s", a.ID, a.Status, storage.AuthRequestLogin)
	case a.ExpiresAt.IsZero():
		return fmt.Errorf("sqlstore: create authorization request %q: no expiry", a.ID)
	}
	if err := checkHash(fmt.Sprintf("authorization request %q: login state hash", a.ID), a.LoginStateHash, false); err != nil {
		return err
	}
	if err := checkHash(fmt.Sprintf("authorization request %q: code hash", a.ID), a.CodeHash, true); err != nil {
		return err
	}
	scopes, err := encodeJSON(a.Scopes)
	if err != nil {
		return fmt.Errorf("sqlstore: encode authorization request %q: %w", a.ID, err)
	}
	createdTimes(&a.CreatedAt, &a.UpdatedAt, s.timestamp())
	return s.inTx(ctx, func(tx conn) error {
		// Without a conflict target, DO NOTHING covers the id, the login
		// state and the code.
		ok, err := tx.execOne(ctx,
			`INSERT INTO oauth_auth_requests (`+authRequestColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			a.ID, a.LoginStateHash, nullableBytes(a.CodeHash), string(a.Status), a.ClientID, a.RedirectURI, a.State,
			a.CodeChallenge, a.Resource, scopes, a.User, a.RefreshFamily, micros(a.ExpiresAt), micros(a.CreatedAt), micros(a.UpdatedAt))
		if err != nil {
			return fmt.Errorf("sqlstore: insert authorization request %q: %w", a.ID, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: authorization request %q, its login state or its code: %w", a.ID, storage.ErrAlreadyExists)
		}
		return nil
	})
}

// GetAuthRequestByLoginState returns the request whose login state has the
// SHA-256 loginStateHash, expired or not, or storage.ErrNotFound.
func (s *Store) GetAuthRequestByLoginState(ctx context.Context, loginStateHash []byte) (storage.AuthRequest, error) {
	if err := checkHash("authorization request lookup: login state hash", loginStateHash, false); err != nil {
		return storage.AuthRequest{}, err
	}
	return getAuthRequest(ctx, s.reads(), "login_state_hash", loginStateHash, "with that login state", "")
}

// GetAuthRequest returns the request id, expired or not, or
// storage.ErrNotFound.
func (s *Store) GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	return getAuthRequest(ctx, s.reads(), "id", id, fmt.Sprintf("%q", id), "")
}

// UpdateAuthRequest checks a new code hash against the other requests
// before it writes. On SQLite that check is exact; on PostgreSQL two
// requests given the same code at once would leave the second write to the
// unique index, a plain error, which codes of 256 random bits never meet.
func (s *Store) UpdateAuthRequest(ctx context.Context, id string, fn func(storage.AuthRequest) (storage.AuthRequest, error)) (storage.AuthRequest, error) {
	var stored storage.AuthRequest
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getAuthRequest(ctx, tx, "id", id, fmt.Sprintf("%q", id), s.dialect.forUpdate())
		if err != nil {
			return err
		}
		if cur.Status == storage.AuthRequestRedeemed {
			return fmt.Errorf("sqlstore: authorization request %q is redeemed: %w", id, storage.ErrConflict)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		switch next.Status {
		case storage.AuthRequestRedeemed:
			return fmt.Errorf("sqlstore: update authorization request %q: only RedeemAuthCode redeems a code: %w", id, storage.ErrConflict)
		case storage.AuthRequestLogin, storage.AuthRequestConsent, storage.AuthRequestCode:
		default:
			return fmt.Errorf("sqlstore: update authorization request %q: unknown status %q", id, next.Status)
		}
		if next.ExpiresAt.IsZero() {
			return fmt.Errorf("sqlstore: update authorization request %q: no expiry", id)
		}
		if err := checkHash(fmt.Sprintf("authorization request %q: code hash", id), next.CodeHash, true); err != nil {
			return err
		}
		if len(next.CodeHash) == 0 {
			next.CodeHash = nil
		} else if err := codeHashFree(ctx, tx, id, next.CodeHash); err != nil {
			return err
		}
		scopes, err := encodeJSON(next.Scopes)
		if err != nil {
			return fmt.Errorf("sqlstore: encode authorization request %q: %w", id, err)
		}
		next.ID, next.LoginStateHash, next.ClientID, next.RedirectURI = cur.ID, cur.LoginStateHash, cur.ClientID, cur.RedirectURI
		next.State, next.CodeChallenge, next.CreatedAt = cur.State, cur.CodeChallenge, cur.CreatedAt
		next.UpdatedAt, next.ExpiresAt = s.timestamp(), asStored(next.ExpiresAt)
		if _, err := tx.exec(ctx,
			`UPDATE oauth_auth_requests SET code_hash = ?, status = ?, resource = ?, scopes = ?, user_key = ?,
				refresh_family = ?, expires_at = ?, updated_at = ?
			WHERE id = ?`,
			nullableBytes(next.CodeHash), string(next.Status), next.Resource, scopes, next.User,
			next.RefreshFamily, micros(next.ExpiresAt), micros(next.UpdatedAt), id); err != nil {
			return fmt.Errorf("sqlstore: update authorization request %q: %w", id, err)
		}
		stored = next
		return nil
	})
	if err != nil {
		return storage.AuthRequest{}, err
	}
	return stored, nil
}

// codeHashFree returns ErrAlreadyExists when a request other than id holds
// codeHash.
func codeHashFree(ctx context.Context, tx conn, id string, codeHash []byte) error {
	var one int
	err := tx.queryRow(ctx, `SELECT 1 FROM oauth_auth_requests WHERE code_hash = ? AND id <> ?`, codeHash, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("sqlstore: update authorization request %q: look up its code: %w", id, err)
	}
	return fmt.Errorf("sqlstore: update authorization request %q: its code: %w", id, storage.ErrAlreadyExists)
}

// RedeemAuthCode locks the request (FOR UPDATE on PostgreSQL; SQLite's
// write transactions exclude each other), so that of concurrent
// redemptions of one code exactly one finds it in AuthRequestCode.
func (s *Store) RedeemAuthCode(ctx context.Context, codeHash []byte, family string) (storage.AuthRequest, error) {
	if err := checkHash("authorization code redemption: code hash", codeHash, false); err != nil {
		return storage.AuthRequest{}, err
	}
	var found storage.AuthRequest
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getAuthRequest(ctx, tx, "code_hash", codeHash, "with that code", s.dialect.forUpdate())
		if err != nil {
			return err
		}
		found = cur
		if cur.Status != storage.AuthRequestCode {
			return fmt.Errorf("sqlstore: redeem the code of authorization request %q in status %s: %w", cur.ID, cur.Status, storage.ErrConflict)
		}
		if _, err := tx.exec(ctx,
			`UPDATE oauth_auth_requests SET status = ?, refresh_family = ?, updated_at = ? WHERE id = ?`,
			string(storage.AuthRequestRedeemed), family, micros(s.timestamp()), cur.ID); err != nil {
			return fmt.Errorf("sqlstore: redeem the code of authorization request %q: %w", cur.ID, err)
		}
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrConflict) {
		return storage.AuthRequest{}, err
	}
	return found, err
}

// DeleteEndedAuthRequests removes requests that expired before before.
func (s *Store) DeleteEndedAuthRequests(ctx context.Context, before time.Time) (int, error) {
	return s.deleteBefore(ctx, "oauth_auth_requests", "expires_at", "ended authorization requests", before)
}

// Refresh tokens.

const refreshTokenColumns = `hash, family, client_id, user_key, resource, scopes, rotated_at, expires_at, created_at` //nolint:gosec // G101: column names, not a credential

func scanRefreshToken(row scanner) (storage.OAuthRefreshToken, error) {
	var (
		t                storage.OAuthRefreshToken
		scopes           string
		rotated          sql.NullInt64
		expires, created int64
	)
	if err := row.Scan(&t.Hash, &t.Family, &t.ClientID, &t.User, &t.Resource, &scopes, &rotated, &expires, &created); err != nil {
		return storage.OAuthRefreshToken{}, err
	}
	if err := decodeJSON("oauth_refresh_tokens.scopes", scopes, &t.Scopes); err != nil {
		return storage.OAuthRefreshToken{}, err
	}
	t.RotatedAt, t.ExpiresAt, t.CreatedAt = fromNullableMicros(rotated), fromMicros(expires), fromMicros(created)
	return t, nil
}

func getRefreshToken(ctx context.Context, c conn, hash []byte, suffix string) (storage.OAuthRefreshToken, error) {
	t, err := scanRefreshToken(c.queryRow(ctx,
		`SELECT `+refreshTokenColumns+` FROM oauth_refresh_tokens WHERE hash = ?`+suffix, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("sqlstore: refresh token: %w", storage.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("sqlstore: get refresh token: %w", err)
	}
	return t, nil
}

// checkRefreshToken refuses what CreateRefreshToken and RotateRefreshToken
// refuse, and returns t as it will be stored with its encoded scopes.
func (s *Store) checkRefreshToken(t storage.OAuthRefreshToken) (storage.OAuthRefreshToken, string, error) {
	if err := checkHash("refresh token: hash", t.Hash, false); err != nil {
		return t, "", err
	}
	switch {
	case t.Family == "":
		return t, "", errors.New("sqlstore: refresh token: empty family")
	case t.ExpiresAt.IsZero():
		return t, "", fmt.Errorf("sqlstore: refresh token of family %q: no expiry", t.Family)
	}
	scopes, err := encodeJSON(t.Scopes)
	if err != nil {
		return t, "", fmt.Errorf("sqlstore: encode refresh token of family %q: %w", t.Family, err)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.timestamp()
	}
	t.CreatedAt, t.ExpiresAt, t.RotatedAt = asStored(t.CreatedAt), asStored(t.ExpiresAt), asStored(t.RotatedAt)
	return t, scopes, nil
}

func insertRefreshToken(ctx context.Context, tx conn, t storage.OAuthRefreshToken, scopes string) error {
	ok, err := tx.execOne(ctx,
		`INSERT INTO oauth_refresh_tokens (`+refreshTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		t.Hash, t.Family, t.ClientID, t.User, t.Resource, scopes, nullableMicros(t.RotatedAt), micros(t.ExpiresAt), micros(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlstore: insert refresh token of family %q: %w", t.Family, err)
	}
	if !ok {
		return fmt.Errorf("sqlstore: refresh token of family %q: %w", t.Family, storage.ErrAlreadyExists)
	}
	return nil
}

// CreateRefreshToken stores t; a zero CreatedAt means now.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.OAuthRefreshToken) error {
	t, scopes, err := s.checkRefreshToken(t)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx conn) error { return insertRefreshToken(ctx, tx, t, scopes) })
}

// GetRefreshToken returns the token whose SHA-256 is hash, rotated or
// expired or not, or storage.ErrNotFound.
func (s *Store) GetRefreshToken(ctx context.Context, hash []byte) (storage.OAuthRefreshToken, error) {
	if err := checkHash("refresh token lookup: hash", hash, false); err != nil {
		return storage.OAuthRefreshToken{}, err
	}
	return getRefreshToken(ctx, s.reads(), hash, "")
}

// RotateRefreshToken returns the token as it was stored before the call,
// on success as on reuse. It locks the token (FOR UPDATE on PostgreSQL), so
// that of concurrent rotations exactly one finds it current. Reuse commits
// the family's deletion and only then reports ErrConflict: in a WithAudit
// view, that deletion is the change the view's record commits with.
func (s *Store) RotateRefreshToken(ctx context.Context, hash []byte, next storage.OAuthRefreshToken) (storage.OAuthRefreshToken, error) {
	if err := checkHash("refresh token rotation: hash", hash, false); err != nil {
		return storage.OAuthRefreshToken{}, err
	}
	next.RotatedAt = time.Time{}
	next, scopes, err := s.checkRefreshToken(next)
	if err != nil {
		return storage.OAuthRefreshToken{}, err
	}
	var (
		found  storage.OAuthRefreshToken
		reused bool
	)
	err = s.inTx(ctx, func(tx conn) error {
		cur, err := getRefreshToken(ctx, tx, hash, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		found = cur
		if !cur.RotatedAt.IsZero() {
			reused = true
			_, err := rowsDeleted(ctx, tx, fmt.Sprintf("refresh tokens of family %q", cur.Family),
				`DELETE FROM oauth_refresh_tokens WHERE family = ?`, cur.Family)
			return err
		}
		if next.Family != cur.Family {
			return fmt.Errorf("sqlstore: rotate a refresh token of family %q into family %q", cur.Family, next.Family)
		}
		if _, err := tx.exec(ctx, `UPDATE oauth_refresh_tokens SET rotated_at = ? WHERE hash = ?`,
			micros(s.timestamp()), hash); err != nil {
			return fmt.Errorf("sqlstore: rotate refresh token of family %q: %w", cur.Family, err)
		}
		return insertRefreshToken(ctx, tx, next, scopes)
	})
	switch {
	case err != nil:
		return storage.OAuthRefreshToken{}, err
	case reused:
		return found, fmt.Errorf("sqlstore: refresh token of family %q was already rotated; the family is revoked: %w", found.Family, storage.ErrConflict)
	}
	return found, nil
}

// RevokeRefreshFamily deletes every token of family and reports how many.
func (s *Store) RevokeRefreshFamily(ctx context.Context, family string) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx conn) error {
		var err error
		n, err = rowsDeleted(ctx, tx, fmt.Sprintf("refresh tokens of family %q", family),
			`DELETE FROM oauth_refresh_tokens WHERE family = ?`, family)
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// DeleteExpiredRefreshTokens removes tokens that expired before before,
// rotated or not.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int, error) {
	return s.deleteBefore(ctx, "oauth_refresh_tokens", "expires_at", "expired refresh tokens", before)
}

// Consents.

const consentColumns = `user_key, client_id, resource, scopes, created_at, updated_at`

func scanConsent(row scanner) (storage.OAuthConsent, error) {
	var (
		c                storage.OAuthConsent
		scopes           string
		created, updated int64
	)
	if err := row.Scan(&c.User, &c.ClientID, &c.Resource, &scopes, &created, &updated); err != nil {
		return storage.OAuthConsent{}, err
	}
	if err := decodeJSON("oauth_consents.scopes", scopes, &c.Scopes); err != nil {
		return storage.OAuthConsent{}, err
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return c, nil
}

// PutConsent refuses an empty user or client id.
func (s *Store) PutConsent(ctx context.Context, c storage.OAuthConsent) error {
	if c.User == "" || c.ClientID == "" {
		return fmt.Errorf("sqlstore: put consent of user %q to client %q: empty user or client id", c.User, c.ClientID)
	}
	scopes, err := encodeJSON(c.Scopes)
	if err != nil {
		return fmt.Errorf("sqlstore: encode consent of user %q to client %q: %w", c.User, c.ClientID, err)
	}
	now := s.timestamp()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	return s.inTx(ctx, func(tx conn) error {
		if _, err := tx.exec(ctx,
			`INSERT INTO oauth_consents (`+consentColumns+`) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_key, client_id, resource) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
			c.User, c.ClientID, c.Resource, scopes, micros(c.CreatedAt), micros(now)); err != nil {
			return fmt.Errorf("sqlstore: put consent of user %q to client %q: %w", c.User, c.ClientID, err)
		}
		return nil
	})
}

// GetConsent returns the consent of (user, clientID, resource), or
// storage.ErrNotFound.
func (s *Store) GetConsent(ctx context.Context, user, clientID, resource string) (storage.OAuthConsent, error) {
	c, err := scanConsent(s.reads().queryRow(ctx,
		`SELECT `+consentColumns+` FROM oauth_consents WHERE user_key = ? AND client_id = ? AND resource = ?`,
		user, clientID, resource))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("sqlstore: consent of user %q to client %q for %q: %w", user, clientID, resource, storage.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("sqlstore: get consent of user %q to client %q: %w", user, clientID, err)
	}
	return c, nil
}

// ListConsents returns a page of f.User's consents in (client id,
// resource) order.
func (s *Store) ListConsents(ctx context.Context, f storage.ConsentFilter) ([]storage.OAuthConsent, error) {
	rows, err := s.reads().query(ctx,
		`SELECT `+consentColumns+` FROM oauth_consents
		WHERE user_key = ? AND (client_id > ? OR (client_id = ? AND resource > ?))
		ORDER BY client_id, resource LIMIT ?`,
		f.User, f.AfterClientID, f.AfterClientID, f.AfterResource, pageLimit(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list consents of user %q: %w", f.User, err)
	}
	return collect(rows, "oauth_consents", scanConsent)
}

// DeleteConsent deletes the consent, then its grant's refresh tokens.
func (s *Store) DeleteConsent(ctx context.Context, user, clientID, resource string) error {
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx,
			`DELETE FROM oauth_consents WHERE user_key = ? AND client_id = ? AND resource = ?`, user, clientID, resource)
		if err != nil {
			return fmt.Errorf("sqlstore: delete consent of user %q to client %q: %w", user, clientID, err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: consent of user %q to client %q for %q: %w", user, clientID, resource, storage.ErrNotFound)
		}
		_, err = rowsDeleted(ctx, tx, fmt.Sprintf("refresh tokens of user %q for client %q", user, clientID),
			`DELETE FROM oauth_refresh_tokens WHERE client_id = ? AND user_key = ? AND resource = ?`, clientID, user, resource)
		return err
	})
}

// One-time token ids.

func checkTokenIDKey(key string) error {
	switch {
	case key == "":
		return errors.New("sqlstore: token id: empty key")
	case len(key) > maxTokenIDKey:
		return fmt.Errorf("sqlstore: token id key of %d bytes, at most %d", len(key), maxTokenIDKey)
	}
	return nil
}

// UseTokenID inserts key, or replaces it when it expired at or before now,
// in one statement: of concurrent uses of one key, exactly one writes.
func (s *Store) UseTokenID(ctx context.Context, key string, expiresAt time.Time) error {
	if err := checkTokenIDKey(key); err != nil {
		return err
	}
	if expiresAt.IsZero() {
		return errors.New("sqlstore: token id: no expiry")
	}
	return s.inTx(ctx, func(tx conn) error {
		ok, err := tx.execOne(ctx,
			`INSERT INTO oauth_token_ids (key, expires_at) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE oauth_token_ids.expires_at <= ?`,
			key, micros(expiresAt), micros(s.timestamp()))
		if err != nil {
			return fmt.Errorf("sqlstore: record token id: %w", err)
		}
		if !ok {
			return fmt.Errorf("sqlstore: token id: %w", storage.ErrAlreadyExists)
		}
		return nil
	})
}

// TokenIDUsed reports whether key is recorded with an expiry after now.
func (s *Store) TokenIDUsed(ctx context.Context, key string) (bool, error) {
	if err := checkTokenIDKey(key); err != nil {
		return false, err
	}
	var one int
	err := s.reads().queryRow(ctx, `SELECT 1 FROM oauth_token_ids WHERE key = ? AND expires_at > ?`,
		key, micros(s.timestamp())).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("sqlstore: look up token id: %w", err)
	}
	return true, nil
}

// DeleteExpiredTokenIDs removes ids that expired before before.
func (s *Store) DeleteExpiredTokenIDs(ctx context.Context, before time.Time) (int, error) {
	return s.deleteBefore(ctx, "oauth_token_ids", "expires_at", "expired token ids", before)
}
