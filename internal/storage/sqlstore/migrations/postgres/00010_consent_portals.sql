-- Consent portals (CreateConsentPortal). Conventions as in 00001:
-- unix-microsecond timestamps, JSON text lists, "C" collation for names.
-- provider names the OAuth2 credential provider users sign in with;
-- sources is the JSON list of {type, identifier} the portal serves;
-- audience is '' when absent.

-- +goose Up
CREATE TABLE consent_portals (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    name               TEXT COLLATE "C" NOT NULL UNIQUE,
    description        TEXT NOT NULL,
    execution_role_arn TEXT NOT NULL,
    provider           TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    audience           TEXT NOT NULL,
    sources            TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

-- +goose Down
DROP TABLE consent_portals;
