package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
)

// backend is a real store together with a raw connection to its database,
// through which tests tamper with the log.
type backend struct {
	st storage.Storage
	db *sql.DB
	pg bool
}

// exec runs a statement on the raw connection, with ? placeholders.
func (b backend) exec(t testing.TB, query string, args ...any) {
	t.Helper()
	if b.pg {
		n := 0
		var q strings.Builder
		for _, c := range query {
			if c == '?' {
				n++
				fmt.Fprintf(&q, "$%d", n)
				continue
			}
			q.WriteRune(c)
		}
		query = q.String()
	}
	if _, err := b.db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func openSQLite(t testing.TB) backend {
	path := filepath.Join(t.TempDir(), "behalf.db")
	return openBackend(t, path, "sqlite", "file:"+path+"?_pragma=busy_timeout(5000)", false)
}

func openPostgres(t testing.TB) backend {
	dsn := pgtest.NewDatabase(t)
	return openBackend(t, dsn, "pgx", dsn, true)
}

func openBackend(t testing.TB, dsn, driver, raw string, pg bool) backend {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	db, err := sql.Open(driver, raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return backend{st: st, db: db, pg: pg}
}

// forEachBackend runs fn on a fresh SQLite file and a fresh PostgreSQL
// database.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t)) })
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// event is the i-th record of a test; odd ones come through an identity
// chain.
func event(i int) storage.AuditRecord {
	r := storage.AuditRecord{
		RequestID: "req-" + strconv.Itoa(i),
		Principal: "AKIARUNTIME",
		Workload:  "agent-" + strconv.Itoa(i%3),
		User:      "user-" + strconv.Itoa(i%4),
		Operation: "GetResourceOauth2Token",
		Provider:  "github",
		Scopes:    []string{"repo", "scope-" + strconv.Itoa(i)},
		Flow:      "M2M",
		Outcome:   OutcomeSuccess,
	}
	if i%2 == 1 {
		r.Actors = []string{"caller-" + strconv.Itoa(i), "agent-x"}
	}
	return r
}

// countingStore counts AppendAudit calls and their sizes. With a gate
// (see gated), the first append closes entered and waits until the gate is
// closed, so that tests can fill the queue behind it.
type countingStore struct {
	storage.Storage
	gate     chan struct{}
	entered  chan struct{}
	held     int // records in the append waiting at the gate; read after entered
	fail     error
	mu       sync.Mutex
	batches  []int
	gateOnce sync.Once
}

func gated(st storage.Storage) *countingStore {
	return &countingStore{Storage: st, gate: make(chan struct{}), entered: make(chan struct{})}
}

func (c *countingStore) AppendAudit(ctx context.Context, recs []storage.AuditRecord, chain func(storage.AuditHead, []storage.AuditRecord) error) error {
	if c.gate != nil {
		c.gateOnce.Do(func() {
			c.held = len(recs)
			close(c.entered)
			<-c.gate
		})
	}
	c.mu.Lock()
	c.batches = append(c.batches, len(recs))
	c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	return c.Storage.AppendAudit(ctx, recs, chain)
}

func (c *countingStore) counts() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.batches...)
}

// waitQueued waits until n records wait in l's queue.
func waitQueued(t *testing.T, l *Log, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(l.queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d records queued, want %d", len(l.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitAllQueued waits until all n records are either held at cs's gate or
// queued behind it.
func waitAllQueued(t *testing.T, l *Log, cs *countingStore, n int) {
	t.Helper()
	<-cs.entered
	waitQueued(t, l, n-cs.held)
}

func mustVerify(t *testing.T, st storage.Storage, key []byte, records int64) Report {
	t.Helper()
	rep, err := Verify(t.Context(), st, key)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.OK() || rep.Records != records {
		t.Fatalf("verify: %d records, problems %v (+%d); want %d records and none", rep.Records, rep.Problems, rep.Omitted, records)
	}
	return rep
}

func TestRecordAndVerify(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		key := testKey(1)
		rep := mustVerify(t, b.st, key, 0)
		if rep.Head.Seq != 0 || rep.Head.Hash != nil {
			t.Errorf("empty log has head %+v", rep.Head)
		}

		at := time.Date(2025, 1, 2, 3, 4, 5, 678912345, time.FixedZone("CET", 3600))
		now := time.Date(2025, 1, 2, 9, 0, 0, 999, time.UTC)
		l := New(b.st, key, Options{Now: func() time.Time { return now }})
		defer l.Close()
		given := event(0)
		given.Time = at
		if err := l.Record(ctx, given); err != nil {
			t.Fatal(err)
		}
		// Fields a backend could refuse are made storable.
		odd := event(1)
		odd.User, odd.Scopes = "nul\x00byte", []string{"bad\xffutf8", ""}
		if err := l.Record(ctx, odd); err != nil {
			t.Fatalf("record an event with a NUL byte and invalid UTF-8: %v", err)
		}
		for i := 2; i < 10; i++ {
			if err := l.Record(ctx, event(i)); err != nil {
				t.Fatal(err)
			}
		}
		rep = mustVerify(t, b.st, key, 10)
		recs, err := b.st.ListAudit(ctx, storage.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Head.Seq != 10 || !bytes.Equal(rep.Head.Hash, recs[9].Hash) {
			t.Errorf("report's head is %d, want the last record's", rep.Head.Seq)
		}
		if want := time.UnixMicro(at.UnixMicro()).UTC(); !recs[0].Time.Equal(want) || recs[0].Time.Location() != time.UTC {
			t.Errorf("given time stored as %v, want %v", recs[0].Time, want)
		}
		if want := time.UnixMicro(now.UnixMicro()).UTC(); !recs[1].Time.Equal(want) {
			t.Errorf("zero time stored as %v, want the clock's %v", recs[1].Time, want)
		}
		if recs[1].User != "nul\uFFFDbyte" || recs[1].Scopes[0] != "bad\uFFFDutf8" || len(recs[1].Scopes) != 2 {
			t.Errorf("odd fields stored as %q %q", recs[1].User, recs[1].Scopes)
		}
		if got := recs[3]; got.RequestID != "req-3" || got.Workload != "agent-0" || got.Scopes[1] != "scope-3" || got.Outcome != OutcomeSuccess ||
			strings.Join(got.Actors, ">") != "caller-3>agent-x" || recs[2].Actors != nil {
			t.Errorf("record 4 stored as %+v", got)
		}
	})
}

// TestGroupCommit sends 200 concurrent records: they must form one gap-free
// chain in far fewer transactions than records.
func TestGroupCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const n = 200
		key := testKey(2)
		cs := gated(b.st)
		l := New(cs, key, Options{})
		defer l.Close()

		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() { errs <- l.Record(t.Context(), event(i)) })
		}
		// The first batch holds the writer; the rest queue behind it.
		waitAllQueued(t, l, cs, n)
		close(cs.gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}

		mustVerify(t, b.st, key, n)
		batches := cs.counts()
		total := 0
		for _, size := range batches {
			total += size
		}
		if total != n || len(batches) > 3 {
			t.Errorf("batches %v: want %d records in at most 3 transactions", batches, n)
		}
		t.Logf("%d records in batches %v", n, batches)
	})
}

// TestConcurrentRecord runs many callers without holding the writer back.
func TestConcurrentRecord(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const callers, each = 50, 10
		key := testKey(3)
		cs := &countingStore{Storage: b.st}
		l := New(cs, key, Options{MaxBatch: 16})
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				for j := range each {
					if err := l.Record(t.Context(), event(i*each+j)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		mustVerify(t, b.st, key, callers*each)
		for _, size := range cs.counts() {
			if size > 16 {
				t.Fatalf("a batch of %d records exceeds MaxBatch 16", size)
			}
		}
		t.Logf("%d records in %d transactions", callers*each, len(cs.counts()))
	})
}

func TestMaxBatch(t *testing.T) {
	b := openSQLite(t)
	cs := gated(b.st)
	l := New(cs, testKey(4), Options{MaxBatch: 8})
	defer l.Close()
	var wg sync.WaitGroup
	for i := range 41 {
		wg.Go(func() {
			if err := l.Record(t.Context(), event(i)); err != nil {
				t.Error(err)
			}
		})
	}
	// The queue holds MaxBatch records; the rest wait to enqueue.
	waitQueued(t, l, 8)
	close(cs.gate)
	wg.Wait()
	batches := cs.counts()
	for _, size := range batches {
		if size > 8 {
			t.Errorf("batch of %d records with MaxBatch 8", size)
		}
	}
	if len(batches) < 6 {
		t.Errorf("41 records in %d batches of at most 8", len(batches))
	}
	mustVerify(t, b.st, testKey(4), 41)
}

// TestCloseFlushes checks that records queued before Close are written and
// their callers released, and that Record fails afterwards.
func TestCloseFlushes(t *testing.T) {
	b := openSQLite(t)
	cs := gated(b.st)
	l := New(cs, testKey(5), Options{})
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if err := l.Record(t.Context(), event(i)); err != nil {
				t.Errorf("record queued before Close: %v", err)
			}
		})
	}
	waitAllQueued(t, l, cs, 30)
	closed := make(chan error)
	go func() { closed <- l.Close() }()
	close(cs.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	mustVerify(t, b.st, testKey(5), 30)

	if err := l.Record(t.Context(), event(99)); !errors.Is(err, ErrClosed) {
		t.Errorf("record after Close: %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestRecordFailsWithAppend: a caller must learn that its record is not
// written.
func TestRecordFailsWithAppend(t *testing.T) {
	b := openSQLite(t)
	broken := errors.New("disk on fire")
	l := New(&countingStore{Storage: b.st, fail: broken}, testKey(6), Options{})
	defer l.Close()
	if err := l.Record(t.Context(), event(0)); !errors.Is(err, broken) {
		t.Fatalf("record with a failing store: %v, want %v", err, broken)
	}
	mustVerify(t, b.st, testKey(6), 0)
}

// TestRecordCanceled: a caller that gives up gets ctx.Err(), but a queued
// record is still written.
func TestRecordCanceled(t *testing.T) {
	b := openSQLite(t)
	cs := gated(b.st)
	l := New(cs, testKey(7), Options{})
	defer l.Close()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := l.Record(ctx, event(0)); !errors.Is(err, context.Canceled) {
		t.Errorf("record with a canceled context: %v", err)
	}

	// One record holds the writer at the gate; the second waits in the queue
	// when its caller gives up.
	go func() { _ = l.Record(t.Context(), event(1)) }()
	<-cs.entered
	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- l.Record(ctx, event(2)) }()
	waitQueued(t, l, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled wait: %v", err)
	}
	close(cs.gate)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, b.st, testKey(7), 2)
}

func TestKeySize(t *testing.T) {
	b := openSQLite(t)
	l := New(b.st, make([]byte, 16), Options{})
	defer l.Close()
	if err := l.Record(t.Context(), event(0)); err == nil {
		t.Error("record with a 16-byte key succeeded")
	}
	if _, err := Verify(t.Context(), b.st, make([]byte, 31)); err == nil {
		t.Error("verify with a 31-byte key succeeded")
	}
}

// TestKeyIsCopied: the caller clearing its key must not change the chain.
func TestKeyIsCopied(t *testing.T) {
	b := openSQLite(t)
	key := testKey(8)
	l := New(b.st, key, Options{})
	clear(key)
	if err := l.Record(t.Context(), event(0)); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	mustVerify(t, b.st, testKey(8), 1)
}

// TestOneBadRecordFailsOnlyItself: when the database refuses one record
// of a group-committed batch, the others are still written and their
// callers succeed.
func TestOneBadRecordFailsOnlyItself(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if b.pg {
			b.exec(t, `CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN IF NEW.request_id = 'poison' THEN RAISE EXCEPTION 'poison'; END IF; RETURN NEW; END $$`)
			b.exec(t, `CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION refuse_poison()`)
		} else {
			b.exec(t, `CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_records WHEN NEW.request_id = 'poison'
				BEGIN SELECT RAISE(ABORT, 'poison'); END`)
		}
		const n = 50
		key := testKey(8)
		cs := gated(b.st)
		l := New(cs, key, Options{})
		defer l.Close()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				ev := event(i)
				if i == n/2 {
					ev.RequestID = "poison"
				}
				errs[i] = l.Record(t.Context(), ev)
			})
		}
		waitAllQueued(t, l, cs, n)
		close(cs.gate)
		wg.Wait()
		for i, err := range errs {
			if (err != nil) != (i == n/2) {
				t.Errorf("record %d: %v", i, err)
			}
		}
		mustVerify(t, b.st, key, n-1)
	})
}

// TestRecordFieldsAreBounded: no field is stored longer than
// MaxFieldBytes, a cut never splits a character, and scopes beyond
// MaxScopes are counted in one marker.
func TestRecordFieldsAreBounded(t *testing.T) {
	b := openSQLite(t)
	l := New(b.st, testKey(9), Options{})
	defer l.Close()
	long := strings.Repeat("é", 5000) // two bytes each: a cut at an odd byte would split one
	ev := event(0)
	ev.Workload, ev.User, ev.Resource, ev.RequestID = long, long, long, long
	ev.Scopes = make([]string, 3*MaxScopes)
	for i := range ev.Scopes {
		ev.Scopes[i] = long
	}
	ev.Actors = slices.Clone(ev.Scopes)
	if err := l.Record(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	recs, err := b.st.ListAudit(t.Context(), storage.AuditFilter{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("list: %v, %d records", err, len(recs))
	}
	r := recs[0]
	for _, f := range append(append([]string{r.Workload, r.User, r.Resource, r.RequestID}, r.Scopes[:MaxScopes]...), r.Actors[:MaxScopes]...) {
		if len(f) > MaxFieldBytes || !utf8.ValidString(f) || !strings.HasSuffix(f, truncatedMarker) {
			t.Fatalf("field of %d bytes, valid %v: %.40q…", len(f), utf8.ValidString(f), f)
		}
	}
	if len(r.Scopes) != MaxScopes+1 || r.Scopes[MaxScopes] != fmt.Sprintf("…[%d more scopes]", 2*MaxScopes) {
		t.Fatalf("%d scopes, last %q", len(r.Scopes), r.Scopes[len(r.Scopes)-1])
	}
	if len(r.Actors) != MaxScopes+1 || r.Actors[MaxScopes] != fmt.Sprintf("…[%d more actors]", 2*MaxScopes) {
		t.Fatalf("%d actors, last %q", len(r.Actors), r.Actors[len(r.Actors)-1])
	}
	mustVerify(t, b.st, testKey(9), 1)
}
