package federation

import (
	"fmt"
	"testing"
	"time"
)

// TestPerMinute: n events at once per key, then one more every 60/n
// seconds; keys apart; the number of keys tracked bounded.
func TestPerMinute(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newPerMinute(10, func() time.Time { return now })
	for i := range 10 {
		if !l.Allow("alice") {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	if l.Allow("alice") {
		t.Fatal("an 11th event within the minute was allowed")
	}
	if !l.Allow("bob") {
		t.Fatal("another key was refused")
	}
	now = now.Add(5 * time.Second) // under 6s: not yet one event's worth
	if l.Allow("alice") {
		t.Fatal("allowed after 5s at 10 a minute")
	}
	now = now.Add(time.Second)
	if !l.Allow("alice") || l.Allow("alice") {
		t.Fatal("after 6s, want exactly one more event")
	}
	now = now.Add(time.Hour) // a full bucket, never more
	for i := range 10 {
		if !l.Allow("alice") {
			t.Fatalf("after an hour, event %d refused", i+1)
		}
	}
	if l.Allow("alice") {
		t.Fatal("an idle hour saved up more than a burst")
	}

	for i := range maxLimiterKeys + 10 {
		l.Allow(fmt.Sprintf("user-%d", i))
	}
	if n := len(l.buckets); n > maxLimiterKeys || l.recent.Len() != n {
		t.Errorf("%d keys tracked (%d in order), want at most %d", n, l.recent.Len(), maxLimiterKeys)
	}
}
