package conformance

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// stateHash is the SHA-256 of a session's state, derived from its id.
func stateHash(id string) []byte {
	h := sha256.Sum256([]byte("state:" + id))
	return h[:]
}

func newSession(id string, k storage.ConnectionKey) storage.OAuthSession {
	return storage.OAuthSession{
		ID:         id,
		StateHash:  stateHash(id),
		ProviderID: k.ProviderID,
		Workload:   k.Workload,
		User:       k.User,
		Status:     storage.SessionInProgress,
		Request:    []byte(`{"scopes":["repo"],"returnUrl":"https://agent.example/back"}`),
		Secrets:    storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:session:" + id)},
		CreatedAt:  past(),
		UpdatedAt:  past(),
		ExpiresAt:  time.Now().Add(10 * time.Minute),
	}
}

func storedSession(sess storage.OAuthSession) storage.OAuthSession {
	sess.CreatedAt, sess.UpdatedAt, sess.ExpiresAt = asStored(sess.CreatedAt), asStored(sess.UpdatedAt), asStored(sess.ExpiresAt)
	return sess
}

// grantFixture creates providers p1 (id pid-1) and p2 (id pid-2) and
// workloads w1 and w2, the owners of sessions and connections.
func grantFixture(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustOK(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("p1", "pid-1"), nil), "create provider p1")
	mustOK(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("p2", "pid-2"), nil), "create provider p2")
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("w1"), nil), "create workload w1")
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("w2"), nil), "create workload w2")
}

// authorize creates a session for k and moves it to SessionAuthorized.
func authorize(t testing.TB, s storage.Storage, id string, k storage.ConnectionKey) storage.OAuthSession {
	t.Helper()
	ctx := t.Context()
	mustOK(t, s.CreateOAuthSession(ctx, newSession(id, k)), "create session "+id)
	sess, err := s.UpdateOAuthSession(ctx, id, func(sess storage.OAuthSession) (storage.OAuthSession, error) {
		sess.Status = storage.SessionAuthorized
		sess.Secrets = storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:verifier+tokens:" + id)}
		return sess, nil
	})
	mustOK(t, err, "authorize session "+id)
	return sess
}

func testOAuthSessions(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	_, err := s.GetOAuthSession(ctx, "s1")
	wantErr(t, err, storage.ErrNotFound, "get a session from an empty store")
	_, err = s.GetOAuthSessionByState(ctx, stateHash("s1"))
	wantErr(t, err, storage.ErrNotFound, "get a session by state from an empty store")

	// Sessions belong to an existing provider id and workload.
	wantErr(t, s.CreateOAuthSession(ctx, newSession("s1", k)), storage.ErrNotFound, "create a session before its owners")
	grantFixture(t, s)
	for what, owner := range map[string]storage.ConnectionKey{
		"an unknown provider id":                {ProviderID: "pid-gone", Workload: "w1", User: "alice"},
		"the provider's name instead of its id": {ProviderID: "p1", Workload: "w1", User: "alice"},
		"an unknown workload":                   {ProviderID: "pid-1", Workload: "w-gone", User: "alice"},
	} {
		wantErr(t, s.CreateOAuthSession(ctx, newSession("s1", owner)), storage.ErrNotFound, "create a session of "+what)
	}
	_, err = s.GetOAuthSession(ctx, "s1")
	wantErr(t, err, storage.ErrNotFound, "get a session whose creation failed")

	s1 := newSession("s1", k)
	mustOK(t, s.CreateOAuthSession(ctx, s1), "create session")
	got, err := s.GetOAuthSession(ctx, "s1")
	mustOK(t, err, "get session")
	wantDiff(t, "session", storedSession(s1), got)
	got, err = s.GetOAuthSessionByState(ctx, stateHash("s1"))
	mustOK(t, err, "get session by state")
	wantDiff(t, "session by state", storedSession(s1), got)

	// The id and the state hash are each unique.
	dupID := newSession("s1", k)
	dupID.StateHash = stateHash("other")
	wantErr(t, s.CreateOAuthSession(ctx, dupID), storage.ErrAlreadyExists, "create a session with a taken id")
	_, err = s.GetOAuthSessionByState(ctx, stateHash("other"))
	wantErr(t, err, storage.ErrNotFound, "get the refused session by its state")
	dupState := newSession("s2", k)
	dupState.StateHash = stateHash("s1")
	wantErr(t, s.CreateOAuthSession(ctx, dupState), storage.ErrAlreadyExists, "create a session with a taken state")
	_, err = s.GetOAuthSession(ctx, "s2")
	wantErr(t, err, storage.ErrNotFound, "get the refused session by its id")

	// A state hash is a SHA-256; any other length finds nothing.
	for _, h := range [][]byte{nil, {}, stateHash("s1")[:31], append(stateHash("s1"), 0)} {
		_, err = s.GetOAuthSessionByState(ctx, h)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("get a session by a %d-byte state hash", len(h)))
	}

	// Malformed sessions are refused.
	for what, mutate := range map[string]func(*storage.OAuthSession){
		"an empty id":          func(sess *storage.OAuthSession) { sess.ID = "" },
		"no state hash":        func(sess *storage.OAuthSession) { sess.StateHash = nil },
		"a 31-byte state hash": func(sess *storage.OAuthSession) { sess.StateHash = sess.StateHash[:31] },
		"a 33-byte state hash": func(sess *storage.OAuthSession) { sess.StateHash = append(sess.StateHash, 0) },
		"a zero expiry":        func(sess *storage.OAuthSession) { sess.ExpiresAt = time.Time{} },
	} {
		bad := newSession("bad", k)
		mutate(&bad)
		if err := s.CreateOAuthSession(ctx, bad); err == nil {
			t.Errorf("create a session with %s succeeded", what)
		}
	}

	// Nil and empty requests stay apart; a session may hold no secret;
	// zero times mean now; expired sessions are still returned.
	before := time.Now().Add(-time.Second)
	bare := newSession("bare", k)
	bare.Request, bare.Secrets = nil, storage.Sealed{}
	bare.CreatedAt, bare.UpdatedAt = time.Time{}, time.Time{}
	bare.ExpiresAt = time.Now().Add(-time.Hour)
	mustOK(t, s.CreateOAuthSession(ctx, bare), "create a bare session")
	got, err = s.GetOAuthSession(ctx, "bare")
	mustOK(t, err, "get bare session")
	if got.Request != nil || !got.Secrets.IsZero() {
		t.Errorf("bare session has Request %#v and Secrets %+v, want nil and none", got.Request, got.Secrets)
	}
	checkUpdatedAt(t, "CreatedAt of a session created with a zero time", got.CreatedAt, before)
	checkUpdatedAt(t, "UpdatedAt of a session created with a zero time", got.UpdatedAt, before)
	checkStoredTime(t, "ExpiresAt of an expired session", got.ExpiresAt, bare.ExpiresAt)
	empty := newSession("empty", k)
	empty.Request = []byte{}
	mustOK(t, s.CreateOAuthSession(ctx, empty), "create a session with an empty request")
	got, err = s.GetOAuthSession(ctx, "empty")
	mustOK(t, err, "get session with an empty request")
	if got.Request == nil || len(got.Request) != 0 {
		t.Errorf("session created with an empty request has Request %#v, want empty and non-nil", got.Request)
	}
}

// testOpenOAuthSessions: k's sessions in progress, not expired, newest
// first.
func testOpenOAuthSessions(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	for _, id := range []string{"s1", "empty"} {
		mustOK(t, s.CreateOAuthSession(ctx, newSession(id, k)), "create session "+id)
	}
	expired := newSession("expired", k)
	expired.ExpiresAt = time.Now().Add(-time.Minute)
	mustOK(t, s.CreateOAuthSession(ctx, expired), "create an expired session")
	newer := newSession("newer", k)
	newer.CreatedAt = time.Now()
	mustOK(t, s.CreateOAuthSession(ctx, newer), "create a newer session")
	authorize(t, s, "authorized", k)
	other := newSession("bob's", storage.ConnectionKey{ProviderID: k.ProviderID, Workload: k.Workload, User: "bob"})
	mustOK(t, s.CreateOAuthSession(ctx, other), "create another user's session")
	for _, o := range []storage.ConnectionKey{{ProviderID: "pid-2", Workload: "w1", User: "alice"}, {ProviderID: "pid-1", Workload: "w2", User: "alice"}} {
		mustOK(t, s.CreateOAuthSession(ctx, newSession("of "+o.ProviderID+" "+o.Workload, o)), "create a session of another provider or workload")
	}
	open, err := s.ListOpenOAuthSessions(ctx, k, time.Now(), 0)
	mustOK(t, err, "list open sessions")
	var ids []string
	for _, o := range open {
		ids = append(ids, o.ID)
	}
	// s1 and empty share CreatedAt: then by id.
	if want := []string{"newer", "empty", "s1"}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("open sessions %v, want %v", ids, want)
	}
	if open, err = s.ListOpenOAuthSessions(ctx, k, time.Now(), 1); err != nil || len(open) != 1 || open[0].ID != "newer" {
		t.Errorf("open sessions with limit 1: %d, %v; want newer", len(open), err)
	}
	if open, err = s.ListOpenOAuthSessions(ctx, k, time.Now().Add(time.Hour), 0); err != nil || len(open) != 0 {
		t.Errorf("sessions open after an hour: %d, %v; want none", len(open), err)
	}
}

func testOAuthSessionUpdater(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	orig := newSession("s1", k)
	mustOK(t, s.CreateOAuthSession(ctx, orig), "create session")
	want := storedSession(orig)

	_, err := s.UpdateOAuthSession(ctx, "s1", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
		sess.Status = storage.SessionFailed
		return sess, fmt.Errorf("wrapped: %w", errRefused)
	})
	wantErr(t, err, errRefused, "update with refusing updater")
	got, err := s.GetOAuthSession(ctx, "s1")
	mustOK(t, err, "get session")
	wantDiff(t, "session after aborted update", want, got)

	// Only CompleteOAuthSession completes a session.
	_, err = s.UpdateOAuthSession(ctx, "s1", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
		sess.Status = storage.SessionCompleted
		sess.FailureReason = "must not be stored"
		return sess, nil
	})
	wantErr(t, err, storage.ErrConflict, "complete a session through UpdateOAuthSession")
	_, err = s.UpdateOAuthSession(ctx, "s1", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
		sess.ExpiresAt = time.Time{}
		sess.FailureReason = "must not be stored"
		return sess, nil
	})
	if err == nil {
		t.Error("update a session to a zero expiry succeeded")
	}
	got, err = s.GetOAuthSession(ctx, "s1")
	mustOK(t, err, "get session")
	wantDiff(t, "session after refused updates", want, got)

	newExpiry := time.Now().Add(time.Hour)
	updated, err := s.UpdateOAuthSession(ctx, "s1", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
		wantDiff(t, "session passed to updater", want, sess)
		sess.ID, sess.StateHash = "forged", stateHash("forged")
		sess.ProviderID, sess.Workload, sess.User = "pid-2", "w2", "mallory"
		sess.CreatedAt, sess.UpdatedAt = time.Now(), time.Time{}
		sess.Status = storage.SessionAuthorized
		sess.FailureReason = "none"
		sess.Request = []byte{}
		sess.Secrets = storage.Sealed{KeyID: "key-2", Blob: []byte("sealed:tokens")}
		sess.ExpiresAt = newExpiry
		return sess, nil
	})
	mustOK(t, err, "update session")
	if updated.ID != "s1" || string(updated.StateHash) != string(stateHash("s1")) ||
		updated.ProviderID != "pid-1" || updated.Workload != "w1" || updated.User != "alice" {
		t.Errorf("updater changed the session's identity: %+v", updated)
	}
	checkStoredTime(t, "CreatedAt after update", updated.CreatedAt, orig.CreatedAt)
	checkUpdatedAt(t, "UpdatedAt after update", updated.UpdatedAt, want.UpdatedAt)
	checkStoredTime(t, "ExpiresAt after update", updated.ExpiresAt, newExpiry)
	if updated.Status != storage.SessionAuthorized || updated.FailureReason != "none" || updated.Secrets.KeyID != "key-2" {
		t.Errorf("update did not store the updater's changes: %+v", updated)
	}
	got, err = s.GetOAuthSession(ctx, "s1")
	mustOK(t, err, "get updated session")
	wantDiff(t, "stored session vs. UpdateOAuthSession's result", updated, got)
	got, err = s.GetOAuthSessionByState(ctx, stateHash("s1"))
	mustOK(t, err, "get updated session by its state")
	wantDiff(t, "updated session by state", updated, got)
	_, err = s.GetOAuthSession(ctx, "forged")
	wantErr(t, err, storage.ErrNotFound, "get session under the updater's id")
	_, err = s.GetOAuthSessionByState(ctx, stateHash("forged"))
	wantErr(t, err, storage.ErrNotFound, "get session under the updater's state")

	// A second update sees the first one's result.
	_, err = s.UpdateOAuthSession(ctx, "s1", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
		wantDiff(t, "session passed to second updater", updated, sess)
		return sess, nil
	})
	mustOK(t, err, "second update")

	// A completed session is final: the updater does not even run.
	mustOK(t, s.CompleteOAuthSession(ctx, "s1", newConnection(k)), "complete session")
	completed, err := s.GetOAuthSession(ctx, "s1")
	mustOK(t, err, "get completed session")
	_, err = s.UpdateOAuthSession(ctx, "s1", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
		t.Error("updater ran for a completed session")
		sess.Status = storage.SessionAuthorized
		return sess, nil
	})
	wantErr(t, err, storage.ErrConflict, "update a completed session")
	got, err = s.GetOAuthSession(ctx, "s1")
	mustOK(t, err, "get completed session")
	wantDiff(t, "completed session after a refused update", completed, got)
}

func testOAuthSessionExpiry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	now := time.Now()
	expiries := map[string]time.Time{
		"expired":   now.Add(-time.Minute),
		"completed": now.Add(-time.Second), // expired, whatever its status
		"boundary":  now.Add(time.Minute),
		"live":      now.Add(time.Hour),
		"failed":    now.Add(time.Hour), // live, but failed: purged by its last update
	}
	for id, exp := range expiries {
		sess := newSession(id, k)
		sess.ExpiresAt = exp
		mustOK(t, s.CreateOAuthSession(ctx, sess), "create session "+id)
	}
	_, err := s.UpdateOAuthSession(ctx, "completed", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
		sess.Status = storage.SessionAuthorized
		return sess, nil
	})
	mustOK(t, err, "authorize session")
	mustOK(t, s.CompleteOAuthSession(ctx, "completed", newConnection(k)), "complete session")
	failed, err := s.UpdateOAuthSession(ctx, "failed", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
		sess.Status, sess.FailureReason = storage.SessionFailed, "denied"
		return sess, nil
	})
	mustOK(t, err, "fail session")

	check := func(what string, keep func(id string) bool) {
		t.Helper()
		for id := range expiries {
			_, err := s.GetOAuthSession(ctx, id)
			if keep(id) {
				mustOK(t, err, what+": get session "+id)
			} else {
				wantErr(t, err, storage.ErrNotFound, what+": get session "+id)
			}
		}
	}
	// A failed session is kept until its last update is before t.
	n, err := s.DeleteEndedOAuthSessions(ctx, failed.UpdatedAt)
	mustOK(t, err, "delete ended sessions")
	if n != 2 {
		t.Errorf("deleted %d expired sessions, want 2", n)
	}
	check("after the first purge", func(id string) bool { return id == "boundary" || id == "live" || id == "failed" })
	// The connection outlives its session.
	_, err = s.GetConnection(ctx, k)
	mustOK(t, err, "get the connection of a purged session")

	n, err = s.DeleteEndedOAuthSessions(ctx, failed.UpdatedAt.Add(time.Microsecond))
	mustOK(t, err, "delete ended sessions")
	if n != 1 {
		t.Errorf("deleted %d sessions, want the failed one", n)
	}
	// A session expiring exactly at t has not expired before t.
	n, err = s.DeleteEndedOAuthSessions(ctx, expiries["boundary"])
	mustOK(t, err, "delete sessions expired before the boundary")
	if n != 0 {
		t.Errorf("deleted %d sessions expiring exactly at t, want 0", n)
	}
	n, err = s.DeleteEndedOAuthSessions(ctx, expiries["boundary"].Add(time.Microsecond))
	mustOK(t, err, "delete sessions expired just after the boundary")
	if n != 1 {
		t.Errorf("deleted %d sessions, want the boundary one", n)
	}
	check("after the last purge", func(id string) bool { return id == "live" })
}

// requestKey is a session's RequestKey for a request name.
func requestKey(name string) []byte {
	h := sha256.Sum256([]byte("request:" + name))
	return h[:]
}

// testStartOAuthSession: an open session with the same request key is
// reused; one that left IN_PROGRESS or expires by reuseUntil is not, and
// gives up its key.
func testStartOAuthSession(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	var last storage.OAuthSession // the last session start was given
	start := func(id, key string, reuseUntil time.Time) (storage.OAuthSession, bool) {
		t.Helper()
		last = newSession(id, k)
		last.RequestKey = requestKey(key)
		got, reused, err := s.StartOAuthSession(ctx, last, reuseUntil, nil)
		mustOK(t, err, "start session "+id)
		return got, reused
	}
	now := time.Now()
	first, reused := start("s1", "r1", now)
	if reused || first.ID != "s1" {
		t.Fatalf("first start: reused %v, id %q", reused, first.ID)
	}
	stored, err := s.GetOAuthSession(ctx, "s1")
	mustOK(t, err, "get started session")
	wantDiff(t, "started session", storedSession(last), stored)

	// The same request reuses it, storing nothing.
	again, reused := start("s2", "r1", now)
	if !reused || again.ID != "s1" {
		t.Fatalf("second start: reused %v, id %q, want s1", reused, again.ID)
	}
	wantDiff(t, "reused session", stored, again)
	_, err = s.GetOAuthSession(ctx, "s2")
	wantErr(t, err, storage.ErrNotFound, "get the session a reuse did not store")
	// Another request does not.
	if other, reused := start("s3", "r2", now); reused || other.ID != "s3" {
		t.Fatalf("another request: reused %v, id %q", reused, other.ID)
	}

	// A session expiring by reuseUntil is not reused, and stays.
	late, reused := start("s4", "r1", first.ExpiresAt)
	if reused || late.ID != "s4" {
		t.Fatalf("start past the open session's expiry: reused %v, id %q", reused, late.ID)
	}
	old, err := s.GetOAuthSession(ctx, "s1")
	mustOK(t, err, "get the session no longer reused")
	if old.RequestKey != nil || old.Status != storage.SessionInProgress {
		t.Errorf("the session no longer reused: key %x, status %s", old.RequestKey, old.Status)
	}

	// A session that left IN_PROGRESS is not reused.
	_, err = s.UpdateOAuthSession(ctx, "s4", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
		sess.Status = storage.SessionExchanging
		return sess, nil
	})
	mustOK(t, err, "claim session s4")
	if next, reused := start("s5", "r1", now); reused || next.ID != "s5" {
		t.Fatalf("start after the open session was claimed: reused %v, id %q", reused, next.ID)
	}

	// A key is refused without the owners, and required.
	bad := newSession("s6", storage.ConnectionKey{ProviderID: "pid-gone", Workload: "w1", User: "alice"})
	bad.RequestKey = requestKey("r3")
	_, _, err = s.StartOAuthSession(ctx, bad, now, nil)
	wantErr(t, err, storage.ErrNotFound, "start a session of an unknown provider")
	if _, _, err := s.StartOAuthSession(ctx, newSession("s7", k), now, nil); err == nil {
		t.Error("StartOAuthSession without a request key succeeded")
	}
	// An id or state collision is still ErrAlreadyExists.
	dup := newSession("s5", k)
	dup.RequestKey = requestKey("r4")
	_, _, err = s.StartOAuthSession(ctx, dup, now, nil)
	wantErr(t, err, storage.ErrAlreadyExists, "start a session with a taken id")
}

func testCompleteOAuthSession(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	noConnection := func(what string) {
		t.Helper()
		_, err := s.GetConnection(ctx, k)
		wantErr(t, err, storage.ErrNotFound, what+": get connection")
	}

	wantErr(t, s.CompleteOAuthSession(ctx, "missing", newConnection(k)), storage.ErrNotFound, "complete a missing session")
	noConnection("after completing a missing session")

	// Only an authorized session completes; a refusal changes nothing.
	mustOK(t, s.CreateOAuthSession(ctx, newSession("s1", k)), "create session")
	for _, status := range []storage.SessionStatus{storage.SessionInProgress, storage.SessionFailed} {
		sess, err := s.UpdateOAuthSession(ctx, "s1", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
			sess.Status = status
			return sess, nil
		})
		mustOK(t, err, "set session status")
		wantErr(t, s.CompleteOAuthSession(ctx, "s1", newConnection(k)), storage.ErrConflict, "complete a session in status "+string(status))
		got, err := s.GetOAuthSession(ctx, "s1")
		mustOK(t, err, "get session")
		wantDiff(t, "session "+string(status)+" after a refused completion", sess, got)
		noConnection("after completing a session in status " + string(status))
	}

	// The connection must be the session's.
	sess := authorize(t, s, "s2", k)
	for what, other := range map[string]storage.ConnectionKey{
		"another user":        {ProviderID: "pid-1", Workload: "w1", User: "mallory"},
		"another workload":    {ProviderID: "pid-1", Workload: "w2", User: "alice"},
		"another provider":    {ProviderID: "pid-2", Workload: "w1", User: "alice"},
		"an unknown provider": {ProviderID: "pid-gone", Workload: "w1", User: "alice"},
	} {
		if err := s.CompleteOAuthSession(ctx, "s2", newConnection(other)); err == nil {
			t.Errorf("complete a session with the connection of %s succeeded", what)
		}
		_, err := s.GetConnection(ctx, other)
		wantErr(t, err, storage.ErrNotFound, "get the connection of "+what)
	}
	got, err := s.GetOAuthSession(ctx, "s2")
	mustOK(t, err, "get session")
	wantDiff(t, "session after refused completions", sess, got)
	noConnection("after refused completions")

	// Completion moves the tokens from the session to the connection.
	c := newConnection(k)
	before := time.Now().Add(-time.Second)
	mustOK(t, s.CompleteOAuthSession(ctx, "s2", c), "complete session")
	got, err = s.GetOAuthSession(ctx, "s2")
	mustOK(t, err, "get completed session")
	if got.Status != storage.SessionCompleted || !got.Secrets.IsZero() {
		t.Errorf("completed session has status %s and secrets %+v, want COMPLETED and none", got.Status, got.Secrets)
	}
	checkUpdatedAt(t, "UpdatedAt of the completed session", got.UpdatedAt, before)
	wantSess := sess
	wantSess.Status, wantSess.Secrets, wantSess.UpdatedAt = storage.SessionCompleted, storage.Sealed{}, got.UpdatedAt
	wantDiff(t, "completed session", wantSess, got)
	first := checkCompleted(t, s, c, 0, 0, before)

	// Single use.
	again := newConnection(k)
	again.Tokens = storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:replayed")}
	wantErr(t, s.CompleteOAuthSession(ctx, "s2", again), storage.ErrConflict, "complete a session twice")
	gotConn, err := s.GetConnection(ctx, k)
	mustOK(t, err, "get connection")
	wantDiff(t, "connection after a second completion", first, gotConn)

	// A new authorization replaces the connection: Version goes up, the
	// lease is dropped (its holder's result is refused) and its token kept.
	lease, err := s.AcquireRefreshLease(ctx, k, "refresher", time.Now().Add(time.Minute))
	mustOK(t, err, "acquire lease")
	marked, err := s.UpdateConnection(ctx, k, func(c storage.Connection) (storage.Connection, error) {
		c.Status = storage.ConnectionNeedsConsent
		return c, nil
	})
	mustOK(t, err, "mark the connection as needing consent")
	authorize(t, s, "s3", k)
	replacement := newConnection(k)
	replacement.Status = "" // means ACTIVE
	replacement.Scopes = []string{"repo", "user"}
	replacement.Tokens = storage.Sealed{KeyID: "key-2", Blob: []byte("sealed:second grant")}
	replacement.CreatedAt, replacement.LastUsedAt = time.Time{}, time.Time{}
	before = time.Now().Add(-time.Second)
	mustOK(t, s.CompleteOAuthSession(ctx, "s3", replacement), "complete a second session for the same connection")
	replacement.Status = storage.ConnectionActive
	replaced := checkCompleted(t, s, replacement, marked.Version+1, lease.LeaseToken, before)
	_, err = s.FinishRefresh(ctx, k, "refresher", lease.LeaseToken, func(c storage.Connection) (storage.Connection, error) {
		t.Error("refresh updater ran after its lease was dropped")
		return c, nil
	})
	wantErr(t, err, storage.ErrConflict, "finish a refresh whose lease a new authorization dropped")
	gotConn, err = s.GetConnection(ctx, k)
	mustOK(t, err, "get connection")
	wantDiff(t, "replaced connection after a refused refresh", replaced, gotConn)
	next, err := s.AcquireRefreshLease(ctx, k, "refresher", time.Now().Add(time.Minute))
	mustOK(t, err, "acquire lease after replacement")
	if next.LeaseToken != lease.LeaseToken+1 {
		t.Errorf("lease token after replacement = %d, want %d", next.LeaseToken, lease.LeaseToken+1)
	}
}

// checkCompleted checks the connection a completion stored from c: as
// given, with Version version (or 1 if 0), the lease cleared but for
// token, UpdatedAt after before, and zero times filled in. It returns the
// stored connection.
func checkCompleted(t *testing.T, s storage.Storage, c storage.Connection, version, token int64, before time.Time) storage.Connection {
	t.Helper()
	got, err := s.GetConnection(t.Context(), c.ConnectionKey)
	mustOK(t, err, "get completed connection")
	want := storedConnection(c)
	want.Version = max(version, 1)
	want.LeaseOwner, want.LeaseUntil, want.LeaseToken = "", time.Time{}, token
	checkUpdatedAt(t, "UpdatedAt of the completed connection", got.UpdatedAt, before)
	want.UpdatedAt = got.UpdatedAt
	if c.CreatedAt.IsZero() {
		checkUpdatedAt(t, "CreatedAt of a connection completed with a zero time", got.CreatedAt, before)
		want.CreatedAt = got.CreatedAt
	}
	if c.LastUsedAt.IsZero() {
		checkUpdatedAt(t, "LastUsedAt of a connection completed with a zero time", got.LastUsedAt, before)
		want.LastUsedAt = got.LastUsedAt
	}
	wantDiff(t, "completed connection", want, got)
	return got
}

// testUserGrantCascades checks that sessions and connections go with their
// provider or workload identity, and only with them.
func testUserGrantCascades(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	var keys []storage.ConnectionKey
	for _, p := range []string{"pid-1", "pid-2"} {
		for _, w := range []string{"w1", "w2"} {
			k := storage.ConnectionKey{ProviderID: p, Workload: w, User: "alice"}
			keys = append(keys, k)
			authorize(t, s, "done-"+p+"-"+w, k)
			mustOK(t, s.CompleteOAuthSession(ctx, "done-"+p+"-"+w, newConnection(k)), "complete session")
			mustOK(t, s.CreateOAuthSession(ctx, newSession("open-"+p+"-"+w, k)), "create session")
		}
	}
	gone := map[string]bool{}
	check := func(what string) {
		t.Helper()
		for _, k := range keys {
			keep := !gone[k.ProviderID] && !gone[k.Workload]
			_, errConn := s.GetConnection(ctx, k)
			_, errDone := s.GetOAuthSession(ctx, "done-"+k.ProviderID+"-"+k.Workload)
			_, errOpen := s.GetOAuthSessionByState(ctx, stateHash("open-"+k.ProviderID+"-"+k.Workload))
			for name, err := range map[string]error{"connection": errConn, "completed session": errDone, "open session": errOpen} {
				where := fmt.Sprintf("%s: %s of %s/%s", what, name, k.ProviderID, k.Workload)
				if keep {
					mustOK(t, err, where)
				} else {
					wantErr(t, err, storage.ErrNotFound, where)
				}
			}
		}
	}
	check("before any change")

	// Updating an owner leaves users' grants alone.
	_, err := s.UpdateOAuth2Provider(ctx, "p1", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) {
		p.ClientSecret = storage.Sealed{KeyID: "key-2", Blob: []byte("rotated")}
		return p, nil
	})
	mustOK(t, err, "update provider p1")
	_, err = s.UpdateWorkloadIdentity(ctx, "w1", func(w storage.WorkloadIdentity) (storage.WorkloadIdentity, error) { return w, nil })
	mustOK(t, err, "update workload w1")
	check("after updating p1 and w1")

	mustOK(t, s.DeleteOAuth2Provider(ctx, "p1"), "delete provider p1")
	gone["pid-1"] = true
	check("after deleting p1")
	wantErr(t, s.CreateOAuthSession(ctx, newSession("late", keys[0])), storage.ErrNotFound, "create a session of a deleted provider")

	// A session whose workload went away cannot complete.
	k := storage.ConnectionKey{ProviderID: "pid-2", Workload: "w2", User: "bob"}
	authorize(t, s, "pending", k)
	mustOK(t, s.DeleteWorkloadIdentity(ctx, "w2"), "delete workload w2")
	gone["w2"] = true
	check("after deleting w2")
	wantErr(t, s.CompleteOAuthSession(ctx, "pending", newConnection(k)), storage.ErrNotFound, "complete a session of a deleted workload")
	_, err = s.GetConnection(ctx, k)
	wantErr(t, err, storage.ErrNotFound, "get the connection of a deleted workload")

	// A workload created again under the same name starts with nothing.
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("w2"), nil), "create workload w2 again")
	check("after creating w2 again")
	list, err := s.ListConnections(ctx, storage.ConnectionFilter{})
	mustOK(t, err, "list connections")
	wantDiff(t, "connections left", []storage.ConnectionKey{{ProviderID: "pid-2", Workload: "w1", User: "alice"}},
		keysOf(list))
}

// testRepointCascades checks that RepointOAuth2Provider deletes the
// provider's sessions and connections with the update, and only its own,
// and that a refused repoint keeps them.
func testRepointCascades(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	var keys []storage.ConnectionKey
	for _, p := range []string{"pid-1", "pid-2"} {
		k := storage.ConnectionKey{ProviderID: p, Workload: "w1", User: "alice"}
		keys = append(keys, k)
		authorize(t, s, "done-"+p, k)
		mustOK(t, s.CompleteOAuthSession(ctx, "done-"+p, newConnection(k)), "complete session")
		mustOK(t, s.CreateOAuthSession(ctx, newSession("open-"+p, k)), "create session")
		mustOK(t, s.PutCachedToken(ctx, newCachedToken(p, "w1", "k1", time.Now().Add(time.Hour))), "put token")
	}
	check := func(what string, gone map[string]bool) {
		t.Helper()
		for _, k := range keys {
			_, errConn := s.GetConnection(ctx, k)
			_, errOpen := s.GetOAuthSession(ctx, "open-"+k.ProviderID)
			_, errDone := s.GetOAuthSession(ctx, "done-"+k.ProviderID)
			for name, err := range map[string]error{"connection": errConn, "open session": errOpen, "completed session": errDone} {
				where := fmt.Sprintf("%s: %s of %s", what, name, k.ProviderID)
				if gone[k.ProviderID] {
					wantErr(t, err, storage.ErrNotFound, where)
				} else {
					mustOK(t, err, where)
				}
			}
		}
	}

	_, err := s.RepointOAuth2Provider(ctx, "p1", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) {
		p.Config = []byte(`{"tokenEndpoint":"https://elsewhere.example/token"}`)
		return p, errRefused
	})
	wantErr(t, err, errRefused, "refused repoint")
	check("after a refused repoint", nil)
	got, err := s.GetOAuth2Provider(ctx, "p1")
	mustOK(t, err, "get p1")
	wantDiff(t, "p1 after a refused repoint", storedOAuth2Provider(newOAuth2Provider("p1", "pid-1")), got)

	next := storage.Sealed{KeyID: "key-2", Blob: []byte("sealed:new-secret")}
	updated, err := s.RepointOAuth2Provider(ctx, "p1", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) {
		p.Config, p.ClientSecret = []byte(`{"tokenEndpoint":"https://elsewhere.example/token"}`), next
		return p, nil
	})
	mustOK(t, err, "repoint p1")
	check("after repointing p1", map[string]bool{"pid-1": true})
	got, err = s.GetOAuth2Provider(ctx, "p1")
	mustOK(t, err, "get p1")
	wantDiff(t, "stored provider vs. RepointOAuth2Provider's result", updated, got)
	if string(got.Config) != `{"tokenEndpoint":"https://elsewhere.example/token"}` || got.ClientSecret.KeyID != "key-2" {
		t.Errorf("repointed provider: %+v", got)
	}
	_, err = s.GetCachedToken(ctx, "pid-1", "w1", "k1")
	wantErr(t, err, storage.ErrNotFound, "cached token of the repointed provider")
	_, err = s.GetCachedToken(ctx, "pid-2", "w1", "k1")
	mustOK(t, err, "cached token of the other provider")

	// The provider's users can connect again, to the new server.
	authorize(t, s, "again", keys[0])
	mustOK(t, s.CompleteOAuthSession(ctx, "again", newConnection(keys[0])), "complete a session after the repoint")

	_, err = s.RepointOAuth2Provider(ctx, "missing", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) { return p, nil })
	wantErr(t, err, storage.ErrNotFound, "repoint a missing provider")
}

// testStartOAuthSessionAdmit: admit runs once for a session to be stored,
// never for a reused one, and its refusal stores nothing.
func testStartOAuthSessionAdmit(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	now := time.Now()
	first := newSession("s5", k)
	first.RequestKey = requestKey("r1")
	_, _, err := s.StartOAuthSession(ctx, first, now, nil)
	mustOK(t, err, "start session s5")
	// admit runs for a new session only; its refusal stores nothing.
	refused := errors.New("refused")
	admitted := 0
	admit := func() error { admitted++; return refused }
	other := newSession("s8", k)
	other.RequestKey = requestKey("r5")
	if _, _, err := s.StartOAuthSession(ctx, other, now, admit); !errors.Is(err, refused) || admitted != 1 {
		t.Errorf("a refused admit: err %v after %d calls", err, admitted)
	}
	_, err = s.GetOAuthSession(ctx, "s8")
	wantErr(t, err, storage.ErrNotFound, "get a session admit refused")
	reusing := newSession("s9", k)
	reusing.RequestKey = requestKey("r1")
	if got, reused, err := s.StartOAuthSession(ctx, reusing, now, admit); err != nil || !reused || got.ID != "s5" || admitted != 1 {
		t.Errorf("a reuse with admit: %q reused %v, err %v, admit called %d times", got.ID, reused, err, admitted)
	}
}

// testConcurrentStartOAuthSession: concurrent starts of one request store
// one session, admitted once, and every caller gets it.
func testConcurrentStartOAuthSession(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	const rounds = 5
	for round := range rounds {
		ids := make([]string, workers)
		var admitted atomic.Int32
		parallel(workers, func(i int) {
			sess := newSession(fmt.Sprintf("r%d-w%d", round, i), k)
			sess.RequestKey = requestKey(fmt.Sprintf("round-%d", round))
			got, _, err := s.StartOAuthSession(ctx, sess, time.Now(), func() error { admitted.Add(1); return nil })
			checkConcurrentErr(t, err, fmt.Sprintf("round %d: start by worker %d", round, i))
			ids[i] = got.ID
		})
		stored := 0
		for i := range workers {
			if _, err := s.GetOAuthSession(ctx, fmt.Sprintf("r%d-w%d", round, i)); err == nil {
				stored++
			}
			if ids[i] != ids[0] {
				t.Errorf("round %d: worker %d got session %q, worker 0 %q", round, i, ids[i], ids[0])
			}
		}
		if n := admitted.Load(); n != 1 {
			t.Errorf("round %d: admit ran %d times for one stored session", round, n)
		}
		if stored != 1 {
			t.Errorf("round %d: %d concurrent starts of one request stored %d sessions, want 1", round, workers, stored)
		}
	}
}
