-- Server keys, cached provider tokens and the audit log. Conventions as in
-- 00001: unix-microsecond timestamps, JSON text lists. Server keys and
-- cached tokens always hold a secret, so their sealed columns are NOT NULL.

-- +goose Up
CREATE TABLE server_keys (
    purpose    TEXT NOT NULL,
    id         TEXT NOT NULL,
    key_key_id TEXT NOT NULL,
    key_blob   BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (purpose, id)
) STRICT;

CREATE TABLE cached_tokens (
    provider_id  TEXT NOT NULL,
    workload     TEXT NOT NULL,
    cache_key    TEXT NOT NULL,
    token_key_id TEXT NOT NULL,
    token        BLOB NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (provider_id, workload, cache_key)
) STRICT;
-- Deleting a workload identity deletes its tokens; the purge deletes by expiry.
CREATE INDEX cached_tokens_workload ON cached_tokens (workload);
CREATE INDEX cached_tokens_expires_at ON cached_tokens (expires_at);

-- seq is an INTEGER PRIMARY KEY, so it is the rowid itself.
CREATE TABLE audit_records (
    seq        INTEGER PRIMARY KEY,
    time       INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    principal  TEXT NOT NULL,
    workload   TEXT NOT NULL,
    user_key   TEXT NOT NULL,
    operation  TEXT NOT NULL,
    provider   TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    flow       TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    error_type TEXT NOT NULL,
    resource   TEXT NOT NULL,
    prev_hash  BLOB NOT NULL,
    hash       BLOB NOT NULL
) STRICT;
CREATE INDEX audit_records_workload ON audit_records (workload, seq);
CREATE INDEX audit_records_user_key ON audit_records (user_key, seq);
CREATE INDEX audit_records_provider ON audit_records (provider, seq);
CREATE INDEX audit_records_operation ON audit_records (operation, seq);
CREATE INDEX audit_records_time ON audit_records (time);

-- The end of the chain; an empty log has seq 0 and an empty hash.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, X'');

-- +goose Down
DROP TABLE audit_head;
DROP TABLE audit_records;
DROP TABLE cached_tokens;
DROP TABLE server_keys;
