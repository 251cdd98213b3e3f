package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// maxCachedCredentials bounds the credential cache: past it, expired
// entries are dropped, and every entry when none had expired, so that a
// burst of new callers costs a fetch each again, never unbounded memory.
const maxCachedCredentials = 10_000

// fetchTimeout bounds a shared fetch, which no one caller's deadline
// bounds.
const fetchTimeout = 30 * time.Second

// expirySkew is how long before a credential's own expiry the cache stops
// serving it, so that it does not expire on its way to the upstream.
const expirySkew = 10 * time.Second

// credentialCache keeps the credential a tool route injected for one
// caller, so that the caller's next calls within the route's cacheTtl
// skip the data-plane call (GetResourceApiKey, GetResourceOauth2Token).
// An entry is keyed by the route and the SHA-256 of the caller's workload
// access token: only a holder of the same token reaches it, and the token
// itself is never kept. Only credentials are cached; a refusal, an error
// or a consent to give is fetched again on the next call.
//
// The price is staleness: a revoked grant, a rotated key, a deleted
// workload or an expired workload access token takes up to the route's
// cacheTtl to apply at the gateway, since the gateway cannot read the
// token's expiry (it is encrypted for behalf). A credential that is a JWT
// is never served past its own exp.
type credentialCache struct {
	now     func() time.Time
	metrics *telemetry.Metrics
	max     int

	mu      sync.Mutex
	entries map[credentialKey]cachedCredential
	// gen counts evictions, so that a fetch that raced one is not kept.
	gen uint64
	// flights shares one fetch among concurrent callers with one key.
	flights singleflight.Group
}

type credentialKey struct {
	route string
	token [sha256.Size]byte
}

type cachedCredential struct {
	value   string
	expires time.Time
}

func newCredentialCache(now func() time.Time, metrics *telemetry.Metrics) *credentialCache {
	return &credentialCache{now: now, metrics: metrics, max: maxCachedCredentials, entries: map[credentialKey]cachedCredential{}}
}

func keyOf(route, wat string) credentialKey {
	return credentialKey{route: route, token: sha256.Sum256([]byte(wat))}
}

// get returns the credential cached for k, fetching it when absent or
// expired; concurrent callers with one key share one fetch. fetch runs
// with ctx's values (its span) but not its cancellation, since other
// callers may be waiting for it, within fetchTimeout; a caller whose ctx
// ends stops waiting. hit reports whether the credential came from the
// cache.
func (c *credentialCache) get(ctx context.Context, k credentialKey, ttl time.Duration, fetch func(context.Context) (string, error)) (cred string, hit bool, err error) {
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if ok && c.now().Before(e.expires) {
		c.metrics.CacheLookup(ctx, telemetry.CacheGatewayCredential, true)
		return e.value, true, nil
	}
	c.metrics.CacheLookup(ctx, telemetry.CacheGatewayCredential, false)
	return c.share(ctx, k, "get", func(ctx context.Context) (string, error) { return c.fill(ctx, k, ttl, fetch) })
}

// refresh evicts k's entry and fetches the credential anew, as after the
// upstream refused the cached one (HTTP 401); concurrent refreshes of one
// key share one fetch, whose credential is cached.
func (c *credentialCache) refresh(ctx context.Context, k credentialKey, ttl time.Duration, fetch func(context.Context) (string, error)) (string, error) {
	cred, _, err := c.share(ctx, k, "refresh", func(ctx context.Context) (string, error) {
		c.evict(k)
		return c.fill(ctx, k, ttl, fetch)
	})
	return cred, err
}

// fill fetches k's credential and caches it, unless an eviction happened
// while it was being fetched.
func (c *credentialCache) fill(ctx context.Context, k credentialKey, ttl time.Duration, fetch func(context.Context) (string, error)) (string, error) {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	cred, err := fetch(ctx)
	if err == nil {
		c.put(k, gen, cred, ttl)
	}
	return cred, err
}

// share runs fn once for every concurrent caller of one key and kind.
func (c *credentialCache) share(ctx context.Context, k credentialKey, kind string, fn func(context.Context) (string, error)) (string, bool, error) {
	ch := c.flights.DoChan(kind+"\x00"+k.route+"\x00"+hex.EncodeToString(k.token[:]), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		return fn(ctx)
	})
	select {
	case r := <-ch:
		cred, _ := r.Val.(string)
		return cred, false, r.Err
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}

// put caches cred for ttl, or until shortly before its own expiry, unless
// an eviction happened since generation gen was read.
func (c *credentialCache) put(k credentialKey, gen uint64, cred string, ttl time.Duration) {
	now := c.now()
	expires := now.Add(ttl)
	if exp, ok := jwtExpiry(cred); ok && exp.Add(-expirySkew).Before(expires) {
		expires = exp.Add(-expirySkew)
	}
	if !expires.After(now) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= c.max {
		for key, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, key)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[k] = cachedCredential{value: cred, expires: expires}
}

// evict drops k's entry.
func (c *credentialCache) evict(k credentialKey) {
	c.mu.Lock()
	delete(c.entries, k)
	c.gen++
	c.mu.Unlock()
}

// jwtExpiry reads the exp claim (RFC 7519 §4.1.4) of a credential that is
// a JWS compact serialization. The signature is not checked: the
// credential comes from behalf and is only ever sent on, and its exp
// only shortens how long it is cached.
func jwtExpiry(cred string) (time.Time, bool) {
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if !unverifiedClaims(cred, &claims) || claims.Exp == nil {
		return time.Time{}, false
	}
	exp, err := claims.Exp.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(exp), 0), true
}
