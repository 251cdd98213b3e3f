-- Timestamps are unix microseconds; string lists are JSON text; a sealed
-- secret is a (key id, blob) pair whose key id is NULL when none is stored.
-- Names use the "C" collation so that listings are ordered bytewise, as on
-- SQLite, whatever the database's default collation.

-- +goose Up
CREATE TABLE principals (
    access_key_id TEXT COLLATE "C" PRIMARY KEY,
    secret_key_id TEXT,
    secret        BYTEA,
    role          TEXT NOT NULL,
    workloads     TEXT NOT NULL,
    description   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE workload_identities (
    name                TEXT COLLATE "C" PRIMARY KEY,
    allowed_return_urls TEXT NOT NULL,
    allowed_authorizers TEXT NOT NULL,
    allowed_providers   TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE oauth2_providers (
    name                 TEXT COLLATE "C" PRIMARY KEY,
    id                   TEXT COLLATE "C" NOT NULL UNIQUE,
    vendor               TEXT NOT NULL,
    config               BYTEA,
    client_secret_key_id TEXT,
    client_secret        BYTEA,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE api_key_providers (
    name           TEXT COLLATE "C" PRIMARY KEY,
    id             TEXT COLLATE "C" NOT NULL UNIQUE,
    api_key_key_id TEXT,
    api_key        BYTEA,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE token_vaults (
    id            TEXT COLLATE "C" PRIMARY KEY,
    key_type      TEXT NOT NULL,
    kms_key_arn   TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    last_modified BIGINT NOT NULL
);

CREATE TABLE tags (
    resource_kind TEXT COLLATE "C" NOT NULL,
    resource_name TEXT COLLATE "C" NOT NULL,
    tag_key       TEXT COLLATE "C" NOT NULL,
    tag_value     TEXT NOT NULL,
    PRIMARY KEY (resource_kind, resource_name, tag_key)
);

-- +goose Down
DROP TABLE tags;
DROP TABLE token_vaults;
DROP TABLE api_key_providers;
DROP TABLE oauth2_providers;
DROP TABLE workload_identities;
DROP TABLE principals;
