package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/behalf-dev/behalf/internal/storage"
)

const auditColumns = `seq, time, request_id, principal, workload, user_key, operation, provider, scopes, flow, outcome, error_type, resource, prev_hash, hash`

// auditColumnCount is the number of auditColumns.
const auditColumnCount = 15

// auditChunk is how many records one INSERT carries: a batch of the audit
// package's default size takes one round trip, and 14 parameters a row stay
// far below both engines' limits (SQLite 32766, PostgreSQL 65535).
const auditChunk = 512

func scanAuditHead(row scanner) (storage.AuditHead, error) {
	var h storage.AuditHead
	if err := row.Scan(&h.Seq, &h.Hash); err != nil {
		return storage.AuditHead{}, err
	}
	if len(h.Hash) == 0 {
		h.Hash = nil
	}
	return h, nil
}

func getAuditHead(ctx context.Context, c conn, suffix string) (storage.AuditHead, error) {
	h, err := scanAuditHead(c.queryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+suffix))
	if errors.Is(err, sql.ErrNoRows) {
		// The migration creates the row; only a hand edit removes it.
		return h, fmt.Errorf("sqlstore: audit head row is missing: %w", storage.ErrNotFound)
	}
	if err != nil {
		return h, fmt.Errorf("sqlstore: get audit head: %w", err)
	}
	return h, nil
}

func (s *Store) GetAuditHead(ctx context.Context) (storage.AuditHead, error) {
	return getAuditHead(ctx, s.reads(), "")
}

// AppendAudit locks the head row (SQLite's IMMEDIATE transaction already
// excludes every other writer), lets chain number and link the batch, checks
// that it did so from the head on, and stores records and head together. Two
// replicas' appends therefore queue on the head and never fork the chain.
// chain sees times as they will be stored: UTC, whole microseconds.
func (s *Store) AppendAudit(ctx context.Context, recs []storage.AuditRecord, chain func(head storage.AuditHead, recs []storage.AuditRecord) error) error {
	if len(recs) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx conn) error {
		head, err := getAuditHead(ctx, tx, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		// chain works on a copy, so that the caller's slice is left as it
		// was whatever happens.
		batch := slices.Clone(recs)
		for i := range batch {
			batch[i].Time = fromMicros(micros(batch[i].Time))
		}
		if err := chain(head, batch); err != nil {
			return err
		}
		if err := checkChained(head, batch); err != nil {
			return err
		}
		if err := insertAudit(ctx, tx, batch); err != nil {
			return err
		}
		last := batch[len(batch)-1]
		if _, err := tx.exec(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, last.Seq, last.Hash); err != nil {
			return fmt.Errorf("sqlstore: update audit head: %w", err)
		}
		return nil
	})
}

// checkChained verifies that recs continue the chain at head: consecutive
// sequence numbers, each PrevHash its predecessor's Hash, and a hash on
// every record.
func checkChained(head storage.AuditHead, recs []storage.AuditRecord) error {
	seq, prev := head.Seq, head.Hash
	for i, r := range recs {
		seq++
		switch {
		case r.Seq != seq:
			return fmt.Errorf("sqlstore: append audit: chain numbered record %d of the batch %d, want %d", i, r.Seq, seq)
		case !bytes.Equal(r.PrevHash, prev):
			return fmt.Errorf("sqlstore: append audit: record %d does not link to its predecessor", r.Seq)
		case len(r.Hash) == 0:
			return fmt.Errorf("sqlstore: append audit: record %d has no hash", r.Seq)
		}
		prev = r.Hash
	}
	return nil
}

// insertAudit inserts a batch. PostgreSQL gets multi-row INSERTs, one
// round trip per chunk; SQLite, which has no round trips to save, runs one
// prepared single-row INSERT per record rather than parse a long statement.
func insertAudit(ctx context.Context, tx conn, recs []storage.AuditRecord) error {
	if tx.dialect == dialectPostgres {
		for chunk := range slices.Chunk(recs, auditChunk) {
			if err := insertAuditRows(ctx, tx, chunk); err != nil {
				return err
			}
		}
		return nil
	}
	stmt, err := tx.q.PrepareContext(ctx, `INSERT INTO audit_records (`+auditColumns+`) VALUES (`+
		strings.TrimSuffix(strings.Repeat(`?, `, auditColumnCount), `, `)+`)`)
	if err != nil {
		return fmt.Errorf("sqlstore: prepare audit insert: %w", err)
	}
	defer stmt.Close()
	for _, r := range recs {
		args, err := auditArgs(r)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("sqlstore: insert audit record %d: %w", r.Seq, err)
		}
	}
	return nil
}

func auditArgs(r storage.AuditRecord) ([]any, error) {
	scopes, err := encodeJSON(r.Scopes)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: encode audit record %d: %w", r.Seq, err)
	}
	return []any{r.Seq, micros(r.Time), r.RequestID, r.Principal, r.Workload, r.User,
		r.Operation, r.Provider, scopes, r.Flow, r.Outcome, r.ErrorType, r.Resource, nonNil(r.PrevHash), r.Hash}, nil
}

func insertAuditRows(ctx context.Context, tx conn, recs []storage.AuditRecord) error {
	var q strings.Builder
	q.Grow(100 + len(recs)*(3*auditColumnCount+4))
	q.WriteString(`INSERT INTO audit_records (` + auditColumns + `) VALUES `)
	row := `(` + strings.TrimSuffix(strings.Repeat(`?, `, auditColumnCount), `, `) + `)`
	args := make([]any, 0, len(recs)*auditColumnCount)
	for i, r := range recs {
		if i > 0 {
			q.WriteString(`, `)
		}
		q.WriteString(row)
		rowArgs, err := auditArgs(r)
		if err != nil {
			return err
		}
		args = append(args, rowArgs...)
	}
	if _, err := tx.exec(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("sqlstore: insert audit records %d to %d: %w", recs[0].Seq, recs[len(recs)-1].Seq, err)
	}
	return nil
}

// nonNil stores an absent hash (the first record's predecessor) as an empty
// one, which the NOT NULL column accepts.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func scanAuditRecord(row scanner) (storage.AuditRecord, error) {
	var (
		r      storage.AuditRecord
		t      int64
		scopes string
	)
	if err := row.Scan(&r.Seq, &t, &r.RequestID, &r.Principal, &r.Workload, &r.User, &r.Operation,
		&r.Provider, &scopes, &r.Flow, &r.Outcome, &r.ErrorType, &r.Resource, &r.PrevHash, &r.Hash); err != nil {
		return storage.AuditRecord{}, err
	}
	if err := decodeJSON("audit_records.scopes", scopes, &r.Scopes); err != nil {
		return storage.AuditRecord{}, err
	}
	r.Time = fromMicros(t)
	if len(r.PrevHash) == 0 {
		r.PrevHash = nil
	}
	if len(r.Hash) == 0 {
		r.Hash = nil
	}
	return r, nil
}

func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditRecord, error) {
	where := []string{`seq > ?`}
	args := []any{f.AfterSeq}
	for _, eq := range []struct{ column, value string }{
		{"workload", f.Workload},
		{"user_key", f.User},
		{"provider", f.Provider},
		{"operation", f.Operation},
	} {
		if eq.value != "" {
			where = append(where, eq.column+` = ?`)
			args = append(args, eq.value)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, `time >= ?`)
		args = append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, `time < ?`)
		args = append(args, micros(f.Until))
	}
	rows, err := s.reads().query(ctx,
		`SELECT `+auditColumns+` FROM audit_records WHERE `+strings.Join(where, ` AND `)+` ORDER BY seq LIMIT ?`,
		append(args, pageLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list audit records: %w", err)
	}
	return collect(rows, "audit_records", scanAuditRecord)
}
