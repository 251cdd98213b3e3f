package authz

import (
	"errors"
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

func TestAuthorize(t *testing.T) {
	admin := wire.Caller{AccessKeyID: "A", Role: storage.RoleAdmin}
	runtime := wire.Caller{AccessKeyID: "R", Role: storage.RoleRuntime, Workloads: []string{"w1"}}
	nobody := wire.Caller{AccessKeyID: "N"}
	for _, tc := range []struct {
		op     string
		caller wire.Caller
		ok     bool
	}{
		{"CreateWorkloadIdentity", admin, true},
		{"CreateWorkloadIdentity", runtime, false},
		{"GetResourceApiKey", runtime, true},
		{"GetResourceApiKey", admin, true},
		{"GetResourceApiKey", nobody, false},
		{"SomeFutureOperation", admin, false},
	} {
		err := Authorizer{}.Authorize(tc.op, tc.caller)
		var e *wire.Error
		if tc.ok != (err == nil) || (err != nil && (!errors.As(err, &e) || e.Type != wire.TypeAccessDenied)) {
			t.Errorf("%s by %s: %v", tc.op, tc.caller.AccessKeyID, err)
		}
	}
	if !ActsFor(runtime, "w1") || ActsFor(runtime, "w2") || !ActsFor(admin, "w2") || ActsFor(nobody, "w1") {
		t.Fatal("ActsFor")
	}
	if !ActsFor(wire.Caller{Role: storage.RoleRuntime, Workloads: []string{AllWorkloads}}, "anything") {
		t.Fatal("wildcard grant")
	}
}

// A runtime principal limited to some data-plane operations may call only
// those; an empty list allows every data-plane operation.
func TestOperationsOfARuntimePrincipal(t *testing.T) {
	vendOnly := wire.Caller{AccessKeyID: "R", Role: storage.RoleRuntime, Operations: []string{"GetResourceOauth2Token"}}
	if err := (Authorizer{}).Authorize("GetResourceOauth2Token", vendOnly); err != nil {
		t.Fatal(err)
	}
	if err := (Authorizer{}).Authorize("CompleteResourceTokenAuth", vendOnly); err == nil {
		t.Fatal("a principal limited to GetResourceOauth2Token may complete sessions")
	}
	if err := (Authorizer{}).Authorize("CompleteResourceTokenAuth", wire.Caller{Role: storage.RoleRuntime}); err != nil {
		t.Fatal(err)
	}
	if got := DataPlaneOperations(); len(got) != 10 {
		t.Fatalf("data-plane operations %v", got)
	}
}
