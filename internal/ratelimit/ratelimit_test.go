package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Unix(1_800_000_000, 0)} }
func allowN(l *Limiter, key string, n int) (allowed int) {
	for range n {
		if l.Allow(key) {
			allowed++
		}
	}
	return allowed
}

func TestBurstThenRefill(t *testing.T) {
	c := newClock()
	l := New(Limit{PerSecond: 2, Burst: 4}, Options{Now: c.now})
	if got := allowN(l, "a", 10); got != 4 {
		t.Fatalf("allowed %d of 10 at once, want the burst of 4", got)
	}
	c.advance(500 * time.Millisecond)
	if got := allowN(l, "a", 10); got != 1 {
		t.Fatalf("allowed %d after 0.5s at 2/s, want 1", got)
	}
	c.advance(time.Hour)
	if got := allowN(l, "a", 10); got != 4 {
		t.Fatalf("allowed %d after an hour, want the burst of 4 (never more)", got)
	}
	if got := allowN(l, "b", 10); got != 4 {
		t.Fatalf("another key allowed %d, want its own burst of 4", got)
	}
}

func TestPerMinute(t *testing.T) {
	c := newClock()
	l := New(PerMinute(10), Options{Now: c.now})
	if got := allowN(l, "alice", 20); got != 10 {
		t.Fatalf("allowed %d new sessions at once, want 10", got)
	}
	c.advance(6 * time.Second)
	if got := allowN(l, "alice", 20); got != 1 {
		t.Fatalf("allowed %d after 6s at 10/min, want 1", got)
	}
}

func TestZeroLimitAllowsNothing(t *testing.T) {
	l := New(Limit{}, Options{})
	if l.Allow("a") {
		t.Fatal("a zero limit allowed an event")
	}
}

// TestBounded: the map never holds more than MaxKeys; a key dropped to
// make room comes back with a full bucket, so the least recently used one
// goes, and idle (full) buckets go first.
func TestBounded(t *testing.T) {
	c := newClock()
	l := New(Limit{PerSecond: 1, Burst: 2}, Options{Now: c.now, MaxKeys: 3})
	for i := range 10 {
		l.Allow(fmt.Sprint("k", i))
		if l.Len() > 3 {
			t.Fatalf("%d keys tracked, want at most 3", l.Len())
		}
	}
	// k7..k9 remain, each with one token left; drain k9 and k8.
	allowN(l, "k9", 5)
	allowN(l, "k8", 5)
	c.advance(time.Second) // k7 full again; k8 and k9 have one token
	l.Allow("new")         // drops idle k7
	if got := allowN(l, "k9", 5); got != 1 {
		t.Fatalf("k9 allowed %d, want 1: it must have kept its drained bucket", got)
	}
}

func TestIdleKeysAreDropped(t *testing.T) {
	c := newClock()
	l := New(Limit{PerSecond: 10, Burst: 10}, Options{Now: c.now})
	for i := range 100 {
		l.Allow(fmt.Sprint("k", i))
	}
	c.advance(time.Second)
	for i := range 100 {
		l.Allow(fmt.Sprint("other", i))
	}
	if l.Len() > 101 {
		t.Fatalf("%d keys tracked after the first 100 went idle, want them dropped as others arrive", l.Len())
	}
}
