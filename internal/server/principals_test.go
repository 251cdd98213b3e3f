package server_test

import (
	"context"
	"testing"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// A principal created through the API signs requests at once, even when
// its access key id was refused a moment before.
func TestPrincipalUsableRightAfterCreation(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	const id, secret = "AKIDCREATEDLATER0001", "created-later-secret-0123456789abcdef"
	ctx := context.Background()
	if _, err := s.ControlAs(id, secret).ListWorkloadIdentities(ctx, nil); err == nil {
		t.Fatal("an unknown access key was accepted")
	}
	res := s.Do(t, behalftest.Raw{Path: "/behalf/CreatePrincipal",
		Body: []byte(`{"accessKeyId":"` + id + `","secretAccessKey":"` + secret + `","role":"admin"}`)})
	if res.Status != 201 {
		t.Fatalf("CreatePrincipal: %d %s", res.Status, res.Body)
	}
	if _, err := s.ControlAs(id, secret).ListWorkloadIdentities(ctx, nil); err != nil {
		t.Fatalf("the new principal was refused right after its creation: %v", err)
	}
}
