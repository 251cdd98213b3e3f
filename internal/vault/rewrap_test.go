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

	const providers = 7
	corrupt := ""
	for i := range providers {
		id := fmt.Sprintf("provider-%02d", i)
		sealed, err := v.SealAPIKey(ctx, id, []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			corrupt = id
			sealed.Blob[len(sealed.Blob)-1] ^= 1 // the data no longer authenticates
		}
		now := time.Now()
		if err := st.CreateAPIKeyProvider(ctx, storage.APIKeyProvider{ID: id, Name: id, APIKey: sealed, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
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
	if res.Rewrapped != providers-1 || len(res.Skipped) != 1 || res.Skipped[0].Ref.Owner != corrupt {
		t.Fatalf("RewrapStale = %d re-wrapped, skipped %+v; want %d and %s", res.Rewrapped, res.Skipped, providers-1, corrupt)
	}
	if len(res.Skipped[0].Ref.Sealed.Blob) != 0 {
		t.Error("a skipped record's report carries its ciphertext")
	}
	stale, err := st.ListStaleSecrets(ctx, v.Targets(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 1 || stale[0].Owner != corrupt {
		t.Fatalf("stale after rotation: %+v, want only %s", stale, corrupt)
	}
}
