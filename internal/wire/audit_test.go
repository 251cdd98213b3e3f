package wire

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
)

// fakeAuditLog records what the router asks of it. Its Bind stands for a
// change that commits at once.
type fakeAuditLog struct {
	mu      sync.Mutex
	records []storage.AuditRecord
	bound   []storage.AuditRecord
	fail    error
}

func (f *fakeAuditLog) Record(_ context.Context, rec storage.AuditRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.records = append(f.records, rec)
	return nil
}

func (f *fakeAuditLog) Bind(st storage.Storage, rec func() storage.AuditRecord, committed func()) storage.Storage {
	f.mu.Lock()
	f.bound = append(f.bound, rec())
	f.mu.Unlock()
	committed()
	return st
}

func auditedRouter(log *fakeAuditLog, logs *bytes.Buffer) *http.ServeMux {
	mux := http.NewServeMux()
	rt := NewRouter(mux, allowAll{}, allowAll{}, log, slog.New(slog.NewTextHandler(logs, nil)), Telemetry{})
	change := func(fail bool) func(context.Context, *Call, *shape) (*out, error) {
		return func(_ context.Context, c *Call, in *shape) (*out, error) {
			c.Audit.Workload = in.Name
			c.Change(nil)
			if fail {
				return nil, Conflict("changed, then failed")
			}
			return &out{Name: in.Name}, nil
		}
	}
	rt.Handle(Audited(
		JSON("Change", "/change", 200, change(false)),
		JSON("ChangeThenFail", "/change-then-fail", 200, change(true)),
		JSON("Forbidden", "/forbidden", 200, change(false)),
		JSON("Read", "/read", 200, func(context.Context, *Call, *shape) (*out, error) { return &out{}, nil }),
	)...)
	return mux
}

// TestChangeIsRecordedOnce: a change recorded through Call.Change gets no
// second record from the router; a call that fails after its change
// committed gets a failure record too; a call that changed nothing gets
// the router's record.
func TestChangeIsRecordedOnce(t *testing.T) {
	log := &fakeAuditLog{}
	rt := auditedRouter(log, &bytes.Buffer{})
	for _, path := range []string{"/change", "/change-then-fail", "/read"} {
		do(t, rt, "POST", path, "application/json", `{"name":"abc"}`)
	}
	if len(log.bound) != 2 || log.bound[0].Operation != "Change" || log.bound[0].Workload != "abc" || log.bound[0].Outcome != "success" {
		t.Fatalf("bound records: %+v", log.bound)
	}
	if len(log.records) != 2 || log.records[0].Operation != "ChangeThenFail" || log.records[0].ErrorType != TypeConflict ||
		log.records[1].Operation != "Read" {
		t.Fatalf("router's records: %+v", log.records)
	}
}

// TestRefusalWithoutItsRecord: when the record of a refused call cannot
// be written, the caller gets an internal error, as for any other call,
// and the failure is logged with the router's keys.
func TestRefusalWithoutItsRecord(t *testing.T) {
	var logs bytes.Buffer
	log := &fakeAuditLog{fail: errors.New("disk full")}
	rt := auditedRouter(log, &logs)
	res, _ := do(t, rt, "POST", "/forbidden", "application/json", `{"name":"abc"}`)
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("refused call without its record: HTTP %d, want 500", res.StatusCode)
	}
	for _, want := range []string{`msg="audit record not written" op=Forbidden`, `error="disk full"`} {
		if !bytes.Contains(logs.Bytes(), []byte(want)) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}
