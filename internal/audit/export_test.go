package audit

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/storage"
)

// TestExport: each committed record reaches Options.Export once, numbered
// and hashed as stored, with the trace of the call that produced it;
// through group commit and through a change's transaction alike.
func TestExport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var mu sync.Mutex
		var got []storage.AuditRecord
		l := New(b.st, testKey(7), Options{Export: func(recs []storage.AuditRecord) {
			mu.Lock()
			got = append(got, recs...)
			mu.Unlock()
		}})
		defer l.Close()
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled,
		})
		ctx := trace.ContextWithSpanContext(t.Context(), sc)
		if err := l.Record(ctx, storage.AuditRecord{Operation: "GetResourceApiKey", User: "id:alice", Outcome: OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
		st := l.Bind(b.st, func() storage.AuditRecord {
			return storage.AuditRecord{Operation: "CreateWorkloadIdentity", Workload: "w", Outcome: OutcomeSuccess, Trace: sc}
		}, nil)
		if err := st.CreateWorkloadIdentity(t.Context(), storage.WorkloadIdentity{Name: "w"}, nil); err != nil {
			t.Fatal(err)
		}
		// A change that fails commits no record, and exports none.
		if err := st.CreateWorkloadIdentity(t.Context(), storage.WorkloadIdentity{Name: "w"}, nil); err == nil {
			t.Fatal("created w twice")
		}
		stored, err := b.st.ListAudit(t.Context(), storage.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 || len(stored) != 2 {
			t.Fatalf("exported %d records, stored %d; want 2 and 2", len(got), len(stored))
		}
		// The writer exports a batch after releasing its callers, so a
		// change recorded next may be exported first.
		slices.SortFunc(got, func(a, b storage.AuditRecord) int { return cmp.Compare(a.Seq, b.Seq) })
		for i, r := range got {
			if r.Seq != stored[i].Seq || !bytes.Equal(r.Hash, stored[i].Hash) || r.Operation != stored[i].Operation ||
				r.User != stored[i].User || !slices.Equal(r.Scopes, stored[i].Scopes) {
				t.Errorf("exported %+v, stored %+v", r, stored[i])
			}
			if r.Trace.TraceID() != sc.TraceID() || r.Trace.SpanID() != sc.SpanID() {
				t.Errorf("record %d exported with trace %v, want %v", r.Seq, r.Trace.TraceID(), sc.TraceID())
			}
			if stored[i].Trace.IsValid() {
				t.Errorf("record %d came back from storage with a trace: it is not stored", r.Seq)
			}
		}
	})
}
