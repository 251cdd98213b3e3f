package conformance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

func newCachedToken(providerID, workload, key string, expires time.Time) storage.CachedToken {
	return storage.CachedToken{
		ProviderID: providerID,
		Workload:   workload,
		Key:        key,
		Token:      storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:" + providerID + ":" + workload + ":" + key)},
		ExpiresAt:  expires,
		CreatedAt:  past(),
	}
}

func storedCachedToken(tok storage.CachedToken) storage.CachedToken {
	tok.ExpiresAt, tok.CreatedAt = asStored(tok.ExpiresAt), asStored(tok.CreatedAt)
	return tok
}

// tokenFixture creates providers p1 (id pid-1) and p2 (id pid-2) and
// workloads w1 and w2, and caches one token for every combination under
// the keys k1 and k2.
func tokenFixture(t *testing.T, s storage.Storage) []storage.CachedToken {
	ctx := t.Context()
	mustOK(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("p1", "pid-1"), nil), "create provider p1")
	mustOK(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("p2", "pid-2"), nil), "create provider p2")
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("w1"), nil), "create workload w1")
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("w2"), nil), "create workload w2")
	expires := time.Now().Add(time.Hour)
	var all []storage.CachedToken
	for _, p := range []string{"pid-1", "pid-2"} {
		for _, w := range []string{"w1", "w2"} {
			for _, k := range []string{"k1", "k2"} {
				tok := newCachedToken(p, w, k, expires)
				mustOK(t, s.PutCachedToken(ctx, tok), fmt.Sprintf("put token %s/%s/%s", p, w, k))
				all = append(all, tok)
			}
		}
	}
	return all
}

// checkTokens checks that exactly the tokens for which keep is true are
// still cached.
func checkTokens(t *testing.T, s storage.Storage, what string, all []storage.CachedToken, keep func(storage.CachedToken) bool) {
	t.Helper()
	for _, tok := range all {
		got, err := s.GetCachedToken(t.Context(), tok.ProviderID, tok.Workload, tok.Key)
		where := fmt.Sprintf("%s: token %s/%s/%s", what, tok.ProviderID, tok.Workload, tok.Key)
		if keep(tok) {
			if err != nil {
				t.Errorf("%s: %v, want it kept", where, err)
				continue
			}
			wantDiff(t, where, storedCachedToken(tok), got)
		} else {
			wantErr(t, err, storage.ErrNotFound, where)
		}
	}
}

func testCachedTokens(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetCachedToken(ctx, "pid-1", "w1", "k1")
	wantErr(t, err, storage.ErrNotFound, "get a token from an empty store")

	all := tokenFixture(t, s)
	checkTokens(t, s, "after put", all, func(storage.CachedToken) bool { return true })
	_, err = s.GetCachedToken(ctx, "pid-1", "w1", "k3")
	wantErr(t, err, storage.ErrNotFound, "get a token under another key")

	// Put replaces.
	next := newCachedToken("pid-1", "w1", "k1", time.Now().Add(2*time.Hour))
	next.Token = storage.Sealed{KeyID: "key-2", Blob: []byte("refreshed")}
	next.CreatedAt = past().Add(time.Minute)
	mustOK(t, s.PutCachedToken(ctx, next), "replace a token")
	got, err := s.GetCachedToken(ctx, "pid-1", "w1", "k1")
	mustOK(t, err, "get replaced token")
	wantDiff(t, "replaced token", storedCachedToken(next), got)

	// A zero creation time means now.
	before := time.Now().Add(-time.Second)
	fresh := newCachedToken("pid-1", "w1", "fresh", time.Now().Add(time.Hour))
	fresh.CreatedAt = time.Time{}
	mustOK(t, s.PutCachedToken(ctx, fresh), "put a token with a zero creation time")
	got, err = s.GetCachedToken(ctx, "pid-1", "w1", "fresh")
	mustOK(t, err, "get fresh token")
	checkUpdatedAt(t, "CreatedAt of a token put with a zero time", got.CreatedAt, before)

	// Tokens belong to an existing provider and workload.
	wantErr(t, s.PutCachedToken(ctx, newCachedToken("pid-gone", "w1", "k", time.Now())), storage.ErrNotFound,
		"put a token of an unknown provider id")
	wantErr(t, s.PutCachedToken(ctx, newCachedToken("p1", "w1", "k", time.Now())), storage.ErrNotFound,
		"put a token naming the provider instead of its id")
	wantErr(t, s.PutCachedToken(ctx, newCachedToken("pid-1", "w-gone", "k", time.Now())), storage.ErrNotFound,
		"put a token of an unknown workload")
	noToken := newCachedToken("pid-1", "w1", "empty", time.Now())
	noToken.Token = storage.Sealed{}
	if err := s.PutCachedToken(ctx, noToken); err == nil {
		t.Error("put a cached token without a token succeeded")
	}
}

func testCachedTokenExpiry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustOK(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("p1", "pid-1"), nil), "create provider")
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("w1"), nil), "create workload")
	now := time.Now()
	expired := newCachedToken("pid-1", "w1", "expired", now.Add(-time.Minute))
	boundary := newCachedToken("pid-1", "w1", "boundary", now.Add(time.Minute))
	live := newCachedToken("pid-1", "w1", "live", now.Add(time.Hour))
	for _, tok := range []storage.CachedToken{expired, boundary, live} {
		mustOK(t, s.PutCachedToken(ctx, tok), "put "+tok.Key)
	}

	// Expired tokens are still returned; the caller checks ExpiresAt.
	got, err := s.GetCachedToken(ctx, "pid-1", "w1", "expired")
	mustOK(t, err, "get an expired token")
	wantDiff(t, "expired token", storedCachedToken(expired), got)

	n, err := s.DeleteExpiredCachedTokens(ctx, now)
	mustOK(t, err, "delete expired tokens")
	if n != 1 {
		t.Errorf("deleted %d expired tokens, want 1", n)
	}
	all := []storage.CachedToken{expired, boundary, live}
	checkTokens(t, s, "after the first purge", all, func(tok storage.CachedToken) bool { return tok.Key != "expired" })

	// A token expiring exactly at t has not expired before t.
	n, err = s.DeleteExpiredCachedTokens(ctx, boundary.ExpiresAt)
	mustOK(t, err, "delete tokens expired before the boundary")
	if n != 0 {
		t.Errorf("deleted %d tokens expiring exactly at t, want 0", n)
	}
	n, err = s.DeleteExpiredCachedTokens(ctx, boundary.ExpiresAt.Add(time.Microsecond))
	mustOK(t, err, "delete tokens expired just after the boundary")
	if n != 1 {
		t.Errorf("deleted %d tokens, want the boundary one", n)
	}
	checkTokens(t, s, "after the second purge", all, func(tok storage.CachedToken) bool { return tok.Key == "live" })
	n, err = s.DeleteExpiredCachedTokens(ctx, now)
	mustOK(t, err, "purge again")
	if n != 0 {
		t.Errorf("a second purge deleted %d tokens", n)
	}
}

func testCachedTokenCascades(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	all := tokenFixture(t, s)
	gone := map[string]bool{}
	keep := func(tok storage.CachedToken) bool { return !gone[tok.ProviderID] && !gone[tok.Workload] }

	// A refused update changes nothing, so the tokens stay.
	_, err := s.UpdateOAuth2Provider(ctx, "p1", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) {
		return p, errRefused
	})
	wantErr(t, err, errRefused, "refused provider update")
	checkTokens(t, s, "after a refused provider update", all, keep)

	// Any successful update, even one that changes nothing, drops the
	// provider's tokens and only those.
	_, err = s.UpdateOAuth2Provider(ctx, "p1", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) { return p, nil })
	mustOK(t, err, "update provider p1")
	gone["pid-1"] = true
	checkTokens(t, s, "after updating p1", all, keep)

	// The provider's tokens can be cached again after the update.
	again := newCachedToken("pid-1", "w1", "k1", time.Now().Add(time.Hour))
	mustOK(t, s.PutCachedToken(ctx, again), "cache a token after the update")
	mustOK(t, s.DeleteOAuth2Provider(ctx, "p1"), "delete provider p1")
	_, err = s.GetCachedToken(ctx, "pid-1", "w1", "k1")
	wantErr(t, err, storage.ErrNotFound, "get the token of a deleted provider")
	checkTokens(t, s, "after deleting p1", all, keep)
	wantErr(t, s.PutCachedToken(ctx, again), storage.ErrNotFound, "put a token of a deleted provider")

	mustOK(t, s.DeleteWorkloadIdentity(ctx, "w2"), "delete workload w2")
	gone["w2"] = true
	checkTokens(t, s, "after deleting w2", all, keep)
	wantErr(t, s.PutCachedToken(ctx, newCachedToken("pid-2", "w2", "k1", time.Now())), storage.ErrNotFound,
		"put a token of a deleted workload")

	// A workload created again under the same name starts with no tokens.
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("w2"), nil), "create workload w2 again")
	checkTokens(t, s, "after creating w2 again", all, keep)

	// Updating a workload identity or an API-key provider leaves tokens alone.
	_, err = s.UpdateWorkloadIdentity(ctx, "w1", func(w storage.WorkloadIdentity) (storage.WorkloadIdentity, error) { return w, nil })
	mustOK(t, err, "update workload w1")
	checkTokens(t, s, "after updating w1", all, keep)
}

// testConcurrentCachedTokenDelete puts tokens while their workload and
// provider are deleted: a put either fails or lands before the delete, which
// then removes it. No token may outlive its owner.
func testConcurrentCachedTokenDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, owner := range []struct {
		name   string
		delete func() error
	}{
		{"workload", func() error { return s.DeleteWorkloadIdentity(ctx, "w") }},
		{"provider", func() error { return s.DeleteOAuth2Provider(ctx, "p") }},
	} {
		mustOK(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("p", "pid-"+owner.name), nil), "create provider")
		mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("w"), nil), "create workload")
		const putters, maxPuts = workers - 1, 200
		var stored [putters][]string
		puts := make(chan struct{}, putters*maxPuts)
		parallel(putters+1, func(i int) {
			if i == putters {
				// Delete once the putters are well under way.
				for range putters * 5 {
					select {
					case <-puts:
					case <-time.After(10 * time.Second):
					}
				}
				checkConcurrentErr(t, owner.delete(), "delete the "+owner.name)
				return
			}
			for j := range maxPuts {
				key := fmt.Sprintf("%d-%d", i, j)
				err := s.PutCachedToken(ctx, newCachedToken("pid-"+owner.name, "w", key, time.Now().Add(time.Hour)))
				if errors.Is(err, storage.ErrNotFound) {
					break
				}
				if err != nil {
					checkConcurrentErr(t, err, "put a token")
					break
				}
				stored[i] = append(stored[i], key)
				puts <- struct{}{}
			}
		})
		for i := range putters {
			for _, key := range stored[i] {
				if _, err := s.GetCachedToken(ctx, "pid-"+owner.name, "w", key); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("token %s outlived its %s: %v", key, owner.name, err)
				}
			}
		}
		// Reset for the next owner.
		_ = s.DeleteWorkloadIdentity(ctx, "w")
		_ = s.DeleteOAuth2Provider(ctx, "p")
	}
}
