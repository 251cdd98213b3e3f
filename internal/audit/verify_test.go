package audit

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
)

const logSize = 10

// filledLog records logSize events with key and returns the records.
func filledLog(t *testing.T, b backend, key []byte) []storage.AuditRecord {
	t.Helper()
	l := New(b.st, key, Options{})
	for i := range logSize {
		if err := l.Record(t.Context(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := b.st.ListAudit(t.Context(), storage.AuditFilter{})
	if err != nil || len(recs) != logSize {
		t.Fatalf("listed %d records, %v", len(recs), err)
	}
	return recs
}

func problemSeqs(rep Report) []int64 {
	var seqs []int64
	for _, p := range rep.Problems {
		seqs = append(seqs, p.Seq)
	}
	return seqs
}

func verifyReport(t *testing.T, st storage.Storage, key []byte) Report {
	t.Helper()
	rep, err := Verify(t.Context(), st, key)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

// TestVerifyDetectsTampering edits the database behind the store's back, as
// an attacker with write access but without the key would.
func TestVerifyDetectsTampering(t *testing.T) {
	key := testKey(9)
	for _, c := range []struct {
		name   string
		tamper func(t *testing.T, b backend, recs []storage.AuditRecord)
		// want lists the seqs problems must name, in order.
		want []int64
		// records is how many records remain.
		records int64
		// reason is a word the first problem's reason must contain.
		reason string
	}{
		{"edited workload", edit("workload", "'mallory'", 4), []int64{4}, logSize, "changed"},
		{"edited user", edit("user_key", "'bob'", 4), []int64{4}, logSize, "changed"},
		{"edited principal", edit("principal", "'AKIAOTHER'", 1), []int64{1}, logSize, "changed"},
		{"edited request id", edit("request_id", "'req-x'", 10), []int64{10}, logSize, "changed"},
		{"edited operation", edit("operation", "'GetResourceApiKey'", 4), []int64{4}, logSize, "changed"},
		{"edited provider", edit("provider", "'slack'", 4), []int64{4}, logSize, "changed"},
		{"edited scopes", edit("scopes", `'["repo","admin:org"]'`, 4), []int64{4}, logSize, "changed"},
		{"reordered scopes", edit("scopes", `'["scope-3","repo"]'`, 4), []int64{4}, logSize, "changed"},
		{"edited flow", edit("flow", "'USER_FEDERATION'", 4), []int64{4}, logSize, "changed"},
		{"edited outcome", edit("outcome", "'failure'", 4), []int64{4}, logSize, "changed"},
		{"edited error type", edit("error_type", "'AccessDeniedException'", 4), []int64{4}, logSize, "changed"},
		{"edited time", edit("time", "time + 1", 4), []int64{4}, logSize, "changed"},
		{"edited actors", edit("actors", `'["caller-3","agent-y"]'`, 4), []int64{4}, logSize, "changed"},
		{"removed actors", edit("actors", `'[]'`, 4), []int64{4}, logSize, "changed"},
		{"added actors", edit("actors", `'["agent-x"]'`, 5), []int64{5}, logSize, "changed"},
		{"edited previous hash", func(t *testing.T, b backend, _ []storage.AuditRecord) {
			b.exec(t, `UPDATE audit_records SET prev_hash = ? WHERE seq = 4`, bytes.Repeat([]byte{1}, 32))
		}, []int64{4, 4}, logSize, "previous hash"},
		{"deleted middle record", deleteSeq(5), []int64{6}, logSize - 1, "record 5 is missing"},
		{"deleted middle records", func(t *testing.T, b backend, _ []storage.AuditRecord) {
			b.exec(t, `DELETE FROM audit_records WHERE seq IN (4, 5, 6)`)
		}, []int64{7}, logSize - 3, "records 4 to 6 are missing"},
		{"deleted first record", deleteSeq(1), []int64{2}, logSize - 1, "record 1 is missing"},
		{"deleted last record", deleteSeq(logSize), []int64{logSize}, logSize - 1, "deleted from the end"},
		{"deleted every record", func(t *testing.T, b backend, _ []storage.AuditRecord) {
			b.exec(t, `DELETE FROM audit_records`)
		}, []int64{logSize}, 0, "deleted from the end"},
		{"swapped one field of two records", func(t *testing.T, b backend, recs []storage.AuditRecord) {
			b.exec(t, `UPDATE audit_records SET request_id = ? WHERE seq = 3`, recs[6].RequestID)
			b.exec(t, `UPDATE audit_records SET request_id = ? WHERE seq = 7`, recs[2].RequestID)
		}, []int64{3, 7}, logSize, "changed"},
		{"swapped two whole records but their seq", func(t *testing.T, b backend, recs []storage.AuditRecord) {
			writeRecord(t, b, 3, recs[6])
			writeRecord(t, b, 7, recs[2])
		}, []int64{3, 3, 4, 7, 7, 8}, logSize, ""},
		{"moved a record into a gap", func(t *testing.T, b backend, _ []storage.AuditRecord) {
			b.exec(t, `DELETE FROM audit_records WHERE seq = 5`)
			b.exec(t, `UPDATE audit_records SET seq = 5 WHERE seq = 6`)
		}, []int64{5, 5, 7}, logSize - 1, ""},
		{"added a record after the head", func(t *testing.T, b backend, recs []storage.AuditRecord) {
			forged := recs[logSize-1]
			forged.Seq, forged.PrevHash, forged.RequestID = logSize+1, forged.Hash, "req-forged"
			insertRecord(t, b, forged)
		}, []int64{logSize + 1, logSize}, logSize + 1, "changed"},
		{"edited head hash", func(t *testing.T, b backend, recs []storage.AuditRecord) {
			b.exec(t, `UPDATE audit_head SET hash = ?`, recs[2].Hash)
		}, []int64{logSize}, logSize, "head's hash"},
		{"deleted head row", func(t *testing.T, b backend, _ []storage.AuditRecord) {
			b.exec(t, `DELETE FROM audit_head`)
		}, []int64{logSize}, logSize, "head row is missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backend) {
				recs := filledLog(t, b, key)
				mustVerify(t, b.st, key, logSize)
				c.tamper(t, b, recs)
				rep := verifyReport(t, b.st, key)
				if rep.OK() {
					t.Fatal("tampering went unnoticed")
				}
				if got := problemSeqs(rep); !slices.Equal(got, c.want) {
					t.Errorf("problems at seqs %v, want %v: %v", got, c.want, rep.Problems)
				}
				if !strings.Contains(rep.Problems[0].Reason, c.reason) {
					t.Errorf("first problem %q does not say %q", rep.Problems[0], c.reason)
				}
				if rep.Records != c.records {
					t.Errorf("verify read %d records, want %d", rep.Records, c.records)
				}
			})
		})
	}
}

func edit(column, value string, seq int) func(t *testing.T, b backend, recs []storage.AuditRecord) {
	return func(t *testing.T, b backend, _ []storage.AuditRecord) {
		b.exec(t, `UPDATE audit_records SET `+column+` = `+value+` WHERE seq = ?`, seq)
	}
}

func deleteSeq(seq int) func(t *testing.T, b backend, recs []storage.AuditRecord) {
	return func(t *testing.T, b backend, _ []storage.AuditRecord) {
		b.exec(t, `DELETE FROM audit_records WHERE seq = ?`, seq)
	}
}

const tamperColumns = `time = ?, request_id = ?, principal = ?, workload = ?, user_key = ?, operation = ?, provider = ?,
	scopes = ?, flow = ?, outcome = ?, error_type = ?, resource = ?, actors = ?, prev_hash = ?, hash = ?`

func recordArgs(t *testing.T, r storage.AuditRecord) []any {
	scopes, err := json.Marshal(r.Scopes)
	if err != nil {
		t.Fatal(err)
	}
	actors, err := json.Marshal(append([]string{}, r.Actors...))
	if err != nil {
		t.Fatal(err)
	}
	return []any{r.Time.UnixMicro(), r.RequestID, r.Principal, r.Workload, r.User, r.Operation, r.Provider,
		string(scopes), r.Flow, r.Outcome, r.ErrorType, r.Resource, string(actors), append([]byte{}, r.PrevHash...), r.Hash}
}

// writeRecord overwrites every column of the row at seq with r's.
func writeRecord(t *testing.T, b backend, seq int64, r storage.AuditRecord) {
	b.exec(t, `UPDATE audit_records SET `+tamperColumns+` WHERE seq = ?`, append(recordArgs(t, r), seq)...)
}

func insertRecord(t *testing.T, b backend, r storage.AuditRecord) {
	b.exec(t, `INSERT INTO audit_records (seq, time, request_id, principal, workload, user_key, operation, provider,
		scopes, flow, outcome, error_type, resource, actors, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		append([]any{r.Seq}, recordArgs(t, r)...)...)
}

func TestVerifyWrongKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		filledLog(t, b, testKey(10))
		rep := verifyReport(t, b.st, testKey(11))
		want := make([]int64, logSize)
		for i := range want {
			want[i] = int64(i + 1)
		}
		if got := problemSeqs(rep); !slices.Equal(got, want) {
			t.Errorf("with the wrong key, problems at %v, want every record", got)
		}
	})
}

// TestVerifyTruncationWithHead documents the limit stated in the package
// documentation: deleting the tail and moving the head back to the new
// last record needs no key and verifies. Only a head kept elsewhere shows
// it.
func TestVerifyTruncationWithHead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		key := testKey(12)
		recs := filledLog(t, b, key)
		anchor := mustVerify(t, b.st, key, logSize).Head
		b.exec(t, `DELETE FROM audit_records WHERE seq > 7`)
		b.exec(t, `UPDATE audit_head SET seq = ?, hash = ?`, recs[6].Seq, recs[6].Hash)
		rep := mustVerify(t, b.st, key, 7)
		if rep.Head.Seq >= anchor.Seq {
			t.Errorf("head moved from %d to %d; an external anchor should see it go back", anchor.Seq, rep.Head.Seq)
		}
	})
}

// TestVerifyBoundsProblems checks that a log with more problems than
// MaxProblems is reported in bounded memory, and counted in full.
func TestVerifyBoundsProblems(t *testing.T) {
	b := openSQLite(t)
	key := testKey(13)
	const n = MaxProblems + 234
	l := New(b.st, key, Options{})
	var recs []storage.AuditRecord
	for i := range n {
		recs = append(recs, event(i))
	}
	errs := make(chan error, n)
	for _, ev := range recs {
		go func() { errs <- l.Record(t.Context(), ev) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	_ = l.Close()
	rep := verifyReport(t, b.st, testKey(14))
	if len(rep.Problems) != MaxProblems || rep.Omitted != n-MaxProblems || rep.Records != n {
		t.Errorf("%d problems listed, %d omitted, %d records; want %d, %d, %d",
			len(rep.Problems), rep.Omitted, rep.Records, MaxProblems, n-MaxProblems, n)
	}
	if rep.OK() {
		t.Error("a report with problems is OK")
	}
}
