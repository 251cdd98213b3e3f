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
