package testclock

import (
	"sync"
	"testing"
	"time"
)

func TestStandingClockMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { c.Advance(time.Second) })
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(10*time.Second); !got.Equal(want) {
		t.Fatalf("after 10 advances Now = %v, want %v", got, want)
	}
	c.AdvanceTo(start)
	if got, want := c.Now(), start.Add(10*time.Second); !got.Equal(want) {
		t.Fatalf("AdvanceTo a past time moved the clock to %v", got)
	}
	c.AdvanceTo(start.Add(time.Hour))
	if got, want := c.Now(), start.Add(time.Hour); !got.Equal(want) {
		t.Fatalf("after AdvanceTo Now = %v, want %v", got, want)
	}
}

func TestRunningClockLeadsTheRealOneByWhatWasAdded(t *testing.T) {
	c := Running()
	if d := time.Until(c.Now()); d > time.Second || d < -time.Second {
		t.Fatalf("a new running clock is %v off the real one", d)
	}
	c.Advance(time.Hour)
	if d := time.Until(c.Now()); d < time.Hour-time.Second || d > time.Hour+time.Second {
		t.Fatalf("after Advance(1h) the clock leads by %v", d)
	}
	target := time.Now().Add(3 * time.Hour)
	c.AdvanceTo(target)
	if d := c.Now().Sub(target); d < 0 || d > time.Second {
		t.Fatalf("after AdvanceTo the clock is %v past the target", d)
	}
}
