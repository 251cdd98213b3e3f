package conformance

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// changeBinding binds a record with the given request id; committed counts
// the calls of Committed.
func changeBinding(requestID string, chain func(storage.AuditHead, []storage.AuditRecord) error, committed *int) storage.AuditBinding {
	return storage.AuditBinding{
		Record:    func() storage.AuditRecord { return newAuditRecord(requestID, past()) },
		Chain:     chain,
		Committed: func() { *committed++ },
	}
}

// testAuditedChange: a change through a WithAudit view commits with its
// record, and only its first write transaction carries the record.
func testAuditedChange(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustOK(t, s.AppendAudit(ctx, auditRecords("before", 2), chainAudit), "append")
	var committed int
	v := s.WithAudit(changeBinding("change", chainAudit, &committed))
	mustOK(t, v.CreatePrincipal(ctx, newPrincipal("AKIACHANGE1")), "create principal through the view")
	if committed != 1 {
		t.Fatalf("Committed called %d times, want 1", committed)
	}
	mustOK(t, v.CreatePrincipal(ctx, newPrincipal("AKIACHANGE2")), "second write through the view")
	if _, err := v.GetPrincipal(ctx, "AKIACHANGE1"); err != nil {
		t.Fatalf("read through the view: %v", err)
	}
	recs := listAllAudit(t, s)
	checkAuditChain(t, s, recs)
	ids := []string{}
	for _, r := range recs {
		ids = append(ids, r.RequestID)
	}
	wantDiff(t, "request ids of the log", []string{"before-0", "before-1", "change"}, ids)
	if committed != 1 {
		t.Fatalf("Committed called %d times after a second write, want 1", committed)
	}
	// The store itself is not bound.
	mustOK(t, s.CreatePrincipal(ctx, newPrincipal("AKIAPLAIN")), "create principal on the store")
	if n := len(listAllAudit(t, s)); n != 3 {
		t.Fatalf("a write on the store itself appended: %d records", n)
	}
}

// testAuditedChangeFails: a change that fails stores neither the change
// nor its record, and the view still carries the record to a later write
// that succeeds.
func testAuditedChangeFails(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustOK(t, s.CreatePrincipal(ctx, newPrincipal("AKIATAKEN")), "create principal")
	var committed int
	v := s.WithAudit(changeBinding("change", chainAudit, &committed))
	wantErr(t, v.CreatePrincipal(ctx, newPrincipal("AKIATAKEN")), storage.ErrAlreadyExists, "create a taken principal")
	refuse := errors.New("refused by the updater")
	_, err := v.UpdatePrincipal(ctx, "AKIATAKEN", func(p storage.Principal) (storage.Principal, error) {
		p.Description = "changed"
		return p, refuse
	})
	wantErr(t, err, refuse, "update refused by its updater")
	wantErr(t, v.DeletePrincipal(ctx, "AKIAMISSING"), storage.ErrNotFound, "delete a missing principal")
	if recs := listAllAudit(t, s); len(recs) != 0 || committed != 0 {
		t.Fatalf("failed changes left %d records, Committed %d times", len(recs), committed)
	}
	p, err := s.GetPrincipal(ctx, "AKIATAKEN")
	mustOK(t, err, "get principal")
	if p.Description == "changed" {
		t.Fatal("a refused update was stored")
	}
	mustOK(t, v.DeletePrincipal(ctx, "AKIATAKEN"), "delete through the view")
	recs := listAllAudit(t, s)
	checkAuditChain(t, s, recs)
	if len(recs) != 1 || committed != 1 {
		t.Fatalf("the change that succeeded left %d records, Committed %d times", len(recs), committed)
	}
}

// testAuditedChangeChainFails: a change whose record cannot be chained is
// not stored, and neither is the record.
func testAuditedChangeChainFails(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustOK(t, s.AppendAudit(ctx, auditRecords("before", 1), chainAudit), "append")
	broken := errors.New("no chain key")
	var committed int
	v := s.WithAudit(changeBinding("change", func(storage.AuditHead, []storage.AuditRecord) error { return broken }, &committed))
	wantErr(t, v.CreatePrincipal(ctx, newPrincipal("AKIANEW")), broken, "create principal with a failing chain")
	wantErr(t, func() error { _, err := s.GetPrincipal(ctx, "AKIANEW"); return err }(), storage.ErrNotFound, "get the principal")
	// A chain that does not continue the head is refused too.
	skip := s.WithAudit(changeBinding("skip", func(head storage.AuditHead, recs []storage.AuditRecord) error {
		head.Seq++
		return chainAudit(head, recs)
	}, &committed))
	if err := skip.CreateWorkloadIdentity(ctx, newWorkload("agent"), nil); err == nil {
		t.Fatal("a change whose record skips a seq was stored")
	}
	wantErr(t, func() error { _, err := s.GetWorkloadIdentity(ctx, "agent"); return err }(), storage.ErrNotFound, "get the workload identity")
	recs := listAllAudit(t, s)
	checkAuditChain(t, s, recs)
	if len(recs) != 1 || committed != 0 {
		t.Fatalf("failing chains left %d records, Committed %d times", len(recs), committed)
	}
}

// testAuditCheckpoints: checkpoints round-trip, and DeleteAuditThrough
// deletes a prefix and stores the start checkpoint together, never the
// head.
func testAuditCheckpoints(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetAuditCheckpoint(ctx, storage.AuditCheckpointVerified)
	wantErr(t, err, storage.ErrNotFound, "get a missing checkpoint")
	cp := storage.AuditCheckpoint{Seq: 7, Hash: []byte("hash"), MAC: []byte("mac")}
	mustOK(t, s.PutAuditCheckpoint(ctx, storage.AuditCheckpointVerified, cp), "put checkpoint")
	cp.Seq = 8
	mustOK(t, s.PutAuditCheckpoint(ctx, storage.AuditCheckpointVerified, cp), "replace checkpoint")
	got, err := s.GetAuditCheckpoint(ctx, storage.AuditCheckpointVerified)
	mustOK(t, err, "get checkpoint")
	wantDiff(t, "checkpoint", cp, got)

	var set []storage.AuditRecord
	mustOK(t, s.AppendAudit(ctx, auditRecords("r", 10), recordingChain(&set)), "append")
	start := storage.AuditCheckpoint{Seq: 4, Hash: set[3].Hash, MAC: []byte("sealed")}
	n, err := s.DeleteAuditThrough(ctx, start)
	mustOK(t, err, "delete through 4")
	if n != 4 {
		t.Fatalf("deleted %d records, want 4", n)
	}
	recs := listAllAudit(t, s)
	if len(recs) != 6 || recs[0].Seq != 5 || !slices.Equal(recs[0].PrevHash, start.Hash) {
		t.Fatalf("after deleting through 4 the log starts at %d with %d records", recs[0].Seq, len(recs))
	}
	got, err = s.GetAuditCheckpoint(ctx, storage.AuditCheckpointStart)
	mustOK(t, err, "get start checkpoint")
	wantDiff(t, "start checkpoint", start, got)
	_, err = s.DeleteAuditThrough(ctx, storage.AuditCheckpoint{Seq: 10, Hash: set[9].Hash, MAC: []byte("x")})
	wantErr(t, err, storage.ErrConflict, "delete the head")
	_, err = s.DeleteAuditThrough(ctx, storage.AuditCheckpoint{Seq: 3, Hash: set[2].Hash, MAC: []byte("x")})
	wantErr(t, err, storage.ErrConflict, "move the start back")
	got, err = s.GetAuditCheckpoint(ctx, storage.AuditCheckpointStart)
	mustOK(t, err, "get start checkpoint")
	wantDiff(t, "start checkpoint after refused deletes", start, got)
	if n := len(listAllAudit(t, s)); n != 6 {
		t.Fatalf("a refused delete left %d records", n)
	}
}

// testAuditNewestFirst lists in reverse order from BeforeSeq.
func testAuditNewestFirst(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	recs := auditRecords("r", 5)
	recs[1].Workload = "other"
	mustOK(t, s.AppendAudit(ctx, recs, chainAudit), "append")
	seqs := func(f storage.AuditFilter) []int64 {
		got, err := s.ListAudit(ctx, f)
		mustOK(t, err, "list newest first")
		out := []int64{}
		for _, r := range got {
			out = append(out, r.Seq)
		}
		return out
	}
	wantDiff(t, "newest first", []int64{5, 4, 3, 2, 1}, seqs(storage.AuditFilter{NewestFirst: true}))
	wantDiff(t, "newest first before 4", []int64{3, 2}, seqs(storage.AuditFilter{NewestFirst: true, BeforeSeq: 4, Limit: 2}))
	wantDiff(t, "newest first of a workload", []int64{5, 4, 3, 1}, seqs(storage.AuditFilter{NewestFirst: true, Workload: "agent"}))
	wantDiff(t, "newest first since", []int64{5, 4}, seqs(storage.AuditFilter{NewestFirst: true, Since: past().Add(3 * time.Second)}))
}
