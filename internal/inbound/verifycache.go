package inbound

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// maxVerified bounds the cache of verified tokens. Only tokens that passed
// every check are added, so filling it takes that many valid tokens; when
// it is full it is emptied and refills from live traffic.
const maxVerified = 10_000

// verifiedCache remembers the outcome of full verifications, so that an
// agent presenting the same user token again and again (as it does for
// each call on the user's behalf) costs a hash instead of a signature
// verification and two JSON parses.
//
// Why a hit is as good as a verification: the key is SHA-256 over the
// exact token bytes and the authorizer names the caller allowed, so a hit
// is the byte-identical token already verified for the same question
// (finding a different token with the same key is a SHA-256 collision).
// Everything else the verdict depends on is checked again or cannot have
// changed: the authorizers' rules are fixed when the Set is built; the
// key set must be the same fetch that verified the signature (any JWKS
// refetch, which is how a removed or rotated key becomes known, voids
// every entry verified with the keys before it); and exp, nbf and iat are
// judged against the clock on every hit. Failures are never cached, so an
// attacker cannot fill the cache or make a rejection stick.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]verified
}

type verified struct {
	id         Identity
	times      claims // exp, nbf and iat only
	keys       *keySet
	generation uint64 // of keys, when verified
}

func verifiedKey(token string, allowed []string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(token))
	if allowed != nil { // nil (all authorizers) differs from an empty list (none)
		h.Write([]byte{0})
		for _, name := range allowed {
			h.Write([]byte(name))
			h.Write([]byte{0})
		}
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// get returns the identity verified for key if its key set has not been
// refetched since and its times still pass at now.
func (c *verifiedCache) get(key [sha256.Size]byte, now time.Time, leeway time.Duration) (*Identity, *Error, bool) {
	c.mu.Lock()
	v, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || v.keys.generationNow() != v.generation {
		return nil, nil, false
	}
	if e := checkTimes(v.times, now, leeway); e != nil {
		c.mu.Lock()
		delete(c.entries, key)
		c.mu.Unlock()
		return nil, e, true
	}
	id := v.id
	id.Audience, id.Scopes = slices.Clone(id.Audience), slices.Clone(id.Scopes)
	return &id, nil, true
}

func (c *verifiedCache) put(key [sha256.Size]byte, id *Identity, cl claims, ks *keySet, generation uint64) {
	v := verified{id: *id, times: claims{exp: cl.exp, nbf: cl.nbf, iat: cl.iat}, keys: ks, generation: generation}
	v.id.Audience, v.id.Scopes = slices.Clone(id.Audience), slices.Clone(id.Scopes)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxVerified {
		c.entries = make(map[[sha256.Size]byte]verified)
	}
	c.entries[key] = v
}
