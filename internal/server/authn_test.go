package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/sigv4"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/vault"
)

// countingStore counts principal reads per access key id on a real store.
type countingStore struct {
	storage.Storage
	mu    sync.Mutex
	reads map[string]int
}

func (c *countingStore) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	c.mu.Lock()
	c.reads[id]++
	c.mu.Unlock()
	return c.Storage.GetPrincipal(ctx, id)
}

func (c *countingStore) readsOf(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[id]
}

func newTestPrincipalCache(t *testing.T) (*principalCache, *countingStore, *vault.Vault) {
	cache, st, v, _ := newClockedPrincipalCache(t)
	return cache, st, v
}

func newClockedPrincipalCache(t *testing.T) (*principalCache, *countingStore, *vault.Vault, *testclock.Clock) {
	t.Helper()
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "behalf.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := vault.OpenLocalKeyring(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(ctx, kr, kr.ServiceKeyID())
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Storage: st, reads: map[string]int{}}
	clock := testclock.New(time.Now())
	return newPrincipalCache(counting, v, time.Hour, clock.Now, nil), counting, v, clock
}

func createTestPrincipal(t *testing.T, st storage.Storage, v *vault.Vault, id string) {
	t.Helper()
	sealed, err := v.Seal(t.Context(), []byte("principal-secret-0123456789"), vault.PrincipalSecretBinding(id))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.CreatePrincipal(t.Context(), storage.Principal{AccessKeyID: id, Secret: sealed, Role: storage.RoleRuntime, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// Unsigned requests naming random access key ids must not push known
// principals out of the cache.
func TestUnknownAccessKeysDoNotEvictPrincipals(t *testing.T) {
	cache, st, v := newTestPrincipalCache(t)
	const known = "AKIDKNOWNPRINCIPAL01"
	createTestPrincipal(t, st, v, known)
	if _, err := cache.get(t.Context(), known); err != nil {
		t.Fatal(err)
	}
	for i := range maxCachedPrincipals + 1 {
		if _, err := cache.get(t.Context(), fmt.Sprintf("AKIDRANDOM%010d", i)); !errors.Is(err, sigv4.ErrUnknownKey) {
			t.Fatalf("random id: %v, want ErrUnknownKey", err)
		}
	}
	if _, err := cache.get(t.Context(), known); err != nil {
		t.Fatal(err)
	}
	if n := st.readsOf(known); n != 1 {
		t.Fatalf("the known principal was read %d times; the flood of unknown ids evicted it", n)
	}
	// A repeated unknown id is answered from the negative cache.
	const unknown = "AKIDREPEATEDUNKNOWN1"
	for range 3 {
		cache.get(t.Context(), unknown)
	}
	if n := st.readsOf(unknown); n != 1 {
		t.Fatalf("a repeated unknown id was read %d times, want 1", n)
	}
}

// A principal created through this server is usable at once even if its
// id was looked up, and refused, just before.
func TestPrincipalUsableRightAfterAMiss(t *testing.T) {
	cache, st, v := newTestPrincipalCache(t)
	const id = "AKIDCREATEDAFTERMISS"
	if _, err := cache.get(t.Context(), id); !errors.Is(err, sigv4.ErrUnknownKey) {
		t.Fatalf("before creation: %v", err)
	}
	createTestPrincipal(t, st, v, id)
	cache.invalidate(id) // what control's PrincipalChanged hook does on creation
	if _, err := cache.get(t.Context(), id); err != nil {
		t.Fatalf("right after creation: %v", err)
	}
}

// A principal created through another replica (no invalidation here) is
// usable once the miss expires on the server's clock, and its cached
// record is re-read once the TTL has passed on that clock.
func TestPrincipalCacheFollowsTheServerClock(t *testing.T) {
	cache, st, v, clock := newClockedPrincipalCache(t)
	const id = "AKIDOTHERREPLICA0001"
	if _, err := cache.get(t.Context(), id); !errors.Is(err, sigv4.ErrUnknownKey) {
		t.Fatalf("before creation: %v", err)
	}
	createTestPrincipal(t, st, v, id)
	if _, err := cache.get(t.Context(), id); !errors.Is(err, sigv4.ErrUnknownKey) {
		t.Fatalf("within missTTL the miss must still be cached: %v", err)
	}
	clock.Advance(missTTL)
	if _, err := cache.get(t.Context(), id); err != nil {
		t.Fatalf("after missTTL on the clock: %v", err)
	}
	reads := st.readsOf(id)
	cache.get(t.Context(), id)
	if st.readsOf(id) != reads {
		t.Fatal("a cached principal was read again within its TTL")
	}
	clock.Advance(time.Hour)
	cache.get(t.Context(), id)
	if st.readsOf(id) != reads+1 {
		t.Fatal("a cached principal was not read again after its TTL passed on the clock")
	}
}
