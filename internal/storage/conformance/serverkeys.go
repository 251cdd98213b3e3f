package conformance

import (
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

func newServerKey(purpose, id string, created time.Time) storage.ServerKey {
	return storage.ServerKey{
		Purpose:   purpose,
		ID:        id,
		Key:       storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:" + purpose + "/" + id)},
		CreatedAt: created,
	}
}

func storedServerKey(k storage.ServerKey) storage.ServerKey {
	k.CreatedAt = asStored(k.CreatedAt)
	return k
}

func testServerKeys(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	keys, err := s.ListServerKeys(ctx, "wat")
	mustOK(t, err, "list server keys of an empty store")
	if len(keys) != 0 {
		t.Errorf("empty store lists server keys %v", keys)
	}

	// Created out of order; two share a creation time and are ordered by id.
	t0 := past()
	newest := newServerKey("wat", "a-newest", t0.Add(2*time.Hour))
	tieB := newServerKey("wat", "b-tie", t0.Add(time.Hour))
	tieA := newServerKey("wat", "a-tie", t0.Add(time.Hour))
	oldest := newServerKey("wat", "z-oldest", t0)
	other := newServerKey("audit", "a-tie", t0)
	for _, k := range []storage.ServerKey{newest, tieB, tieA, oldest, other} {
		mustOK(t, s.CreateServerKey(ctx, k), "create server key "+k.Purpose+"/"+k.ID)
	}
	dup := newServerKey("wat", "b-tie", t0)
	dup.Key.Blob = []byte("other")
	wantErr(t, s.CreateServerKey(ctx, dup), storage.ErrAlreadyExists, "create a duplicate server key")

	keys, err = s.ListServerKeys(ctx, "wat")
	mustOK(t, err, "list server keys")
	wantDiff(t, "server keys, oldest first",
		[]storage.ServerKey{storedServerKey(oldest), storedServerKey(tieA), storedServerKey(tieB), storedServerKey(newest)}, keys)
	keys, err = s.ListServerKeys(ctx, "audit")
	mustOK(t, err, "list another purpose's keys")
	wantDiff(t, "keys of another purpose", []storage.ServerKey{storedServerKey(other)}, keys)

	mustOK(t, s.DeleteServerKey(ctx, "wat", "a-tie"), "delete server key")
	wantErr(t, s.DeleteServerKey(ctx, "wat", "a-tie"), storage.ErrNotFound, "delete a server key twice")
	wantErr(t, s.DeleteServerKey(ctx, "nothing", "a-tie"), storage.ErrNotFound, "delete a key of an unknown purpose")
	keys, err = s.ListServerKeys(ctx, "wat")
	mustOK(t, err, "list server keys after delete")
	wantDiff(t, "server keys after delete",
		[]storage.ServerKey{storedServerKey(oldest), storedServerKey(tieB), storedServerKey(newest)}, keys)
	keys, err = s.ListServerKeys(ctx, "audit")
	mustOK(t, err, "list another purpose's keys after delete")
	if len(keys) != 1 {
		t.Errorf("deleting wat/a-tie left %d audit keys, want 1", len(keys))
	}

	// A zero creation time means now.
	before := time.Now().Add(-time.Second)
	mustOK(t, s.CreateServerKey(ctx, newServerKey("fresh", "k", time.Time{})), "create server key with zero time")
	keys, err = s.ListServerKeys(ctx, "fresh")
	mustOK(t, err, "list fresh keys")
	if len(keys) != 1 {
		t.Fatalf("listed %d fresh keys, want 1", len(keys))
	}
	checkUpdatedAt(t, "CreatedAt of a key created with a zero time", keys[0].CreatedAt, before)

	// The vault binds a key to "<purpose>/<id>", so a purpose with a slash
	// would be ambiguous; a key without a secret is meaningless.
	for what, k := range map[string]storage.ServerKey{
		"a slash in the purpose": newServerKey("a/b", "c", t0),
		"an empty purpose":       newServerKey("", "c", t0),
		"an empty id":            newServerKey("p", "", t0),
		"no key":                 {Purpose: "p", ID: "c", CreatedAt: t0},
	} {
		if err := s.CreateServerKey(ctx, k); err == nil {
			t.Errorf("create a server key with %s succeeded", what)
		}
	}
}
