package dataplane_test

// The stored-token cache (docs/user-federation.md, "Stored tokens and
// replicas"): a user's fresh token is served from memory for at most the
// record TTL; a write through this server is seen at once, a write through
// another replica or straight to storage within the TTL, and a token is
// never served once it is due for a refresh, cached or not.

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// recordTTL is the data plane's default record TTL.
const recordTTL = 2 * time.Second

// TestFederationCachedTokenLocalWritesSeenAtOnce: completing a new
// consent, revoking and deleting a connection through this server change
// what the next call gets at once, with no clock moved.
func TestFederationCachedTokenLocalWritesSeenAtOnce(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		first := fw.connect(t, alice, asUserID("alice"))
		if again := fw.token(t, fedInput(alice)); again != first {
			t.Fatal("a fresh stored token was not served again")
		}

		s := fw.start(t, fedInput(alice, forceAuthentication))
		fw.consentOK(t, s)
		if err := fw.complete(t, s.uri, asUserID("alice")); err != nil {
			t.Fatal(err)
		}
		second := fw.token(t, fedInput(alice))
		if second == first {
			t.Fatal("after a new consent completed here, the replaced token was served")
		}

		target := map[string]any{"provider": fedProvider, "workload": workloadW1, "user": "id:alice"}
		do(t, fw.s, "/behalf/RevokeConnection", target, http.StatusOK)
		fw.start(t, fedInput(alice)) // a session, not the revoked token

		fw.connect(t, alice, asUserID("alice"))
		do(t, fw.s, "/behalf/DeleteConnection", target, http.StatusNoContent)
		fw.start(t, fedInput(alice))
	})
}

// TestFederationCachedTokenOtherWritesSeenWithinTTL: a connection deleted
// through storage, as another replica deletes it, may still be served by
// this server until its cached copy is a record TTL old, and not after.
func TestFederationCachedTokenOtherWritesSeenWithinTTL(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		fw := newFedWorld(t, b, fedOptions{now: clock.Now})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		token := fw.connect(t, alice, asUserID("alice"))
		fw.start(t, fedInput(mintForUser(t, fw.rt, workloadW1, "bob"))) // alice's cached connection is hers alone

		k := storage.ConnectionKey{ProviderID: fw.providerID, Workload: workloadW1, User: "id:alice"}
		if err := fw.s.Server.Store().DeleteConnection(ctx(t), k); err != nil {
			t.Fatal(err)
		}
		if got := fw.token(t, fedInput(alice)); got != token {
			t.Fatal("the cached token changed with no write through this server")
		}
		clock.Advance(recordTTL)
		fw.start(t, fedInput(alice)) // the deletion is seen: a session
	})
}

// TestFederationCachedTokenDueIsRefreshed: a token cached while fresh is
// not served once the clock makes it due for a refresh, even within the
// record TTL; the call refreshes it, and the next call gets the new token.
func TestFederationCachedTokenDueIsRefreshed(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		fw := newFedWorld(t, b, fedOptions{now: clock.Now, dex: dextest.Options{IDTokensValidFor: 10 * time.Minute}})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		first := fw.connect(t, alice, asUserID("alice"))
		conn, err := fw.connection(t, "id:alice")
		if err != nil || conn.ExpiresAt.IsZero() {
			t.Fatalf("connection %+v %v", conn, err)
		}

		var details struct {
			Lifetime int64 `json:"lifetime"`
		}
		if err := json.Unmarshal(conn.Details, &details); err != nil || details.Lifetime <= 0 {
			t.Fatalf("connection details %s: %v", conn.Details, err)
		}
		due := conn.ExpiresAt.Add(-tokenflow.RefreshMargin(time.Duration(details.Lifetime) * time.Second))

		clock.AdvanceTo(due.Add(-time.Second))
		alice = mintForUser(t, fw.rt, workloadW1, "alice")
		if got := fw.token(t, fedInput(alice)); got != first || len(fw.tokens.grant("refresh_token")) != 0 {
			t.Fatal("a token a second before it is due was not served as it was")
		}
		clock.Advance(recordTTL * 3 / 4) // due now, its cached copy not a TTL old
		refreshed := fw.token(t, fedInput(alice))
		if refreshed == first || len(fw.tokens.grant("refresh_token")) != 1 {
			t.Fatalf("a cached token due for a refresh was served (%d refreshes, same %v)", len(fw.tokens.grant("refresh_token")), refreshed == first)
		}
		if again := fw.token(t, fedInput(alice)); again != refreshed {
			t.Fatal("after a refresh here, the next call did not get the refreshed token")
		}
	})
}
