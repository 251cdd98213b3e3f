package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"sync"
)

// maxCachedKeys bounds the cache. Entries are only added for known keys in
// an accepted scope, so in practice it holds (active keys × 1–2 dates).
const maxCachedKeys = 4096

type scope struct{ accessKeyID, date, region, service string }

type cachedKey struct {
	secret string
	key    [sha256.Size]byte
}

// keyCache memoizes signing keys, which depend only on the secret and the
// credential scope. The secret is part of the entry so that rotating a key's
// secret never reuses a stale derived key.
type keyCache struct {
	mu sync.RWMutex
	m  map[scope]cachedKey
}

func (c *keyCache) signingKey(secret string, s scope) [sha256.Size]byte {
	c.mu.RLock()
	e, ok := c.m[s]
	c.mu.RUnlock()
	if ok && e.secret == secret {
		return e.key
	}
	key := deriveSigningKey(secret, s.date, s.region, s.service)
	// The scope strings point into the request's Authorization header.
	s = scope{strings.Clone(s.accessKeyID), strings.Clone(s.date), strings.Clone(s.region), strings.Clone(s.service)}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[scope]cachedKey)
	}
	c.m[s] = cachedKey{secret: secret, key: key}
	c.mu.Unlock()
	return key
}

// deriveSigningKey is "Create a signed AWS API request", step 4 ("Calculate
// the signature"), first part: derive the signing key from the secret.
func deriveSigningKey(secret, date, region, service string) [sha256.Size]byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k[:], region)
	k = hmacSHA256(k[:], service)
	return hmacSHA256(k[:], terminator)
}

func hmacSHA256(key []byte, data string) [sha256.Size]byte {
	var out [sha256.Size]byte
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	m.Sum(out[:0])
	return out
}
