-- Sealed checkpoints of the audit chain, and fewer indexes on its records.
--
-- A checkpoint (storage.AuditCheckpoint) names a record by seq and hash,
-- with an HMAC under the chain key over both: "start" is the last record
-- retention deleted, where verification now begins; "verified" is how far
-- verification has reached, where the next incremental one resumes.
--
-- Each secondary index costs every append. Listing by time or by
-- operation alone walks the primary key instead: newest-first listing
-- meets recent records at once, retention walks from the oldest, and an
-- operation filter matches a large share of the log anyway.

-- +goose Up
CREATE TABLE audit_checkpoints (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL,
    mac  BLOB NOT NULL
);
DROP INDEX audit_records_time;
DROP INDEX audit_records_operation;

-- +goose Down
CREATE INDEX audit_records_operation ON audit_records (operation, seq);
CREATE INDEX audit_records_time ON audit_records (time);
DROP TABLE audit_checkpoints;
