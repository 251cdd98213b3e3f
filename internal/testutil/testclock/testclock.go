// Package testclock is a clock for tests that moves only when told to:
// a server given its Now sees a token, session, lease or cache entry
// expire the moment a test calls Advance, without sleeping.
package testclock

import (
	"sync"
	"time"
)

// Clock is a settable time, safe for concurrent use. Pass its Now method
// wherever an Options or Deps struct takes Now func() time.Time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock standing at start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t, forward or back.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
