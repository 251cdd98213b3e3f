package telemetry

import (
	"context"
	"errors"
	"testing"
	"time"
)

// With telemetry off, a span and every metric cost no allocation: the
// vend path pays nothing for them.
func TestNoopAllocatesNothing(t *testing.T) {
	m := Noop().Metrics
	ctx := context.Background()
	err := errors.New("x")
	allocs := testing.AllocsPerRun(100, func() {
		c, span := Start(ctx, "vault.open")
		End(span, err, "decrypt")
		m.CacheLookup(c, CacheConnection, true)
		m.Refresh(c, RefreshRefreshed)
		m.Vault(c, VaultOpen, nil)
		m.AuditBatch(c, 3, time.Millisecond, nil)
		m.RateLimited(c, LimitPrincipal)
		m.WATMinted(c, WATJWT)
	})
	if allocs != 0 {
		t.Errorf("%v allocations a call with telemetry off", allocs)
	}
	if Recording(ctx) {
		t.Error("a call with no span records")
	}
}

// A user's pseudonym is stable under one key, differs between users and
// between deployments' keys, and never shows the user.
func TestUserHash(t *testing.T) {
	a, b := NewUserHasher([]byte("key one, 32 bytes long, or so..")), NewUserHasher([]byte("key two, 32 bytes long, or so.."))
	h := a.Hash("alice@example.com")
	if len(h) != 32 || h != a.Hash("alice@example.com") {
		t.Errorf("hash %q is not 32 stable hex digits", h)
	}
	if h == a.Hash("bob@example.com") || h == b.Hash("alice@example.com") {
		t.Error("two users, or two keys, give the same hash")
	}
	if a.Hash("") != "" || (UserHasher{}).Hash("alice@example.com") != "" {
		t.Error("no user, or no key, gives a hash")
	}
}
