package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// Load for the lease races: more racers than the concurrency suite's
// workers, since a lease is contended by every replica's callers at once.
const (
	leaseRacers    = 32
	leaseRounds    = 50
	takeoverRounds = 20
)

// RunReplicaTests runs the refresh-lease races across several stores that
// share one database, as replicas do. newStores must return at least two
// stores on one fresh, empty database and arrange for them to be closed
// when the test ends.
func RunReplicaTests(t *testing.T, newStores func(t *testing.T) []storage.Storage) {
	tests := []struct {
		name string
		run  func(t *testing.T, stores []storage.Storage)
	}{
		{"RefreshLease", raceRefreshLease},
		{"LeaseTakeover", raceLeaseTakeover},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stores := newStores(t)
			if len(stores) < 2 {
				t.Fatalf("newStores returned %d stores, want at least 2", len(stores))
			}
			tc.run(t, stores)
		})
	}
}

func testConcurrentRefreshLease(t *testing.T, s storage.Storage) {
	raceRefreshLease(t, []storage.Storage{s})
}

func testConcurrentLeaseTakeover(t *testing.T, s storage.Storage) {
	raceLeaseTakeover(t, []storage.Storage{s})
}

// raceRefreshLease has leaseRacers callers, spread over stores, race for
// one connection's lease, round after round, with the winner's refresh in
// between, while another caller keeps touching the connection. Every round
// must have exactly one winner, and LeaseToken and Version must each move
// by exactly one per round: no gap, no repeat.
func raceRefreshLease(t *testing.T, stores []storage.Storage) {
	ctx := t.Context()
	grantFixture(t, stores[0])
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	start := connect(t, stores[0], newConnection(k))

	stopTouching := keepTouching(t, stores, k)
	defer stopTouching()

	token, version := start.LeaseToken, start.Version
	for round := range leaseRounds {
		winner := raceForLease(t, stores, k, round)
		if winner.LeaseToken != token+1 || winner.Version != version {
			t.Fatalf("round %d: lease token %d and version %d granted after %d and %d", round, winner.LeaseToken, winner.Version, token, version)
		}
		blob := fmt.Sprintf("sealed:round-%d", round)
		done, err := stores[round%len(stores)].FinishRefresh(ctx, k, winner.LeaseOwner, winner.LeaseToken,
			func(c storage.Connection) (storage.Connection, error) {
				c.Tokens = storage.Sealed{KeyID: "key-1", Blob: []byte(blob)}
				c.ExpiresAt = time.Now().Add(time.Hour)
				return c, nil
			})
		checkConcurrentErr(t, err, fmt.Sprintf("round %d: finish", round))
		if err != nil {
			t.FailNow()
		}
		if done.Version != version+1 || done.LeaseToken != winner.LeaseToken || done.LeaseOwner != "" {
			t.Fatalf("round %d: finished with version %d, lease %q/%d; want version %d, no owner, token %d",
				round, done.Version, done.LeaseOwner, done.LeaseToken, version+1, winner.LeaseToken)
		}
		// Every store sees the committed result at once.
		for i, st := range stores {
			got, err := st.GetConnection(ctx, k)
			mustOK(t, err, "get connection")
			if got.Version != done.Version || string(got.Tokens.Blob) != blob {
				t.Fatalf("round %d: store %d sees version %d and tokens %q after the refresh", round, i, got.Version, got.Tokens.Blob)
			}
		}
		token, version = winner.LeaseToken, done.Version
	}
	if stopTouching() == 0 {
		t.Error("the connection was never touched during the races")
	}
	got, err := stores[0].GetConnection(ctx, k)
	mustOK(t, err, "get connection")
	if got.LeaseToken != start.LeaseToken+leaseRounds || got.Version != start.Version+leaseRounds || got.LeaseOwner != "" {
		t.Errorf("after %d rounds: lease token %d, version %d, owner %q; want %d, %d and none",
			leaseRounds, got.LeaseToken, got.Version, got.LeaseOwner, start.LeaseToken+leaseRounds, start.Version+leaseRounds)
	}
}

// acquireWhenFree takes the lease of the connection k for a minute as
// owner, waiting while another holds it.
func acquireWhenFree(ctx context.Context, s storage.Storage, k storage.ConnectionKey, owner string) (storage.Connection, error) {
	for {
		c, err := s.AcquireRefreshLease(ctx, k, owner, time.Now().Add(time.Minute))
		if !errors.Is(err, storage.ErrConflict) {
			return c, err
		}
		time.Sleep(time.Millisecond)
	}
}

// keepTouching updates the connection k from every store in turn, as
// recording a use does, until the returned stop is called; stop reports
// how many updates there were, and may be called again. UpdateConnection must never disturb a
// lease, even when its updater tries to.
func keepTouching(t *testing.T, stores []storage.Storage, k storage.ConnectionKey) (stop func() int64) {
	ctx := t.Context()
	var (
		touches atomic.Int64
		wg      sync.WaitGroup
	)
	done := make(chan struct{})
	var once sync.Once
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			_, err := stores[i%len(stores)].UpdateConnection(ctx, k, func(c storage.Connection) (storage.Connection, error) {
				c.LastUsedAt = time.Now()
				c.LeaseOwner, c.LeaseUntil, c.LeaseToken = "toucher", time.Time{}, c.LeaseToken+100
				return c, nil
			})
			if err != nil {
				checkConcurrentErr(t, err, "touch the connection")
				return
			}
			touches.Add(1)
			time.Sleep(time.Millisecond)
		}
	})
	return func() int64 {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
		return touches.Load()
	}
}

// raceForLease has leaseRacers callers, spread over stores, race for the
// lease of the connection k, and returns the one winner's connection.
func raceForLease(t *testing.T, stores []storage.Storage, k storage.ConnectionKey, round int) storage.Connection {
	var (
		wins   atomic.Int32
		mu     sync.Mutex
		winner storage.Connection
	)
	parallel(leaseRacers, func(i int) {
		owner := fmt.Sprintf("store-%d/caller-%d/round-%d", i%len(stores), i, round)
		c, err := stores[i%len(stores)].AcquireRefreshLease(t.Context(), k, owner, time.Now().Add(time.Minute))
		switch {
		case err == nil:
			wins.Add(1)
			mu.Lock()
			winner = c
			mu.Unlock()
		case errors.Is(err, storage.ErrConflict):
			// A loser is shown the holder, and waits for its result.
			if c.LeaseOwner == "" || c.LeaseOwner == owner {
				t.Errorf("round %d: %s lost to lease owner %q", round, owner, c.LeaseOwner)
			}
		default:
			checkConcurrentErr(t, err, fmt.Sprintf("round %d: acquire by %s", round, owner))
		}
	})
	if n := wins.Load(); n != 1 {
		t.Fatalf("round %d: %d of %d callers took the lease, want exactly 1", round, n, leaseRacers)
	}
	return winner
}

// raceLeaseTakeover races a holder whose lease ran out against the caller
// that takes it over: only the new holder's result may end up stored.
func raceLeaseTakeover(t *testing.T, stores []storage.Storage) {
	ctx := t.Context()
	grantFixture(t, stores[0])
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	connect(t, stores[0], newConnection(k))
	oldStore, newStore := stores[0], stores[len(stores)-1]
	refresh := func(blob string) func(storage.Connection) (storage.Connection, error) {
		return func(c storage.Connection) (storage.Connection, error) {
			c.Tokens = storage.Sealed{KeyID: "key-1", Blob: []byte(blob)}
			return c, nil
		}
	}
	var oldWon int
	for round := range takeoverRounds {
		// Both holders' finishes race once the lease was taken over: the
		// old one must lose whichever runs first.
		before, err := oldStore.GetConnection(ctx, k)
		mustOK(t, err, "get connection")
		old, err := oldStore.AcquireRefreshLease(ctx, k, "old", time.Now().Add(-time.Millisecond))
		mustOK(t, err, "acquire a lease that runs out at once")
		taken, err := newStore.AcquireRefreshLease(ctx, k, "new", time.Now().Add(time.Minute))
		mustOK(t, err, "take the lease over")
		oldBlob, newBlob := fmt.Sprintf("sealed:old-%d", round), fmt.Sprintf("sealed:new-%d", round)
		var errs [2]error
		parallel(2, func(i int) {
			if i == 0 {
				_, errs[0] = oldStore.FinishRefresh(ctx, k, "old", old.LeaseToken, refresh(oldBlob))
			} else {
				_, errs[1] = newStore.FinishRefresh(ctx, k, "new", taken.LeaseToken, refresh(newBlob))
			}
		})
		wantErr(t, errs[0], storage.ErrConflict, fmt.Sprintf("round %d: finish by the overtaken holder", round))
		checkConcurrentErr(t, errs[1], fmt.Sprintf("round %d: finish by the new holder", round))
		got, err := oldStore.GetConnection(ctx, k)
		mustOK(t, err, "get connection")
		if string(got.Tokens.Blob) != newBlob || got.Version != before.Version+1 {
			t.Fatalf("round %d: stored tokens %q at version %d, want the new holder's %q at %d",
				round, got.Tokens.Blob, got.Version, newBlob, before.Version+1)
		}

		// The takeover itself races the old holder's finish: the old
		// result is stored only if it came first, and the new holder then
		// refreshes from it.
		before = got
		old, err = oldStore.AcquireRefreshLease(ctx, k, "old", time.Now().Add(-time.Millisecond))
		mustOK(t, err, "acquire a lease that runs out at once")
		var (
			oldErr error
			next   storage.Connection
		)
		parallel(2, func(i int) {
			if i == 0 {
				_, oldErr = oldStore.FinishRefresh(ctx, k, "old", old.LeaseToken, refresh(oldBlob+"b"))
				return
			}
			// The old holder's finish may hold the row; the new holder then
			// waits for the release, as callers do.
			var err error
			next, err = acquireWhenFree(ctx, newStore, k, "new")
			checkConcurrentErr(t, err, fmt.Sprintf("round %d: take the lease over", round))
			if err == nil {
				_, err = newStore.FinishRefresh(ctx, k, "new", next.LeaseToken, refresh(newBlob+"b"))
				checkConcurrentErr(t, err, fmt.Sprintf("round %d: finish by the new holder", round))
			}
		})
		want := before.Version + 1
		switch {
		case oldErr == nil:
			oldWon++
			want++
			if string(next.Tokens.Blob) != oldBlob+"b" {
				t.Errorf("round %d: the old holder's result was stored but the new holder refreshed from %q", round, next.Tokens.Blob)
			}
		case errors.Is(oldErr, storage.ErrConflict):
			if string(next.Tokens.Blob) == oldBlob+"b" {
				t.Errorf("round %d: the old holder was refused but its result was stored", round)
			}
		default:
			checkConcurrentErr(t, oldErr, fmt.Sprintf("round %d: finish by the old holder", round))
		}
		got, err = oldStore.GetConnection(ctx, k)
		mustOK(t, err, "get connection")
		if string(got.Tokens.Blob) != newBlob+"b" || got.Version != want || got.LeaseOwner != "" {
			t.Fatalf("round %d: stored tokens %q at version %d, owner %q; want the new holder's %q at %d",
				round, got.Tokens.Blob, got.Version, got.LeaseOwner, newBlob+"b", want)
		}
	}
	t.Logf("the overtaken holder's finish came first in %d of %d rounds", oldWon, takeoverRounds)
}

// testConcurrentCompleteOAuthSession completes one session from many
// goroutines (exactly one may succeed), round after round so that later
// rounds run on warm connections and really overlap, then many sessions of
// one connection at once (none may be lost).
func testConcurrentCompleteOAuthSession(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	const rounds = 10
	for round := range rounds {
		id := fmt.Sprintf("contested-%d", round)
		authorize(t, s, id, k)
		var (
			wins   atomic.Int32
			winner atomic.Int64
		)
		parallel(workers, func(i int) {
			c := newConnection(k)
			c.Tokens = storage.Sealed{KeyID: "key-1", Blob: fmt.Appendf(nil, "sealed:%d", i)}
			err := s.CompleteOAuthSession(ctx, id, c)
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(int64(i))
			case !errors.Is(err, storage.ErrConflict):
				checkConcurrentErr(t, err, fmt.Sprintf("round %d: complete by worker %d", round, i))
			}
		})
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d concurrent completions of one session succeeded, want exactly 1", round, n)
		}
		got, err := s.GetConnection(ctx, k)
		mustOK(t, err, "get connection")
		if want := fmt.Sprintf("sealed:%d", winner.Load()); string(got.Tokens.Blob) != want || got.Version != int64(round)+1 {
			t.Errorf("round %d: connection holds %q at version %d, want the winner's %q at %d", round, got.Tokens.Blob, got.Version, want, round+1)
		}
	}

	for i := range workers {
		authorize(t, s, fmt.Sprintf("s-%d", i), k)
	}
	parallel(workers, func(i int) {
		checkConcurrentErr(t, s.CompleteOAuthSession(ctx, fmt.Sprintf("s-%d", i), newConnection(k)), "complete session")
	})
	got, err := s.GetConnection(ctx, k)
	mustOK(t, err, "get connection")
	if got.Version != rounds+workers {
		t.Errorf("version %d after %d more completions, want %d: completions were lost", got.Version, workers, rounds+workers)
	}
}

// testConcurrentUserGrantOwnerDeleted creates, authorizes and completes
// sessions while their workload or provider is deleted. Each step either
// fails with ErrNotFound or lands before the delete, which then removes
// it: no session or connection may outlive its owner, and no deadlock may
// surface.
func testConcurrentUserGrantOwnerDeleted(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, owner := range []struct {
		name   string
		delete func() error
	}{
		{"workload", func() error { return s.DeleteWorkloadIdentity(ctx, "w") }},
		{"provider", func() error { return s.DeleteOAuth2Provider(ctx, "p") }},
	} {
		pid := "pid-" + owner.name
		mustOK(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("p", pid), nil), "create provider")
		mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("w"), nil), "create workload")
		const users, maxGrants = workers - 1, 100
		var created [users][]string
		grants := make(chan struct{}, users*maxGrants)
		parallel(users+1, func(i int) {
			if i == users {
				// Delete once the users are well under way.
				for range users * 3 {
					select {
					case <-grants:
					case <-time.After(10 * time.Second):
					}
				}
				checkConcurrentErr(t, owner.delete(), "delete the "+owner.name)
				return
			}
			for j := range maxGrants {
				k := storage.ConnectionKey{ProviderID: pid, Workload: "w", User: fmt.Sprintf("user-%d", i)}
				id := fmt.Sprintf("%s-%d-%d", owner.name, i, j)
				err := s.CreateOAuthSession(ctx, newSession(id, k))
				if err == nil {
					created[i] = append(created[i], id)
					_, err = s.UpdateOAuthSession(ctx, id, func(sess storage.OAuthSession) (storage.OAuthSession, error) {
						sess.Status = storage.SessionAuthorized
						return sess, nil
					})
				}
				if err == nil {
					err = s.CompleteOAuthSession(ctx, id, newConnection(k))
				}
				if errors.Is(err, storage.ErrNotFound) {
					break
				}
				if err != nil {
					checkConcurrentErr(t, err, "grant")
					break
				}
				grants <- struct{}{}
			}
		})
		for i := range users {
			for _, id := range created[i] {
				if _, err := s.GetOAuthSession(ctx, id); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("session %s outlived its %s: %v", id, owner.name, err)
				}
			}
		}
		left, err := s.ListConnections(ctx, storage.ConnectionFilter{ProviderID: pid})
		mustOK(t, err, "list connections")
		if len(left) != 0 {
			t.Errorf("%d connections outlived their %s", len(left), owner.name)
		}
		// Reset for the next owner.
		_ = s.DeleteWorkloadIdentity(ctx, "w")
		_ = s.DeleteOAuth2Provider(ctx, "p")
	}
}
