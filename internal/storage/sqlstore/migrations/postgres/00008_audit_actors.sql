-- Identity chains: the workloads a call came through before the workload
-- it acted for (storage.AuditRecord.Actors), a JSON text list as scopes
-- are; '[]' for every record of a call that came through none.

-- +goose Up
ALTER TABLE audit_records ADD COLUMN actors TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE audit_records DROP COLUMN actors;
