package wat

import (
	"crypto/sha256"
	"sync"
)

// maxOpened bounds the cache of opened tokens, and maxCachedToken the
// tokens it takes (a token carrying a large user JWT is opened every time),
// so that a full cache holds at most about 16 MiB.
const (
	maxOpened      = 4096
	maxCachedToken = 4 << 10
)

// openedCache remembers the claims of tokens that opened, keyed by the
// SHA-256 of the token, so that an agent presenting the same token again
// skips decoding and decryption. Only a token that authenticated is ever
// cached, and its claims are what its encryption bound; the caller still
// checks the expiry and everything the claims name on every call.
type openedCache struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]Claims
}

func (c *openedCache) get(digest [sha256.Size]byte) (Claims, bool) {
	c.mu.RLock()
	claims, ok := c.entries[digest]
	c.mu.RUnlock()
	return claims, ok
}

// put caches claims, first dropping every expired entry when the cache is
// full, and every entry when none had expired: a burst of new tokens then
// costs one decryption each again, never unbounded memory.
func (c *openedCache) put(digest [sha256.Size]byte, claims Claims, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[[sha256.Size]byte]Claims)
	}
	if len(c.entries) >= maxOpened {
		for d, cl := range c.entries {
			if now >= cl.Expiry {
				delete(c.entries, d)
			}
		}
		if len(c.entries) >= maxOpened {
			clear(c.entries)
		}
	}
	c.entries[digest] = claims
}

// digestOf is the SHA-256 of token, fed through a buffer on the stack:
// sha256.Sum256([]byte(token)) would copy a kilobyte token to the heap on
// every call.
func digestOf(token string) [sha256.Size]byte {
	h := sha256.New()
	var buf [256]byte
	for len(token) > 0 {
		n := copy(buf[:], token)
		h.Write(buf[:n])
		token = token[n:]
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
