package federation

import (
	"sync"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// connectionCache keeps, for a short time, the connections whose stored
// token this process last handed out, with their access tokens already
// opened, so that a user's repeated calls cost neither a storage read nor
// a vault open. An entry serves only its own connection key (provider,
// workload and user), only while the token is fresh by the clock at the
// time of the call, and only for a request the connection covers. Every
// write this process makes to a connection drops its entry (forget); a
// write through another replica is seen within the TTL
// (docs/user-federation.md, "Stored tokens and replicas").
type connectionCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[storage.ConnectionKey]cachedConnection
	// gen counts forgets, so that a read that raced one is not kept.
	gen uint64
}

// cachedConnection holds the access token only: the refresh token is
// read from storage when it is needed, never kept in memory.
type cachedConnection struct {
	conn        storage.Connection
	details     connectionDetails
	accessToken string
	expires     time.Time
}

// maxCachedConnections bounds the cache; past it, the cache starts over.
const maxCachedConnections = 10000

func newConnectionCache(ttl time.Duration, now func() time.Time) *connectionCache {
	return &connectionCache{ttl: ttl, now: now, entries: map[storage.ConnectionKey]cachedConnection{}}
}

// get returns k's entry while it is younger than the TTL.
func (c *connectionCache) get(k storage.ConnectionKey) (cachedConnection, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return e, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, k)
		return e, false
	}
	return e, true
}

// generation is taken before reading a connection from storage and given
// back to put, which keeps the entry only if nothing was forgotten since.
func (c *connectionCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps a connection read from storage at generation gen, with its
// opened access token.
func (c *connectionCache) put(gen uint64, conn storage.Connection, d connectionDetails, accessToken string) {
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= maxCachedConnections {
		clear(c.entries)
	}
	c.entries[conn.ConnectionKey] = cachedConnection{conn: conn, details: d, accessToken: accessToken, expires: expires}
}

// forget drops k's entry; called after every write to the connection.
func (c *connectionCache) forget(k storage.ConnectionKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
	c.gen++
}

// forgetAll drops every entry: a provider or workload identity changed,
// which may have dropped its connections.
func (c *connectionCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.gen++
}
