//go:build linux

package replicatest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/testutil/dextest"
)

// TestConcurrentRefreshAcrossReplicas: 200 callers released at once for
// one due token, 100 against replica A and 100 against replica B (two
// processes on one PostgreSQL database), cause exactly one refresh at the
// provider; every caller gets the same new access token; and the rotated
// refresh token is what is stored.
//
// Dex rotates the refresh token on every refresh and grants no reuse
// window, so a second refresh with the same token, or a refresh with a
// token that is not the newest, fails at Dex. That is what proves the
// last point: each round's refresh presents the token the previous round
// stored, and a final refresh after the last round presents the last one.
func TestConcurrentRefreshAcrossReplicas(t *testing.T) {
	const (
		callers  = 200
		rounds   = 5
		lifetime = 6 * time.Second // Dex's access token lifetime
	)
	w := newWorld(t, worldOptions{dex: dextest.Options{RotateRefreshTokens: true, IDTokensValidFor: lifetime}})

	prevAT := w.firstToken
	prevRT := w.tokens(t, w.connection(t)).RefreshToken
	for round := 1; round <= rounds+1; round++ {
		n := callers
		if round > rounds {
			n = 1 // the proof round: one refresh with the last stored token
		}
		before := w.waitDue(t)
		refreshesBefore := w.dex.TokenRequests("refresh_token")

		results := w.burst(t, n)

		refreshes := w.dex.TokenRequests("refresh_token") - refreshesBefore
		after := w.connection(t)
		stored := w.tokens(t, after)
		outcomes, perReplica, distinct := tally{}, map[string]int{}, map[string]int{}
		var slowest time.Duration
		for _, c := range results {
			outcomes[c.kind]++
			if c.kind == kindOK {
				perReplica[c.replica.name]++
				distinct[c.token]++
			} else if outcomes[c.kind] <= 3 {
				t.Errorf("round %d: %s", round, c)
			}
			slowest = max(slowest, c.end.Sub(c.start))
		}
		name := fmt.Sprintf("round %d", round)
		if round > rounds {
			name = "proof round"
		}
		t.Logf("%s: %d callers (A %d, B %d successes); upstream refreshes %d; outcomes %s; distinct tokens %d; "+
			"lease grants %d; connection version %d→%d; refresh token rotated and stored: %v; slowest call %s",
			name, n, perReplica["replica A"], perReplica["replica B"], refreshes, outcomes, len(distinct),
			after.LeaseToken-before.LeaseToken, before.Version, after.Version, stored.RefreshToken != prevRT, slowest.Round(time.Millisecond))

		if refreshes != 1 {
			t.Errorf("%s: %d refresh requests reached Dex, want exactly 1", name, refreshes)
		}
		if outcomes[kindOK] != n {
			t.Errorf("%s: %d of %d calls got a token (%s)", name, outcomes[kindOK], n, outcomes)
		}
		if len(distinct) != 1 {
			t.Errorf("%s: callers got %d different tokens, want 1", name, len(distinct))
		}
		for token := range distinct {
			if token == prevAT {
				t.Errorf("%s: callers got the token that was due, not a refreshed one", name)
			}
			if token != stored.AccessToken {
				t.Errorf("%s: callers got a token other than the one stored", name)
			}
			prevAT = token
		}
		if stored.RefreshToken == "" || stored.RefreshToken == prevRT {
			t.Errorf("%s: the stored refresh token was not replaced by the rotated one", name)
		}
		if after.LeaseOwner != "" {
			t.Errorf("%s: the lease is still held by %q", name, after.LeaseOwner)
		}
		if t.Failed() {
			t.FailNow() // the next round would only repeat the failure
		}
		prevRT = stored.RefreshToken
	}
	t.Logf("every round's refresh presented the refresh token the round before stored, and Dex (rotation on, no reuse window) accepted it: no refresh token was lost")
}

// burst releases n callers at once, alternating between the replicas, and
// returns what each got.
func (w *world) burst(t *testing.T, n int) []call {
	t.Helper()
	results := make([]call, n)
	gate := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range n {
		r := w.replicas[i%len(w.replicas)]
		ready.Add(1)
		done.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*leaseTTL)
			defer cancel()
			ready.Done()
			<-gate
			results[i] = w.do(ctx, r)
		})
	}
	ready.Wait()
	close(gate)
	done.Wait()
	return results
}
