-- A runtime principal may be limited to some data-plane operations, as
-- AWS grants bedrock-agentcore actions one by one: a JSON text list of
-- operation names; empty allows every data-plane operation.

-- +goose Up
ALTER TABLE principals ADD COLUMN operations TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE principals DROP COLUMN operations;
