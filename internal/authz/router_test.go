package authz_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

type runtimeCaller struct{}

func (runtimeCaller) Authenticate(context.Context, *http.Request, []byte) (wire.Caller, error) {
	return wire.Caller{AccessKeyID: "RUNTIME", Role: storage.RoleRuntime, Workloads: []string{"granted"}}, nil
}

type vendInput struct {
	Workload string `json:"workload"`
}

type vendOutput struct {
	Credential string `json:"credential"`
}

// serveVend routes one data-plane operation (the policy row of
// GetResourceApiKey) to handler, as a new data-plane handler would be,
// and calls it for workload.
func serveVend(t *testing.T, handler func(context.Context, *wire.Call, *vendInput) (*vendOutput, error), workload string) (status int, output string) {
	t.Helper()
	mux := http.NewServeMux()
	var logs strings.Builder
	rt := wire.NewRouter(mux, runtimeCaller{}, authz.Authorizer{}, nil, slog.New(slog.NewTextHandler(&logs, nil)), wire.Telemetry{})
	rt.Handle(wire.JSON("GetResourceApiKey", "/vend", http.StatusOK, handler))
	r := httptest.NewRequest(http.MethodPost, "/vend", strings.NewReader(`{"workload":"`+workload+`"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w.Code, w.Body.String() + logs.String()
}

// A data-plane operation whose handler forgets to establish its workload
// cannot succeed: the router answers 500, logs why, and the credential
// the handler produced never leaves.
func TestWorkloadScopedOperationMustActForItsWorkload(t *testing.T) {
	forgetful := func(_ context.Context, _ *wire.Call, in *vendInput) (*vendOutput, error) {
		return &vendOutput{Credential: "sk-secret-of-" + in.Workload}, nil
	}
	status, out := serveVend(t, forgetful, "not-granted")
	if status != http.StatusInternalServerError || strings.Contains(out, "sk-secret-of") {
		t.Fatalf("forgetful handler: status %d, output %s", status, out)
	}
	if !strings.Contains(out, "without establishing its workload") {
		t.Errorf("the refusal is not logged: %s", out)
	}

	careful := func(_ context.Context, c *wire.Call, in *vendInput) (*vendOutput, error) {
		if err := c.ActFor(in.Workload); err != nil {
			return nil, err
		}
		return &vendOutput{Credential: "sk-secret-of-" + in.Workload}, nil
	}
	if status, out := serveVend(t, careful, "granted"); status != http.StatusOK || !strings.Contains(out, "sk-secret-of-granted") {
		t.Fatalf("careful handler, granted workload: status %d, output %s", status, out)
	}
	if status, out := serveVend(t, careful, "not-granted"); status != http.StatusForbidden || strings.Contains(out, "sk-secret-of") {
		t.Fatalf("careful handler, workload not granted: status %d, output %s", status, out)
	}
}

// The policy cannot be changed through what it hands out.
func TestPolicyIsImmutable(t *testing.T) {
	r, _ := authz.RuleFor("CreateWorkloadIdentity")
	r.Roles[0] = storage.RoleRuntime
	if err := (authz.Authorizer{}).Authorize("CreateWorkloadIdentity", wire.Caller{Role: storage.RoleRuntime}); err == nil {
		t.Fatal("editing a returned rule changed the policy")
	}
}
