package dataplane

import (
	"context"
	"sync"
	"time"
)

// recordCache keeps records the vend paths read on every call — workload
// identities and credential providers — for a short time. A change made
// through this server drops the entry at once (Invalidate); a change made
// through another replica is seen within the cache's TTL.
type recordCache[V any] struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry[V]
	// gen counts invalidations, so that a load that raced one is not kept.
	gen uint64
}

type cacheEntry[V any] struct {
	v       V
	expires time.Time
}

// maxCacheEntries bounds a cache; past it, the cache starts over.
const maxCacheEntries = 10000

func newRecordCache[V any](ttl time.Duration, now func() time.Time) *recordCache[V] {
	return &recordCache[V]{ttl: ttl, now: now, entries: map[string]cacheEntry[V]{}}
}

// get returns the record named key, loading it when absent or stale. Load
// errors are not cached.
func (c *recordCache[V]) get(ctx context.Context, key string, load func(context.Context, string) (V, error)) (V, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.v, nil
	}
	v, err := load(ctx, key)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.entries) >= maxCacheEntries {
			clear(c.entries)
		}
		c.entries[key] = cacheEntry[V]{v: v, expires: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	return v, nil
}

func (c *recordCache[V]) invalidate(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.gen++
	c.mu.Unlock()
}
