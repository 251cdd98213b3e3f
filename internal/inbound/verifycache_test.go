package inbound_test

import (
	"context"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/inbound/inboundtest"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/metrictest"
)

// A token verified once is judged against the clock again on every later
// call: the cache never serves a token past its exp. Each call is one
// lookup in the user_jwt cache: the first a miss, the others hits.
func TestRepeatedTokenExpires(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	clk := newClock(t0)
	metrics := metrictest.New(t)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{Now: clk.Now, Metrics: metrics.Metrics})
	tok := idp.Sign(idp.ValidClaims(t0)) // exp t0+1h
	for range 2 {
		if _, err := s.Verify(context.Background(), tok, nil); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Hour + inbound.DefaultLeeway)
	_, err := s.Verify(context.Background(), tok, nil)
	wantKind(t, err, inbound.KindExpired)
	got := metrics.Counts(t, "behalf.cache.lookups", telemetry.Result)
	if len(got) != 2 || got["miss"] != 1 || got["hit"] != 2 {
		t.Errorf("user_jwt cache lookups %v, want 1 miss and 2 hits", got)
	}
	if caches := metrics.Counts(t, "behalf.cache.lookups", telemetry.Cache); len(caches) != 1 || caches[telemetry.CacheUserJWT] != 3 {
		t.Errorf("lookups by cache %v, want 3 in %s", caches, telemetry.CacheUserJWT)
	}
}

// A repeated token whose key the issuer has since withdrawn is refused
// once the JWKS is fetched again, though it verified before.
func TestRepeatedTokenRefusedAfterKeyWithdrawn(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
	ctx := context.Background()
	old := idp.Sign(idp.ValidClaims(t0))
	for range 2 {
		if _, err := s.Verify(ctx, old, nil); err != nil {
			t.Fatal(err)
		}
	}
	idp.RotateKeys()
	idp.RetireOldKeys()
	if _, err := s.Verify(ctx, idp.Sign(idp.ValidClaims(t0)), nil); err != nil { // new kid: refetch
		t.Fatal(err)
	}
	_, err := s.Verify(ctx, old, nil)
	wantKind(t, err, inbound.KindBadSignature)
}

// Callers get their own Identity: changing one does not change what the
// next caller with the same token gets.
func TestRepeatedTokenIdentityIsACopy(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
	tok := idp.Sign(idp.ValidClaims(t0))
	for range 3 {
		id, err := s.Verify(context.Background(), tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		if id.Audience[0] != inboundtest.Audience || id.Scopes[0] != "openid" {
			t.Fatalf("identity changed by an earlier caller: %+v", id)
		}
		id.Audience[0], id.Scopes[0], id.Subject = "changed", "changed", "changed"
	}
}

// BenchmarkVerifyRepeatedToken is the data plane's common case: an agent
// presents its user's token again and again.
func BenchmarkVerifyRepeatedToken(b *testing.B) {
	for _, kt := range inboundtest.KeyTypes() {
		b.Run(string(kt), func(b *testing.B) {
			idp := inboundtest.NewIDP(b, inboundtest.WithKeyType(kt))
			s, err := inbound.NewSet([]inbound.Config{idp.Config("corp")}, inbound.Options{Now: func() time.Time { return t0 }})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			tok := idp.Sign(idp.ValidClaims(t0))
			for b.Loop() {
				if _, err := s.Verify(context.Background(), tok, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
