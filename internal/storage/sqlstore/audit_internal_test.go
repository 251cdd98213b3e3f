package sqlstore

import (
	"bytes"
	"crypto/sha256"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
)

// testChain links recs from head with a plain hash of each seq.
func testChain(head storage.AuditHead, recs []storage.AuditRecord) error {
	prev := head.Hash
	for i := range recs {
		sum := sha256.Sum256([]byte(strconv.FormatInt(head.Seq+int64(i)+1, 10)))
		recs[i].Seq, recs[i].PrevHash, recs[i].Hash = head.Seq+int64(i)+1, prev, sum[:]
		prev = recs[i].Hash
	}
	return nil
}

func testRecords(n int) []storage.AuditRecord {
	recs := make([]storage.AuditRecord, n)
	for i := range recs {
		recs[i] = storage.AuditRecord{Time: time.Now(), Operation: "GetResourceApiKey", Scopes: []string{"a"}, Outcome: "success"}
	}
	return recs
}

// openTwo opens two stores on dsn, as two replicas or processes would,
// closed when t ends.
func openTwo(t *testing.T, dsn string) [2]*Store {
	t.Helper()
	var stores [2]*Store
	for i := range stores {
		s, err := Open(t.Context(), dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	return stores
}

// On PostgreSQL an append from the head the store last moved takes one
// statement; one from a head that moved since (another replica's append)
// writes nothing, and AppendAudit then appends under the head's lock, so
// that two replicas alternating keep one unbroken chain.
func TestPostgresAppendAuditFromRememberedHead(t *testing.T) {
	ctx := t.Context()
	replicas := openTwo(t, pgtest.NewDatabase(t))
	a := replicas[0]
	if err := a.AppendAudit(ctx, testRecords(3), testChain); err != nil {
		t.Fatal(err)
	}
	head, ok := a.lastAuditHead.get()
	if !ok || head.Seq != 3 {
		t.Fatalf("remembered head %+v, %v; want seq 3", head, ok)
	}
	if appended, err := a.appendAuditAt(ctx, head, testRecords(2), testChain); err != nil || !appended {
		t.Fatalf("append from the head: %v, %v", appended, err)
	}
	stale := head
	if appended, err := a.appendAuditAt(ctx, stale, testRecords(2), testChain); err != nil || appended {
		t.Fatalf("append from a head that moved: appended %v, %v", appended, err)
	}
	for i := range 6 {
		if err := replicas[i%2].AppendAudit(ctx, testRecords(i+1), testChain); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	checkUnbrokenChain(t, a, 3+2+21)
}

// checkUnbrokenChain checks that s holds want testRecords, numbered from 1,
// each linked to its predecessor, and its head at the last.
func checkUnbrokenChain(t *testing.T, s *Store, want int) {
	t.Helper()
	recs, err := s.ListAudit(t.Context(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != want {
		t.Fatalf("%d records, want %d", len(recs), want)
	}
	var prev []byte
	for i, r := range recs {
		if r.Seq != int64(i+1) || !bytes.Equal(r.PrevHash, prev) || r.Operation != "GetResourceApiKey" || len(r.Scopes) != 1 {
			t.Fatalf("record %d: %+v", i, r)
		}
		prev = r.Hash
	}
	if h, err := s.GetAuditHead(t.Context()); err != nil || h.Seq != int64(want) || !bytes.Equal(h.Hash, prev) {
		t.Fatalf("head %+v, %v", h, err)
	}
}

// On SQLite an append moves the head from the one the store last moved and
// reads it only when that guess is wrong, as it is after another process
// appended to the same file; batches larger than one prepared INSERT are
// inserted in several.
func TestSQLiteAppendAuditFromRememberedHead(t *testing.T) {
	ctx := t.Context()
	stores := openTwo(t, filepath.Join(t.TempDir(), "behalf.db"))
	a, b := stores[0], stores[1]
	if err := a.AppendAudit(ctx, testRecords(3), testChain); err != nil {
		t.Fatal(err)
	}
	if head, ok := a.lastAuditHead.get(); !ok || head.Seq != 3 {
		t.Fatalf("remembered head %+v, %v; want seq 3", head, ok)
	}
	sizes := []int{1, auditRowsSQLite, 2*auditRowsSQLite + 5, 2, 4}
	want := 3
	for i, n := range sizes {
		if err := stores[(i+1)%2].AppendAudit(ctx, testRecords(n), testChain); err != nil {
			t.Fatalf("append %d records from store %d: %v", n, (i+1)%2, err)
		}
		want += n
	}
	if head, _ := a.lastAuditHead.get(); head.Seq == int64(want) {
		t.Fatalf("the last append was b's, yet a remembers the head at %d", head.Seq)
	}
	checkUnbrokenChain(t, b, want)
}
