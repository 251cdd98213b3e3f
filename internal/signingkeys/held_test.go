package signingkeys_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/testutil/fakesigning"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/vault"
)

// TestHeldCachesSigners: a held key's signer is loaded from its backend
// once per ttl however many callers ask, concurrently or not; Load asks
// the backend afresh; failures are returned as the backend's and not
// cached.
func TestHeldCachesSigners(t *testing.T) {
	b := fakesigning.New()
	id, err := b.Create(fakesigning.ECCNISTP256)
	if err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	held := signingkeys.NewHeld(vault.NewKeys(b), 5*time.Minute, clock.Now)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if s, err := held.Signer(t.Context(), id); err != nil || s.Public() == nil {
				t.Errorf("Signer: %v", err)
			}
		})
	}
	wg.Wait()
	if n := b.Loads.Load(); n < 1 || n > 20 {
		t.Fatalf("%d loads", n)
	}
	before := b.Loads.Load()
	if _, err := held.Signer(t.Context(), id); err != nil || b.Loads.Load() != before {
		t.Fatalf("a cached signer was loaded again: %v", err)
	}
	if _, err := held.Load(t.Context(), id); err != nil || b.Loads.Load() != before+1 {
		t.Fatalf("Load did not ask the backend: %v", err)
	}
	clock.Advance(6 * time.Minute)
	if _, err := held.Signer(t.Context(), id); err != nil || b.Loads.Load() != before+2 {
		t.Fatalf("an expired signer was not loaded again: %v", err)
	}
	b.SetUnavailable(true)
	clock.Advance(6 * time.Minute)
	for range 2 {
		if _, err := held.Signer(t.Context(), id); !errors.Is(err, vault.ErrKeyUnavailable) {
			t.Fatalf("unreachable backend: %v", err)
		}
	}
	if b.Loads.Load() != before+4 {
		t.Fatalf("a failure was cached: %d loads", b.Loads.Load()-before)
	}
	b.SetUnavailable(false)
	if _, err := held.Signer(t.Context(), "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000"); !errors.Is(err, vault.ErrUnknownKey) {
		t.Fatalf("a key no backend owns: %v", err)
	}
}
