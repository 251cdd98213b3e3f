package signingkeys

import (
	"context"
	"crypto"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// KeySigners gives signers of the asymmetric keys key-management backends
// hold (vault.Keys).
type KeySigners interface {
	Signer(ctx context.Context, id string) (crypto.Signer, error)
}

// Held are signing keys that key-management backends hold (AWS KMS, a
// PKCS#11 token; vault.Keys routes their ids), whose private halves never
// leave them. Their signers, with their public halves, are cached for a
// while, so that neither a token request nor a fetch of a published JWK
// set asks the backend each time; concurrent loads of one key share one
// call, and failures are not cached. It is safe for concurrent use.
type Held struct {
	keys  KeySigners
	ttl   time.Duration
	now   func() time.Time
	group singleflight.Group

	mu      sync.Mutex
	signers map[string]heldSigner
}

type heldSigner struct {
	signer  crypto.Signer
	expires time.Time
}

// maxHeld bounds the cache; past it, the cache starts over.
const maxHeld = 10000

// NewHeld returns the cache of keys' signers, each kept for ttl; now is
// the clock (nil means time.Now).
func NewHeld(keys KeySigners, ttl time.Duration, now func() time.Time) *Held {
	if now == nil {
		now = time.Now
	}
	return &Held{keys: keys, ttl: ttl, now: now, signers: map[string]heldSigner{}}
}

// Signer returns key id's signer, as loaded less than the cache's ttl ago
// or else now. The error is the backend's (vault.ErrKeyGone,
// vault.ErrKeyUnavailable, vault.ErrNotSigningKey, vault.ErrUnknownKey).
func (h *Held) Signer(ctx context.Context, id string) (crypto.Signer, error) {
	h.mu.Lock()
	s, ok := h.signers[id]
	h.mu.Unlock()
	if ok && h.now().Before(s.expires) {
		return s.signer, nil
	}
	return h.Load(ctx, id)
}

// Load asks the backend for key id's signer now, whatever the cache holds,
// and caches it: for a check that must see the key as it is (a provider's
// creation).
func (h *Held) Load(ctx context.Context, id string) (crypto.Signer, error) {
	v, err, _ := h.group.Do(id, func() (any, error) {
		s, err := h.keys.Signer(ctx, id)
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		if len(h.signers) >= maxHeld {
			clear(h.signers)
		}
		h.signers[id] = heldSigner{signer: s, expires: h.now().Add(h.ttl)}
		h.mu.Unlock()
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(crypto.Signer), nil
}
