-- Server keys, cached provider tokens and the audit log. Conventions as in
-- 00001: unix-microsecond timestamps, JSON text lists, "C" collation on keys.
-- Server keys and cached tokens always hold a secret, so their sealed
-- columns are NOT NULL.

-- +goose Up
CREATE TABLE server_keys (
    purpose    TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    key_key_id TEXT NOT NULL,
    key_blob   BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (purpose, id)
);

CREATE TABLE cached_tokens (
    provider_id  TEXT COLLATE "C" NOT NULL,
    workload     TEXT COLLATE "C" NOT NULL,
    cache_key    TEXT COLLATE "C" NOT NULL,
    token_key_id TEXT NOT NULL,
    token        BYTEA NOT NULL,
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (provider_id, workload, cache_key)
);
-- Deleting a workload identity deletes its tokens; the purge deletes by expiry.
CREATE INDEX cached_tokens_workload ON cached_tokens (workload);
CREATE INDEX cached_tokens_expires_at ON cached_tokens (expires_at);

CREATE TABLE audit_records (
    seq        BIGINT PRIMARY KEY,
    time       BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    principal  TEXT NOT NULL,
    workload   TEXT COLLATE "C" NOT NULL,
    user_key   TEXT COLLATE "C" NOT NULL,
    operation  TEXT COLLATE "C" NOT NULL,
    provider   TEXT COLLATE "C" NOT NULL,
    scopes     TEXT NOT NULL,
    flow       TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    error_type TEXT NOT NULL,
    resource   TEXT NOT NULL,
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);
CREATE INDEX audit_records_workload ON audit_records (workload, seq);
CREATE INDEX audit_records_user_key ON audit_records (user_key, seq);
CREATE INDEX audit_records_provider ON audit_records (provider, seq);
CREATE INDEX audit_records_operation ON audit_records (operation, seq);
CREATE INDEX audit_records_time ON audit_records (time);

-- The end of the chain. Appends lock this one row, which serialises them
-- across replicas; an empty log has seq 0 and an empty hash.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ''::bytea);

-- +goose Down
DROP TABLE audit_head;
DROP TABLE audit_records;
DROP TABLE cached_tokens;
DROP TABLE server_keys;
