package clients

import (
	"container/list"
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// maxCached bounds each cache: metadata documents and clients' key sets.
const maxCached = 1000

// cache keeps values fetched from URLs until they expire, at most max of
// them, dropping the least recently used. Concurrent loads of one URL are
// merged; failed loads are not kept.
type cache[V any] struct {
	max    int
	now    func() time.Time
	flight singleflight.Group

	mu    sync.Mutex
	items map[string]*list.Element // of *cached[V]
	order list.List                // most recently used first
}

type cached[V any] struct {
	key     string
	value   V
	expires time.Time
}

// loaded is a load's outcome, carried through singleflight as a value so
// that an OAuth error is shared with the merged callers, not cached.
type loaded[V any] struct {
	value V
	ttl   time.Duration
	err   *oauthwire.Error
}

func newCache[V any](limit int, now func() time.Time) *cache[V] {
	return &cache[V]{max: limit, now: now, items: map[string]*list.Element{}}
}

func (c *cache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	item := el.Value.(*cached[V])
	if !c.now().Before(item.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return item.value, true
}

func (c *cache[V]) put(key string, v V, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.Remove(el)
		delete(c.items, key)
	}
	for len(c.items) >= c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cached[V]).key)
	}
	c.items[key] = c.order.PushFront(&cached[V]{key: key, value: v, expires: c.now().Add(ttl)})
}

// drop forgets key, so that its next use loads it again.
func (c *cache[V]) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.Remove(el)
		delete(c.items, key)
	}
}

// load returns key's cached value, or loads it with fn and caches it for
// the time-to-live fn returns. The load is shared by the callers waiting
// for it, so it runs without the first caller's cancellation.
func (c *cache[V]) load(ctx context.Context, key string, fn func(context.Context) (V, time.Duration, *oauthwire.Error)) (V, *oauthwire.Error) {
	if v, ok := c.get(key); ok {
		return v, nil
	}
	ch := c.flight.DoChan(key, func() (any, error) {
		v, ttl, err := fn(context.WithoutCancel(ctx))
		if err == nil {
			c.put(key, v, ttl)
		}
		return loaded[V]{value: v, ttl: ttl, err: err}, nil
	})
	select {
	case res := <-ch:
		l := res.Val.(loaded[V])
		return l.value, l.err
	case <-ctx.Done():
		var zero V
		return zero, oauthwire.Errorf("temporarily_unavailable", "the request ended while %s was being fetched", key)
	}
}
