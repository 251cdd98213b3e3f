package wire

import (
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// unknownOperation names calls to no operation in spans and metrics.
const unknownOperation = "unknown"

// outcomeOf classifies a call's answer for the requests metric: e is the
// error it failed with, nil on success.
func outcomeOf(e *Error) string {
	switch {
	case e == nil:
		return telemetry.OutcomeSuccess
	case e.Type == TypeThrottling:
		return telemetry.OutcomeThrottled
	case e.Type == TypeAccessDenied:
		return telemetry.OutcomeAccessDenied
	case e.Status >= 500:
		return telemetry.OutcomeServerError
	}
	return telemetry.OutcomeClientError
}

// observe counts a call answered with e (nil: success) and describes it
// on its server span, from what its handler noted for the audit record:
// names, counts and a keyed hash of the user, never the user id or a
// token. It returns how long the call took.
func (rt *Router) observe(c *Call, e *Error) time.Duration {
	took := time.Since(c.start)
	ctx := c.Request.Context()
	op, outcome, errType := c.Op, outcomeOf(e), ""
	if op == "" {
		op = unknownOperation
	}
	if e != nil {
		errType = e.Type
	}
	rt.tel.Metrics.Request(ctx, op, outcome, errType, took)
	if !telemetry.Recording(ctx) {
		return took
	}
	var buf [10]attribute.KeyValue
	attrs := append(buf[:0], telemetry.Operation.String(op), telemetry.Outcome.String(outcome))
	a := c.Audit
	for _, kv := range []attribute.KeyValue{
		telemetry.ErrorType.String(errType), telemetry.Principal.String(c.Caller.AccessKeyID),
		telemetry.Workload.String(a.Workload), telemetry.Provider.String(a.Provider), telemetry.Flow.String(a.Flow),
		telemetry.UserHashKey.String(rt.tel.Users.Hash(a.User)),
	} {
		if kv.Value.AsString() != "" {
			attrs = append(attrs, kv)
		}
	}
	if len(a.Scopes) > 0 {
		attrs = append(attrs, telemetry.ScopesCount.Int(len(a.Scopes)))
	}
	if len(a.Actors) > 0 {
		attrs = append(attrs, telemetry.Actors.StringSlice(a.Actors))
	}
	telemetry.SetServerAttributes(ctx, attrs...)
	return took
}

// SpanName names the server span of r, a request the server's mux has
// routed: the operation's name for a call the router serves ("unknown"
// when no operation matches), else the method and route pattern, as the
// OpenTelemetry HTTP semantic conventions name server spans.
func (rt *Router) SpanName(r *http.Request) string {
	if r.Pattern == "" {
		return r.Method
	}
	if ops, ok := rt.ops[r.Pattern]; ok || r.Pattern == "/" {
		for _, o := range ops {
			if o.Method == r.Method {
				return o.Name
			}
		}
		return unknownOperation
	}
	if strings.Contains(r.Pattern, " ") {
		return r.Pattern // the pattern names its method
	}
	return r.Method + " " + r.Pattern
}
