// Package ratelimit keeps token buckets keyed by string — a principal's
// access key id, a user — in a bounded map, for limits that a caller may
// exceed only briefly.
//
// A bucket holds up to Burst tokens and gains PerSecond tokens a second;
// each allowed event takes one. A bucket left alone long enough to fill up
// is indistinguishable from a new one, so idle keys are dropped first when
// the map is full; when none is idle the least recently used key goes.
//
// Its users: requests per principal (limits.requestsPerSecond and
// limits.burst) and new consent sessions per user and per caller
// (userFederation.newSessionsPer…PerMinute); see docs/configuration.md.
package ratelimit

import (
	"container/list"
	"sync"
	"time"
)

// Limit is a sustained rate and the burst allowed above it.
type Limit struct {
	PerSecond float64
	Burst     int
}

// PerMinute is a limit of n events a minute, n of them at once.
func PerMinute(n int) Limit { return Limit{PerSecond: float64(n) / 60, Burst: n} }

// DefaultMaxKeys bounds a Limiter's map unless Options say otherwise.
const DefaultMaxKeys = 100_000

// Options tune a Limiter.
type Options struct {
	// MaxKeys bounds the number of keys tracked; zero means DefaultMaxKeys.
	MaxKeys int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limiter is a set of token buckets, one per key, all with one Limit. It
// is safe for concurrent use.
type Limiter struct {
	limit   Limit
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	recent  list.List                // most recently used first
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// New returns a Limiter applying limit to every key. A limit with a
// non-positive rate or burst allows nothing.
func New(limit Limit, opts Options) *Limiter {
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Limiter{limit: limit, maxKeys: opts.MaxKeys, now: opts.Now, buckets: map[string]*list.Element{}}
}

// Allow takes a token from key's bucket and reports whether there was one.
func (l *Limiter) Allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.buckets[key]
	if ok {
		l.recent.MoveToFront(e)
	} else {
		l.makeRoom(now)
		e = l.recent.PushFront(&bucket{key: key, tokens: float64(l.limit.Burst), last: now})
		l.buckets[key] = e
	}
	b := e.Value.(*bucket)
	l.refill(b, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// refill adds the tokens earned since b was last used.
func (l *Limiter) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(l.limit.Burst), b.tokens+elapsed.Seconds()*l.limit.PerSecond)
		b.last = now
	}
}

// makeRoom drops, from the least recently used end, up to two buckets
// that have filled up again (no different from new ones), so that idle keys
// do not accumulate; then the least recently used bucket if the map is
// still full.
func (l *Limiter) makeRoom(now time.Time) {
	for range 2 {
		e := l.recent.Back()
		if e == nil {
			break
		}
		b := e.Value.(*bucket)
		l.refill(b, now)
		if b.tokens < float64(l.limit.Burst) {
			break
		}
		l.drop(e)
	}
	if len(l.buckets) >= l.maxKeys {
		l.drop(l.recent.Back())
	}
}

func (l *Limiter) drop(e *list.Element) {
	delete(l.buckets, e.Value.(*bucket).key)
	l.recent.Remove(e)
}

// Len is the number of keys tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
