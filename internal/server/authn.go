package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/behalf-dev/behalf/internal/control"
	"github.com/behalf-dev/behalf/internal/sigv4"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// signingName is the SigV4 service name of both AgentCore planes.
const signingName = "bedrock-agentcore"

// authenticator verifies SigV4 signatures against principals in storage.
type authenticator struct {
	verifier   *sigv4.Verifier
	principals *principalCache
}

func newAuthenticator(region string, principals *principalCache) *authenticator {
	a := &authenticator{principals: principals}
	a.verifier = &sigv4.Verifier{
		Service: signingName,
		Regions: []string{region},
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
	if err != nil {
		var se *sigv4.Error
		switch {
		case !errors.As(err, &se):
			return wire.Caller{}, wire.Internal(err)
		case se.Unauthenticated():
			return wire.Caller{}, wire.Unauthorized("%s", se.Message)
		default:
			return wire.Caller{}, wire.AccessDenied("%s", se.Message)
		}
	}
	p, err := a.principals.get(ctx, id)
	if err != nil {
		return wire.Caller{}, wire.Internal(err)
	}
	return wire.Caller{AccessKeyID: id, Role: p.Role, Workloads: p.Workloads}, nil
}

// principalCache keeps principals with their opened secrets for a few
// seconds, so that a steady stream of signed requests does not read and
// decrypt the same row each time. A change made through this server drops
// the entry at once; one made through another replica is seen within ttl.
type principalCache struct {
	store storage.Storage
	vault *vault.Vault
	ttl   time.Duration

	mu      sync.Mutex
	entries map[string]cachedPrincipal
}

type cachedPrincipal struct {
	storage.Principal
	secret  string
	err     error
	expires time.Time
}

// maxCachedPrincipals bounds the cache, including entries for unknown ids.
const maxCachedPrincipals = 10000

func newPrincipalCache(st storage.Storage, v *vault.Vault, ttl time.Duration) *principalCache {
	return &principalCache{store: st, vault: v, ttl: ttl, entries: map[string]cachedPrincipal{}}
}

func (c *principalCache) get(ctx context.Context, id string) (cachedPrincipal, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e, e.err
	}
	e = c.load(ctx, id)
	if e.err == nil || errors.Is(e.err, sigv4.ErrUnknownKey) {
		e.expires = now.Add(c.ttl)
		c.mu.Lock()
		if len(c.entries) >= maxCachedPrincipals {
			clear(c.entries)
		}
		c.entries[id] = e
		c.mu.Unlock()
	}
	return e, e.err
}

func (c *principalCache) load(ctx context.Context, id string) cachedPrincipal {
	p, err := c.store.GetPrincipal(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return cachedPrincipal{err: fmt.Errorf("%w %s", sigv4.ErrUnknownKey, id)}
	}
	if err != nil {
		return cachedPrincipal{err: err}
	}
	secret, err := c.vault.Open(ctx, p.Secret, control.PrincipalBinding(id))
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

func (c *principalCache) invalidate(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}
