package conformance

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
)

// Load for the concurrency tests: enough goroutines to overlap on every
// backend, few enough to run in seconds on two cores.
const (
	workers          = 16
	updatesPerWorker = 50
)

// RunConcurrencyTests runs the suite that hammers one store from many
// goroutines: read-modify-write updates must not be lost, creates must have
// exactly one winner per key, bootstrap exactly one winner overall, audit
// appends must form one unbroken chain, no cached token, session or
// connection may outlive its owner, a refresh lease must have exactly one
// holder and fence out an overtaken one, a session must complete exactly
// once, an authorization code must be redeemed, a refresh token rotated
// and a one-time token id used exactly once, and no operation may fail
// because of lock contention.
func RunConcurrencyTests(t *testing.T, newStorage func(t *testing.T) storage.Storage) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.Storage)
	}{
		{"UpdateCounter", testConcurrentUpdateCounter},
		{"TokenVaultCounter", testConcurrentTokenVaultCounter},
		{"CreateDistinct", testConcurrentCreateDistinct},
		{"CreateSameName", testConcurrentCreateSameName},
		{"CreateSameProviderID", testConcurrentCreateSameProviderID},
		{"BootstrapPrincipal", testConcurrentBootstrap},
		{"TagLimit", testConcurrentTagLimit},
		{"ReplaceSecret", testConcurrentReplaceSecret},
		{"ReadersAndWriters", testConcurrentReadersAndWriters},
		{"AuditAppend", testConcurrentAudit},
		{"CachedTokenOwnerDeleted", testConcurrentCachedTokenDelete},
		{"RefreshLease", testConcurrentRefreshLease},
		{"LeaseTakeover", testConcurrentLeaseTakeover},
		{"CompleteOAuthSession", testConcurrentCompleteOAuthSession},
		{"StartOAuthSession", testConcurrentStartOAuthSession},
		{"UserGrantOwnerDeleted", testConcurrentUserGrantOwnerDeleted},
		{"RedeemAuthCode", testConcurrentRedeemAuthCode},
		{"RotateRefreshToken", testConcurrentRotateRefreshToken},
		{"UseTokenID", testConcurrentUseTokenID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStorage(t)) })
	}
}

// parallel runs fn(i) for i in [0, n) at once and waits for all of them.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// increment is an updater step: it parses a counter and adds one.
func increment(counter string) (string, error) {
	if counter == "" {
		return "1", nil
	}
	n, err := strconv.Atoi(counter)
	if err != nil {
		return "", fmt.Errorf("counter %q: %w", counter, err)
	}
	return strconv.Itoa(n + 1), nil
}

func testConcurrentUpdateCounter(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	p := newPrincipal("AKIACOUNTER")
	p.Description = "0"
	mustOK(t, s.CreatePrincipal(ctx, p), "create principal")

	parallel(workers, func(int) {
		for range updatesPerWorker {
			_, err := s.UpdatePrincipal(ctx, "AKIACOUNTER", func(p storage.Principal) (storage.Principal, error) {
				next, err := increment(p.Description)
				p.Description = next
				return p, err
			})
			checkConcurrentErr(t, err, "concurrent update")
		}
	})

	got, err := s.GetPrincipal(ctx, "AKIACOUNTER")
	mustOK(t, err, "get principal")
	if want := strconv.Itoa(workers * updatesPerWorker); got.Description != want {
		t.Errorf("counter = %s after %s increments: updates were lost", got.Description, want)
	}
}

// testConcurrentTokenVaultCounter races the create-on-update path: the
// first of many simultaneous updates creates the record, the rest queue.
func testConcurrentTokenVaultCounter(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const perWorker = 10
	parallel(workers, func(int) {
		for range perWorker {
			_, err := s.UpdateTokenVault(ctx, "default", func(v storage.TokenVault) (storage.TokenVault, error) {
				next, err := increment(v.KeyID)
				v.KeyID = next
				return v, err
			})
			checkConcurrentErr(t, err, "concurrent token vault update")
		}
	})
	got, err := s.GetTokenVault(ctx, "default")
	mustOK(t, err, "get token vault")
	if want := strconv.Itoa(workers * perWorker); got.KeyID != want {
		t.Errorf("counter = %s after %s increments: updates were lost", got.KeyID, want)
	}
}

func testConcurrentCreateDistinct(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const perWorker = 4
	parallel(workers, func(i int) {
		for j := range perWorker {
			name := fmt.Sprintf("agent-%02d-%d", i, j)
			checkConcurrentErr(t, s.CreateWorkloadIdentity(ctx, newWorkload(name), map[string]string{"worker": strconv.Itoa(i)}), "create "+name)
		}
	})
	list, err := s.ListWorkloadIdentities(ctx, storage.Page{Limit: maxPageLimit})
	mustOK(t, err, "list workload identities")
	if len(list) != workers*perWorker {
		t.Errorf("listed %d workload identities, want %d", len(list), workers*perWorker)
	}
}

// oneWinner runs create from every worker and checks that exactly one
// succeeded and every other got ErrAlreadyExists. It returns the winner.
func oneWinner(t *testing.T, create func(i int) error) int {
	t.Helper()
	var (
		wins   atomic.Int32
		winner atomic.Int64
	)
	parallel(workers, func(i int) {
		err := create(i)
		switch {
		case err == nil:
			wins.Add(1)
			winner.Store(int64(i))
		case !errors.Is(err, storage.ErrAlreadyExists):
			checkConcurrentErr(t, err, fmt.Sprintf("create by worker %d", i))
		}
	})
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d concurrent creates of one key succeeded, want exactly 1", n)
	}
	return int(winner.Load())
}

func testConcurrentCreateSameName(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	winner := oneWinner(t, func(i int) error {
		w := newWorkload("contested")
		w.AllowedReturnURLs = []string{fmt.Sprintf("https://worker-%d.example", i)}
		return s.CreateWorkloadIdentity(ctx, w, map[string]string{"worker": strconv.Itoa(i)})
	})
	// The stored record and its tags are the winner's, not a mixture.
	got, err := s.GetWorkloadIdentity(ctx, "contested")
	mustOK(t, err, "get workload identity")
	wantDiff(t, "winner's return URLs", []string{fmt.Sprintf("https://worker-%d.example", winner)}, got.AllowedReturnURLs)
	tags, err := s.ListTags(ctx, storage.Resource{Kind: storage.KindWorkloadIdentity, Name: "contested"})
	mustOK(t, err, "list tags")
	wantDiff(t, "winner's tags", map[string]string{"worker": strconv.Itoa(winner)}, tags)
}

func testConcurrentCreateSameProviderID(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	winner := oneWinner(t, func(i int) error {
		return s.CreateOAuth2Provider(ctx, newOAuth2Provider(fmt.Sprintf("provider-%02d", i), "shared-id"), nil)
	})
	got, err := s.GetOAuth2ProviderByID(ctx, "shared-id")
	mustOK(t, err, "get provider by id")
	if want := fmt.Sprintf("provider-%02d", winner); got.Name != want {
		t.Errorf("provider with the shared id is %q, want the winner %q", got.Name, want)
	}
	list, err := s.ListOAuth2Providers(ctx, storage.Page{})
	mustOK(t, err, "list providers")
	if len(list) != 1 {
		t.Errorf("listed %d providers, want 1", len(list))
	}
}

func testConcurrentBootstrap(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	// Several rounds, so that later ones run on warm connections and really
	// overlap.
	for round := range 5 {
		var created atomic.Int32
		parallel(workers, func(i int) {
			ok, err := s.BootstrapPrincipal(ctx, newPrincipal(fmt.Sprintf("AKIABOOT%d-%02d", round, i)))
			checkConcurrentErr(t, err, "concurrent bootstrap")
			if ok {
				created.Add(1)
			}
		})
		if n := created.Load(); n != 1 {
			t.Errorf("round %d: %d concurrent bootstraps reported true, want exactly 1", round, n)
		}
		list, err := s.ListPrincipals(ctx, storage.Page{})
		mustOK(t, err, "list principals")
		if len(list) != 1 {
			t.Fatalf("round %d: bootstrap left %d principals, want 1", round, len(list))
		}
		mustOK(t, s.DeletePrincipal(ctx, list[0].AccessKeyID), "delete bootstrapped principal")
	}
}

// testConcurrentTagLimit has more writers than the limit has room for:
// exactly MaxTags/batch of them may succeed, each all-or-nothing.
func testConcurrentTagLimit(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const batch = 5
	const writers = storage.MaxTags/batch + 6
	r := storage.Resource{Kind: storage.KindWorkloadIdentity, Name: "tagged"}
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("tagged"), nil), "create workload identity")

	var won [writers]atomic.Bool
	parallel(writers, func(i int) {
		err := s.TagResource(ctx, r, manyTags(fmt.Sprintf("w%02d-", i), batch))
		switch {
		case err == nil:
			won[i].Store(true)
		case !errors.Is(err, storage.ErrTooManyTags):
			checkConcurrentErr(t, err, fmt.Sprintf("tag by writer %d", i))
		}
	})

	tags, err := s.ListTags(ctx, r)
	mustOK(t, err, "list tags")
	if len(tags) != storage.MaxTags {
		t.Errorf("resource has %d tags, want exactly %d", len(tags), storage.MaxTags)
	}
	winners := 0
	for i := range writers {
		present := 0
		for k := range manyTags(fmt.Sprintf("w%02d-", i), batch) {
			if _, ok := tags[k]; ok {
				present++
			}
		}
		switch {
		case won[i].Load() && present != batch:
			t.Errorf("writer %d succeeded but %d of its %d tags are stored", i, present, batch)
		case !won[i].Load() && present != 0:
			t.Errorf("writer %d was refused but %d of its tags are stored", i, present)
		}
		if won[i].Load() {
			winners++
		}
	}
	if winners != storage.MaxTags/batch {
		t.Errorf("%d writers succeeded, want %d", winners, storage.MaxTags/batch)
	}
}

func testConcurrentReplaceSecret(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	p := newPrincipal("AKIAROTATE")
	mustOK(t, s.CreatePrincipal(ctx, p), "create principal")
	ref := storage.SealedRef{Kind: storage.SecretPrincipal, Owner: p.AccessKeyID, Sealed: p.Secret}

	var wins atomic.Int32
	var winner atomic.Int64
	parallel(workers, func(i int) {
		err := s.ReplaceSecret(ctx, ref, storage.Sealed{KeyID: "key-2", Blob: []byte(strconv.Itoa(i))})
		switch {
		case err == nil:
			wins.Add(1)
			winner.Store(int64(i))
		case !errors.Is(err, storage.ErrConflict):
			checkConcurrentErr(t, err, fmt.Sprintf("replace by worker %d", i))
		}
	})
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d concurrent replacements of one secret succeeded, want exactly 1", n)
	}
	got, err := s.GetPrincipal(ctx, p.AccessKeyID)
	mustOK(t, err, "get principal")
	if want := strconv.Itoa(int(winner.Load())); string(got.Secret.Blob) != want {
		t.Errorf("stored secret is %q, want the winner's %q", got.Secret.Blob, want)
	}
}

// testConcurrentReadersAndWriters runs plain reads alongside updates; every
// reader must see the counter only move forward.
func testConcurrentReadersAndWriters(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const writers, readers = 4, 4
	p := newPrincipal("AKIARW")
	p.Description = "0"
	mustOK(t, s.CreatePrincipal(ctx, p), "create principal")
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("rw"), map[string]string{"a": "1"}), "create workload identity")

	var done atomic.Bool
	var reads atomic.Int64
	parallel(writers+readers, func(i int) {
		if i < writers {
			for range updatesPerWorker {
				_, err := s.UpdatePrincipal(ctx, "AKIARW", func(p storage.Principal) (storage.Principal, error) {
					next, err := increment(p.Description)
					p.Description = next
					return p, err
				})
				checkConcurrentErr(t, err, "update alongside readers")
			}
			if i == 0 {
				// The readers stop once the first writer is done; the other
				// writers may still be running.
				done.Store(true)
			}
			return
		}
		last := -1
		for !done.Load() {
			got, err := s.GetPrincipal(ctx, "AKIARW")
			if err != nil {
				checkConcurrentErr(t, err, "get alongside writers")
				return
			}
			n, err := strconv.Atoi(got.Description)
			if err != nil || n < last {
				t.Errorf("reader saw counter %q after %d", got.Description, last)
				return
			}
			last = n
			if _, err := s.ListPrincipals(ctx, storage.Page{Limit: 10}); err != nil {
				checkConcurrentErr(t, err, "list alongside writers")
				return
			}
			if _, err := s.ListTags(ctx, storage.Resource{Kind: storage.KindWorkloadIdentity, Name: "rw"}); err != nil {
				checkConcurrentErr(t, err, "list tags alongside writers")
				return
			}
			reads.Add(1)
		}
	})
	if reads.Load() == 0 {
		t.Error("no read completed while the writers ran")
	}
	got, err := s.GetPrincipal(ctx, "AKIARW")
	mustOK(t, err, "get principal")
	if want := strconv.Itoa(writers * updatesPerWorker); got.Description != want {
		t.Errorf("counter = %s, want %s", got.Description, want)
	}
}
