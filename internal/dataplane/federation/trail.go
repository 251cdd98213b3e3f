package federation

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// trail is the audit record of something the data plane does outside an
// API call: a browser callback, the development page, a refresh behalf
// makes itself (docs/audit.md). The change it makes commits with the
// record (audit.Log.Bind, through change); finish writes the record by
// group commit when no change carried it.
type trail struct {
	s   *Service
	rec storage.AuditRecord
	// recorded reports that a change committed rec with the error type
	// committedType ("" for success).
	recorded      bool
	committedType string
}

// newTrail starts the record rec of the call ctx, a success until an
// outcome says otherwise.
func (s *Service) newTrail(ctx context.Context, rec storage.AuditRecord) *trail {
	rec.Outcome, rec.Trace = audit.OutcomeSuccess, trace.SpanContextFromContext(ctx)
	return &trail{s: s, rec: rec}
}

// setOutcome makes the record a failure of errType, or a success when
// errType is empty.
func (t *trail) setOutcome(errType string) {
	t.rec.Outcome, t.rec.ErrorType = audit.OutcomeSuccess, ""
	if errType != "" {
		t.rec.Outcome, t.rec.ErrorType = audit.OutcomeFailure, errType
	}
}

// change returns the store whose next write transaction commits the record
// with the outcome errType, unless a change already committed it.
func (t *trail) change(errType string) storage.Storage {
	if t.s.Audit == nil || t.recorded {
		return t.s.Store
	}
	t.setOutcome(errType)
	return t.s.Audit.Bind(t.s.Store, func() storage.AuditRecord { return t.rec }, func() {
		t.recorded, t.committedType = true, t.rec.ErrorType
	})
}

// changeFailing is change for bind: err, when not nil, is the call's
// outcome.
func (t *trail) changeFailing(err error) storage.Storage {
	if err == nil {
		return t.change("")
	}
	return t.change(wire.AsError(err).Type)
}

// finish writes the record with the outcome errType, unless a change
// committed it with that outcome. A record that cannot be written is
// logged: what it describes has already happened.
func (t *trail) finish(ctx context.Context, errType string) {
	if t.s.Audit == nil || t.recorded && t.committedType == errType {
		return
	}
	t.setOutcome(errType)
	if err := t.s.Audit.Record(context.WithoutCancel(ctx), t.rec); err != nil {
		t.s.logger().LogAttrs(ctx, slog.LevelError, "audit record not written", slog.String(logging.KeyOp, t.rec.Operation), logging.Err(err))
	}
}
