package conformance

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// chainAudit is a stand-in for the audit package's chain: it numbers and
// links recs from head, hashing each predecessor's hash with the record's
// request id.
func chainAudit(head storage.AuditHead, recs []storage.AuditRecord) error {
	prev := head.Hash
	for i := range recs {
		recs[i].Seq = head.Seq + int64(i) + 1
		recs[i].PrevHash = prev
		h := sha256.Sum256(append(slices.Clip(prev), recs[i].RequestID...))
		recs[i].Hash = h[:]
		prev = recs[i].Hash
	}
	return nil
}

// recordingChain runs chainAudit and keeps a copy of what it set.
func recordingChain(set *[]storage.AuditRecord) func(storage.AuditHead, []storage.AuditRecord) error {
	return func(head storage.AuditHead, recs []storage.AuditRecord) error {
		err := chainAudit(head, recs)
		*set = append(*set, recs...)
		return err
	}
}

func newAuditRecord(requestID string, at time.Time) storage.AuditRecord {
	return storage.AuditRecord{
		Time:      at,
		RequestID: requestID,
		Principal: "AKIARUNTIME",
		Workload:  "agent",
		User:      "user-1",
		Operation: "GetResourceOauth2Token",
		Provider:  "github",
		Scopes:    []string{"repo", "read:user"},
		Flow:      "M2M",
		Outcome:   "success",
	}
}

// auditRecords returns n records with request ids prefix-0, prefix-1, ….
func auditRecords(prefix string, n int) []storage.AuditRecord {
	recs := make([]storage.AuditRecord, n)
	for i := range recs {
		recs[i] = newAuditRecord(fmt.Sprintf("%s-%d", prefix, i), past().Add(time.Duration(i)*time.Second))
	}
	return recs
}

// listAllAudit pages through the whole log.
func listAllAudit(t testing.TB, s storage.Storage) []storage.AuditRecord {
	t.Helper()
	var all []storage.AuditRecord
	for {
		page, err := s.ListAudit(t.Context(), storage.AuditFilter{AfterSeq: lastSeq(all), Limit: maxPageLimit})
		mustOK(t, err, "list audit records")
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

func lastSeq(recs []storage.AuditRecord) int64 {
	if len(recs) == 0 {
		return 0
	}
	return recs[len(recs)-1].Seq
}

// checkAuditChain checks that recs are the whole log: numbered 1…n without
// a gap, each linked to its predecessor, and ending at the head.
func checkAuditChain(t testing.TB, s storage.Storage, recs []storage.AuditRecord) {
	t.Helper()
	var prev []byte
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d of the log has seq %d: the chain has a gap", i, r.Seq)
		}
		if !bytes.Equal(r.PrevHash, prev) {
			t.Fatalf("record %d does not link to its predecessor", r.Seq)
		}
		prev = r.Hash
	}
	head, err := s.GetAuditHead(t.Context())
	mustOK(t, err, "get audit head")
	wantDiff(t, "audit head", storage.AuditHead{Seq: lastSeq(recs), Hash: prev}, head)
}

func testAuditAppend(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	head, err := s.GetAuditHead(ctx)
	mustOK(t, err, "get the head of an empty log")
	wantDiff(t, "head of an empty log", storage.AuditHead{}, head)
	recs, err := s.ListAudit(ctx, storage.AuditFilter{})
	mustOK(t, err, "list an empty log")
	if len(recs) != 0 {
		t.Errorf("empty log lists %d records", len(recs))
	}

	called := false
	mustOK(t, s.AppendAudit(ctx, nil, func(storage.AuditHead, []storage.AuditRecord) error {
		called = true
		return nil
	}), "append nothing")
	if called {
		t.Error("appending nothing called chain")
	}

	// The first batch: times in another zone and with nanoseconds, scopes in
	// an order to keep, nil and empty scopes.
	first := auditRecords("first", 3)
	first[0].Scopes = []string{"z", "a", "m"}
	first[1].Scopes = nil
	first[2].Scopes = []string{}
	first[2].Outcome, first[2].ErrorType = "failure", "AccessDeniedException"
	first[0].Actors = []string{"agent-z", "agent-a"}
	orig := slices.Clone(first)
	var set []storage.AuditRecord
	mustOK(t, s.AppendAudit(ctx, first, func(head storage.AuditHead, recs []storage.AuditRecord) error {
		wantDiff(t, "head passed to the first chain", storage.AuditHead{}, head)
		for i, r := range recs {
			checkStoredTime(t, "time passed to chain", r.Time, orig[i].Time)
		}
		return recordingChain(&set)(head, recs)
	}), "append the first batch")
	wantDiff(t, "caller's records after append", orig, first)
	if len(set) != 3 || set[0].PrevHash != nil {
		t.Fatalf("chain set %d records, first PrevHash %x", len(set), set[0].PrevHash)
	}
	got, err := s.ListAudit(ctx, storage.AuditFilter{})
	mustOK(t, err, "list the first batch")
	wantDiff(t, "stored records vs. what chain set", set, got)
	wantDiff(t, "scopes kept in order", []string{"z", "a", "m"}, got[0].Scopes)
	if got[1].Scopes != nil || got[2].Scopes == nil {
		t.Errorf("nil and empty scopes came back as %#v and %#v", got[1].Scopes, got[2].Scopes)
	}
	wantDiff(t, "actors kept in order", []string{"agent-z", "agent-a"}, got[0].Actors)
	if got[1].Actors != nil {
		t.Errorf("no actors came back as %#v", got[1].Actors)
	}
	checkAuditChain(t, s, got)

	// The next batch continues from the head (on PostgreSQL, in the one
	// statement of a head it guessed right).
	var second []storage.AuditRecord
	next := auditRecords("second", 2)
	next[1].Actors = []string{"agent-b"}
	mustOK(t, s.AppendAudit(ctx, next, func(head storage.AuditHead, recs []storage.AuditRecord) error {
		wantDiff(t, "head passed to the second chain", storage.AuditHead{Seq: 3, Hash: set[2].Hash}, head)
		return recordingChain(&second)(head, recs)
	}), "append the second batch")
	if second[0].Seq != 4 || !bytes.Equal(second[0].PrevHash, set[2].Hash) {
		t.Errorf("second batch starts at seq %d", second[0].Seq)
	}
	got, err = s.ListAudit(ctx, storage.AuditFilter{AfterSeq: 3})
	mustOK(t, err, "list the second batch")
	wantDiff(t, "stored second batch vs. what chain set", second, got)

	// A batch larger than any single insert statement.
	mustOK(t, s.AppendAudit(ctx, auditRecords("large", 700), chainAudit), "append a large batch")
	all := listAllAudit(t, s)
	if len(all) != 705 {
		t.Fatalf("log holds %d records, want 705", len(all))
	}
	checkAuditChain(t, s, all)
	if all[5].RequestID != "large-0" || all[704].RequestID != "large-699" {
		t.Errorf("large batch stored out of order: %q … %q", all[5].RequestID, all[704].RequestID)
	}
}

// testAuditChainRefused checks that a chain that fails or misnumbers its
// batch leaves the log as it was.
func testAuditChainRefused(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustOK(t, s.AppendAudit(ctx, auditRecords("base", 2), chainAudit), "append the base records")
	before := listAllAudit(t, s)
	headBefore, err := s.GetAuditHead(ctx)
	mustOK(t, err, "get audit head")

	err = s.AppendAudit(ctx, auditRecords("refused", 3), func(head storage.AuditHead, recs []storage.AuditRecord) error {
		_ = chainAudit(head, recs)
		return fmt.Errorf("wrapped: %w", errRefused)
	})
	wantErr(t, err, errRefused, "append with a refusing chain")

	for what, spoil := range map[string]func(recs []storage.AuditRecord){
		"restarts at the head's seq": func(recs []storage.AuditRecord) {
			for i := range recs {
				recs[i].Seq--
			}
		},
		"leaves a gap after the head": func(recs []storage.AuditRecord) {
			for i := range recs {
				recs[i].Seq++
			}
		},
		"skips a seq in the batch":      func(recs []storage.AuditRecord) { recs[2].Seq++ },
		"swaps two records":             func(recs []storage.AuditRecord) { recs[0], recs[1] = recs[1], recs[0] },
		"does not link to the head":     func(recs []storage.AuditRecord) { recs[0].PrevHash = []byte("forged") },
		"starts a new chain":            func(recs []storage.AuditRecord) { recs[0].PrevHash = nil },
		"breaks a link in the batch":    func(recs []storage.AuditRecord) { recs[2].PrevHash = recs[0].Hash },
		"leaves a record without hash":  func(recs []storage.AuditRecord) { recs[1].Hash, recs[2].PrevHash = nil, nil },
		"numbers nothing":               func(recs []storage.AuditRecord) { clear(recs) },
		"leaves the last without a seq": func(recs []storage.AuditRecord) { recs[2].Seq = 0 },
	} {
		err := s.AppendAudit(ctx, auditRecords("spoiled", 3), func(head storage.AuditHead, recs []storage.AuditRecord) error {
			_ = chainAudit(head, recs)
			spoil(recs)
			return nil
		})
		if err == nil {
			t.Errorf("append with a chain that %s succeeded", what)
		}
	}

	wantDiff(t, "log after refused appends", before, listAllAudit(t, s))
	head, err := s.GetAuditHead(ctx)
	mustOK(t, err, "get audit head after refused appends")
	wantDiff(t, "head after refused appends", headBefore, head)

	// The log goes on from where it was.
	mustOK(t, s.AppendAudit(ctx, auditRecords("after", 2), chainAudit), "append after refused appends")
	all := listAllAudit(t, s)
	if len(all) != 4 {
		t.Fatalf("log holds %d records, want 4", len(all))
	}
	checkAuditChain(t, s, all)
}

func testAuditList(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	const n = 60
	recs := make([]storage.AuditRecord, n)
	for i := range recs {
		r := newAuditRecord(fmt.Sprintf("req-%02d", i), t0.Add(time.Duration(i)*time.Minute))
		r.Workload = "agent-" + strconv.Itoa(i%3)
		r.User = "user-" + strconv.Itoa(i%2)
		r.Provider = "provider-" + strconv.Itoa(i%5)
		r.Operation = []string{"GetResourceOauth2Token", "GetResourceApiKey"}[i%4/3]
		recs[i] = r
	}
	// Several batches, so that filtering crosses batch boundaries.
	for batch := range slices.Chunk(recs, 17) {
		mustOK(t, s.AppendAudit(ctx, batch, chainAudit), "append")
	}
	all := listAllAudit(t, s)
	if len(all) != n {
		t.Fatalf("log holds %d records, want %d", len(all), n)
	}

	for _, c := range []struct {
		name   string
		filter storage.AuditFilter
		match  func(r storage.AuditRecord) bool
	}{
		{"everything", storage.AuditFilter{}, func(storage.AuditRecord) bool { return true }},
		{"workload", storage.AuditFilter{Workload: "agent-1"}, func(r storage.AuditRecord) bool { return r.Workload == "agent-1" }},
		{"user", storage.AuditFilter{User: "user-0"}, func(r storage.AuditRecord) bool { return r.User == "user-0" }},
		{"provider", storage.AuditFilter{Provider: "provider-4"}, func(r storage.AuditRecord) bool { return r.Provider == "provider-4" }},
		{"operation", storage.AuditFilter{Operation: "GetResourceApiKey"}, func(r storage.AuditRecord) bool { return r.Operation == "GetResourceApiKey" }},
		{"workload and user", storage.AuditFilter{Workload: "agent-2", User: "user-1"}, func(r storage.AuditRecord) bool {
			return r.Workload == "agent-2" && r.User == "user-1"
		}},
		{"since (inclusive)", storage.AuditFilter{Since: t0.Add(40 * time.Minute)}, func(r storage.AuditRecord) bool {
			return !r.Time.Before(t0.Add(40 * time.Minute))
		}},
		{"until (exclusive)", storage.AuditFilter{Until: t0.Add(10 * time.Minute)}, func(r storage.AuditRecord) bool {
			return r.Time.Before(t0.Add(10 * time.Minute))
		}},
		{"window in another zone", storage.AuditFilter{
			Since: t0.Add(10 * time.Minute).In(time.FixedZone("UTC-5", -5*3600)),
			Until: t0.Add(20 * time.Minute).In(time.FixedZone("UTC+9", 9*3600)),
		}, func(r storage.AuditRecord) bool {
			return !r.Time.Before(t0.Add(10*time.Minute)) && r.Time.Before(t0.Add(20*time.Minute))
		}},
		{"after seq", storage.AuditFilter{AfterSeq: 50}, func(r storage.AuditRecord) bool { return r.Seq > 50 }},
		{"everything at once", storage.AuditFilter{
			Workload: "agent-0", User: "user-0", Provider: "provider-0", Operation: "GetResourceOauth2Token",
			Since: t0, Until: t0.Add(time.Hour), AfterSeq: 1,
		}, func(r storage.AuditRecord) bool {
			return r.Workload == "agent-0" && r.User == "user-0" && r.Provider == "provider-0" &&
				r.Operation == "GetResourceOauth2Token" && r.Seq > 1
		}},
		{"no match", storage.AuditFilter{Workload: "agent-9"}, func(storage.AuditRecord) bool { return false }},
	} {
		want := slices.DeleteFunc(slices.Clone(all), func(r storage.AuditRecord) bool { return !c.match(r) })
		got, err := s.ListAudit(ctx, c.filter)
		mustOK(t, err, "list "+c.name)
		if len(want) == 0 && len(got) == 0 {
			continue
		}
		wantDiff(t, "records matching "+c.name, want, got)
		wantDiff(t, "paged records matching "+c.name, want, pageAudit(t, s, c.name, c.filter))
	}
}

// pageAudit lists what filter selects in pages of 7, following AfterSeq.
func pageAudit(t *testing.T, s storage.Storage, name string, filter storage.AuditFilter) []storage.AuditRecord {
	t.Helper()
	var paged []storage.AuditRecord
	for {
		f := filter
		f.AfterSeq, f.Limit = max(filter.AfterSeq, lastSeq(paged)), 7
		page, err := s.ListAudit(t.Context(), f)
		mustOK(t, err, "page "+name)
		if len(page) > 7 {
			t.Fatalf("page of %s has %d records, limit 7", name, len(page))
		}
		if len(page) == 0 {
			return paged
		}
		paged = append(paged, page...)
	}
}

func testAuditPageLimits(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const n = maxPageLimit + 50
	for batch := range slices.Chunk(auditRecords("r", n), 500) {
		mustOK(t, s.AppendAudit(ctx, batch, chainAudit), "append")
	}
	for _, c := range []struct{ limit, want int }{
		{0, defaultPageLimit}, {-1, defaultPageLimit}, {3, 3}, {maxPageLimit, maxPageLimit}, {maxPageLimit + 1, maxPageLimit},
	} {
		got, err := s.ListAudit(ctx, storage.AuditFilter{Limit: c.limit})
		mustOK(t, err, "list audit records")
		if len(got) != c.want {
			t.Errorf("limit %d listed %d records, want %d", c.limit, len(got), c.want)
		}
	}
}

// testConcurrentAudit appends batches from many goroutines: the chain must
// come out gap-free and linked, with every batch stored whole and in order.
func testConcurrentAudit(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const appenders, appendsEach = 8, 50
	batchSize := func(i, j int) int { return 1 + (i+j)%5 }
	parallel(appenders, func(i int) {
		for j := range appendsEach {
			err := s.AppendAudit(ctx, auditRecords(fmt.Sprintf("a%d-%d", i, j), batchSize(i, j)), chainAudit)
			checkConcurrentErr(t, err, "concurrent append")
		}
	})

	all := listAllAudit(t, s)
	want := 0
	for i := range appenders {
		for j := range appendsEach {
			want += batchSize(i, j)
		}
	}
	if len(all) != want {
		t.Fatalf("log holds %d records after appending %d", len(all), want)
	}
	checkAuditChain(t, s, all)
	seqOf := make(map[string]int64, len(all))
	for _, r := range all {
		if _, dup := seqOf[r.RequestID]; dup {
			t.Fatalf("record %q stored twice", r.RequestID)
		}
		seqOf[r.RequestID] = r.Seq
	}
	for i := range appenders {
		for j := range appendsEach {
			first := seqOf[fmt.Sprintf("a%d-%d-0", i, j)]
			for k := range batchSize(i, j) {
				if got := seqOf[fmt.Sprintf("a%d-%d-%d", i, j, k)]; got != first+int64(k) {
					t.Fatalf("batch a%d-%d is not stored contiguously: record %d at seq %d, first at %d", i, j, k, got, first)
				}
			}
		}
	}
}
