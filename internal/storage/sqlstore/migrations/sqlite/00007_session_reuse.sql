-- USER_FEDERATION sessions are reused while open, and failed ones are
-- purged promptly (docs/user-federation.md, "Session storage").
-- request_key names the request a session answers (a SHA-256 over its
-- provider, workload, user and authorization request); NULL for a session
-- never reused. It is unique, so that concurrent starts of one request
-- store one session.

-- +goose Up
ALTER TABLE oauth_sessions ADD COLUMN request_key BLOB;
CREATE UNIQUE INDEX oauth_sessions_request_key ON oauth_sessions (request_key) WHERE request_key IS NOT NULL;
-- The purge of failed sessions by their last update.
CREATE INDEX oauth_sessions_failed ON oauth_sessions (updated_at) WHERE status = 'FAILED';

-- +goose Down
DROP INDEX oauth_sessions_failed;
DROP INDEX oauth_sessions_request_key;
ALTER TABLE oauth_sessions DROP COLUMN request_key;
