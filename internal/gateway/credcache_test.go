package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

func newTestCache(t *testing.T) (*credentialCache, *testclock.Clock) {
	t.Helper()
	clock := testclock.New(time.Unix(1_900_000_000, 0))
	return newCredentialCache(clock.Now, nil), clock
}

// fetcher returns a fetch that counts its calls and answers cred.
func fetcher(calls *atomic.Int32, cred string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		calls.Add(1)
		return cred, nil
	}
}

// Concurrent callers with one key share one fetch, and callers that come
// after it find its credential cached: one fetch in all.
func TestCredentialCacheSharesOneFetch(t *testing.T) {
	c, _ := newTestCache(t)
	k := keyOf("weather", "token")
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(ctx context.Context) (string, error) {
		calls.Add(1)
		<-release
		return "key", ctx.Err()
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if cred, _, err := c.get(t.Context(), k, time.Minute, fetch); err != nil || cred != "key" {
				t.Errorf("%q %v", cred, err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let them reach the fetch
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d fetches for eight concurrent callers", n)
	}
	if _, hit, _ := c.get(t.Context(), k, time.Minute, fetch); !hit {
		t.Error("the shared fetch was not cached")
	}
}

// A caller that gives up stops waiting; the fetch goes on for the
// others and is cached.
func TestCredentialCacheCallerGivesUp(t *testing.T) {
	c, _ := newTestCache(t)
	k := keyOf("weather", "token")
	release := make(chan struct{})
	fetch := func(ctx context.Context) (string, error) {
		<-release
		return "key", ctx.Err()
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := c.get(ctx, k, time.Minute, fetch); !errors.Is(err, context.Canceled) {
		t.Errorf("a caller that left: %v", err)
	}
	close(release)
	for range 1000 {
		c.mu.Lock()
		e, ok := c.entries[k]
		c.mu.Unlock()
		if ok && e.value == "key" {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Error("the fetch of a caller that left was not cached")
}

// Entries expire after the TTL, and a JWT credential before its own exp;
// errors are never cached; an eviction during a fetch keeps the fetched
// credential out.
func TestCredentialCacheExpiry(t *testing.T) {
	c, clock := newTestCache(t)
	var calls atomic.Int32
	k := keyOf("weather", "token")
	get := func(fetch func(context.Context) (string, error)) (string, bool) {
		cred, hit, err := c.get(t.Context(), k, time.Minute, fetch)
		if err != nil {
			t.Fatal(err)
		}
		return cred, hit
	}
	get(fetcher(&calls, "key"))
	clock.Advance(59 * time.Second)
	if _, hit := get(fetcher(&calls, "key")); !hit {
		t.Error("a miss within the TTL")
	}
	clock.Advance(2 * time.Second)
	if _, hit := get(fetcher(&calls, "key")); hit {
		t.Error("a hit past the TTL")
	}

	exp := clock.Now().Add(30 * time.Second).Unix()
	jwt := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":`+strconv.FormatInt(exp, 10)+`}`)) + ".sig"
	k = keyOf("billing", "token")
	get(fetcher(&calls, jwt))
	clock.Advance(19 * time.Second)
	if _, hit := get(fetcher(&calls, jwt)); !hit {
		t.Error("a JWT missed 11 s before its exp")
	}
	clock.Advance(2 * time.Second)
	if _, hit := get(fetcher(&calls, jwt)); hit {
		t.Error("a JWT was served within 10 s of its exp")
	}
	clock.Advance(time.Minute) // the JWT has expired: it is not cached at all
	get(fetcher(&calls, jwt))
	if _, hit := get(fetcher(&calls, jwt)); hit {
		t.Error("an expired JWT was cached")
	}

	k = keyOf("weather", "forged")
	for range 2 {
		if _, hit, err := c.get(t.Context(), k, time.Minute, func(context.Context) (string, error) { return "", errors.New("refused") }); err == nil || hit {
			t.Errorf("a refusal: hit %v, %v", hit, err)
		}
	}
	k = keyOf("weather", "raced")
	get(func(context.Context) (string, error) {
		c.evict(k) // as a concurrent refresh after a 401 does
		return "stale", nil
	})
	if _, hit := get(fetcher(&calls, "fresh")); hit {
		t.Error("a credential fetched across an eviction was cached")
	}
}

// A full cache drops its expired entries, and everything when none had
// expired.
func TestCredentialCacheIsBounded(t *testing.T) {
	c, clock := newTestCache(t)
	c.max = 4
	var calls atomic.Int32
	put := func(token string, ttl time.Duration) {
		if _, _, err := c.get(t.Context(), keyOf("weather", token), ttl, fetcher(&calls, "key")); err != nil {
			t.Fatal(err)
		}
	}
	put("a", time.Second)
	put("b", time.Second)
	put("c", time.Minute)
	put("d", time.Minute)
	clock.Advance(2 * time.Second)
	put("e", time.Minute)
	if len(c.entries) != 3 {
		t.Errorf("%d entries after the expired two were dropped, want 3", len(c.entries))
	}
	put("f", time.Minute)
	put("g", time.Minute)
	if len(c.entries) != 1 {
		t.Errorf("%d entries after a full cache without expired entries was emptied, want 1", len(c.entries))
	}
}
