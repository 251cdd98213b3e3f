-- Timestamps are unix microseconds; string lists are JSON text; a sealed
-- secret is a (key id, blob) pair whose key id is NULL when none is stored.

-- +goose Up
CREATE TABLE principals (
    access_key_id TEXT PRIMARY KEY,
    secret_key_id TEXT,
    secret        BLOB,
    role          TEXT NOT NULL,
    workloads     TEXT NOT NULL,
    description   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE workload_identities (
    name                TEXT PRIMARY KEY,
    allowed_return_urls TEXT NOT NULL,
    allowed_authorizers TEXT NOT NULL,
    allowed_providers   TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE oauth2_providers (
    name                 TEXT PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    vendor               TEXT NOT NULL,
    config               BLOB,
    client_secret_key_id TEXT,
    client_secret        BLOB,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT;

CREATE TABLE api_key_providers (
    name           TEXT PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    api_key_key_id TEXT,
    api_key        BLOB,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE token_vaults (
    id            TEXT PRIMARY KEY,
    key_type      TEXT NOT NULL,
    kms_key_arn   TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    last_modified INTEGER NOT NULL
) STRICT;

CREATE TABLE tags (
    resource_kind TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    tag_key       TEXT NOT NULL,
    tag_value     TEXT NOT NULL,
    PRIMARY KEY (resource_kind, resource_name, tag_key)
) STRICT;

-- +goose Down
DROP TABLE tags;
DROP TABLE token_vaults;
DROP TABLE api_key_providers;
DROP TABLE oauth2_providers;
DROP TABLE workload_identities;
DROP TABLE principals;
