package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/behalf-dev/behalf/internal/storage"
)

const auditColumns = `seq, time, request_id, principal, workload, user_key, operation, provider, scopes, flow, outcome, error_type, resource, actors, prev_hash, hash`

// auditColumnCount is the number of auditColumns.
const auditColumnCount = 16

// auditChunk is how many records one INSERT carries: a batch of the audit
// package's default size takes one round trip, and 16 parameters a row stay
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

const auditHeadSQL = `SELECT seq, hash FROM audit_head WHERE id = 1`

func getAuditHead(ctx context.Context, c conn, suffix string) (storage.AuditHead, error) {
	return readAuditHead(c.queryRow(ctx, auditHeadSQL+suffix))
}

func readAuditHead(row scanner) (storage.AuditHead, error) {
	h, err := scanAuditHead(row)
	if errors.Is(err, sql.ErrNoRows) {
		// The migration creates the row; only a hand edit removes it.
		return h, fmt.Errorf("sqlstore: audit head row is missing: %w", storage.ErrNotFound)
	}
	if err != nil {
		return h, fmt.Errorf("sqlstore: get audit head: %w", err)
	}
	return h, nil
}

// GetAuditHead returns the end of the audit chain (the zero head for an
// empty log).
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
	if head, ok := s.lastAuditHead.get(); ok && s.dialect == dialectPostgres && len(recs) <= auditChunk {
		appended, err := s.appendAuditAt(ctx, head, recs, chain)
		if err != nil || appended {
			return err
		}
	}
	return s.inTx(ctx, func(tx conn) error { return s.appendAudit(ctx, tx, recs, chain) })
}

// auditHeadHint remembers the head a Store last moved. It is only a guess:
// another replica, or a change recorded in its own transaction, may have
// moved the head since, which appendAuditAt detects.
type auditHeadHint struct {
	mu   sync.Mutex
	head storage.AuditHead
	set  bool
}

func (h *auditHeadHint) get() (storage.AuditHead, bool) {
	if h == nil {
		return storage.AuditHead{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head, h.set
}

func (h *auditHeadHint) put(head storage.AuditHead) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.head, h.set = head, true
	h.mu.Unlock()
}

// appendAuditAt appends recs on PostgreSQL in one statement, one round trip
// and no explicit transaction, on the guess that the head is still head:
// the statement moves the head only from exactly that seq and hash, and
// inserts the records only if it did. A single statement commits or fails
// whole, and a concurrent append that moved the head first makes the
// guarded UPDATE match nothing (PostgreSQL rechecks its condition on the
// newest row version), so nothing is written and appended is false: the
// caller then appends under the head's lock.
func (s *Store) appendAuditAt(ctx context.Context, head storage.AuditHead, recs []storage.AuditRecord, chain func(head storage.AuditHead, recs []storage.AuditRecord) error) (appended bool, err error) {
	batch, err := chainBatch(head, recs, chain)
	if err != nil {
		return false, err
	}
	last := batch[len(batch)-1]
	var q strings.Builder
	q.Grow(300 + len(batch)*len(auditValuesRow))
	q.WriteString(`WITH moved AS (UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ? RETURNING 1) ` +
		`INSERT INTO audit_records (` + auditColumns + `) SELECT * FROM (VALUES `)
	args := make([]any, 0, 4+len(batch)*auditColumnCount)
	args = append(args, last.Seq, last.Hash, head.Seq, nonNil(head.Hash))
	for i, r := range batch {
		if i > 0 {
			q.WriteString(`, `)
		}
		q.WriteString(auditValuesRow)
		rowArgs, err := auditArgs(r)
		if err != nil {
			return false, err
		}
		args = append(args, rowArgs...)
	}
	q.WriteString(`) AS v WHERE EXISTS (SELECT 1 FROM moved)`)
	res, err := s.writer.ExecContext(ctx, s.dialect.rebind(q.String()), args...)
	if err != nil {
		return false, fmt.Errorf("sqlstore: insert audit records %d to %d: %w", batch[0].Seq, last.Seq, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: insert audit records %d to %d: %w", batch[0].Seq, last.Seq, err)
	}
	if n == 0 {
		return false, nil
	}
	s.lastAuditHead.put(storage.AuditHead{Seq: last.Seq, Hash: last.Hash})
	return true, nil
}

// auditValuesRow is one row of appendAuditAt's VALUES list, typed as the
// columns are: a VALUES list outside INSERT takes no types from the table.
const auditValuesRow = `(?::bigint, ?::bigint, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::bytea, ?::bytea)`

// appendAudit appends recs inside tx; see AppendAudit.
func (s *Store) appendAudit(ctx context.Context, tx conn, recs []storage.AuditRecord, chain func(head storage.AuditHead, recs []storage.AuditRecord) error) error {
	if tx.dialect == dialectSQLite {
		return s.appendAuditSQLite(ctx, tx.q.(*sql.Tx), recs, chain)
	}
	head, err := getAuditHead(ctx, tx, s.dialect.forUpdate())
	if err != nil {
		return err
	}
	batch, err := chainBatch(head, recs, chain)
	if err != nil {
		return err
	}
	if err := insertAuditRowsAndHead(ctx, tx, batch); err != nil {
		return err
	}
	// Before the commit, so possibly a head that never commits: the next
	// appendAuditAt then matches nothing and appends under the lock.
	last := batch[len(batch)-1]
	s.lastAuditHead.put(storage.AuditHead{Seq: last.Seq, Hash: last.Hash})
	return nil
}

// chainBatch lets chain number and link a copy of recs from head on, so
// that the caller's slice is left as it was whatever happens, and checks
// that it did.
func chainBatch(head storage.AuditHead, recs []storage.AuditRecord, chain func(head storage.AuditHead, recs []storage.AuditRecord) error) ([]storage.AuditRecord, error) {
	batch := slices.Clone(recs)
	for i := range batch {
		batch[i].Time = fromMicros(micros(batch[i].Time))
	}
	if err := chain(head, batch); err != nil {
		return nil, err
	}
	if err := checkChained(head, batch); err != nil {
		return nil, err
	}
	return batch, nil
}

// WithAudit returns a view of s that appends b's record in its first write
// transaction to commit (see inTx).
func (s *Store) WithAudit(b storage.AuditBinding) storage.Storage {
	view := *s
	view.bound = &boundAudit{binding: b}
	return &view
}

// boundAudit is the pending record of a WithAudit view. mu serialises the
// view's write transactions, so that exactly one carries the record.
type boundAudit struct {
	mu       sync.Mutex
	binding  storage.AuditBinding
	appended bool
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

// auditRowsSQLite is the most records one of SQLite's prepared INSERTs
// carries: 512 parameters, far below SQLite's limit of 32766.
const auditRowsSQLite = 32

// auditStatements are the audit writer's statements on SQLite, prepared
// once per Store: SQLite otherwise parses each statement's text on every
// batch. A batch of n records is inserted by insert[n], one statement, as
// each statement executed costs more than the rows it adds.
type auditStatements struct {
	head, moveHead *sql.Stmt
	insert         [auditRowsSQLite + 1]*sql.Stmt
}

// moveAuditHeadFromSQL moves the head only from exactly the head given.
const moveAuditHeadFromSQL = `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ?`

func prepareAuditStatements(ctx context.Context, db *sql.DB) (*auditStatements, error) {
	var stmts auditStatements
	prepare := func(query string) (*sql.Stmt, error) {
		stmt, err := db.PrepareContext(ctx, query)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("sqlstore: prepare audit statements: %w", err), stmts.close())
		}
		return stmt, nil
	}
	var err error
	if stmts.head, err = prepare(auditHeadSQL); err != nil {
		return nil, err
	}
	if stmts.moveHead, err = prepare(moveAuditHeadFromSQL); err != nil {
		return nil, err
	}
	row := `(` + strings.TrimSuffix(strings.Repeat(`?, `, auditColumnCount), `, `) + `)`
	for n := 1; n <= auditRowsSQLite; n++ {
		query := `INSERT INTO audit_records (` + auditColumns + `) VALUES ` + strings.TrimSuffix(strings.Repeat(row+`, `, n), `, `)
		if stmts.insert[n], err = prepare(query); err != nil {
			return nil, err
		}
	}
	return &stmts, nil
}

func (a *auditStatements) close() error {
	var err error
	for _, stmt := range append([]*sql.Stmt{a.head, a.moveHead}, a.insert[:]...) {
		if stmt != nil {
			err = errors.Join(err, stmt.Close())
		}
	}
	return err
}

// appendAuditSQLite appends recs in tx, in two statements for a batch of
// up to auditRowsSQLite records: it moves the head from the one this Store
// last moved, and reads the head only when that fails (the first append,
// or another process's append since). SQLite's IMMEDIATE transaction
// excludes every other writer, so a head read here stays the head.
func (s *Store) appendAuditSQLite(ctx context.Context, tx *sql.Tx, recs []storage.AuditRecord, chain func(head storage.AuditHead, recs []storage.AuditRecord) error) error {
	head, remembered := s.lastAuditHead.get()
	if !remembered {
		var err error
		if head, err = readAuditHead(tx.StmtContext(ctx, s.audit.head).QueryRowContext(ctx)); err != nil {
			return err
		}
	}
	batch, moved, err := s.moveAuditHeadSQLite(ctx, tx, head, recs, chain)
	if err == nil && !moved && remembered {
		if head, err = readAuditHead(tx.StmtContext(ctx, s.audit.head).QueryRowContext(ctx)); err != nil {
			return err
		}
		batch, moved, err = s.moveAuditHeadSQLite(ctx, tx, head, recs, chain)
	}
	switch {
	case err != nil:
		return err
	case !moved:
		return fmt.Errorf("sqlstore: update audit head: it is not at seq %d, read in the same transaction", head.Seq)
	}
	for chunk := range slices.Chunk(batch, auditRowsSQLite) {
		args := make([]any, 0, len(chunk)*auditColumnCount)
		for _, r := range chunk {
			rowArgs, err := auditArgs(r)
			if err != nil {
				return err
			}
			args = append(args, rowArgs...)
		}
		if _, err := tx.StmtContext(ctx, s.audit.insert[len(chunk)]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("sqlstore: insert audit records %d to %d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, err)
		}
	}
	// Before the commit, so possibly a head that never commits: the next
	// append's move then matches nothing and reads the head.
	last := batch[len(batch)-1]
	s.lastAuditHead.put(storage.AuditHead{Seq: last.Seq, Hash: last.Hash})
	return nil
}

// moveAuditHeadSQLite chains recs from head and moves the head to the
// batch's end if it is still at head; moved is false, and nothing is
// written, if it is not.
func (s *Store) moveAuditHeadSQLite(ctx context.Context, tx *sql.Tx, head storage.AuditHead, recs []storage.AuditRecord, chain func(head storage.AuditHead, recs []storage.AuditRecord) error) (batch []storage.AuditRecord, moved bool, err error) {
	if batch, err = chainBatch(head, recs, chain); err != nil {
		return nil, false, err
	}
	last := batch[len(batch)-1]
	res, err := tx.StmtContext(ctx, s.audit.moveHead).ExecContext(ctx, last.Seq, last.Hash, head.Seq, nonNil(head.Hash))
	if err != nil {
		return nil, false, fmt.Errorf("sqlstore: update audit head: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, false, fmt.Errorf("sqlstore: update audit head: %w", err)
	}
	return batch, n == 1, nil
}

func auditArgs(r storage.AuditRecord) ([]any, error) {
	scopes, err := encodeJSON(r.Scopes)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: encode audit record %d: %w", r.Seq, err)
	}
	actors := "[]"
	if len(r.Actors) > 0 {
		if actors, err = encodeJSON(r.Actors); err != nil {
			return nil, fmt.Errorf("sqlstore: encode audit record %d: %w", r.Seq, err)
		}
	}
	return []any{r.Seq, micros(r.Time), r.RequestID, r.Principal, r.Workload, r.User,
		r.Operation, r.Provider, scopes, r.Flow, r.Outcome, r.ErrorType, r.Resource, actors, nonNil(r.PrevHash), r.Hash}, nil
}

// insertAuditRowsAndHead inserts a batch on PostgreSQL in multi-row
// INSERTs of up to auditChunk records, the last of which also moves the
// head in the same statement: one round trip for a batch of the audit
// package's default size.
func insertAuditRowsAndHead(ctx context.Context, tx conn, recs []storage.AuditRecord) error {
	row := `(` + strings.TrimSuffix(strings.Repeat(`?, `, auditColumnCount), `, `) + `)`
	for chunk := range slices.Chunk(recs, auditChunk) {
		last := &chunk[len(chunk)-1] == &recs[len(recs)-1]
		var q strings.Builder
		q.Grow(200 + len(chunk)*(3*auditColumnCount+4))
		if last {
			q.WriteString(`WITH inserted AS (`)
		}
		q.WriteString(`INSERT INTO audit_records (` + auditColumns + `) VALUES `)
		args := make([]any, 0, len(chunk)*auditColumnCount+2)
		for i, r := range chunk {
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
		if last {
			// The head moves only if every row went in: the CTE is one
			// statement, which fails whole.
			q.WriteString(` RETURNING 1) UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`)
			args = append(args, recs[len(recs)-1].Seq, recs[len(recs)-1].Hash)
		}
		if _, err := tx.exec(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("sqlstore: insert audit records %d to %d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, err)
		}
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
		r              storage.AuditRecord
		t              int64
		scopes, actors string
	)
	if err := row.Scan(&r.Seq, &t, &r.RequestID, &r.Principal, &r.Workload, &r.User, &r.Operation,
		&r.Provider, &scopes, &r.Flow, &r.Outcome, &r.ErrorType, &r.Resource, &actors, &r.PrevHash, &r.Hash); err != nil {
		return storage.AuditRecord{}, err
	}
	if err := decodeJSON("audit_records.scopes", scopes, &r.Scopes); err != nil {
		return storage.AuditRecord{}, err
	}
	if err := decodeJSON("audit_records.actors", actors, &r.Actors); err != nil {
		return storage.AuditRecord{}, err
	}
	if len(r.Actors) == 0 {
		r.Actors = nil
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

// ListAudit returns the records f selects, in sequence order (or newest
// first when f asks), at most f's limit.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditRecord, error) {
	where := []string{`seq > ?`}
	args := []any{f.AfterSeq}
	order := `seq`
	if f.NewestFirst {
		order = `seq DESC`
		if f.BeforeSeq > 0 {
			where = append(where, `seq < ?`)
			args = append(args, f.BeforeSeq)
		}
	}
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
		`SELECT `+auditColumns+` FROM audit_records WHERE `+strings.Join(where, ` AND `)+` ORDER BY `+order+` LIMIT ?`,
		append(args, pageLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list audit records: %w", err)
	}
	return collect(rows, "audit_records", scanAuditRecord)
}

// GetAuditCheckpoint returns the named checkpoint, or storage.ErrNotFound.
func (s *Store) GetAuditCheckpoint(ctx context.Context, name string) (storage.AuditCheckpoint, error) {
	var cp storage.AuditCheckpoint
	err := s.reads().queryRow(ctx, `SELECT seq, hash, mac FROM audit_checkpoints WHERE name = ?`, name).Scan(&cp.Seq, &cp.Hash, &cp.MAC)
	if errors.Is(err, sql.ErrNoRows) {
		return cp, fmt.Errorf("sqlstore: audit checkpoint %q: %w", name, storage.ErrNotFound)
	}
	if err != nil {
		return cp, fmt.Errorf("sqlstore: get audit checkpoint %q: %w", name, err)
	}
	return cp, nil
}

// PutAuditCheckpoint inserts or replaces the named checkpoint.
func (s *Store) PutAuditCheckpoint(ctx context.Context, name string, cp storage.AuditCheckpoint) error {
	return s.inTx(ctx, func(tx conn) error { return putAuditCheckpoint(ctx, tx, name, cp) })
}

func putAuditCheckpoint(ctx context.Context, tx conn, name string, cp storage.AuditCheckpoint) error {
	_, err := tx.exec(ctx, `INSERT INTO audit_checkpoints (name, seq, hash, mac) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac`,
		name, cp.Seq, nonNil(cp.Hash), nonNil(cp.MAC))
	if err != nil {
		return fmt.Errorf("sqlstore: put audit checkpoint %q: %w", name, err)
	}
	return nil
}

// DeleteAuditThrough deletes records through start.Seq under the head's
// lock, so that it never races an append into deleting the newest record.
func (s *Store) DeleteAuditThrough(ctx context.Context, start storage.AuditCheckpoint) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx conn) error {
		head, err := getAuditHead(ctx, tx, s.dialect.forUpdate())
		if err != nil {
			return err
		}
		if start.Seq >= head.Seq {
			return fmt.Errorf("sqlstore: delete audit records through %d: the head is at %d and is always kept: %w", start.Seq, head.Seq, storage.ErrConflict)
		}
		var current int64
		err = tx.queryRow(ctx, `SELECT seq FROM audit_checkpoints WHERE name = ?`, storage.AuditCheckpointStart).Scan(&current)
		switch {
		case err == nil && current >= start.Seq:
			// Another replica's retention got here first; moving the start
			// back would point verification at deleted records.
			return fmt.Errorf("sqlstore: delete audit records through %d: the log already starts after %d: %w", start.Seq, current, storage.ErrConflict)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlstore: read the audit start checkpoint: %w", err)
		}
		res, err := tx.exec(ctx, `DELETE FROM audit_records WHERE seq <= ?`, start.Seq)
		if err != nil {
			return fmt.Errorf("sqlstore: delete audit records through %d: %w", start.Seq, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlstore: delete audit records through %d: %w", start.Seq, err)
		}
		return putAuditCheckpoint(ctx, tx, storage.AuditCheckpointStart, start)
	})
	return n, err
}
