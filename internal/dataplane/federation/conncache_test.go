package federation

import (
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// A connection read before a write to it was forgotten is not kept: the
// cache would otherwise serve what the write replaced for a whole TTL.
// An entry lives for the TTL and serves only its own key.
func TestConnectionCacheKeepsNoReadThatRacedAWrite(t *testing.T) {
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	c := newConnectionCache(2*time.Second, clock.Now)
	alice := storage.Connection{ConnectionKey: storage.ConnectionKey{ProviderID: "p", Workload: "w", User: "id:alice"}}
	bob := alice.ConnectionKey
	bob.User = "id:bob"

	gen := c.generation()
	c.forget(alice.ConnectionKey) // a write committed while the read was under way
	c.put(gen, alice, connectionDetails{}, "replaced")
	if _, ok := c.get(alice.ConnectionKey); ok {
		t.Fatal("a read that raced a write was kept")
	}

	c.put(c.generation(), alice, connectionDetails{}, "current")
	if e, ok := c.get(alice.ConnectionKey); !ok || e.accessToken != "current" {
		t.Fatalf("get = %+v, %v", e, ok)
	}
	if _, ok := c.get(bob); ok {
		t.Fatal("one user's entry served another")
	}
	clock.Advance(2 * time.Second)
	if _, ok := c.get(alice.ConnectionKey); ok {
		t.Fatal("an entry outlived the TTL")
	}
}
