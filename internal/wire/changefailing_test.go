package wire

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"testing"
)

// TestChangeFailingIsRecordedOnce: a change that answers the call with a
// failure commits a failure record, and the router writes no second one
// when the call fails with that error's type; it does when the call fails
// otherwise.
func TestChangeFailingIsRecordedOnce(t *testing.T) {
	log := &fakeAuditLog{}
	mux := http.NewServeMux()
	rt := NewRouter(mux, allowAll{}, allowAll{}, log, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)), Telemetry{})
	failing := func(returned error) func(context.Context, *Call, *shape) (*out, error) {
		return func(_ context.Context, c *Call, in *shape) (*out, error) {
			c.Audit.Workload = in.Name
			c.ChangeFailing(nil, AccessDenied("ended"))
			return nil, returned
		}
	}
	rt.Handle(Audited(
		JSON("EndSession", "/end", 200, failing(AccessDenied("the session was ended"))),
		JSON("EndSessionThenFail", "/end-then-fail", 200, failing(Conflict("ended, then another failure"))),
	)...)
	for _, path := range []string{"/end", "/end-then-fail"} {
		do(t, mux, "POST", path, "application/json", `{"name":"abc"}`)
	}
	if len(log.bound) != 2 || log.bound[0].Operation != "EndSession" || log.bound[0].Outcome != "failure" || log.bound[0].ErrorType != TypeAccessDenied {
		t.Fatalf("bound records: %+v", log.bound)
	}
	if len(log.records) != 1 || log.records[0].Operation != "EndSessionThenFail" || log.records[0].ErrorType != TypeConflict {
		t.Fatalf("router's records: %+v", log.records)
	}
}
