package access

import (
	"context"
	"sync"
	"time"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// Cache keeps records the vend paths read on every call — workload
// identities, credential providers, cached tokens — for a short time. A
// change made through this server drops the entry at once (Invalidate); a
// change made through another replica is seen within the cache's TTL.
type Cache[V any] struct {
	ttl time.Duration
	now func() time.Time
	// name is the cache's telemetry.Cache constant, for metrics.
	name    string
	metrics *telemetry.Metrics

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

// NewCache returns a cache whose entries live for ttl. metrics counts its
// hits and misses under name, a telemetry.Cache constant; nil counts
// nothing.
func NewCache[V any](ttl time.Duration, now func() time.Time, name string, metrics *telemetry.Metrics) *Cache[V] {
	return &Cache[V]{ttl: ttl, now: now, name: name, metrics: metrics, entries: map[string]cacheEntry[V]{}}
}

// Get returns the record named key, loading it when absent or stale. Load
// errors are not cached.
func (c *Cache[V]) Get(ctx context.Context, key string, load func(context.Context, string) (V, error)) (V, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	gen := c.gen
	c.mu.Unlock()
	hit := ok && now.Before(e.expires)
	c.metrics.CacheLookup(ctx, c.name, hit)
	if hit {
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

// Invalidate drops the record named key.
func (c *Cache[V]) Invalidate(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.gen++
	c.mu.Unlock()
}
