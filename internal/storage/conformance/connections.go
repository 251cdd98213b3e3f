package conformance

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

func newConnection(k storage.ConnectionKey) storage.Connection {
	return storage.Connection{
		ConnectionKey: k,
		Status:        storage.ConnectionActive,
		Scopes:        []string{"repo"},
		Details:       []byte(`{"resources":["https://api.example"]}`),
		Tokens:        storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:tokens:" + k.ProviderID + ":" + k.Workload + ":" + k.User)},
		ExpiresAt:     time.Now().Add(time.Hour),
		CreatedAt:     past(),
		LastUsedAt:    past().Add(time.Minute),
	}
}

// storedConnection is c with its times as stored (a zero time stays zero).
func storedConnection(c storage.Connection) storage.Connection {
	for _, ts := range []*time.Time{&c.ExpiresAt, &c.LeaseUntil, &c.CreatedAt, &c.UpdatedAt, &c.LastUsedAt} {
		if !ts.IsZero() {
			*ts = asStored(*ts)
		}
	}
	return c
}

// connect stores c through a session of its own, as the data plane does,
// and returns the stored connection.
func connect(t testing.TB, s storage.Storage, c storage.Connection) storage.Connection {
	t.Helper()
	id := fmt.Sprintf("connect-%s-%s-%s-%d", c.ProviderID, c.Workload, c.User, time.Now().UnixNano())
	authorize(t, s, id, c.ConnectionKey)
	mustOK(t, s.CompleteOAuthSession(t.Context(), id, c), "complete session "+id)
	got, err := s.GetConnection(t.Context(), c.ConnectionKey)
	mustOK(t, err, "get connection")
	return got
}

func testConnections(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	_, err := s.GetConnection(ctx, k)
	wantErr(t, err, storage.ErrNotFound, "get a connection from an empty store")

	c := newConnection(k)
	got := connect(t, s, c)
	want := storedConnection(c)
	want.Version, want.UpdatedAt = 1, got.UpdatedAt
	wantDiff(t, "connection", want, got)
	for what, ts := range map[string]time.Time{
		"ExpiresAt": got.ExpiresAt, "CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt, "LastUsedAt": got.LastUsedAt,
	} {
		if ts.Location() != time.UTC {
			t.Errorf("%s = %v, want UTC", what, ts)
		}
	}

	// Every part of the key names the connection.
	for _, other := range []storage.ConnectionKey{
		{ProviderID: "pid-2", Workload: "w1", User: "alice"},
		{ProviderID: "pid-1", Workload: "w2", User: "alice"},
		{ProviderID: "pid-1", Workload: "w1", User: "Alice"},
		{ProviderID: "pid-1", Workload: "w1"},
	} {
		_, err := s.GetConnection(ctx, other)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("get connection %+v", other))
	}

	mustOK(t, s.DeleteConnection(ctx, k), "delete connection")
	_, err = s.GetConnection(ctx, k)
	wantErr(t, err, storage.ErrNotFound, "get deleted connection")
	wantErr(t, s.DeleteConnection(ctx, k), storage.ErrNotFound, "delete connection twice")

	// A connection deleted and authorized again starts over at Version 1.
	got = connect(t, s, c)
	if got.Version != 1 {
		t.Errorf("re-created connection has Version %d, want 1", got.Version)
	}
}

func testConnectionNilVersusEmpty(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	check := func(what string, got storage.Connection, scopes []string, details []byte) {
		t.Helper()
		if (got.Scopes == nil) != (scopes == nil) || len(got.Scopes) != len(scopes) {
			t.Errorf("%s: Scopes = %#v, want %#v", what, got.Scopes, scopes)
		}
		if (got.Details == nil) != (details == nil) || len(got.Details) != len(details) {
			t.Errorf("%s: Details = %#v, want %#v", what, got.Details, details)
		}
	}
	for _, c := range []struct {
		user    string
		scopes  []string
		details []byte
	}{
		{"nil", nil, nil},
		{"empty", []string{}, []byte{}},
		{"mixed", nil, []byte{}},
	} {
		k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: c.user}
		bare := newConnection(k)
		bare.Scopes, bare.Details = c.scopes, c.details
		// An unknown expiry and absent tokens stay zero.
		bare.ExpiresAt, bare.Tokens = time.Time{}, storage.Sealed{}
		got := connect(t, s, bare)
		check("completed "+c.user, got, c.scopes, c.details)
		if !got.ExpiresAt.IsZero() || !got.Tokens.IsZero() || !got.LeaseUntil.IsZero() {
			t.Errorf("%s: ExpiresAt %v, Tokens %+v, LeaseUntil %v, want all zero", c.user, got.ExpiresAt, got.Tokens, got.LeaseUntil)
		}
		list, err := s.ListConnections(ctx, storage.ConnectionFilter{User: c.user})
		mustOK(t, err, "list "+c.user)
		if len(list) != 1 {
			t.Fatalf("listed %d connections of %s, want 1", len(list), c.user)
		}
		check("listed "+c.user, list[0], c.scopes, c.details)

		// Flip each one through an update.
		scopes, details := []string{}, []byte{}
		if c.scopes != nil {
			scopes = nil
		}
		if c.details != nil {
			details = nil
		}
		updated, err := s.UpdateConnection(ctx, k, func(c storage.Connection) (storage.Connection, error) {
			c.Scopes, c.Details = scopes, details
			return c, nil
		})
		mustOK(t, err, "update "+c.user)
		check("update result "+c.user, updated, scopes, details)
		got, err = s.GetConnection(ctx, k)
		mustOK(t, err, "get updated "+c.user)
		check("updated "+c.user, got, scopes, details)
	}
}

func testConnectionUpdater(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	orig := connect(t, s, newConnection(k))
	leased, err := s.AcquireRefreshLease(ctx, k, "refresher", time.Now().Add(time.Minute))
	mustOK(t, err, "acquire lease")

	_, err = s.UpdateConnection(ctx, k, func(c storage.Connection) (storage.Connection, error) {
		c.Status = storage.ConnectionNeedsConsent
		return c, fmt.Errorf("wrapped: %w", errRefused)
	})
	wantErr(t, err, errRefused, "update with refusing updater")
	got, err := s.GetConnection(ctx, k)
	mustOK(t, err, "get connection")
	wantDiff(t, "connection after aborted update", leased, got)

	// The key, CreatedAt, Version and the lease are the store's, whatever
	// the updater returns; the rest is the updater's.
	used := time.Now().Add(-time.Second)
	expires := time.Now().Add(2 * time.Hour)
	updated, err := s.UpdateConnection(ctx, k, func(c storage.Connection) (storage.Connection, error) {
		wantDiff(t, "connection passed to updater", leased, c)
		c.ProviderID, c.Workload, c.User = "pid-2", "w2", "mallory"
		c.CreatedAt, c.UpdatedAt = time.Now(), time.Time{}
		c.Version = 99
		c.LeaseOwner, c.LeaseUntil, c.LeaseToken = "forged", time.Now().Add(time.Hour), 42
		c.Scopes = []string{"repo", "gist"}
		c.Details = []byte(`{}`)
		c.ExpiresAt = expires
		c.LastUsedAt = used
		return c, nil
	})
	mustOK(t, err, "update connection")
	want := leased
	want.Scopes, want.Details = []string{"repo", "gist"}, []byte(`{}`)
	want.ExpiresAt, want.LastUsedAt = asStored(expires), asStored(used)
	checkUpdatedAt(t, "UpdatedAt after update", updated.UpdatedAt, orig.UpdatedAt.Add(-time.Microsecond))
	want.UpdatedAt = updated.UpdatedAt
	wantDiff(t, "UpdateConnection's result", want, updated)
	got, err = s.GetConnection(ctx, k)
	mustOK(t, err, "get updated connection")
	wantDiff(t, "stored connection vs. UpdateConnection's result", updated, got)
	for _, other := range []storage.ConnectionKey{{ProviderID: "pid-2", Workload: "w2", User: "mallory"}, {ProviderID: "pid-2", Workload: "w1", User: "alice"}} {
		_, err = s.GetConnection(ctx, other)
		wantErr(t, err, storage.ErrNotFound, "get connection under the updater's key")
	}

	// A zero LastUsedAt keeps the stored one.
	updated, err = s.UpdateConnection(ctx, k, func(c storage.Connection) (storage.Connection, error) {
		wantDiff(t, "connection passed to second updater", got, c)
		c.LastUsedAt = time.Time{}
		return c, nil
	})
	mustOK(t, err, "update with a zero LastUsedAt")
	checkStoredTime(t, "LastUsedAt after an update with a zero one", updated.LastUsedAt, used)

	// The lease the updates left alone still works.
	_, err = s.FinishRefresh(ctx, k, "refresher", leased.LeaseToken, func(c storage.Connection) (storage.Connection, error) { return c, nil })
	mustOK(t, err, "finish the refresh after updates")
}

// testConnectionVersion checks that Version goes up by exactly one when,
// and only when, an update or a refresh changes Tokens or Status.
func testConnectionVersion(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	version := connect(t, s, newConnection(k)).Version
	type change struct {
		what  string
		apply func(*storage.Connection)
		bumps bool
	}
	changes := []change{
		{"nothing", func(*storage.Connection) {}, false},
		{"LastUsedAt", func(c *storage.Connection) { c.LastUsedAt = time.Now() }, false},
		{"ExpiresAt", func(c *storage.Connection) { c.ExpiresAt = c.ExpiresAt.Add(time.Hour) }, false},
		{"Scopes", func(c *storage.Connection) { c.Scopes = append(c.Scopes, "more") }, false},
		{"Details", func(c *storage.Connection) { c.Details = append(c.Details, ' ') }, false},
		{"Version alone", func(c *storage.Connection) { c.Version += 10 }, false},
		{"Status", func(c *storage.Connection) { c.Status = storage.ConnectionNeedsConsent }, true},
		{"Status back", func(c *storage.Connection) { c.Status = storage.ConnectionActive }, true},
		{"the token blob", func(c *storage.Connection) { c.Tokens.Blob = append(c.Tokens.Blob, '+') }, true},
		{"the token key id", func(c *storage.Connection) { c.Tokens.KeyID += "-next" }, true},
		{"Tokens and Status", func(c *storage.Connection) {
			c.Tokens = storage.Sealed{KeyID: "key-3", Blob: []byte("both")}
			c.Status = storage.ConnectionNeedsConsent
		}, true},
		{"Tokens to none", func(c *storage.Connection) { c.Tokens = storage.Sealed{} }, true},
		{"Tokens to the same value", func(c *storage.Connection) { c.Tokens = storage.Sealed{} }, false},
	}
	for _, via := range []string{"UpdateConnection", "FinishRefresh"} {
		for _, ch := range changes {
			fn := func(c storage.Connection) (storage.Connection, error) {
				ch.apply(&c)
				return c, nil
			}
			var (
				got storage.Connection
				err error
			)
			if via == "UpdateConnection" {
				got, err = s.UpdateConnection(ctx, k, fn)
			} else {
				lease, lerr := s.AcquireRefreshLease(ctx, k, "refresher", time.Now().Add(time.Minute))
				mustOK(t, lerr, "acquire lease")
				got, err = s.FinishRefresh(ctx, k, "refresher", lease.LeaseToken, fn)
			}
			mustOK(t, err, via+" changing "+ch.what)
			want := version
			if ch.bumps {
				want++
			}
			if got.Version != want {
				t.Errorf("%s changing %s: Version %d → %d, want %d", via, ch.what, version, got.Version, want)
			}
			stored, err := s.GetConnection(ctx, k)
			mustOK(t, err, "get connection")
			if stored.Version != got.Version {
				t.Errorf("%s changing %s: returned Version %d, stored %d", via, ch.what, got.Version, stored.Version)
			}
			version = stored.Version
		}
		// Reset for the second pass.
		_, err := s.UpdateConnection(ctx, k, func(c storage.Connection) (storage.Connection, error) {
			c.Status, c.Tokens = storage.ConnectionActive, storage.Sealed{KeyID: "key-1", Blob: []byte("reset")}
			return c, nil
		})
		mustOK(t, err, "reset connection")
		version++
	}
}

// filterMatches reports whether the connection k passes the filter f.
func filterMatches(f storage.ConnectionFilter, k storage.ConnectionKey) bool {
	return (f.ProviderID == "" || k.ProviderID == f.ProviderID) &&
		(f.Workload == "" || k.Workload == f.Workload) &&
		(f.User == "" || k.User == f.User)
}

// walkPages lists the connections that pass f in pages of limit, each page
// starting after the last key of the one before.
func walkPages(list func(storage.ConnectionFilter) []storage.ConnectionKey, f storage.ConnectionFilter, limit int) []storage.ConnectionKey {
	walked := []storage.ConnectionKey{}
	for after := (storage.ConnectionKey{}); ; {
		page := f
		page.After, page.Limit = after, limit
		got := list(page)
		walked = append(walked, got...)
		if len(got) < limit {
			return walked
		}
		after = got[len(got)-1]
	}
}

func testListConnections(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	list := func(f storage.ConnectionFilter) []storage.ConnectionKey {
		t.Helper()
		got, err := s.ListConnections(ctx, f)
		mustOK(t, err, fmt.Sprintf("list connections %+v", f))
		return keysOf(got)
	}
	if got := list(storage.ConnectionFilter{}); len(got) != 0 {
		t.Errorf("empty store lists %v", got)
	}

	// Users sort bytewise: upper case before lower case, "-" before "_".
	users := []string{"b", "a_1", "B", "a", "a-1"}
	var all []storage.ConnectionKey
	for _, p := range []string{"pid-2", "pid-1"} {
		for _, w := range []string{"w2", "w1"} {
			for _, u := range users {
				k := storage.ConnectionKey{ProviderID: p, Workload: w, User: u}
				connect(t, s, newConnection(k))
				all = append(all, k)
			}
		}
	}
	slices.SortFunc(all, compareKeys)
	where := func(keep func(storage.ConnectionKey) bool) []storage.ConnectionKey {
		out := []storage.ConnectionKey{}
		for _, k := range all {
			if keep(k) {
				out = append(out, k)
			}
		}
		return out
	}
	for _, f := range []storage.ConnectionFilter{
		{},
		{ProviderID: "pid-1"},
		{Workload: "w2"},
		{User: "a-1"},
		{ProviderID: "pid-2", Workload: "w1"},
		{ProviderID: "pid-1", User: "B"},
		{Workload: "w1", User: "b"},
		{ProviderID: "pid-2", Workload: "w2", User: "a_1"},
		{ProviderID: "pid-3"},
		{User: "A"},
	} {
		want := where(func(k storage.ConnectionKey) bool { return filterMatches(f, k) })
		wantDiff(t, fmt.Sprintf("connections %+v", f), want, list(f))

		// Walking page by page visits every match once, in order.
		for _, limit := range []int{1, 3} {
			wantDiff(t, fmt.Sprintf("connections %+v walked in pages of %d", f, limit), want, walkPages(list, f, limit))
		}
	}

	// A cursor need not name a connection, and orders by the whole key.
	for _, c := range []struct {
		after storage.ConnectionKey
		want  []storage.ConnectionKey
	}{
		{storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "a0"}, where(func(k storage.ConnectionKey) bool {
			return compareKeys(k, storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "a0"}) > 0
		})},
		{storage.ConnectionKey{ProviderID: "pid-1", Workload: "w2"}, where(func(k storage.ConnectionKey) bool {
			return k.ProviderID == "pid-2" || k.Workload == "w2"
		})},
		{storage.ConnectionKey{ProviderID: "pid-1"}, all},
		{storage.ConnectionKey{ProviderID: "pid-2", Workload: "w2", User: "b"}, []storage.ConnectionKey{}},
		{storage.ConnectionKey{ProviderID: "zzz"}, []storage.ConnectionKey{}},
	} {
		wantDiff(t, fmt.Sprintf("connections after %+v", c.after), c.want, list(storage.ConnectionFilter{After: c.after}))
	}
	// Filters and cursor combine.
	wantDiff(t, "user b after pid-1/w2",
		[]storage.ConnectionKey{{ProviderID: "pid-1", Workload: "w2", User: "b"}, {ProviderID: "pid-2", Workload: "w1", User: "b"}},
		list(storage.ConnectionFilter{User: "b", After: storage.ConnectionKey{ProviderID: "pid-1", Workload: "w2", User: "a"}, Limit: 2}))
}

// keysOf returns the keys of connections, never nil.
func keysOf(conns []storage.Connection) []storage.ConnectionKey {
	keys := make([]storage.ConnectionKey, 0, len(conns))
	for _, c := range conns {
		keys = append(keys, c.ConnectionKey)
	}
	return keys
}

func compareKeys(a, b storage.ConnectionKey) int {
	return cmp.Or(cmp.Compare(a.ProviderID, b.ProviderID), cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.User, b.User))
}

// testConnectionPageLimits checks the default page size and the hard cap.
func testConnectionPageLimits(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	var keys []storage.ConnectionKey
	for i := range maxPageLimit + 1 {
		k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: fmt.Sprintf("user-%04d", i)}
		id := "s-" + k.User
		sess := newSession(id, k)
		sess.Status = storage.SessionAuthorized
		mustOK(t, s.CreateOAuthSession(ctx, sess), "create session "+id)
		mustOK(t, s.CompleteOAuthSession(ctx, id, newConnection(k)), "complete session "+id)
		keys = append(keys, k)
	}
	for _, c := range []struct {
		limit int
		want  []storage.ConnectionKey
	}{
		{0, keys[:defaultPageLimit]},
		{-5, keys[:defaultPageLimit]},
		{maxPageLimit, keys[:maxPageLimit]},
		{maxPageLimit + 1, keys[:maxPageLimit]},
		{1 << 30, keys[:maxPageLimit]},
	} {
		got, err := s.ListConnections(ctx, storage.ConnectionFilter{Limit: c.limit})
		mustOK(t, err, fmt.Sprintf("list limit %d", c.limit))
		wantDiff(t, fmt.Sprintf("connections with limit %d", c.limit), c.want,
			keysOf(got))
	}
	got, err := s.ListConnections(ctx, storage.ConnectionFilter{After: keys[maxPageLimit-1], Limit: maxPageLimit})
	mustOK(t, err, "list the last page")
	wantDiff(t, "last page", keys[maxPageLimit:], keysOf(got))
}

func testIdleConnections(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	grantFixture(t, s)
	now := time.Now()
	lastUse := map[string]time.Time{
		"idle":     now.Add(-48 * time.Hour),
		"leased":   now.Add(-47 * time.Hour), // idle, whatever its lease
		"boundary": now.Add(-time.Hour),
		"touched":  now.Add(-46 * time.Hour), // saved by a use
		"recent":   now.Add(-time.Minute),
	}
	key := func(user string) storage.ConnectionKey {
		return storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: user}
	}
	for user, used := range lastUse {
		c := newConnection(key(user))
		c.LastUsedAt = used
		connect(t, s, c)
	}
	_, err := s.AcquireRefreshLease(ctx, key("leased"), "refresher", now.Add(time.Minute))
	mustOK(t, err, "acquire lease")
	_, err = s.UpdateConnection(ctx, key("touched"), func(c storage.Connection) (storage.Connection, error) {
		c.LastUsedAt = now
		return c, nil
	})
	mustOK(t, err, "touch connection")

	check := func(what string, keep func(user string) bool) {
		t.Helper()
		for user := range lastUse {
			_, err := s.GetConnection(ctx, key(user))
			if keep(user) {
				mustOK(t, err, what+": get connection of "+user)
			} else {
				wantErr(t, err, storage.ErrNotFound, what+": get connection of "+user)
			}
		}
	}
	n, err := s.DeleteIdleConnections(ctx, now.Add(-2*time.Hour))
	mustOK(t, err, "delete idle connections")
	if n != 2 {
		t.Errorf("deleted %d idle connections, want 2", n)
	}
	check("after the first purge", func(user string) bool { return user != "idle" && user != "leased" })

	// A connection last used exactly at t was not idle before t.
	n, err = s.DeleteIdleConnections(ctx, lastUse["boundary"])
	mustOK(t, err, "delete connections idle before the boundary")
	if n != 0 {
		t.Errorf("deleted %d connections last used exactly at t, want 0", n)
	}
	n, err = s.DeleteIdleConnections(ctx, lastUse["boundary"].Add(time.Microsecond))
	mustOK(t, err, "delete connections idle just after the boundary")
	if n != 1 {
		t.Errorf("deleted %d connections, want the boundary one", n)
	}
	check("after the second purge", func(user string) bool { return user == "touched" || user == "recent" })
}

// leaseCase holds what the steps of testRefreshLease share: one
// connection and every lease token granted on it, in order.
type leaseCase struct {
	t      *testing.T
	s      storage.Storage
	k      storage.ConnectionKey
	tokens []int64
}

// get returns the connection as stored.
func (lc *leaseCase) get() storage.Connection {
	lc.t.Helper()
	c, err := lc.s.GetConnection(lc.t.Context(), lc.k)
	mustOK(lc.t, err, "get connection")
	return c
}

// noUpdater is an updater that must never run, for calls without the
// lease.
func (lc *leaseCase) noUpdater(what string) func(storage.Connection) (storage.Connection, error) {
	return func(c storage.Connection) (storage.Connection, error) {
		lc.t.Errorf("%s: updater ran without the lease", what)
		c.Tokens = storage.Sealed{KeyID: "key-x", Blob: []byte("must not be stored")}
		return c, nil
	}
}

func testRefreshLease(t *testing.T, s storage.Storage) {
	grantFixture(t, s)
	k := storage.ConnectionKey{ProviderID: "pid-1", Workload: "w1", User: "alice"}
	orig := connect(t, s, newConnection(k))
	if orig.LeaseOwner != "" || !orig.LeaseUntil.IsZero() || orig.LeaseToken != 0 {
		t.Errorf("new connection has a lease: %q until %v, token %d", orig.LeaseOwner, orig.LeaseUntil, orig.LeaseToken)
	}
	lc := &leaseCase{t: t, s: s, k: k}
	a := lc.acquireAndHold(orig)
	lc.finish(a)
	lc.failThenRelease()
	lc.takeOver()
	late := lc.finishLate()

	// Lease tokens strictly increase, by one per grant.
	for i, tok := range lc.tokens {
		if want := orig.LeaseToken + int64(i) + 1; tok != want {
			t.Errorf("grant %d got lease token %d, want %d (all: %v)", i, tok, want, lc.tokens)
		}
	}
	lc.refuseMalformed(late)
}

// acquireAndHold takes the lease of the connection orig and checks that
// only its holder, with its token, may renew or finish it.
func (lc *leaseCase) acquireAndHold(orig storage.Connection) storage.Connection {
	t, s, k, ctx := lc.t, lc.s, lc.k, lc.t.Context()
	// Acquire: the lease, a new token, nothing else changes.
	until := time.Now().Add(time.Minute)
	a, err := s.AcquireRefreshLease(ctx, k, "a", until)
	mustOK(t, err, "acquire a free lease")
	want := orig
	want.LeaseOwner, want.LeaseUntil, want.LeaseToken = "a", asStored(until), orig.LeaseToken+1
	wantDiff(t, "connection with lease", want, a)
	wantDiff(t, "stored connection with lease", a, lc.get())
	lc.tokens = append(lc.tokens, a.LeaseToken)

	// Held: others and the holder itself are refused and shown the holder.
	for _, owner := range []string{"b", "a"} {
		got, err := s.AcquireRefreshLease(ctx, k, owner, time.Now().Add(time.Hour))
		wantErr(t, err, storage.ErrConflict, "acquire a lease held by a as "+owner)
		wantDiff(t, "connection returned with the conflict", a, got)
	}
	wantDiff(t, "connection after refused acquisitions", a, lc.get())

	// Renew: only the holder, with its token; nothing else changes.
	renewed := time.Now().Add(2 * time.Minute)
	mustOK(t, s.RenewRefreshLease(ctx, k, "a", a.LeaseToken, renewed), "renew the lease")
	a.LeaseUntil = asStored(renewed)
	wantDiff(t, "connection with the renewed lease", a, lc.get())
	for what, err := range map[string]error{
		"another owner":  s.RenewRefreshLease(ctx, k, "b", a.LeaseToken, time.Now().Add(time.Hour)),
		"a wrong token":  s.RenewRefreshLease(ctx, k, "a", a.LeaseToken+1, time.Now().Add(time.Hour)),
		"an older token": s.RenewRefreshLease(ctx, k, "a", a.LeaseToken-1, time.Now().Add(time.Hour)),
	} {
		wantErr(t, err, storage.ErrConflict, "renew by "+what)
	}
	wantErr(t, s.RenewRefreshLease(ctx, storage.ConnectionKey{ProviderID: k.ProviderID, Workload: k.Workload, User: "nobody"}, "a", a.LeaseToken, time.Now().Add(time.Hour)),
		storage.ErrNotFound, "renew the lease of a missing connection")
	wantDiff(t, "connection after refused renewals", a, lc.get())

	// Finish: only the holder, with its token.
	for what, call := range map[string]func() (storage.Connection, error){
		"another owner": func() (storage.Connection, error) {
			return s.FinishRefresh(ctx, k, "b", a.LeaseToken, lc.noUpdater("finish by another owner"))
		},
		"a wrong token": func() (storage.Connection, error) {
			return s.FinishRefresh(ctx, k, "a", a.LeaseToken+1, lc.noUpdater("finish with a wrong token"))
		},
		"an older token": func() (storage.Connection, error) {
			return s.FinishRefresh(ctx, k, "a", a.LeaseToken-1, lc.noUpdater("finish with an older token"))
		},
	} {
		got, err := call()
		wantErr(t, err, storage.ErrConflict, "finish by "+what)
		wantDiff(t, "connection returned when finishing by "+what, a, got)
	}
	wantDiff(t, "connection after refused finishes", a, lc.get())

	return a
}

// finish stores a refresh's result as the lease's holder, releasing the
// lease, which cannot then be finished again.
func (lc *leaseCase) finish(a storage.Connection) {
	t, s, k, ctx := lc.t, lc.s, lc.k, lc.t.Context()
	expires := time.Now().Add(time.Hour)
	before := time.Now().Add(-time.Second)
	done, err := s.FinishRefresh(ctx, k, "a", a.LeaseToken, func(c storage.Connection) (storage.Connection, error) {
		wantDiff(t, "connection passed to the refresh", a, c)
		c.Tokens = storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:access-2+refresh-2")}
		c.ExpiresAt = expires
		c.Scopes = []string{"repo", "user"}
		c.LeaseOwner, c.LeaseUntil, c.LeaseToken = "forged", time.Now().Add(time.Hour), 99
		return c, nil
	})
	mustOK(t, err, "finish the refresh")
	want := a
	want.Tokens = storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:access-2+refresh-2")}
	want.ExpiresAt, want.Scopes = asStored(expires), []string{"repo", "user"}
	want.Version = a.Version + 1
	want.LeaseOwner, want.LeaseUntil = "", time.Time{}
	checkUpdatedAt(t, "UpdatedAt after the refresh", done.UpdatedAt, before)
	want.UpdatedAt = done.UpdatedAt
	wantDiff(t, "FinishRefresh's result", want, done)
	wantDiff(t, "stored connection after the refresh", done, lc.get())

	// A released lease cannot be finished again.
	_, err = s.FinishRefresh(ctx, k, "a", a.LeaseToken, lc.noUpdater("finish twice"))
	wantErr(t, err, storage.ErrConflict, "finish a released lease")

}

// failThenRelease checks that a failed refresh stores nothing and keeps
// the lease, and that an unchanged result releases it.
func (lc *leaseCase) failThenRelease() {
	t, s, k, ctx := lc.t, lc.s, lc.k, lc.t.Context()
	// A failed refresh stores nothing and keeps the lease until it runs out.
	b, err := s.AcquireRefreshLease(ctx, k, "b", time.Now().Add(time.Minute))
	mustOK(t, err, "acquire the released lease")
	lc.tokens = append(lc.tokens, b.LeaseToken)
	_, err = s.FinishRefresh(ctx, k, "b", b.LeaseToken, func(c storage.Connection) (storage.Connection, error) {
		c.Status = storage.ConnectionNeedsConsent
		return c, errRefused
	})
	wantErr(t, err, errRefused, "finish with a failing updater")
	wantDiff(t, "connection after a failed refresh", b, lc.get())
	// An unchanged result releases the lease and leaves Version alone.
	released, err := s.FinishRefresh(ctx, k, "b", b.LeaseToken, func(c storage.Connection) (storage.Connection, error) { return c, nil })
	mustOK(t, err, "release the lease")
	if released.LeaseOwner != "" || !released.LeaseUntil.IsZero() || released.LeaseToken != b.LeaseToken || released.Version != b.Version {
		t.Errorf("released lease: owner %q until %v token %d version %d", released.LeaseOwner, released.LeaseUntil, released.LeaseToken, released.Version)
	}

}

// takeOver checks that a lease that ran out goes to the next caller, and
// that its old holder's result is refused.
func (lc *leaseCase) takeOver() {
	t, s, k, ctx := lc.t, lc.s, lc.k, lc.t.Context()
	// Takeover: a lease that ran out goes to the next caller, and its old
	// holder's result is refused.
	c, err := s.AcquireRefreshLease(ctx, k, "c", time.Now().Add(-time.Second))
	mustOK(t, err, "acquire a lease that has already run out")
	lc.tokens = append(lc.tokens, c.LeaseToken)
	d, err := s.AcquireRefreshLease(ctx, k, "d", time.Now().Add(time.Minute))
	mustOK(t, err, "take over a lease that ran out")
	lc.tokens = append(lc.tokens, d.LeaseToken)
	wantErr(t, s.RenewRefreshLease(ctx, k, "c", c.LeaseToken, time.Now().Add(time.Hour)), storage.ErrConflict, "renew a lease taken over")
	got, err := s.FinishRefresh(ctx, k, "c", c.LeaseToken, lc.noUpdater("finish after takeover"))
	wantErr(t, err, storage.ErrConflict, "finish by the holder whose lease was taken over")
	wantDiff(t, "connection returned to the overtaken holder", d, got)
	wantDiff(t, "connection after the overtaken holder's finish", d, lc.get())
	refreshed, err := s.FinishRefresh(ctx, k, "d", d.LeaseToken, func(c storage.Connection) (storage.Connection, error) {
		c.Tokens = storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:access-3+refresh-3")}
		return c, nil
	})
	mustOK(t, err, "finish by the new holder")
	if refreshed.Version != d.Version+1 || string(refreshed.Tokens.Blob) != "sealed:access-3+refresh-3" {
		t.Errorf("new holder's result: version %d, tokens %q", refreshed.Version, refreshed.Tokens.Blob)
	}
	// The overtaken holder can no longer finish, even with the lease free.
	_, err = s.FinishRefresh(ctx, k, "c", c.LeaseToken, lc.noUpdater("finish after takeover and release"))
	wantErr(t, err, storage.ErrConflict, "finish by the overtaken holder after the new holder released")

}

// finishLate checks that a lease that ran out but that no one took over is
// still held, and returns the connection its holder stored.
func (lc *leaseCase) finishLate() storage.Connection {
	t, s, k, ctx := lc.t, lc.s, lc.k, lc.t.Context()
	// A lease that ran out but that no one took over is still held: its
	// result (a rotated refresh token) must not be lost.
	e, err := s.AcquireRefreshLease(ctx, k, "e", time.Now().Add(-time.Second))
	mustOK(t, err, "acquire a lease that has already run out")
	lc.tokens = append(lc.tokens, e.LeaseToken)
	// Its holder may renew it too, which keeps the others out again.
	mustOK(t, s.RenewRefreshLease(ctx, k, "e", e.LeaseToken, time.Now().Add(time.Minute)), "renew a lease that ran out but was not taken over")
	_, err = s.AcquireRefreshLease(ctx, k, "f", time.Now().Add(time.Minute))
	wantErr(t, err, storage.ErrConflict, "acquire a renewed lease")
	late, err := s.FinishRefresh(ctx, k, "e", e.LeaseToken, func(c storage.Connection) (storage.Connection, error) {
		c.Tokens = storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:access-4+refresh-4")}
		c.Status = storage.ConnectionNeedsConsent
		return c, nil
	})
	mustOK(t, err, "finish a lease that ran out but was not taken over")
	if late.Version != e.Version+1 || late.Status != storage.ConnectionNeedsConsent {
		t.Errorf("late result: version %d (want %d), status %s", late.Version, e.Version+1, late.Status)
	}

	return late
}

// refuseMalformed checks that calls without an owner or an expiry are
// refused.
func (lc *leaseCase) refuseMalformed(late storage.Connection) {
	t, s, k, ctx := lc.t, lc.s, lc.k, lc.t.Context()
	// Malformed calls are refused.
	if _, err := s.AcquireRefreshLease(ctx, k, "", time.Now().Add(time.Minute)); err == nil {
		t.Error("acquire a lease for an empty owner succeeded")
	}
	if _, err := s.AcquireRefreshLease(ctx, k, "f", time.Time{}); err == nil {
		t.Error("acquire a lease without an expiry succeeded")
	}
	if err := s.RenewRefreshLease(ctx, k, "", late.LeaseToken, time.Now().Add(time.Minute)); err == nil {
		t.Error("renew a lease for an empty owner succeeded")
	}
	if _, err := s.FinishRefresh(ctx, k, "", late.LeaseToken, lc.noUpdater("finish for an empty owner")); err == nil {
		t.Error("finish a refresh for an empty owner succeeded")
	}
	wantDiff(t, "connection after malformed calls", late, lc.get())
}
