-- Secrets kept outside behalf (clientSecretSource / apiKeySecretSource
-- EXTERNAL): the secret's id and JSON key, both NULL when behalf's vault
-- holds the secret (MANAGED). They are references, never secrets.

-- +goose Up
ALTER TABLE oauth2_providers ADD COLUMN secret_id TEXT;
ALTER TABLE oauth2_providers ADD COLUMN secret_json_key TEXT;
ALTER TABLE api_key_providers ADD COLUMN secret_id TEXT;
ALTER TABLE api_key_providers ADD COLUMN secret_json_key TEXT;

-- +goose Down
ALTER TABLE api_key_providers DROP COLUMN secret_json_key;
ALTER TABLE api_key_providers DROP COLUMN secret_id;
ALTER TABLE oauth2_providers DROP COLUMN secret_json_key;
ALTER TABLE oauth2_providers DROP COLUMN secret_id;
