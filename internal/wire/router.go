package wire

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// MaxBody is the largest request body accepted, as AgentCore's largest
// member (a 128 KiB token) is far below it.
const MaxBody = 1 << 20

// Caller is the authenticated principal behind a call.
type Caller struct {
	AccessKeyID string
	Role        storage.Role
	Workloads   []string
	// Operations limits a runtime principal to these data-plane
	// operations; empty allows all.
	Operations []string
	// CreatedAt names the principal's incarnation: an access key id
	// deleted and created again is another principal.
	CreatedAt time.Time
}

// Call is one authenticated, authorized API call.
type Call struct {
	// start is when the router received the call.
	start     time.Time
	Op        string
	RequestID string
	Caller    Caller
	Request   *http.Request
	Body      []byte
	// Audit is what the handler learned about the call (workload, user,
	// provider, scopes, flow, resource), for its audit record; the router
	// fills in the rest. A handler whose call reports another's outcome
	// sets Outcome "failure" and ErrorType; a failing call overrides them.
	Audit storage.AuditRecord

	log      AuditLog // nil unless the operation is audited
	recorded atomic.Bool
	// change and changeOf are the last view Change returned and the
	// storage it was made of; changeOutcome is the outcome its record
	// carries (nil: success), and committedOutcome that of the record
	// committed, set before recorded.
	change, changeOf                storage.Storage
	changeOutcome, committedOutcome error

	authz    Authorizer
	actedFor bool
	// principal names who made the call in its audit record when that is
	// not the caller (Router.Invoke).
	principal string
}

// ActFor establishes the workload identity a workload-scoped call acts
// for: it names it in the audit record and checks the caller may act for
// it. The router refuses success to a workload-scoped operation that did
// not establish its workload.
func (c *Call) ActFor(workload string) error {
	c.Audit.Workload = workload
	if c.authz == nil {
		return Internal(errors.New("wire: ActFor outside a routed call"))
	}
	if err := c.authz.ActsFor(c.Caller, workload); err != nil {
		return err
	}
	c.actedFor = true
	return nil
}

// MayActFor checks the caller may act for a workload identity without
// making it the call's: for a workload the call involves besides the one
// it acts for (the calling agent's, in an identity chain).
func (c *Call) MayActFor(workload string) error {
	if c.authz == nil {
		return Internal(errors.New("wire: MayActFor outside a routed call"))
	}
	return c.authz.ActsFor(c.Caller, workload)
}

// Change returns a view of st whose first write transaction also commits
// the call's audit record: a change and its record commit together or not
// at all (storage.Storage.WithAudit). The router then writes no second
// record for a call that succeeds. Outside audited operations it returns
// st itself.
func (c *Call) Change(st storage.Storage) storage.Storage { return c.changeWith(st, nil) }

// ChangeFailing is Change for a change that answers the call with err,
// such as a session ended because its completion was refused: the record
// committed with the change carries err's outcome, and the router writes
// no second record when the call then fails with an error of that type.
func (c *Call) ChangeFailing(st storage.Storage, err error) storage.Storage {
	return c.changeWith(st, err)
}

func (c *Call) changeWith(st storage.Storage, outcome error) storage.Storage {
	if c.log == nil || c.recorded.Load() {
		return st
	}
	c.changeOutcome = outcome
	if c.change == nil || c.changeOf != st {
		c.change, c.changeOf = c.log.Bind(st, func() storage.AuditRecord { return c.record(c.changeOutcome) }, func() {
			c.committedOutcome = c.changeOutcome
			c.recorded.Store(true)
		}), st
	}
	return c.change
}

// recordedAs reports whether a change committed the call's record with the
// outcome err would give it.
func (c *Call) recordedAs(err error) bool {
	if !c.recorded.Load() {
		return false
	}
	if err == nil || c.committedOutcome == nil {
		return err == nil && c.committedOutcome == nil
	}
	return AsError(err).Type == AsError(c.committedOutcome).Type
}

// record is the call's audit record for the outcome err (nil: success).
func (c *Call) record(err error) storage.AuditRecord {
	rec := c.Audit
	reported := rec.Outcome == "failure" && err == nil
	rec.RequestID, rec.Principal, rec.Operation, rec.Outcome, rec.ErrorType = c.RequestID, c.Caller.AccessKeyID, c.Op, "success", ""
	if c.principal != "" {
		rec.Principal = c.principal
	}
	if reported {
		// The call reports another's failure (RecordGatewayCall).
		rec.Outcome, rec.ErrorType = "failure", c.Audit.ErrorType
	}
	if c.Request != nil {
		// For the record's export: a change's record is written without
		// the call's context (Change).
		rec.Trace = trace.SpanContextFromContext(c.Request.Context())
	}
	if err != nil {
		rec.Outcome, rec.ErrorType = "failure", AsError(err).Type
	}
	return rec
}

// AuditLog records audited calls (audit.Log implements it). Record must
// not return before the record is durably stored: a credential is never
// returned without its record. Bind is storage.Storage.WithAudit with the
// log's chain; see Call.Change.
type AuditLog interface {
	Record(ctx context.Context, rec storage.AuditRecord) error
	Bind(st storage.Storage, rec func() storage.AuditRecord, committed func()) storage.Storage
}

// Operation is one API operation, routed by method and path.
type Operation struct {
	Name   string
	Method string
	Path   string // a net/http pattern path, e.g. /tags/{resourceArn}
	// Audited operations leave an audit record of every authenticated
	// call, whatever its outcome.
	Audited bool
	// Serve returns the success status and the response body (nil for an
	// empty one).
	Serve func(ctx context.Context, c *Call) (status int, body any, err error)
}

// Audited marks operations as audited.
func Audited(ops ...Operation) []Operation {
	for i := range ops {
		ops[i].Audited = true
	}
	return ops
}

// JSON builds a POST operation whose input and output are JSON bodies.
// The input is decoded strictly and validated before fn runs; a nil output
// means an empty body.
func JSON[In, Out any](name, path string, status int, fn func(context.Context, *Call, *In) (*Out, error)) Operation {
	return Operation{Name: name, Method: http.MethodPost, Path: path, Serve: func(ctx context.Context, c *Call) (int, any, error) {
		in := new(In)
		if err := DecodeAndValidate(c.Body, in); err != nil {
			return 0, nil, err
		}
		out, err := fn(ctx, c, in)
		if err != nil {
			return 0, nil, err
		}
		if out == nil {
			return status, nil, nil
		}
		return status, out, nil
	}}
}

// DecodeAndValidate decodes body into in and runs its Validate method.
func DecodeAndValidate(body []byte, in any) error {
	if err := Decode(body, in); err != nil {
		return err
	}
	if v, ok := in.(Validator); ok {
		var c Checker
		v.Validate(&c)
		return c.Err()
	}
	return nil
}

// Authenticator establishes who signed a request.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, body []byte) (Caller, error)
}

// Authorizer decides whether a caller may invoke an operation and, for a
// workload-scoped operation, act for a workload.
type Authorizer interface {
	Authorize(op string, c Caller) error
	// WorkloadScoped reports whether op must establish its workload with
	// Call.ActFor before it may succeed.
	WorkloadScoped(op string) bool
	ActsFor(c Caller, workload string) error
}

// Router serves a set of operations on the server's one mux, beside the
// routes other packages mount there. Requests to unknown paths or with the
// wrong method get typed errors, never a bare 404 or 405.
type Router struct {
	authn Authenticator
	authz Authorizer
	audit AuditLog
	log   *slog.Logger
	tel   Telemetry
	mux   *http.ServeMux
	ops   map[string][]Operation // by path
	names map[string]bool
	// unsupported gives the reason of operations behalf does not
	// implement, by path.
	unsupported map[string]string
	// limit admits in-process invocations; nil admits all.
	limit Limiter
}

// Limiter admits a caller's call or refuses it (ThrottlingException).
// The router's Authenticator limits signed calls itself, once it knows
// the caller; in-process invocations, which it never sees, go through
// the same Limiter (Router.LimitInvocations).
type Limiter interface {
	Limit(ctx context.Context, c Caller) error
}

// LimitInvocations makes Invoke admit each call through l before
// anything else: a refused call is neither authorized, served nor
// audited, as a signed call its Authenticator refuses.
func (rt *Router) LimitInvocations(l Limiter) { rt.limit = l }

// Telemetry is what the router reports each call to: the request metrics,
// and the hasher that names a call's user in its span.
type Telemetry struct {
	Metrics *telemetry.Metrics
	Users   telemetry.UserHasher
}

// NewRouter returns a router that registers its operations on mux,
// authenticates with authn, authorizes with authz, records audited
// operations with audit (nil records none) and reports every call to tel.
// It answers every path of mux that nothing else claims.
func NewRouter(mux *http.ServeMux, authn Authenticator, authz Authorizer, audit AuditLog, log *slog.Logger, tel Telemetry) *Router {
	rt := &Router{authn: authn, authz: authz, audit: audit, log: log, tel: tel, mux: mux, ops: map[string][]Operation{}, names: map[string]bool{},
		unsupported: map[string]string{}}
	rt.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c := newCall(w, r)
		msg := fmt.Sprintf("no operation at %s %s", r.Method, r.URL.Path)
		if reason, ok := rt.unsupported[r.URL.Path]; ok && r.Method == http.MethodPost {
			msg = reason
		}
		rt.fail(w, c, &Error{Type: TypeUnknownOperation, Status: http.StatusNotFound, Message: msg})
	})
	return rt
}

// Unsupported makes the POST operations at paths, which behalf does not
// implement, answer UnknownOperationException with reason instead of a
// bare "no operation". It must be called before the router serves.
func (rt *Router) Unsupported(reason string, paths ...string) {
	for _, p := range paths {
		rt.unsupported[p] = reason
	}
}

// Handle registers operations. It panics on a duplicate name or route, a
// programming error.
func (rt *Router) Handle(ops ...Operation) {
	for _, op := range ops {
		if rt.names[op.Name] {
			panic("wire: duplicate operation " + op.Name)
		}
		rt.names[op.Name] = true
		existing := rt.ops[op.Path]
		for _, o := range existing {
			if o.Method == op.Method {
				panic("wire: duplicate route " + op.Method + " " + op.Path)
			}
		}
		rt.ops[op.Path] = append(existing, op)
		if len(existing) == 0 {
			path := op.Path
			rt.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { rt.serve(w, r, path) })
		}
	}
}

// Operations lists the registered operation names, sorted.
func (rt *Router) Operations() []string {
	names := make([]string, 0, len(rt.names))
	for n := range rt.names {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// newCall starts a call: it gives the call its request id, sent back in
// X-Amzn-RequestId and carried by the call's context for its log lines.
func newCall(w http.ResponseWriter, r *http.Request) *Call {
	id := uuid.NewString()
	w.Header().Set("X-Amzn-RequestId", id)
	return &Call{start: time.Now(), RequestID: id, Request: r.WithContext(WithRequestID(r.Context(), id))}
}

func (rt *Router) serve(w http.ResponseWriter, r *http.Request, path string) {
	call := newCall(w, r)
	r, ctx := call.Request, call.Request.Context()
	op, allowed := rt.route(path, r.Method)
	if op == nil {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		rt.fail(w, call, &Error{Type: TypeUnknownOperation, Status: http.StatusMethodNotAllowed,
			Message: fmt.Sprintf("%s %s is not supported; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or "))})
		return
	}
	call.Op = op.Name
	defer func() {
		if p := recover(); p != nil {
			rt.fail(w, call, Internal(fmt.Errorf("panic: %v", p)))
		}
	}()

	body, err := readBody(w, r)
	if err != nil {
		rt.fail(w, call, err)
		return
	}
	caller, err := rt.authn.Authenticate(ctx, r, body)
	if err != nil {
		rt.fail(w, call, err)
		return
	}
	call.Caller, call.Body, call.authz = caller, body, rt.authz
	if op.Audited && rt.audit != nil {
		call.log = rt.audit
	}
	status, out, err := rt.authorizeAndRun(ctx, op, call)
	if err != nil {
		rt.fail(w, call, err)
		return
	}
	rt.written(ctx, writeJSON(w, status, out))
	took := rt.observe(call, nil)
	rt.log.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String(logging.KeyOp, op.Name), slog.Int(logging.KeyStatus, status), slog.String(logging.KeyPrincipal, caller.AccessKeyID),
		slog.String(logging.KeyRequestID, call.RequestID), slog.Duration(logging.KeyDuration, took))
}

// route finds the operation of method at path, and lists the methods
// path allows.
func (rt *Router) route(path, method string) (op *Operation, allowed []string) {
	for i, o := range rt.ops[path] {
		allowed = append(allowed, o.Method)
		if o.Method == method {
			op = &rt.ops[path][i]
		}
	}
	return op, allowed
}

// authorizeAndRun authorizes an authenticated call, serves it and
// records it; a refusal is recorded too.
func (rt *Router) authorizeAndRun(ctx context.Context, op *Operation, call *Call) (status int, out any, err error) {
	if err := rt.authz.Authorize(op.Name, call.Caller); err != nil {
		if auditErr := rt.record(ctx, op, call, err); auditErr != nil {
			// No answer without its record, a refusal included.
			err = Internal(fmt.Errorf("audit record not written: %w", auditErr))
		}
		return 0, nil, err
	}
	return rt.run(ctx, op, call)
}

// run serves an authorized call and records it.
func (rt *Router) run(ctx context.Context, op *Operation, call *Call) (status int, out any, err error) {
	status, out, err = op.Serve(ctx, call)
	if err == nil && !call.actedFor && rt.authz.WorkloadScoped(op.Name) {
		// Fail closed: a handler that forgot the workload check must not
		// hand out what it produced.
		err = Internal(fmt.Errorf("workload-scoped operation %s returned without establishing its workload (Call.ActFor)", op.Name))
	}
	if auditErr := rt.record(ctx, op, call, err); auditErr != nil && err == nil {
		// The call succeeded but left no record: withhold its result.
		err = Internal(fmt.Errorf("audit record not written: %w", auditErr))
	}
	return status, out, err
}

// record writes the audit record of an audited call that failed with err
// (nil on success), unless its change already committed a record of that
// outcome (Call.Change, Call.ChangeFailing).
func (rt *Router) record(ctx context.Context, op *Operation, c *Call, err error) error {
	if c.log == nil || c.recordedAs(err) {
		return nil
	}
	// Record even when the caller has gone: the call may have taken effect.
	if err := rt.audit.Record(context.WithoutCancel(ctx), c.record(err)); err != nil {
		rt.log.LogAttrs(ctx, slog.LevelError, "audit record not written", slog.String(logging.KeyOp, op.Name),
			slog.String(logging.KeyRequestID, c.RequestID), logging.Err(err))
		return err
	}
	return nil
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/json" {
				return nil, CannotParse("Content-Type must be application/json, not %q", truncate(ct, 64))
			}
		}
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, MaxBody), r.ContentLength)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			e := CannotParse("request body exceeds %d bytes", MaxBody)
			e.Status = http.StatusRequestEntityTooLarge
			return nil, e
		}
		return nil, CannotParse("could not read the request body")
	}
	if len(body) > 0 && r.Header.Get("Content-Type") == "" {
		return nil, CannotParse("Content-Type must be application/json")
	}
	return body, nil
}

// readAll reads r to its end. When the request declares its length (size),
// that is one allocation of the right size instead of io.ReadAll's
// doubling; a body that is not the declared length is net/http's to refuse.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > MaxBody {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (rt *Router) fail(w http.ResponseWriter, c *Call, err error) {
	e := AsError(err)
	ctx := c.Request.Context()
	rt.written(ctx, WriteError(w, e))
	rt.observe(c, e)
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String(logging.KeyOp, c.Op), slog.Int(logging.KeyStatus, e.Status), slog.String(logging.KeyErrorType, e.Type),
		slog.String(logging.KeyPrincipal, c.Caller.AccessKeyID), slog.String(logging.KeyRequestID, c.RequestID), slog.String(logging.KeyMessage, e.Message),
	}
	if e.Err != nil {
		attrs = append(attrs, logging.Err(e.Err))
	}
	rt.log.LogAttrs(ctx, level, "request failed", attrs...)
}

// written logs a response that could not be written: the caller has gone
// (a debug line), or the body could not be encoded (an error).
func (rt *Router) written(ctx context.Context, err error) {
	if err == nil {
		return
	}
	level := slog.LevelDebug
	if errors.Is(err, errNotEncodable) {
		level = slog.LevelError
	}
	rt.log.LogAttrs(ctx, level, "response not written", logging.Err(err))
}

// WriteError renders e in the restJson1 error shape that both generations
// of the AWS SDK for Go decode into typed errors.
func WriteError(w http.ResponseWriter, e *Error) error {
	w.Header().Set("X-Amzn-ErrorType", e.Type)
	msg := e.Message
	if e.hidden {
		msg = "internal error; quote request id " + w.Header().Get("X-Amzn-RequestId")
	}
	body := struct {
		Type    string       `json:"__type"`
		Message string       `json:"message"`
		Reason  string       `json:"reason,omitempty"`
		Fields  []FieldError `json:"fieldList,omitempty"`
	}{e.Type, msg, e.Reason, e.Fields}
	return writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) error {
	if body == nil {
		w.WriteHeader(status)
		return nil
	}
	raw, encodeErr := json.Marshal(body)
	if encodeErr != nil {
		status, raw = http.StatusInternalServerError, []byte(`{"__type":"InternalServerException","message":"internal error"}`)
		w.Header().Set("X-Amzn-ErrorType", TypeInternal)
		encodeErr = fmt.Errorf("%w: %w", errNotEncodable, encodeErr)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err := w.Write(raw)
	return errors.Join(encodeErr, err)
}

// errNotEncodable marks a response body that JSON cannot encode, a bug
// the caller saw as an internal error.
var errNotEncodable = errors.New("response body not encodable")

// Time is a timestamp encoded as epoch seconds, the restJson1 default.
type Time time.Time

// MarshalJSON encodes t as epoch seconds with milliseconds.
func (t Time) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	return []byte(fmt.Sprintf("%d.%03d", tt.Unix(), tt.Nanosecond()/1e6)), nil
}

// NextToken encodes a list cursor. Tokens are opaque to callers; a forged
// one can only move the cursor.
func NextToken(last string) *string {
	t := "n1." + base64URL(last)
	return &t
}

// ParseNextToken decodes a cursor from NextToken.
func ParseNextToken(name string, token *string) (string, error) {
	if token == nil || *token == "" {
		return "", nil
	}
	raw, ok := strings.CutPrefix(*token, "n1.")
	if ok && len(raw) <= 2048 {
		if s, err := unbase64URL(raw); err == nil {
			return s, nil
		}
	}
	return "", Validation(name+" is not a token returned by this API", FieldError{Name: name, Message: "is invalid"})
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func unbase64URL(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err
}
