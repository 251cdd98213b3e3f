package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// Three-legged OAuth sessions.

const sessionColumns = `id, state_hash, provider_id, workload, user_key, status, failure_reason, request, secrets_key_id, secrets, created_at, updated_at, expires_at, request_key`

// stateHashSize is the length of a session's StateHash, a SHA-256.
const stateHashSize = 32

func scanSession(row scanner) (storage.OAuthSession, error) {
	var (
		sess                      storage.OAuthSession
		status                    string
		secretsKeyID              sql.NullString
		secrets                   []byte
		created, updated, expires int64
	)
	if err := row.Scan(&sess.ID, &sess.StateHash, &sess.ProviderID, &sess.Workload, &sess.User, &status,
		&sess.FailureReason, bytesColumn{&sess.Request}, &secretsKeyID, &secrets, &created, &updated, &expires, &sess.RequestKey); err != nil {
		return storage.OAuthSession{}, err
	}
	if len(sess.RequestKey) == 0 {
		sess.RequestKey = nil
	}
	sess.Status = storage.SessionStatus(status)
	sess.Secrets = sealedFromColumns(secretsKeyID, secrets)
	sess.CreatedAt, sess.UpdatedAt, sess.ExpiresAt = fromMicros(created), fromMicros(updated), fromMicros(expires)
	return sess, nil
}

// getSession reads the session whose column (id or state_hash) equals
// value; what names it in errors without repeating a secret-derived value.
func getSession(ctx context.Context, c conn, column string, value any, what, suffix string) (storage.OAuthSession, error) {
	sess, err := scanSession(c.queryRow(ctx,
		`SELECT `+sessionColumns+` FROM oauth_sessions WHERE `+column+` = ?`+suffix, value))
	if errors.Is(err, sql.ErrNoRows) {
		return sess, fmt.Errorf("sqlstore: oauth session %s: %w", what, storage.ErrNotFound)
	}
	if err != nil {
		return sess, fmt.Errorf("sqlstore: get oauth session %s: %w", what, err)
	}
	return sess, nil
}

// holdOwners returns ErrNotFound unless the provider id and the workload
// identity exist, and holds both rows (FOR SHARE on PostgreSQL) until the
// transaction ends: a session or connection written meanwhile is then
// either deleted with its owner or never stored. Callers take these locks
// before any session or connection row, the order the owners' deletes
// take them in, so that the two never deadlock.
func (s *Store) holdOwners(ctx context.Context, tx conn, op, providerID, workload string) error {
	for _, owner := range []struct{ what, table, column, value string }{
		{"oauth2 provider with id", "oauth2_providers", "id", providerID},
		{"workload identity", "workload_identities", "name", workload},
	} {
		var one int
		err := tx.queryRow(ctx,
			`SELECT 1 FROM `+owner.table+` WHERE `+owner.column+` = ?`+s.dialect.forShare(), owner.value).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlstore: %s: %s %q: %w", op, owner.what, owner.value, storage.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: %s: find %s %q: %w", op, owner.what, owner.value, err)
		}
	}
	return nil
}

// CreateOAuthSession refuses an empty id, a state hash that is not a
// SHA-256 and a zero expiry, and returns ErrNotFound when the provider id
// or the workload identity does not exist.
func (s *Store) CreateOAuthSession(ctx context.Context, sess storage.OAuthSession) error {
	_, _, err := s.startSession(ctx, sess, false, time.Time{}, nil)
	return err
}

// StartOAuthSession stores sess unless an open session has its request
// key; the unique index on request_key settles concurrent starts. The
// insert comes before admit, so that a concurrent start of the same
// request waits on the index for this one's outcome and calls admit only
// if this one was refused.
func (s *Store) StartOAuthSession(ctx context.Context, sess storage.OAuthSession, reuseUntil time.Time, admit func() error) (storage.OAuthSession, bool, error) {
	if len(sess.RequestKey) == 0 {
		return storage.OAuthSession{}, false, fmt.Errorf("sqlstore: start oauth session %q: no request key", sess.ID)
	}
	return s.startSession(ctx, sess, true, reuseUntil, admit)
}

func (s *Store) startSession(ctx context.Context, sess storage.OAuthSession, reuse bool, reuseUntil time.Time, admit func() error) (storage.OAuthSession, bool, error) {
	switch {
	case sess.ID == "":
		return storage.OAuthSession{}, false, errors.New("sqlstore: create oauth session: empty id")
	case len(sess.StateHash) != stateHashSize:
		return storage.OAuthSession{}, false, fmt.Errorf("sqlstore: create oauth session %q: state hash of %d bytes, want %d", sess.ID, len(sess.StateHash), stateHashSize)
	case sess.ExpiresAt.IsZero():
		return storage.OAuthSession{}, false, fmt.Errorf("sqlstore: create oauth session %q: no expiry", sess.ID)
	}
	createdTimes(&sess.CreatedAt, &sess.UpdatedAt, s.timestamp())
	keyID, secrets := sealedArgs(sess.Secrets)
	var requestKey any
	if len(sess.RequestKey) > 0 {
		requestKey = sess.RequestKey
	}
	var (
		found  storage.OAuthSession
		reused bool
	)
	err := s.inTx(ctx, func(tx conn) error {
		if err := s.holdOwners(ctx, tx, "create oauth session", sess.ProviderID, sess.Workload); err != nil {
			return err
		}
		if reuse {
			// A session that left IN_PROGRESS or is about to expire gives
			// up its key, so that this request may take it.
			if _, err := tx.exec(ctx,
				`UPDATE oauth_sessions SET request_key = NULL WHERE request_key = ? AND (status <> ? OR expires_at <= ?)`,
				requestKey, string(storage.SessionInProgress), micros(reuseUntil)); err != nil {
				return fmt.Errorf("sqlstore: release the request key of ended oauth sessions: %w", err)
			}
		}
		// Without a conflict target, DO NOTHING covers the id, the state
		// hash and the request key.
		ok, err := tx.execOne(ctx,
			`INSERT INTO oauth_sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			sess.ID, sess.StateHash, sess.ProviderID, sess.Workload, sess.User, string(sess.Status), sess.FailureReason,
			sess.Request, keyID, secrets, micros(sess.CreatedAt), micros(sess.UpdatedAt), micros(sess.ExpiresAt), requestKey)
		if err != nil {
			return fmt.Errorf("sqlstore: insert oauth session %q: %w", sess.ID, err)
		}
		switch {
		case ok && admit != nil:
			return admit()
		case ok:
			return nil
		case reuse:
			found, reused, err = reusableSession(ctx, tx, sess)
			return err
		}
		return fmt.Errorf("sqlstore: oauth session %q or its state: %w", sess.ID, storage.ErrAlreadyExists)
	})
	if err != nil {
		return storage.OAuthSession{}, false, err
	}
	if reused {
		return found, true, nil
	}
	return sess, false, nil
}

// reusableSession returns the session whose request key sess's insert
// collided with; ErrAlreadyExists when the collision was on the id or the
// state hash instead.
func reusableSession(ctx context.Context, tx conn, sess storage.OAuthSession) (storage.OAuthSession, bool, error) {
	found, err := getSession(ctx, tx, "request_key", sess.RequestKey, "with that request key", "")
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return found, false, fmt.Errorf("sqlstore: oauth session %q or its state: %w", sess.ID, storage.ErrAlreadyExists)
	case err != nil:
		return found, false, err
	case found.ProviderID != sess.ProviderID || found.Workload != sess.Workload || found.User != sess.User:
		return found, false, fmt.Errorf("sqlstore: start oauth session %q: the request key names another user's session", sess.ID)
	}
	return found, true, nil
}

// GetOAuthSession returns the session id, expired or not, or
// storage.ErrNotFound; the caller judges ExpiresAt.
func (s *Store) GetOAuthSession(ctx context.Context, id string) (storage.OAuthSession, error) {
	return getSession(ctx, s.reads(), "id", id, fmt.Sprintf("%q", id), "")
}

// GetOAuthSessionByState returns the session whose state has the SHA-256
// stateHash, expired or not, or storage.ErrNotFound.
func (s *Store) GetOAuthSessionByState(ctx context.Context, stateHash []byte) (storage.OAuthSession, error) {
	if len(stateHash) != stateHashSize {
		return storage.OAuthSession{}, fmt.Errorf("sqlstore: oauth session with a state hash of %d bytes: %w", len(stateHash), storage.ErrNotFound)
	}
	return getSession(ctx, s.reads(), "state_hash", stateHash, "with that state", "")
}

// ListOpenOAuthSessions returns k's in-progress sessions expiring after t.
func (s *Store) ListOpenOAuthSessions(ctx context.Context, k storage.ConnectionKey, t time.Time, limit int) ([]storage.OAuthSession, error) {
	rows, err := s.reads().query(ctx, `SELECT `+sessionColumns+` FROM oauth_sessions
		WHERE provider_id = ? AND workload = ? AND user_key = ? AND status = ? AND expires_at > ?
		ORDER BY created_at DESC, id LIMIT ?`,
		append(connectionKeyArgs(k), string(storage.SessionInProgress), micros(t), pageLimit(limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list open oauth sessions: %w", err)
	}
	return collect(rows, "oauth sessions", scanSession)
}

// UpdateOAuthSession refuses to touch a completed session and to complete
// one: CompleteOAuthSession alone does that, together with the connection.
func (s *Store) UpdateOAuthSession(ctx context.Context, id string, fn func(storage.OAuthSession) (storage.OAuthSession, error)) (storage.OAuthSession, error) {
	var stored storage.OAuthSession
	err := s.inTx(ctx, func(tx conn) error {
		cur, err := getSession(ctx, tx, "id", id, fmt.Sprintf("%q", id), s.dialect.forUpdate())
		if err != nil {
			return err
		}
		if cur.Status == storage.SessionCompleted {
			return fmt.Errorf("sqlstore: oauth session %q is completed: %w", id, storage.ErrConflict)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		switch {
		case next.Status == storage.SessionCompleted:
			return fmt.Errorf("sqlstore: update oauth session %q: only CompleteOAuthSession completes a session: %w", id, storage.ErrConflict)
		case next.ExpiresAt.IsZero():
			return fmt.Errorf("sqlstore: update oauth session %q: no expiry", id)
		}
		next.ID, next.StateHash, next.ProviderID, next.Workload, next.User, next.RequestKey = cur.ID, cur.StateHash, cur.ProviderID, cur.Workload, cur.User, cur.RequestKey
		next.CreatedAt, next.UpdatedAt, next.ExpiresAt = cur.CreatedAt, s.timestamp(), asStored(next.ExpiresAt)
		keyID, secrets := sealedArgs(next.Secrets)
		if _, err := tx.exec(ctx,
			`UPDATE oauth_sessions SET status = ?, failure_reason = ?, request = ?, secrets_key_id = ?, secrets = ?,
				updated_at = ?, expires_at = ?
			WHERE id = ?`,
			string(next.Status), next.FailureReason, next.Request, keyID, secrets,
			micros(next.UpdatedAt), micros(next.ExpiresAt), id); err != nil {
			return fmt.Errorf("sqlstore: update oauth session %q: %w", id, err)
		}
		stored = next
		return nil
	})
	if err != nil {
		return storage.OAuthSession{}, err
	}
	return stored, nil
}

// CompleteOAuthSession holds the owners (as CreateOAuthSession does), then
// locks the session, then upserts the connection. Holding the owners keeps
// the connection from outliving a deleted owner whatever the order of the
// delete's statements; the order owners, session, connection is every
// writer's, so none of them deadlock. (The session's lock alone would
// suffice while owner deletes remove sessions before connections; the
// owners' lock does not depend on that.)
func (s *Store) CompleteOAuthSession(ctx context.Context, sessionID string, c storage.Connection) error {
	now := s.timestamp()
	if c.Status == "" {
		c.Status = storage.ConnectionActive
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.LastUsedAt.IsZero() {
		c.LastUsedAt = now
	}
	scopes, err := encodeJSON(c.Scopes)
	if err != nil {
		return fmt.Errorf("sqlstore: encode connection of %q for %q: %w", c.ProviderID, c.Workload, err)
	}
	keyID, tokens := sealedArgs(c.Tokens)
	return s.inTx(ctx, func(tx conn) error {
		if err := s.holdOwners(ctx, tx, "complete oauth session", c.ProviderID, c.Workload); err != nil {
			return err
		}
		sess, err := getSession(ctx, tx, "id", sessionID, fmt.Sprintf("%q", sessionID), s.dialect.forUpdate())
		if err != nil {
			return err
		}
		if sess.ProviderID != c.ProviderID || sess.Workload != c.Workload || sess.User != c.User {
			return fmt.Errorf("sqlstore: complete oauth session %q: the connection is not the session's", sessionID)
		}
		if sess.Status != storage.SessionAuthorized {
			return fmt.Errorf("sqlstore: complete oauth session %q in status %s: %w", sessionID, sess.Status, storage.ErrConflict)
		}
		// The tokens move to the connection; the session keeps no copy.
		if _, err := tx.exec(ctx,
			`UPDATE oauth_sessions SET status = ?, secrets_key_id = NULL, secrets = NULL, updated_at = ? WHERE id = ?`,
			string(storage.SessionCompleted), micros(now), sessionID); err != nil {
			return fmt.Errorf("sqlstore: complete oauth session %q: %w", sessionID, err)
		}
		// A replacement keeps the lease token, so that no token is granted
		// twice, and drops the lease: its holder's result is now outdated.
		if _, err := tx.exec(ctx,
			`INSERT INTO connections (`+connectionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, '', NULL, 0, ?, ?, ?)
			ON CONFLICT (provider_id, workload, user_key) DO UPDATE SET
				status = excluded.status, scopes = excluded.scopes, details = excluded.details,
				tokens_key_id = excluded.tokens_key_id, tokens = excluded.tokens, expires_at = excluded.expires_at,
				version = connections.version + 1, lease_owner = '', lease_until = NULL,
				created_at = excluded.created_at, updated_at = excluded.updated_at, last_used_at = excluded.last_used_at`,
			c.ProviderID, c.Workload, c.User, string(c.Status), scopes, c.Details, keyID, tokens, nullableMicros(c.ExpiresAt),
			micros(c.CreatedAt), micros(now), micros(c.LastUsedAt)); err != nil {
			return fmt.Errorf("sqlstore: store connection of %q for %q: %w", c.ProviderID, c.Workload, err)
		}
		return nil
	})
}

// DeleteEndedOAuthSessions removes sessions that expired before before,
// whatever their status, and failed sessions last updated before it, and
// reports how many.
func (s *Store) DeleteEndedOAuthSessions(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx conn) error {
		var err error
		n, err = rowsDeleted(ctx, tx, "ended oauth sessions",
			`DELETE FROM oauth_sessions WHERE expires_at < ? OR (status = ? AND updated_at < ?)`,
			micros(before), string(storage.SessionFailed), micros(before))
		return err
	})
	return int(n), err
}

// deleteBefore deletes the rows of table whose column is before t and
// reports how many.
func (s *Store) deleteBefore(ctx context.Context, table, column, what string, t time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx conn) error {
		var err error
		n, err = rowsDeleted(ctx, tx, what, `DELETE FROM `+table+` WHERE `+column+` < ?`, micros(t))
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// deleteUserGrants deletes the sessions and connections whose column
// (provider_id or workload) equals value, inside the transaction that
// deletes their owner.
func deleteUserGrants(ctx context.Context, tx conn, column, value string) error {
	for _, table := range []string{"oauth_sessions", "connections"} {
		if _, err := tx.exec(ctx, `DELETE FROM `+table+` WHERE `+column+` = ?`, value); err != nil {
			return fmt.Errorf("sqlstore: delete %s with %s %q: %w", table, column, value, err)
		}
	}
	return nil
}
