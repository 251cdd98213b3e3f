package audit

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// appendBulk appends n records straight through the store with l's chain,
// in large batches, with times one second apart from t0.
func appendBulk(t testing.TB, l *Log, st storage.Storage, n int, t0 time.Time) {
	t.Helper()
	const batch = 5000
	recs := make([]storage.AuditRecord, 0, batch)
	for i := range n {
		ev := event(i)
		ev.Time = t0.Add(time.Duration(i) * time.Second)
		recs = append(recs, l.bound(ev))
		if len(recs) == batch || i == n-1 {
			if err := st.AppendAudit(t.Context(), recs, l.chain); err != nil {
				t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

func verifyFrom(t *testing.T, st storage.Storage, key []byte, opts VerifyOptions) Report {
	t.Helper()
	rep, err := VerifyFrom(t.Context(), st, key, opts)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

func TestPruneKeepsChainVerifiable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		key := testKey(10)
		l := New(b.st, key, Options{})
		defer l.Close()
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		appendBulk(t, l, b.st, 10, t0)
		published := mustVerify(t, b.st, key, 10).Head

		n, err := Prune(t.Context(), b.st, key, t0.Add(5*time.Second))
		if err != nil || n != 5 {
			t.Fatalf("prune: %d deleted, %v; want 5", n, err)
		}
		rep := mustVerify(t, b.st, key, 5)
		if rep.From != 5 || rep.Head.Seq != published.Seq {
			t.Fatalf("after prune: from %d, head %d; want from 5 and the published head %d", rep.From, rep.Head.Seq, published.Seq)
		}
		// Retention never deletes the newest record.
		if n, err := Prune(t.Context(), b.st, key, t0.Add(time.Hour)); err != nil || n != 4 {
			t.Fatalf("prune everything: %d deleted, %v; want 4", n, err)
		}
		mustVerify(t, b.st, key, 1)

		// A start checkpoint moved by hand (to hide deleted records) does
		// not verify.
		b.exec(t, `UPDATE audit_checkpoints SET seq = seq - 1 WHERE name = 'start'`)
		if rep := verifyFrom(t, b.st, key, VerifyOptions{Full: true}); rep.OK() {
			t.Fatal("a forged start checkpoint verified")
		}
		if _, err := Prune(t.Context(), b.st, key, t0.Add(time.Hour)); err == nil {
			t.Fatal("prune trusted a forged start checkpoint")
		}
	})
}

func TestPruneStopsAtAnEditedRecord(t *testing.T) {
	b := openSQLite(t)
	key := testKey(11)
	l := New(b.st, key, Options{})
	defer l.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	appendBulk(t, l, b.st, 10, t0)
	b.exec(t, `UPDATE audit_records SET principal = 'someone-else' WHERE seq = 3`)
	if _, err := Prune(t.Context(), b.st, key, t0.Add(8*time.Second)); err == nil {
		t.Fatal("prune deleted an edited record")
	}
	if rep := verifyFrom(t, b.st, key, VerifyOptions{Full: true}); rep.OK() || rep.Problems[0].Seq != 3 {
		t.Fatalf("the edit is no longer detected: %+v", rep)
	}
}

func TestIncrementalVerify(t *testing.T) {
	b := openSQLite(t)
	key := testKey(12)
	l := New(b.st, key, Options{})
	defer l.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	appendBulk(t, l, b.st, 10, t0)
	if rep := verifyFrom(t, b.st, key, VerifyOptions{}); !rep.OK() || rep.From != 0 || rep.Records != 10 {
		t.Fatalf("first verify: %+v", rep)
	}
	appendBulk(t, l, b.st, 5, t0.Add(time.Minute))
	if rep := verifyFrom(t, b.st, key, VerifyOptions{}); !rep.OK() || rep.From != 10 || rep.Records != 5 {
		t.Fatalf("incremental verify: from %d, %d records, %v", rep.From, rep.Records, rep.Problems)
	}
	// An edit behind the checkpoint needs a full verification.
	b.exec(t, `UPDATE audit_records SET principal = 'someone-else' WHERE seq = 2`)
	if rep := verifyFrom(t, b.st, key, VerifyOptions{Full: true}); rep.OK() {
		t.Fatal("full verify missed an edit")
	}
	// A checkpoint moved by hand does not verify, and the run falls back
	// to the start.
	b.exec(t, `UPDATE audit_checkpoints SET seq = 11 WHERE name = 'verified'`)
	b.exec(t, `UPDATE audit_records SET principal = 'someone-else' WHERE seq = 12`)
	rep := verifyFrom(t, b.st, key, VerifyOptions{})
	if rep.OK() || rep.From != 0 {
		t.Fatalf("forged verified checkpoint: %+v", rep)
	}
}

func TestVerifyInPages(t *testing.T) {
	b := openSQLite(t)
	key := testKey(13)
	l := New(b.st, key, Options{})
	defer l.Close()
	appendBulk(t, l, b.st, 2500, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b.exec(t, `UPDATE audit_records SET principal = 'someone-else' WHERE seq = 10`)

	var records int64
	var problems []Problem
	opts := VerifyOptions{Full: true, MaxRecords: verifyPage}
	for calls := 1; ; calls++ {
		rep := verifyFrom(t, b.st, key, opts)
		records += rep.Records
		problems = append(problems, rep.Problems...)
		if rep.Next == "" {
			if calls != 3 || records != 2500 || len(problems) != 1 || rep.Head.Seq != 2500 {
				t.Fatalf("%d calls, %d records, problems %v, head %d", calls, records, problems, rep.Head.Seq)
			}
			break
		}
		opts.Resume = rep.Next
	}
	// A problem in an earlier page keeps the verified checkpoint where it
	// was.
	if _, err := b.st.GetAuditCheckpoint(t.Context(), storage.AuditCheckpointVerified); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("verified checkpoint after a run with a problem: %v", err)
	}
	for _, bad := range []string{"x", opts.Resume + "A", opts.Resume[:len(opts.Resume)-2] + "AA"} {
		if _, err := VerifyFrom(t.Context(), b.st, key, VerifyOptions{Resume: bad}); !errors.Is(err, ErrBadToken) {
			t.Errorf("resume from %q: %v, want ErrBadToken", bad, err)
		}
	}
}

// TestVerifyThroughput appends many records and measures a full
// verification; BEHALF_AUDIT_RECORDS sets how many (default 200,000).
func TestVerifyThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("BEHALF_AUDIT_RECORDS")); err == nil && v > 0 {
		n = v
	}
	b := openSQLite(t)
	key := testKey(14)
	l := New(b.st, key, Options{})
	defer l.Close()
	start := time.Now()
	appendBulk(t, l, b.st, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	appended := time.Since(start)
	start = time.Now()
	rep := mustVerify(t, b.st, key, int64(n))
	took := time.Since(start)
	rate := float64(rep.Records) / took.Seconds()
	t.Logf("%d records appended in %v; verified in %v: %.0f records/s, 20 M in %v",
		n, appended.Round(time.Millisecond), took.Round(time.Millisecond), rate, time.Duration(20e6/rate*float64(time.Second)).Round(time.Second))
}
