package wire

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/logging"
)

// Invocation is a call made in-process on behalf of someone the router
// did not authenticate itself: the admin console acting for a signed-in
// person with a principal's authorization (docs/console.md).
type Invocation struct {
	Op string
	// Caller is the principal whose authorization the call has.
	Caller Caller
	// Principal names who made the call in its audit record, in place of
	// the caller's access key id; it must name the caller too.
	Principal string
	// Body is the operation's JSON input; nil for none.
	Body []byte
}

// Invoke runs an operation in-process as the router runs a signed call
// once its signature has verified: the same rate limit per principal
// (LimitInvocations), input decoding and validation, authorization
// (Authorizer.Authorize and the workload check), handler, audit record (a
// refusal included) and request metrics. It returns the operation's JSON output, nil for an empty one.
// Operations whose input is in their path (TagResource and the like) are
// not invocable.
func (rt *Router) Invoke(ctx context.Context, in Invocation) (json.RawMessage, error) {
	op := rt.byName(in.Op)
	if op == nil || strings.Contains(op.Path, "{") {
		return nil, Internal(fmt.Errorf("wire: operation %q cannot be invoked in-process", in.Op))
	}
	if in.Principal == "" || !strings.Contains(in.Principal, in.Caller.AccessKeyID) {
		return nil, Internal(fmt.Errorf("wire: invocation of %s names no principal of its caller", in.Op))
	}
	id := uuid.NewString()
	ctx = WithRequestID(ctx, id)
	req, err := http.NewRequestWithContext(ctx, op.Method, op.Path, http.NoBody)
	if err != nil {
		return nil, Internal(err)
	}
	call := &Call{start: time.Now(), Op: op.Name, RequestID: id, Request: req, Caller: in.Caller, Body: in.Body,
		authz: rt.authz, principal: in.Principal}
	if op.Audited && rt.audit != nil {
		call.log = rt.audit
	}
	out, err := rt.admitAndRun(ctx, op, call)
	var raw json.RawMessage
	if err == nil && out != nil {
		if raw, err = json.Marshal(out); err != nil {
			err = Internal(fmt.Errorf("%w: %w", errNotEncodable, err))
		}
	}
	var e *Error
	if err != nil {
		e = AsError(err)
	}
	took := rt.observe(call, e)
	attrs := []slog.Attr{slog.String(logging.KeyOp, op.Name), slog.String(logging.KeyPrincipal, in.Principal),
		slog.String(logging.KeyRequestID, id), slog.Duration(logging.KeyDuration, took)}
	switch {
	case e == nil:
		rt.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
	case e.Status >= 500:
		rt.log.LogAttrs(ctx, slog.LevelError, "request failed", append(attrs, slog.String(logging.KeyErrorType, e.Type), logging.Err(err))...)
	default:
		rt.log.LogAttrs(ctx, slog.LevelInfo, "request failed", append(attrs, slog.String(logging.KeyErrorType, e.Type), slog.String(logging.KeyMessage, e.Message))...)
	}
	if e != nil {
		return nil, e
	}
	return raw, nil
}

// admitAndRun runs an invocation its caller's rate limit admits.
func (rt *Router) admitAndRun(ctx context.Context, op *Operation, call *Call) (any, error) {
	if rt.limit != nil {
		if err := rt.limit.Limit(ctx, call.Caller); err != nil {
			return nil, err
		}
	}
	_, out, err := rt.authorizeAndRun(ctx, op, call)
	return out, err
}

// byName finds a registered operation by name.
func (rt *Router) byName(name string) *Operation {
	for path := range rt.ops {
		for i := range rt.ops[path] {
			if rt.ops[path][i].Name == name {
				return &rt.ops[path][i]
			}
		}
	}
	return nil
}
