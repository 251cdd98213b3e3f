// Package audit keeps behalf's tamper-evident audit trail: a record of every
// credential request and its outcome, committed before the credential is
// returned.
//
// # The chain
//
// Records are numbered 1, 2, 3, … and each carries its predecessor's hash.
// A record's hash is HMAC-SHA256, under a 32-byte key the server holds, of
// a canonical encoding of every other field: a version label, the
// predecessor's hash, then Seq, Time and the rest, each length-prefixed
// (encode.go documents the layout). The storage backend keeps the end of
// the chain in a head row that it updates in the same transaction as the
// records, so the head always names the newest record.
//
// # Why an HMAC
//
// The key is a server key sealed by the vault, so an attacker who can write
// the database but cannot open its secrets cannot compute the hash of an
// edited or invented record. With a plain hash that attacker could edit a
// record and recompute the chain from there on. Without the key, Verify
// detects:
//
//   - an edited record: its hash does not recompute (Seq is hashed too, so
//     moving a record's contents to another seq is an edit);
//   - a deleted record in the middle, or at the start: a gap in seq;
//   - an inserted or reordered record: a hash or a link that does not match;
//   - records deleted from the end: the head names a record that is gone;
//   - records added after the end: they are beyond the head (and their
//     hashes do not recompute);
//   - a missing or edited head row.
//
// # What it does not prove
//
//   - An attacker who holds the key (the server itself, or anyone who can
//     read the database and unseal its secrets) can rewrite any part of the
//     history and recompute every hash after it.
//   - An attacker who deletes the newest records and also sets the head row
//     back to the last remaining record (copying its seq and hash needs no
//     key) leaves a shorter log that verifies. The same goes for emptying
//     the log and resetting the head, or restoring an old backup. Such a
//     truncation is detected only if a later head was kept outside the
//     database, such as Report.Head of an earlier Verify or records shipped
//     elsewhere, and compared with the database's.
//   - A verified record says what the server was told and did, not that it
//     was true.
//
// # Writing
//
// A change and its record commit together: Bind returns a view of the
// store whose first write transaction appends the record before it
// commits (storage.Storage.WithAudit), so no change is ever stored without
// its record, nor a record of a change that did not happen.
//
// Everything else (a vend, a refused or failed call) is written with group
// commit: callers of Record queue their records and wait, while one writer
// goroutine appends whatever is queued in a single transaction and then
// releases every waiter at once. A credential must never be returned
// unless its record is written, so Record returns only once its record is
// committed, or with an error. When a batch fails, its records are retried
// one at a time, so that one record the database refuses fails only its
// own caller.
//
// Every string field is cut to MaxFieldBytes and the scopes to MaxScopes
// (see bound), so that no input, however large, makes a record the
// database refuses.
package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// KeySize is the size of the chain key.
const KeySize = 32

// Outcomes of an audited operation.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit: log closed")

var errKeySize = fmt.Errorf("audit: the chain key must be %d bytes", KeySize)

// Bounds of a record's fields. A field longer than MaxFieldBytes is cut on
// a UTF-8 boundary and ends with truncatedMarker; scopes beyond MaxScopes
// are replaced by one marker counting them. Both keep every index entry
// far below PostgreSQL's limit of about 2,700 bytes.
const (
	MaxFieldBytes = 1024
	MaxScopes     = 64
)

const truncatedMarker = "…[truncated]"

// Options configure a Log. The zero value is ready to use.
type Options struct {
	// MaxBatch caps how many records one transaction appends; default 512.
	MaxBatch int
	// AppendTimeout bounds each transaction, so that a stalled database
	// fails waiting callers instead of holding them; default 30s.
	AppendTimeout time.Duration
	// Now is the clock for events without a time; default time.Now.
	Now func() time.Time
	// Metrics records each transaction's size and commit latency; nil
	// records nothing.
	Metrics *telemetry.Metrics
	// Export, when set, receives records once they are committed, with
	// their Seq and Hash: after each batch, and after each change that
	// committed its record (Bind). It is called from the writer, after
	// the batch's callers were released, or from the changing call; it
	// must not block.
	Export func(recs []storage.AuditRecord)
}

// Log appends records to the chain in storage. It is safe for concurrent
// use. Several Logs, in one process or in replicas, may share a store, whose
// head row serialises their appends; one Log per process batches best.
type Log struct {
	st      storage.Storage
	hashers sync.Pool // of *hasher, as chain runs in callers' transactions too
	keyErr  error
	opts    Options
	stopped chan struct{}

	mu     sync.RWMutex // guards closed and sending on queue
	closed bool
	queue  chan *request
}

type request struct {
	rec  storage.AuditRecord
	done chan error // buffered: the writer never waits for the caller
}

// New returns a Log writing to st with the chain key, and starts its writer
// goroutine; Close stops it. key must be KeySize bytes, or every Record
// fails.
func New(st storage.Storage, key []byte, opts Options) *Log {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.AppendTimeout <= 0 {
		opts.AppendTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Log{
		st:      st,
		opts:    opts,
		stopped: make(chan struct{}),
		queue:   make(chan *request, opts.MaxBatch),
	}
	if len(key) == KeySize {
		key := bytes.Clone(key)
		l.hashers.New = func() any { return newHasher(key) }
	} else {
		l.keyErr = errKeySize
	}
	go l.run()
	return l
}

// Record appends rec to the log and returns once it is committed. Record
// sets Time when it is zero, and the chain sets Seq, PrevHash and Hash.
// When ctx ends first, Record returns ctx.Err() but the record may still be
// written: it cannot be taken back once queued. An error from Record means
// the operation it describes must not hand out its result.
func (l *Log) Record(ctx context.Context, rec storage.AuditRecord) error {
	if l.keyErr != nil {
		return l.keyErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The record names the caller's span, not its wait below.
	if !rec.Trace.IsValid() {
		rec.Trace = trace.SpanContextFromContext(ctx)
	}
	// The span is the caller's wait for the durable commit.
	ctx, span := telemetry.Start(ctx, "audit.commit")
	err := l.enqueue(ctx, rec)
	telemetry.End(span, err, "audit")
	return err
}

func (l *Log) enqueue(ctx context.Context, rec storage.AuditRecord) error {
	req := &request{rec: l.bound(rec), done: make(chan error, 1)}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	select {
	case l.queue <- req:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Bind returns a view of st whose first write transaction also appends the
// record rec returns, in the same transaction (storage.Storage.WithAudit).
// rec is called inside that transaction, so it carries what the caller
// learned up to the write; committed, when set, is called once the record
// is committed. With a bad chain key every write through the view fails.
func (l *Log) Bind(st storage.Storage, rec func() storage.AuditRecord, committed func()) storage.Storage {
	var chained []storage.AuditRecord
	return st.WithAudit(storage.AuditBinding{
		Record: func() storage.AuditRecord { return l.bound(rec()) },
		Chain: func(head storage.AuditHead, recs []storage.AuditRecord) error {
			if l.keyErr != nil {
				return l.keyErr
			}
			err := l.chain(head, recs)
			chained = recs
			return err
		},
		Committed: func() {
			l.export(chained)
			if committed != nil {
				committed()
			}
		},
	})
}

// bound returns rec as it will be stored: with a time, every string valid
// UTF-8 without NUL and at most MaxFieldBytes long, and at most MaxScopes
// scopes and as many actors. A refused request's oversized input is therefore never stored
// whole, and no record is too large for the database's indexes.
func (l *Log) bound(rec storage.AuditRecord) storage.AuditRecord {
	t := rec.Time
	if t.IsZero() {
		t = l.opts.Now()
	}
	return storage.AuditRecord{
		Time:      time.UnixMicro(t.UnixMicro()).UTC(),
		RequestID: boundString(rec.RequestID),
		Principal: boundString(rec.Principal),
		Workload:  boundString(rec.Workload),
		User:      boundString(rec.User),
		Operation: boundString(rec.Operation),
		Provider:  boundString(rec.Provider),
		Scopes:    boundList(rec.Scopes, "scopes"),
		Flow:      boundString(rec.Flow),
		Resource:  boundString(rec.Resource),
		Outcome:   boundString(rec.Outcome),
		ErrorType: boundString(rec.ErrorType),
		Actors:    boundList(rec.Actors, "actors"),
		Trace:     rec.Trace,
	}
}

// boundList bounds each of list's strings and keeps at most MaxScopes of
// them, replacing the rest by one marker counting them; nil stays nil.
func boundList(list []string, what string) []string {
	if list == nil {
		return nil
	}
	n := min(len(list), MaxScopes)
	out := make([]string, n, n+1)
	for i, s := range list[:n] {
		out[i] = boundString(s)
	}
	if extra := len(list) - n; extra > 0 {
		out = append(out, fmt.Sprintf("…[%d more %s]", extra, what))
	}
	return out
}

// boundString cleans s and cuts it to MaxFieldBytes on a UTF-8 boundary,
// ending a cut string with truncatedMarker.
func boundString(s string) string {
	s = clean(s)
	if len(s) <= MaxFieldBytes {
		return s
	}
	cut := MaxFieldBytes - len(truncatedMarker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncatedMarker
}

// clean replaces invalid UTF-8 and NUL bytes with U+FFFD. PostgreSQL's text
// type refuses both, and a caller who could put them in a field (a scope, a
// user id) would otherwise fail every record in the same batch.
func clean(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Close writes every queued record, then stops the writer. Record calls
// after Close fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.stopped
	return nil
}

// run is the writer: it takes what is queued, up to MaxBatch, appends it in
// one transaction and tells every waiter the outcome.
func (l *Log) run() {
	defer close(l.stopped)
	batch := make([]*request, 0, l.opts.MaxBatch)
	recs := make([]storage.AuditRecord, 0, l.opts.MaxBatch)
	for first := range l.queue {
		// Let the goroutines that can run first reach the queue too: a
		// batch shares one commit's fixed cost (on SQLite an fsync), and
		// with nothing else runnable this returns at once.
		runtime.Gosched()
		batch = append(batch[:0], first)
	fill:
		for len(batch) < l.opts.MaxBatch {
			select {
			case req, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, req)
			default:
				break fill
			}
		}
		recs = recs[:0]
		for _, req := range batch {
			recs = append(recs, req.rec)
		}
		chained, err := l.append(recs)
		if err != nil && len(batch) > 1 && !errors.Is(err, context.DeadlineExceeded) {
			// One record the database refuses must not fail the others:
			// retry each alone. A batch that timed out is not retried, as
			// a stalled database would only stall each record in turn.
			for _, req := range batch {
				chained, err := l.append([]storage.AuditRecord{req.rec})
				req.done <- err
				l.export(chained)
			}
		} else {
			for _, req := range batch {
				req.done <- err
			}
			l.export(chained)
		}
		clear(batch)
	}
}

// append appends recs in one transaction and returns them as committed,
// numbered and hashed; none when it failed.
func (l *Log) append(recs []storage.AuditRecord) ([]storage.AuditRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.AppendTimeout)
	defer cancel()
	var chained []storage.AuditRecord
	chain := func(head storage.AuditHead, batch []storage.AuditRecord) error {
		err := l.chain(head, batch)
		chained = batch // the last chaining is the one committed
		return err
	}
	start := time.Now()
	err := l.st.AppendAudit(ctx, recs, chain)
	l.opts.Metrics.AuditBatch(ctx, len(recs), time.Since(start), err)
	if err != nil {
		return nil, fmt.Errorf("audit: append %d records: %w", len(recs), err)
	}
	return chained, nil
}

// QueueDepth is how many records wait for the writer.
func (l *Log) QueueDepth() int64 { return int64(len(l.queue)) }

// export hands committed records to Options.Export.
func (l *Log) export(recs []storage.AuditRecord) {
	if l.opts.Export != nil && len(recs) > 0 {
		l.opts.Export(recs)
	}
}

// chain numbers recs from the head on and links and hashes each.
func (l *Log) chain(head storage.AuditHead, recs []storage.AuditRecord) error {
	h := l.hashers.Get().(*hasher)
	defer l.hashers.Put(h)
	prev := slices.Clip(head.Hash)
	for i := range recs {
		recs[i].Seq = head.Seq + int64(i) + 1
		recs[i].PrevHash = prev
		recs[i].Hash = h.sum(&recs[i])
		prev = recs[i].Hash
	}
	return nil
}
