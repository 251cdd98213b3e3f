package vault

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
)

// A record that no longer opens must not stop rotation: the others are
// re-wrapped and it is reported.
func TestRewrapStaleSkipsRecordsThatDoNotOpen(t *testing.T) {
	ctx := t.Context()
	v, kr := newTestVault(t)
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "behalf.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	const principals = 7
	corrupt := ""
	for i := range principals {
		id := fmt.Sprintf("AKIDREWRAPTEST%06d", i)
		sealed, err := v.Seal(ctx, []byte("secret"), Binding{Kind: storage.SecretPrincipal, Owner: id})
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			corrupt = id
			sealed.Blob[len(sealed.Blob)-1] ^= 1 // the data no longer authenticates
		}
		now := time.Now()
		if err := st.CreatePrincipal(ctx, storage.Principal{AccessKeyID: id, Secret: sealed, Role: storage.RoleRuntime, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	next, err := kr.Create()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetCurrent(ctx, next); err != nil {
		t.Fatal(err)
	}

	// A batch of 2 puts the bad record in the middle of a batch and runs
	// the walk over several batches.
	res, err := v.RewrapStale(ctx, st, 2)
	if err != nil {
		t.Fatalf("RewrapStale: %v", err)
	}
	if res.Rewrapped != principals-1 || len(res.Skipped) != 1 || res.Skipped[0].Ref.Owner != corrupt {
		t.Fatalf("RewrapStale = %d re-wrapped, skipped %+v; want %d and %s", res.Rewrapped, res.Skipped, principals-1, corrupt)
	}
	if len(res.Skipped[0].Ref.Sealed.Blob) != 0 {
		t.Error("a skipped record's report carries its ciphertext")
	}
	stale, err := st.ListStaleSecrets(ctx, next, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 1 || stale[0].Owner != corrupt {
		t.Fatalf("stale after rotation: %+v, want only %s", stale, corrupt)
	}
}
