package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/behalf-dev/behalf/internal/dataplane/workloadtoken"
	"github.com/behalf-dev/behalf/internal/sigv4"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// signingName is the SigV4 service name of both AgentCore planes.
const signingName = "bedrock-agentcore"

// apiAuthenticator is the API's authenticator, which also authenticates
// the signed callers behalf gateway passes on.
type apiAuthenticator interface {
	wire.Authenticator
	workloadtoken.PayloadHashAuthenticator
}

// authenticator verifies SigV4 signatures against principals in storage.
type authenticator struct {
	verifier   *sigv4.Verifier
	principals *principalCache
}

func newAuthenticator(region string, principals *principalCache, now func() time.Time) *authenticator {
	a := &authenticator{principals: principals}
	a.verifier = &sigv4.Verifier{
		Service: signingName,
		Regions: []string{region},
		Now:     now,
		Lookup: func(ctx context.Context, id string) (string, error) {
			p, err := principals.get(ctx, id)
			return p.secret, err
		},
	}
	return a
}

// Authenticate implements wire.Authenticator.
func (a *authenticator) Authenticate(ctx context.Context, r *http.Request, body []byte) (wire.Caller, error) {
	id, err := a.verifier.Verify(r, body)
	return a.caller(ctx, id, err)
}

// AuthenticatePayloadHash implements
// workloadtoken.PayloadHashAuthenticator: the signer of a request behalf
// gateway received, verified by its body's SHA-256 with every check of
// Authenticate.
func (a *authenticator) AuthenticatePayloadHash(ctx context.Context, r *http.Request, payloadSHA256 string) (wire.Caller, error) {
	id, err := a.verifier.VerifyPayloadHash(r, payloadSHA256)
	return a.caller(ctx, id, err)
}

// caller is the principal whose signature verified as id, or the typed
// error of a signature that did not: UnauthorizedException when the
// signer could not be identified, AccessDeniedException otherwise.
func (a *authenticator) caller(ctx context.Context, id string, err error) (wire.Caller, error) {
	if err != nil {
		var se *sigv4.Error
		switch {
		case !errors.As(err, &se):
			return wire.Caller{}, fmt.Errorf("verify signature: %w", err)
		case se.Unauthenticated():
			return wire.Caller{}, wire.Unauthorized("%s", se.Message)
		default:
			return wire.Caller{}, wire.AccessDenied("%s", se.Message)
		}
	}
	p, err := a.principals.get(ctx, id)
	if err != nil {
		return wire.Caller{}, fmt.Errorf("principal %s: %w", id, err)
	}
	return wire.Caller{AccessKeyID: id, Role: p.Role, Workloads: p.Workloads, Operations: p.Operations, CreatedAt: p.CreatedAt}, nil
}

// principalCache keeps principals with their opened secrets for a few
// seconds, so that a steady stream of signed requests does not read and
// decrypt the same row each time. A change made through this server drops
// the entry at once; one made through another replica is seen within ttl.
//
// Ids found in no record are remembered apart, for missTTL, in a bounded
// set of their own: requests naming random ids (which need no valid
// signature to cause a lookup) can then neither evict known principals nor
// repeat a read, and at most maxMissLookups of their reads run at once.
type principalCache struct {
	store storage.Storage
	vault *vault.Vault
	ttl   time.Duration
	now   func() time.Time
	// metrics counts hits (a known principal or a remembered miss) and
	// misses; nil counts nothing.
	metrics *telemetry.Metrics

	mu      sync.Mutex
	entries map[string]cachedPrincipal
	misses  map[string]time.Time // id → when the miss expires

	// lookups bounds concurrent reads of ids the cache has never held.
	lookups chan struct{}
}

type cachedPrincipal struct {
	storage.Principal
	secret  string
	err     error
	expires time.Time
}

const (
	// maxCachedPrincipals bounds the cache of known principals.
	maxCachedPrincipals = 10000
	// maxCachedMisses bounds the set of unknown ids.
	maxCachedMisses = 10000
	// missTTL is short so that a principal created through another replica
	// is usable here soon; one created through this one is at once.
	missTTL = time.Second
	// maxMissLookups bounds concurrent reads of ids the cache has never
	// held, which is all a flood of random ids can cause.
	maxMissLookups = 4
)

func newPrincipalCache(st storage.Storage, v *vault.Vault, ttl time.Duration, now func() time.Time, metrics *telemetry.Metrics) *principalCache {
	return &principalCache{store: st, vault: v, ttl: ttl, now: now, metrics: metrics,
		entries: map[string]cachedPrincipal{}, misses: map[string]time.Time{},
		lookups: make(chan struct{}, maxMissLookups)}
}

func (c *principalCache) get(ctx context.Context, id string) (cachedPrincipal, error) {
	now := c.now()
	c.mu.Lock()
	e, known := c.entries[id]
	missUntil, missed := c.misses[id]
	c.mu.Unlock()
	switch {
	case known && now.Before(e.expires):
		c.metrics.CacheLookup(ctx, telemetry.CachePrincipal, true)
		return e, e.err
	case missed && now.Before(missUntil):
		c.metrics.CacheLookup(ctx, telemetry.CachePrincipal, true)
		return cachedPrincipal{}, unknownKey(id)
	}
	c.metrics.CacheLookup(ctx, telemetry.CachePrincipal, false)
	if !known {
		select {
		case c.lookups <- struct{}{}:
			defer func() { <-c.lookups }()
		case <-ctx.Done():
			return cachedPrincipal{}, ctx.Err()
		}
	}
	e = c.load(ctx, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case e.err == nil:
		delete(c.misses, id)
		if len(c.entries) >= maxCachedPrincipals {
			clear(c.entries)
		}
		e.expires = now.Add(c.ttl)
		c.entries[id] = e
	case errors.Is(e.err, sigv4.ErrUnknownKey):
		delete(c.entries, id)
		if len(c.misses) >= maxCachedMisses {
			c.dropExpiredMisses(now)
		}
		c.misses[id] = now.Add(min(missTTL, c.ttl))
	}
	return e, e.err
}

// dropExpiredMisses makes room in the set of unknown ids, emptying it if
// none has expired; the caller holds c.mu.
func (c *principalCache) dropExpiredMisses(now time.Time) {
	for id, until := range c.misses {
		if !now.Before(until) {
			delete(c.misses, id)
		}
	}
	if len(c.misses) >= maxCachedMisses {
		clear(c.misses)
	}
}

func unknownKey(id string) error { return fmt.Errorf("%w %s", sigv4.ErrUnknownKey, id) }

func (c *principalCache) load(ctx context.Context, id string) cachedPrincipal {
	p, err := c.store.GetPrincipal(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return cachedPrincipal{err: unknownKey(id)}
	}
	if err != nil {
		return cachedPrincipal{err: err}
	}
	secret, err := c.vault.Open(ctx, p.Secret, vault.PrincipalSecretBinding(id))
	if err != nil {
		return cachedPrincipal{err: fmt.Errorf("open secret of principal %s: %w", id, err)}
	}
	return cachedPrincipal{Principal: p, secret: string(secret)}
}

// principal returns a principal through the cache.
func (c *principalCache) principal(ctx context.Context, id string) (storage.Principal, error) {
	p, err := c.get(ctx, id)
	if errors.Is(err, sigv4.ErrUnknownKey) {
		return storage.Principal{}, storage.ErrNotFound
	}
	return p.Principal, err
}

// invalidate drops what the cache holds for id, known or unknown: the
// PrincipalChanged hook, called on creation, update and deletion.
func (c *principalCache) invalidate(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	delete(c.misses, id)
	c.mu.Unlock()
}
