-- The authorization server's state (package authserver): dynamically
-- registered clients, authorization requests, refresh tokens, users'
-- consents and one-time token ids. Conventions as in 00001: unix-microsecond
-- timestamps, JSON text lists, "C" collation on keys. Tokens, codes, states
-- and client secrets are stored as their SHA-256, never their value. A
-- nullable column is NULL where the value is absent (a request's code
-- before it is issued, a public client's secret, a current token's rotation
-- time).

-- +goose Up
CREATE TABLE oauth_clients (
    id          TEXT COLLATE "C" PRIMARY KEY,
    -- The registered metadata (RFC 7591 §2) as JSON, byte for byte.
    metadata    BYTEA NOT NULL,
    secret_hash BYTEA,
    created_at  BIGINT NOT NULL
);

CREATE TABLE oauth_auth_requests (
    id               TEXT COLLATE "C" PRIMARY KEY,
    -- SHA-256 of the state sent to the login identity provider; the
    -- callback finds the request by it.
    login_state_hash BYTEA NOT NULL UNIQUE,
    -- SHA-256 of the authorization code once issued; redemption finds the
    -- request by it.
    code_hash        BYTEA UNIQUE,
    status           TEXT NOT NULL,
    client_id        TEXT COLLATE "C" NOT NULL,
    redirect_uri     TEXT NOT NULL,
    state            TEXT NOT NULL,
    code_challenge   TEXT NOT NULL,
    resource         TEXT COLLATE "C" NOT NULL,
    scopes           TEXT NOT NULL,
    user_key         TEXT COLLATE "C" NOT NULL,
    refresh_family   TEXT COLLATE "C" NOT NULL,
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
-- The purge deletes by expiry; deleting a client deletes its requests.
CREATE INDEX oauth_auth_requests_expires_at ON oauth_auth_requests (expires_at);
CREATE INDEX oauth_auth_requests_client_id ON oauth_auth_requests (client_id);

CREATE TABLE oauth_refresh_tokens (
    hash       BYTEA PRIMARY KEY,
    family     TEXT COLLATE "C" NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL,
    user_key   TEXT COLLATE "C" NOT NULL,
    resource   TEXT COLLATE "C" NOT NULL,
    scopes     TEXT NOT NULL,
    rotated_at BIGINT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Reuse detection and revocation delete by family, a revoked consent by
-- its grant, the purge by expiry; the grant index serves a deleted client.
CREATE INDEX oauth_refresh_tokens_family ON oauth_refresh_tokens (family);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (client_id, user_key, resource);
CREATE INDEX oauth_refresh_tokens_expires_at ON oauth_refresh_tokens (expires_at);

CREATE TABLE oauth_consents (
    user_key   TEXT COLLATE "C" NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL,
    resource   TEXT COLLATE "C" NOT NULL,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_key, client_id, resource)
);
-- The primary key serves a user's listing; this serves a deleted client.
CREATE INDEX oauth_consents_client_id ON oauth_consents (client_id);

CREATE TABLE oauth_token_ids (
    key        TEXT COLLATE "C" PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth_token_ids_expires_at ON oauth_token_ids (expires_at);

-- +goose Down
DROP TABLE oauth_token_ids;
DROP TABLE oauth_consents;
DROP TABLE oauth_refresh_tokens;
DROP TABLE oauth_auth_requests;
DROP TABLE oauth_clients;
