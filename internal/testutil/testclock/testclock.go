// Package testclock is a clock for tests that moves when told to: a
// server given its Now sees a token, session, lease or cache entry expire
// the moment a test calls Advance, without sleeping.
//
// New stands still between calls, for tests of one component. Running
// follows the real clock plus what Advance added, for end-to-end tests
// whose server trusts tokens from identity providers that run on real
// time (their iat and nbf then stay within the verifier's leeway however
// long the test takes).
package testclock

import (
	"sync"
	"time"
)

// Clock is a settable time, safe for concurrent use. Pass its Now method
// wherever an Options or Deps struct takes Now func() time.Time.
type Clock struct {
	mu      sync.Mutex
	running bool
	at      time.Time     // the time of a clock that stands still
	offset  time.Duration // a running clock's lead over the real one
}

// New returns a clock standing at start.
func New(start time.Time) *Clock { return &Clock{at: start} }

// Running returns a clock that reads the real time until advanced.
func Running() *Clock { return &Clock{running: true} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().Add(c.offset)
	}
	return c.at
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.offset += d
		return time.Now().Add(c.offset)
	}
	c.at = c.at.Add(d)
	return c.at
}

// AdvanceTo moves the clock forward to t; a t already past is a no-op.
func (c *Clock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		if d := time.Until(t.Add(-c.offset)); d > 0 {
			c.offset += d
		}
		return
	}
	if t.After(c.at) {
		c.at = t
	}
}
