package wire

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"testing"
)

// TestInvoke: an in-process call is authorized, decoded, served and
// audited as a signed one, its records naming the invocation's principal.
func TestInvoke(t *testing.T) {
	log := &fakeAuditLog{}
	rt := NewRouter(http.NewServeMux(), allowAll{}, allowAll{}, log, slog.New(slog.DiscardHandler), Telemetry{})
	change := func(_ context.Context, c *Call, in *shape) (*out, error) {
		c.Audit.Workload = in.Name
		c.Change(nil)
		return &out{Name: in.Name}, nil
	}
	rt.Handle(Audited(
		JSON("Change", "/change", 200, change),
		JSON("Forbidden", "/forbidden", 200, change),
		Operation{Name: "Tag", Method: http.MethodPost, Path: "/tags/{arn}"},
	)...)
	caller := Caller{AccessKeyID: "AKIDCONSOLE"}
	as := "console:AKIDCONSOLE/jwt:https://idp#alice"
	ctx := t.Context()

	raw, err := rt.Invoke(ctx, Invocation{Op: "Change", Caller: caller, Principal: as, Body: []byte(`{"name":"abc"}`)})
	if err != nil || !bytes.Contains(raw, []byte(`"name":"abc"`)) {
		t.Fatalf("Change: %s %v", raw, err)
	}
	if len(log.bound) != 1 || log.bound[0].Principal != as || log.bound[0].Workload != "abc" || log.bound[0].Outcome != "success" {
		t.Errorf("the change's record: %+v", log.bound)
	}

	if _, err := rt.Invoke(ctx, Invocation{Op: "Forbidden", Caller: caller, Principal: as, Body: []byte(`{"name":"abc"}`)}); AsError(err).Type != TypeAccessDenied {
		t.Errorf("Forbidden: %v", err)
	}
	if len(log.records) != 1 || log.records[0].Principal != as || log.records[0].ErrorType != TypeAccessDenied {
		t.Errorf("the refusal's record: %+v", log.records)
	}

	if _, err := rt.Invoke(ctx, Invocation{Op: "Change", Caller: caller, Principal: as, Body: []byte(`{"name":"!"}`)}); AsError(err).Type != TypeValidation {
		t.Errorf("invalid input: %v", err)
	}
	for _, in := range []Invocation{
		{Op: "Nope", Caller: caller, Principal: as},
		{Op: "Tag", Caller: caller, Principal: as},
		{Op: "Change", Caller: caller, Principal: "console:someone-else", Body: []byte(`{"name":"abc"}`)},
	} {
		if _, err := rt.Invoke(ctx, in); AsError(err).Status != http.StatusInternalServerError {
			t.Errorf("%s as %s: %v", in.Op, in.Principal, err)
		}
	}
}

// onceLimit admits one call per access key id.
type onceLimit map[string]bool

func (l onceLimit) Limit(_ context.Context, c Caller) error {
	if l[c.AccessKeyID] {
		return Throttling("rate exceeded for %s", c.AccessKeyID)
	}
	l[c.AccessKeyID] = true
	return nil
}

// TestInvokeLimited: an invocation goes through the router's limiter
// before anything else; a refused one is neither served nor audited.
func TestInvokeLimited(t *testing.T) {
	log := &fakeAuditLog{}
	rt := NewRouter(http.NewServeMux(), allowAll{}, allowAll{}, log, slog.New(slog.DiscardHandler), Telemetry{})
	served := 0
	rt.Handle(Audited(JSON("Change", "/change", 200, func(_ context.Context, c *Call, in *shape) (*out, error) {
		served++
		c.Change(nil)
		return &out{Name: in.Name}, nil
	}))...)
	rt.LimitInvocations(onceLimit{})
	in := Invocation{Op: "Change", Caller: Caller{AccessKeyID: "AKIDCONSOLE"}, Principal: "console:AKIDCONSOLE/alice", Body: []byte(`{"name":"abc"}`)}
	if _, err := rt.Invoke(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Invoke(t.Context(), in); AsError(err).Type != TypeThrottling {
		t.Errorf("past the limit: %v", err)
	}
	if served != 1 || len(log.bound)+len(log.records) != 1 {
		t.Errorf("served %d, records %d: a throttled call was served or audited", served, len(log.bound)+len(log.records))
	}
}
