-- Three-legged OAuth sessions and users' connections. Conventions as in
-- 00001: unix-microsecond timestamps, JSON text lists, a sealed secret as a
-- (key id, blob) pair whose key id is NULL when none is stored. A nullable
-- timestamp is NULL when the time is unknown or absent (a connection's
-- token expiry, its refresh lease).

-- +goose Up
CREATE TABLE oauth_sessions (
    id             TEXT PRIMARY KEY,
    -- SHA-256 of the state sent to the provider; the callback finds the
    -- session by it.
    state_hash     BLOB NOT NULL UNIQUE,
    provider_id    TEXT NOT NULL,
    workload       TEXT NOT NULL,
    user_key       TEXT NOT NULL,
    status         TEXT NOT NULL,
    failure_reason TEXT NOT NULL,
    request        BLOB,
    secrets_key_id TEXT,
    secrets        BLOB,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
) STRICT;
-- Deleting a provider or a workload identity deletes its sessions; the
-- purge deletes by expiry.
CREATE INDEX oauth_sessions_provider_id ON oauth_sessions (provider_id);
CREATE INDEX oauth_sessions_workload ON oauth_sessions (workload);
CREATE INDEX oauth_sessions_expires_at ON oauth_sessions (expires_at);

CREATE TABLE connections (
    provider_id   TEXT NOT NULL,
    workload      TEXT NOT NULL,
    user_key      TEXT NOT NULL,
    status        TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    details       BLOB,
    tokens_key_id TEXT,
    tokens        BLOB,
    expires_at    INTEGER,
    version       INTEGER NOT NULL,
    -- The refresh lease: no holder is '' with a NULL lease_until.
    -- lease_token only ever grows.
    lease_owner   TEXT NOT NULL,
    lease_until   INTEGER,
    lease_token   INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    PRIMARY KEY (provider_id, workload, user_key)
) STRICT;
-- The primary key serves the provider filter and the provider cascade;
-- these serve the workload and user filters, the workload cascade and the
-- idle purge.
CREATE INDEX connections_workload ON connections (workload, user_key);
CREATE INDEX connections_user_key ON connections (user_key);
CREATE INDEX connections_last_used_at ON connections (last_used_at);

-- +goose Down
DROP TABLE connections;
DROP TABLE oauth_sessions;
