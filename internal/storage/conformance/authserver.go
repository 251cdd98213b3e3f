package conformance

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// The authorization server's storage: clients, authorization requests,
// refresh tokens, consents and one-time token ids.

// sum is the SHA-256 of s, as the authorization server stores its
// secrets.
func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func newOAuthClient(id string) storage.OAuthClient {
	return storage.OAuthClient{
		ID:         id,
		Metadata:   []byte(`{"redirect_uris":["https://client.example/cb"],"client_name":"` + id + `"}`),
		SecretHash: sum("secret:" + id),
		CreatedAt:  past(),
	}
}

func newAuthRequest(id, clientID string) storage.AuthRequest {
	return storage.AuthRequest{
		ID:             id,
		LoginStateHash: sum("login:" + id),
		Status:         storage.AuthRequestLogin,
		ClientID:       clientID,
		RedirectURI:    "https://client.example/cb",
		State:          "client-state-" + id,
		CodeChallenge:  "challenge-" + id,
		Resource:       "https://mcp.example/",
		Scopes:         []string{"tools:read"},
		ExpiresAt:      time.Now().Add(10 * time.Minute),
		CreatedAt:      past(),
		UpdatedAt:      past(),
	}
}

func storedAuthRequest(a storage.AuthRequest) storage.AuthRequest {
	a.ExpiresAt, a.CreatedAt, a.UpdatedAt = asStored(a.ExpiresAt), asStored(a.CreatedAt), asStored(a.UpdatedAt)
	return a
}

// issueCode moves a new request of client c1 through login and consent
// to AuthRequestCode with the code "code:<id>".
func issueCode(t testing.TB, s storage.Storage, id string) storage.AuthRequest {
	t.Helper()
	ctx := t.Context()
	mustOK(t, s.CreateAuthRequest(ctx, newAuthRequest(id, "c1")), "create authorization request "+id)
	a, err := s.UpdateAuthRequest(ctx, id, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.Status, a.User, a.CodeHash = storage.AuthRequestCode, "alice", sum("code:"+id)
		return a, nil
	})
	mustOK(t, err, "issue the code of "+id)
	return a
}

func newRefreshToken(name, family, clientID, user, resource string) storage.OAuthRefreshToken {
	return storage.OAuthRefreshToken{
		Hash:      sum("refresh:" + name),
		Family:    family,
		ClientID:  clientID,
		User:      user,
		Resource:  resource,
		Scopes:    []string{"tools:read", "offline_access"},
		ExpiresAt: time.Now().Add(24 * time.Hour),
		CreatedAt: past(),
	}
}

func storedRefreshToken(rt storage.OAuthRefreshToken) storage.OAuthRefreshToken {
	rt.RotatedAt, rt.ExpiresAt, rt.CreatedAt = asStoredOrZero(rt.RotatedAt), asStored(rt.ExpiresAt), asStored(rt.CreatedAt)
	return rt
}

func asStoredOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return asStored(t)
}

func newConsent(user, clientID, resource string) storage.OAuthConsent {
	return storage.OAuthConsent{User: user, ClientID: clientID, Resource: resource, Scopes: []string{"tools:read"}}
}

// wantRefused checks that a malformed call failed, and not as if the
// value were merely absent or taken.
func wantRefused(t testing.TB, err error, what string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded", what)
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrAlreadyExists), errors.Is(err, storage.ErrConflict):
		t.Errorf("%s: got %v, want a refusal of the input", what, err)
	}
}

// storedRefreshTokens reports which of the named tokens are stored.
func storedRefreshTokens(t testing.TB, s storage.Storage, names ...string) []string {
	t.Helper()
	out := []string{}
	for _, name := range names {
		_, err := s.GetRefreshToken(t.Context(), sum("refresh:"+name))
		switch {
		case err == nil:
			out = append(out, name)
		case !errors.Is(err, storage.ErrNotFound):
			t.Fatalf("get refresh token %s: %v", name, err)
		}
	}
	return out
}

func testOAuthClients(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetOAuthClient(ctx, "c1")
	wantErr(t, err, storage.ErrNotFound, "get a client from an empty store")
	wantErr(t, s.DeleteOAuthClient(ctx, "c1"), storage.ErrNotFound, "delete a missing client")

	c1 := newOAuthClient("c1")
	mustOK(t, s.CreateOAuthClient(ctx, c1), "create client")
	got, err := s.GetOAuthClient(ctx, "c1")
	mustOK(t, err, "get client")
	c1.CreatedAt = asStored(c1.CreatedAt)
	wantDiff(t, "client", c1, got)
	checkStoredTime(t, "client CreatedAt", got.CreatedAt, past())

	dup := newOAuthClient("c1")
	dup.Metadata = []byte(`{"other":true}`)
	wantErr(t, s.CreateOAuthClient(ctx, dup), storage.ErrAlreadyExists, "create a client with a taken id")
	got, err = s.GetOAuthClient(ctx, "c1")
	mustOK(t, err, "get client after a refused create")
	wantDiff(t, "client after a refused create", c1, got)

	// A public client has no secret; a zero creation time means now.
	public := newOAuthClient("public")
	public.SecretHash, public.CreatedAt = nil, time.Time{}
	before := time.Now().Add(-time.Second)
	mustOK(t, s.CreateOAuthClient(ctx, public), "create public client")
	got, err = s.GetOAuthClient(ctx, "public")
	mustOK(t, err, "get public client")
	if got.SecretHash != nil {
		t.Errorf("public client has secret hash %x", got.SecretHash)
	}
	checkUpdatedAt(t, "CreatedAt of a client created with a zero time", got.CreatedAt, before)

	for what, mutate := range map[string]func(*storage.OAuthClient){
		"an empty id":             func(c *storage.OAuthClient) { c.ID = "" },
		"a URL as id":             func(c *storage.OAuthClient) { c.ID = "https://client.example/metadata.json" },
		"no metadata":             func(c *storage.OAuthClient) { c.Metadata = nil },
		"a 31-byte secret hash":   func(c *storage.OAuthClient) { c.SecretHash = c.SecretHash[:31] },
		"a 33-byte secret hash":   func(c *storage.OAuthClient) { c.SecretHash = append(c.SecretHash, 0) },
		"a secret stored as such": func(c *storage.OAuthClient) { c.SecretHash = []byte("plain-secret") },
	} {
		c := newOAuthClient("refused")
		mutate(&c)
		wantRefused(t, s.CreateOAuthClient(ctx, c), "create a client with "+what)
	}
	_, err = s.GetOAuthClient(ctx, "refused")
	wantErr(t, err, storage.ErrNotFound, "get a refused client")

	mustOK(t, s.DeleteOAuthClient(ctx, "c1"), "delete client")
	_, err = s.GetOAuthClient(ctx, "c1")
	wantErr(t, err, storage.ErrNotFound, "get a deleted client")
	wantErr(t, s.DeleteOAuthClient(ctx, "c1"), storage.ErrNotFound, "delete a client twice")
	_, err = s.GetOAuthClient(ctx, "public")
	mustOK(t, err, "get the other client after a delete")
}

// testOAuthClientCascade: deleting a client deletes its consents,
// authorization requests and refresh tokens, and nobody else's.
func testOAuthClientCascade(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, id := range []string{"gone", "kept"} {
		mustOK(t, s.CreateOAuthClient(ctx, newOAuthClient(id)), "create client "+id)
		mustOK(t, s.PutConsent(ctx, newConsent("alice", id, "https://mcp.example/")), "put consent to "+id)
		mustOK(t, s.CreateAuthRequest(ctx, newAuthRequest("req-"+id, id)), "create request of "+id)
		mustOK(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-"+id, "fam-"+id, id, "alice", "https://mcp.example/")), "create token of "+id)
	}
	mustOK(t, s.DeleteOAuthClient(ctx, "gone"), "delete client")

	_, err := s.GetConsent(ctx, "alice", "gone", "https://mcp.example/")
	wantErr(t, err, storage.ErrNotFound, "get a deleted client's consent")
	_, err = s.GetAuthRequest(ctx, "req-gone")
	wantErr(t, err, storage.ErrNotFound, "get a deleted client's request")
	wantDiff(t, "refresh tokens left", []string{"rt-kept"}, storedRefreshTokens(t, s, "rt-gone", "rt-kept"))
	_, err = s.GetConsent(ctx, "alice", "kept", "https://mcp.example/")
	mustOK(t, err, "get the other client's consent")
	_, err = s.GetAuthRequest(ctx, "req-kept")
	mustOK(t, err, "get the other client's request")
}

func testAuthRequests(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetAuthRequest(ctx, "r1")
	wantErr(t, err, storage.ErrNotFound, "get a request from an empty store")
	_, err = s.GetAuthRequestByLoginState(ctx, sum("login:r1"))
	wantErr(t, err, storage.ErrNotFound, "get a request by login state from an empty store")

	r1 := newAuthRequest("r1", "c1")
	mustOK(t, s.CreateAuthRequest(ctx, r1), "create request")
	got, err := s.GetAuthRequest(ctx, "r1")
	mustOK(t, err, "get request")
	wantDiff(t, "request", storedAuthRequest(r1), got)
	checkStoredTime(t, "request CreatedAt", got.CreatedAt, past())
	checkStoredTime(t, "request ExpiresAt", got.ExpiresAt, r1.ExpiresAt)
	got, err = s.GetAuthRequestByLoginState(ctx, sum("login:r1"))
	mustOK(t, err, "get request by login state")
	wantDiff(t, "request by login state", storedAuthRequest(r1), got)

	// The id and the login state are each unique.
	dupID := newAuthRequest("r1", "c1")
	dupID.LoginStateHash = sum("login:other")
	wantErr(t, s.CreateAuthRequest(ctx, dupID), storage.ErrAlreadyExists, "create a request with a taken id")
	_, err = s.GetAuthRequestByLoginState(ctx, sum("login:other"))
	wantErr(t, err, storage.ErrNotFound, "get the refused request by its login state")
	dupState := newAuthRequest("r2", "c1")
	dupState.LoginStateHash = sum("login:r1")
	wantErr(t, s.CreateAuthRequest(ctx, dupState), storage.ErrAlreadyExists, "create a request with a taken login state")
	_, err = s.GetAuthRequest(ctx, "r2")
	wantErr(t, err, storage.ErrNotFound, "get the refused request by its id")

	// Zero times mean now; nil and empty scopes stay apart.
	fresh := newAuthRequest("fresh", "c1")
	fresh.CreatedAt, fresh.UpdatedAt, fresh.Scopes = time.Time{}, time.Time{}, nil
	before := time.Now().Add(-time.Second)
	mustOK(t, s.CreateAuthRequest(ctx, fresh), "create request with zero times")
	got, err = s.GetAuthRequest(ctx, "fresh")
	mustOK(t, err, "get fresh request")
	checkUpdatedAt(t, "CreatedAt of a request created with a zero time", got.CreatedAt, before)
	checkUpdatedAt(t, "UpdatedAt of a request created with a zero time", got.UpdatedAt, before)
	if got.Scopes != nil {
		t.Errorf("nil scopes came back as %#v", got.Scopes)
	}
	empty := newAuthRequest("empty", "c1")
	empty.Scopes = []string{}
	mustOK(t, s.CreateAuthRequest(ctx, empty), "create request with empty scopes")
	got, err = s.GetAuthRequest(ctx, "empty")
	mustOK(t, err, "get request with empty scopes")
	if got.Scopes == nil || len(got.Scopes) != 0 {
		t.Errorf("empty scopes came back as %#v", got.Scopes)
	}

	for what, mutate := range map[string]func(*storage.AuthRequest){
		"an empty id":                func(a *storage.AuthRequest) { a.ID = "" },
		"no login state hash":        func(a *storage.AuthRequest) { a.LoginStateHash = nil },
		"a 31-byte login state hash": func(a *storage.AuthRequest) { a.LoginStateHash = a.LoginStateHash[:31] },
		"a 33-byte login state hash": func(a *storage.AuthRequest) { a.LoginStateHash = append(a.LoginStateHash, 0) },
		"a zero expiry":              func(a *storage.AuthRequest) { a.ExpiresAt = time.Time{} },
		"status CONSENT":             func(a *storage.AuthRequest) { a.Status = storage.AuthRequestConsent },
		"status CODE":                func(a *storage.AuthRequest) { a.Status = storage.AuthRequestCode },
		"status REDEEMED":            func(a *storage.AuthRequest) { a.Status = storage.AuthRequestRedeemed },
		"no status":                  func(a *storage.AuthRequest) { a.Status = "" },
	} {
		a := newAuthRequest("refused", "c1")
		mutate(&a)
		wantRefused(t, s.CreateAuthRequest(ctx, a), "create a request with "+what)
	}
	_, err = s.GetAuthRequest(ctx, "refused")
	wantErr(t, err, storage.ErrNotFound, "get a refused request")

	// A lookup hash is a SHA-256: another length is the caller's bug.
	for _, h := range [][]byte{nil, sum("login:r1")[:31], append(sum("login:r1"), 0)} {
		_, err = s.GetAuthRequestByLoginState(ctx, h)
		wantRefused(t, err, fmt.Sprintf("get a request by a %d-byte login state hash", len(h)))
		_, err = s.RedeemAuthCode(ctx, h, "family")
		wantRefused(t, err, fmt.Sprintf("redeem a %d-byte code hash", len(h)))
	}
}

func testAuthRequestUpdater(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.UpdateAuthRequest(ctx, "missing", func(a storage.AuthRequest) (storage.AuthRequest, error) { return a, nil })
	wantErr(t, err, storage.ErrNotFound, "update a missing request")

	r1 := newAuthRequest("r1", "c1")
	mustOK(t, s.CreateAuthRequest(ctx, r1), "create request")
	stored := storedAuthRequest(r1)

	// An updater that refuses stores nothing.
	_, err = s.UpdateAuthRequest(ctx, "r1", func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.User = "mallory"
		return a, errRefused
	})
	wantErr(t, err, errRefused, "refused update")
	got, err := s.GetAuthRequest(ctx, "r1")
	mustOK(t, err, "get request")
	wantDiff(t, "request after a refused update", stored, got)

	// The immutable fields keep their stored values; the others change.
	expires := time.Now().Add(5 * time.Minute)
	updated, err := s.UpdateAuthRequest(ctx, "r1", func(a storage.AuthRequest) (storage.AuthRequest, error) {
		wantDiff(t, "request the updater sees", stored, a)
		a.ID, a.LoginStateHash, a.ClientID, a.RedirectURI = "other", sum("login:other"), "other-client", "https://evil.example/cb"
		a.State, a.CodeChallenge, a.CreatedAt = "other-state", "other-challenge", time.Now()
		a.Status, a.User, a.Resource, a.Scopes = storage.AuthRequestConsent, "alice", "https://mcp.example/other", []string{"tools:write"}
		a.RefreshFamily, a.ExpiresAt, a.UpdatedAt = "fam", expires, past()
		return a, nil
	})
	mustOK(t, err, "update request")
	want := stored
	want.Status, want.User, want.Resource, want.Scopes = storage.AuthRequestConsent, "alice", "https://mcp.example/other", []string{"tools:write"}
	want.RefreshFamily, want.ExpiresAt, want.UpdatedAt = "fam", asStored(expires), updated.UpdatedAt
	wantDiff(t, "updated request", want, updated)
	checkUpdatedAt(t, "UpdatedAt after an update", updated.UpdatedAt, stored.UpdatedAt)
	got, err = s.GetAuthRequest(ctx, "r1")
	mustOK(t, err, "get updated request")
	wantDiff(t, "stored updated request", updated, got)
	_, err = s.GetAuthRequestByLoginState(ctx, sum("login:other"))
	wantErr(t, err, storage.ErrNotFound, "get by a login state the updater tried to set")

	// A code is unique across requests, and a hash of the wrong length is
	// refused.
	issueCode(t, s, "r2")
	_, err = s.UpdateAuthRequest(ctx, "r1", func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.Status, a.CodeHash = storage.AuthRequestCode, sum("code:r2")
		return a, nil
	})
	wantErr(t, err, storage.ErrAlreadyExists, "update a request to another's code")
	_, err = s.UpdateAuthRequest(ctx, "r1", func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.Status, a.CodeHash = storage.AuthRequestCode, []byte("short")
		return a, nil
	})
	wantRefused(t, err, "update a request to a 5-byte code hash")
	_, err = s.UpdateAuthRequest(ctx, "r1", func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.ExpiresAt = time.Time{}
		return a, nil
	})
	wantRefused(t, err, "update a request to a zero expiry")
	// Re-storing a request's own code is no conflict.
	_, err = s.UpdateAuthRequest(ctx, "r2", func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.Scopes = []string{"tools:read", "tools:write"}
		return a, nil
	})
	mustOK(t, err, "update a request keeping its code")

	// The updater may not redeem.
	_, err = s.UpdateAuthRequest(ctx, "r1", func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.Status, a.CodeHash = storage.AuthRequestRedeemed, sum("code:r1")
		return a, nil
	})
	wantErr(t, err, storage.ErrConflict, "update a request to REDEEMED")
	got, err = s.GetAuthRequest(ctx, "r1")
	mustOK(t, err, "get request after a refused redemption")
	wantDiff(t, "request after a refused redemption", updated, got)

	// A redeemed request is final: the updater is not even called.
	_, err = s.RedeemAuthCode(ctx, sum("code:r2"), "fam-r2")
	mustOK(t, err, "redeem r2")
	_, err = s.UpdateAuthRequest(ctx, "r2", func(a storage.AuthRequest) (storage.AuthRequest, error) {
		t.Error("the updater was called on a redeemed request")
		return a, nil
	})
	wantErr(t, err, storage.ErrConflict, "update a redeemed request")
}

func testRedeemAuthCode(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.RedeemAuthCode(ctx, sum("code:none"), "fam")
	wantErr(t, err, storage.ErrNotFound, "redeem an unknown code")

	// A request waiting for consent has no code to redeem.
	mustOK(t, s.CreateAuthRequest(ctx, newAuthRequest("waiting", "c1")), "create request")
	_, err = s.RedeemAuthCode(ctx, sum("code:waiting"), "fam")
	wantErr(t, err, storage.ErrNotFound, "redeem the code of a request that has none")

	issueCode(t, s, "r1")
	// Expiry is the caller's to judge.
	issued, err := s.UpdateAuthRequest(ctx, "r1", func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.ExpiresAt = time.Now().Add(-time.Minute)
		return a, nil
	})
	mustOK(t, err, "expire the request")
	before, err := s.RedeemAuthCode(ctx, sum("code:r1"), "fam-1")
	mustOK(t, err, "redeem code")
	wantDiff(t, "request as it was before redemption", issued, before)

	got, err := s.GetAuthRequest(ctx, "r1")
	mustOK(t, err, "get redeemed request")
	if got.Status != storage.AuthRequestRedeemed || got.RefreshFamily != "fam-1" {
		t.Errorf("redeemed request has status %s and family %q, want %s and fam-1", got.Status, got.RefreshFamily, storage.AuthRequestRedeemed)
	}
	checkUpdatedAt(t, "UpdatedAt after redemption", got.UpdatedAt, issued.UpdatedAt)

	// A replayed code is a conflict that names the family to revoke, and
	// changes nothing.
	replay, err := s.RedeemAuthCode(ctx, sum("code:r1"), "fam-2")
	wantErr(t, err, storage.ErrConflict, "redeem a code twice")
	wantDiff(t, "request returned with a replay", got, replay)
	again, err := s.GetAuthRequest(ctx, "r1")
	mustOK(t, err, "get request after replay")
	wantDiff(t, "request after replay", got, again)
}

func testAuthRequestExpiry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := time.Now()
	for i, status := range []storage.AuthRequestStatus{storage.AuthRequestLogin, storage.AuthRequestCode, storage.AuthRequestRedeemed} {
		id := fmt.Sprintf("ended-%d", i)
		issueCode(t, s, id)
		_, err := s.UpdateAuthRequest(ctx, id, func(a storage.AuthRequest) (storage.AuthRequest, error) {
			a.ExpiresAt = now.Add(-time.Hour)
			if status == storage.AuthRequestLogin {
				a.Status, a.CodeHash = status, nil
			}
			return a, nil
		})
		mustOK(t, err, "expire "+id)
		if status == storage.AuthRequestRedeemed {
			_, err := s.RedeemAuthCode(ctx, sum("code:"+id), "fam")
			mustOK(t, err, "redeem "+id)
		}
	}
	mustOK(t, s.CreateAuthRequest(ctx, newAuthRequest("live", "c1")), "create live request")

	n, err := s.DeleteEndedAuthRequests(ctx, now.Add(-2*time.Hour))
	mustOK(t, err, "delete requests ended before they expired")
	if n != 0 {
		t.Errorf("deleted %d requests that expired after the cutoff", n)
	}
	n, err = s.DeleteEndedAuthRequests(ctx, now)
	mustOK(t, err, "delete ended requests")
	if n != 3 {
		t.Errorf("deleted %d ended requests, want 3", n)
	}
	_, err = s.GetAuthRequest(ctx, "ended-0")
	wantErr(t, err, storage.ErrNotFound, "get a purged request")
	_, err = s.GetAuthRequest(ctx, "live")
	mustOK(t, err, "get the live request")
	// The purged requests' login states and codes are free again.
	mustOK(t, s.CreateAuthRequest(ctx, newAuthRequest("ended-0", "c1")), "create a request with a purged id and login state")
}

func testRefreshTokens(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetRefreshToken(ctx, sum("refresh:rt1"))
	wantErr(t, err, storage.ErrNotFound, "get a token from an empty store")

	rt1 := newRefreshToken("rt1", "fam", "c1", "alice", "https://mcp.example/")
	mustOK(t, s.CreateRefreshToken(ctx, rt1), "create token")
	got, err := s.GetRefreshToken(ctx, rt1.Hash)
	mustOK(t, err, "get token")
	wantDiff(t, "token", storedRefreshToken(rt1), got)
	checkStoredTime(t, "token CreatedAt", got.CreatedAt, past())
	if !got.RotatedAt.IsZero() {
		t.Errorf("a new token has RotatedAt %v", got.RotatedAt)
	}
	dup := newRefreshToken("rt1", "other", "c2", "bob", "")
	wantErr(t, s.CreateRefreshToken(ctx, dup), storage.ErrAlreadyExists, "create a token with a taken hash")

	fresh := newRefreshToken("fresh", "fam", "c1", "alice", "https://mcp.example/")
	fresh.CreatedAt, fresh.Scopes = time.Time{}, nil
	before := time.Now().Add(-time.Second)
	mustOK(t, s.CreateRefreshToken(ctx, fresh), "create token with zero time")
	got, err = s.GetRefreshToken(ctx, fresh.Hash)
	mustOK(t, err, "get fresh token")
	checkUpdatedAt(t, "CreatedAt of a token created with a zero time", got.CreatedAt, before)
	if got.Scopes != nil {
		t.Errorf("nil scopes came back as %#v", got.Scopes)
	}

	for what, mutate := range map[string]func(*storage.OAuthRefreshToken){
		"no hash":          func(rt *storage.OAuthRefreshToken) { rt.Hash = nil },
		"a 31-byte hash":   func(rt *storage.OAuthRefreshToken) { rt.Hash = rt.Hash[:31] },
		"a 33-byte hash":   func(rt *storage.OAuthRefreshToken) { rt.Hash = append(rt.Hash, 0) },
		"an empty family":  func(rt *storage.OAuthRefreshToken) { rt.Family = "" },
		"a zero expiry":    func(rt *storage.OAuthRefreshToken) { rt.ExpiresAt = time.Time{} },
		"the value itself": func(rt *storage.OAuthRefreshToken) { rt.Hash = []byte("refresh-token-value") },
	} {
		rt := newRefreshToken("refused", "fam", "c1", "alice", "")
		mutate(&rt)
		wantRefused(t, s.CreateRefreshToken(ctx, rt), "create a token with "+what)
	}
	wantDiff(t, "refused tokens stored", []string{}, storedRefreshTokens(t, s, "refused"))
	for _, h := range [][]byte{nil, rt1.Hash[:31], append(rt1.Hash, 0)} {
		_, err := s.GetRefreshToken(ctx, h)
		wantRefused(t, err, fmt.Sprintf("get a token by a %d-byte hash", len(h)))
		_, err = s.RotateRefreshToken(ctx, h, newRefreshToken("next", "fam", "c1", "alice", ""))
		wantRefused(t, err, fmt.Sprintf("rotate a token by a %d-byte hash", len(h)))
	}
}

func testRefreshRotation(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const resource = "https://mcp.example/"
	_, err := s.RotateRefreshToken(ctx, sum("refresh:none"), newRefreshToken("next", "fam", "c1", "alice", resource))
	wantErr(t, err, storage.ErrNotFound, "rotate an unknown token")

	// Expiry is the caller's to judge.
	rt1 := newRefreshToken("rt1", "fam", "c1", "alice", resource)
	rt1.ExpiresAt = time.Now().Add(-time.Minute)
	mustOK(t, s.CreateRefreshToken(ctx, rt1), "create token")
	other := newRefreshToken("other", "other-fam", "c1", "alice", resource)
	mustOK(t, s.CreateRefreshToken(ctx, other), "create another family's token")

	// The successor must be of the same family and new.
	_, err = s.RotateRefreshToken(ctx, rt1.Hash, newRefreshToken("rt2", "other-fam", "c1", "alice", resource))
	wantRefused(t, err, "rotate into another family")
	_, err = s.RotateRefreshToken(ctx, rt1.Hash, newRefreshToken("other", "fam", "c1", "alice", resource))
	wantErr(t, err, storage.ErrAlreadyExists, "rotate into a taken hash")
	bad := newRefreshToken("rt2", "fam", "c1", "alice", resource)
	bad.ExpiresAt = time.Time{}
	_, err = s.RotateRefreshToken(ctx, rt1.Hash, bad)
	wantRefused(t, err, "rotate into a token without expiry")
	got, err := s.GetRefreshToken(ctx, rt1.Hash)
	mustOK(t, err, "get token after refused rotations")
	wantDiff(t, "token after refused rotations", storedRefreshToken(rt1), got)

	// Rotation marks the token and stores its successor.
	mustOK(t, s.CreateRefreshToken(ctx, newRefreshToken("unused", "fam", "c1", "alice", resource)), "create a third token of the family")
	rt2 := newRefreshToken("rt2", "fam", "c1", "alice", resource)
	rt2.RotatedAt = time.Now() // ignored: a successor is current
	before := time.Now().Add(-time.Second)
	was, err := s.RotateRefreshToken(ctx, rt1.Hash, rt2)
	mustOK(t, err, "rotate token")
	wantDiff(t, "token as it was before rotation", storedRefreshToken(rt1), was)
	got, err = s.GetRefreshToken(ctx, rt1.Hash)
	mustOK(t, err, "get rotated token")
	checkUpdatedAt(t, "RotatedAt", got.RotatedAt, before)
	got.RotatedAt = time.Time{}
	wantDiff(t, "rotated token apart from RotatedAt", storedRefreshToken(rt1), got)
	got, err = s.GetRefreshToken(ctx, rt2.Hash)
	mustOK(t, err, "get successor")
	rt2.RotatedAt = time.Time{}
	wantDiff(t, "successor", storedRefreshToken(rt2), got)

	rt3 := newRefreshToken("rt3", "fam", "c1", "alice", resource)
	_, err = s.RotateRefreshToken(ctx, rt2.Hash, rt3)
	mustOK(t, err, "rotate the successor")

	// Presenting a rotated token again revokes the whole family, and the
	// revocation stays even though the call reports a conflict.
	reused, err := s.RotateRefreshToken(ctx, rt1.Hash, newRefreshToken("rt4", "fam", "c1", "alice", resource))
	wantErr(t, err, storage.ErrConflict, "rotate a rotated token")
	if !reused.RotatedAt.After(before) || !bytes.Equal(reused.Hash, rt1.Hash) || reused.Family != "fam" {
		t.Errorf("reuse returned %+v, want the rotated token as stored", reused)
	}
	wantDiff(t, "tokens left after reuse", []string{"other"}, storedRefreshTokens(t, s, "rt1", "rt2", "rt3", "rt4", "unused", "other"))
	_, err = s.RotateRefreshToken(ctx, rt3.Hash, newRefreshToken("rt5", "fam", "c1", "alice", resource))
	wantErr(t, err, storage.ErrNotFound, "rotate a revoked family's current token")
}

func testRefreshRevocation(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	n, err := s.RevokeRefreshFamily(ctx, "none")
	mustOK(t, err, "revoke an unknown family")
	if n != 0 {
		t.Errorf("revoking an unknown family deleted %d tokens", n)
	}
	for _, rt := range []storage.OAuthRefreshToken{
		newRefreshToken("a1", "fam-a", "c1", "alice", ""),
		newRefreshToken("a2", "fam-a", "c1", "alice", ""),
		newRefreshToken("b1", "fam-b", "c1", "alice", ""),
	} {
		mustOK(t, s.CreateRefreshToken(ctx, rt), "create token")
	}
	n, err = s.RevokeRefreshFamily(ctx, "fam-a")
	mustOK(t, err, "revoke family")
	if n != 2 {
		t.Errorf("revoked %d tokens, want 2", n)
	}
	wantDiff(t, "tokens left after revocation", []string{"b1"}, storedRefreshTokens(t, s, "a1", "a2", "b1"))

	// The purge removes expired tokens, rotated or not.
	now := time.Now()
	expired := newRefreshToken("expired", "fam-c", "c1", "alice", "")
	expired.ExpiresAt = now.Add(-time.Hour)
	mustOK(t, s.CreateRefreshToken(ctx, expired), "create expired token")
	rotated := newRefreshToken("rotated", "fam-d", "c1", "alice", "")
	rotated.ExpiresAt = now.Add(-time.Hour)
	mustOK(t, s.CreateRefreshToken(ctx, rotated), "create token to rotate")
	_, err = s.RotateRefreshToken(ctx, rotated.Hash, newRefreshToken("successor", "fam-d", "c1", "alice", ""))
	mustOK(t, err, "rotate expired token")
	n, err = s.DeleteExpiredRefreshTokens(ctx, now.Add(-2*time.Hour))
	mustOK(t, err, "purge before the expiries")
	if n != 0 {
		t.Errorf("purged %d tokens that expired after the cutoff", n)
	}
	n, err = s.DeleteExpiredRefreshTokens(ctx, now)
	mustOK(t, err, "purge expired tokens")
	if n != 2 {
		t.Errorf("purged %d expired tokens, want 2", n)
	}
	wantDiff(t, "tokens left after the purge", []string{"b1", "successor"},
		storedRefreshTokens(t, s, "b1", "expired", "rotated", "successor"))
}

func testConsents(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetConsent(ctx, "alice", "c1", "r")
	wantErr(t, err, storage.ErrNotFound, "get a consent from an empty store")
	wantErr(t, s.DeleteConsent(ctx, "alice", "c1", "r"), storage.ErrNotFound, "delete a missing consent")

	c := newConsent("alice", "c1", "r")
	c.CreatedAt = past()
	before := time.Now().Add(-time.Second)
	mustOK(t, s.PutConsent(ctx, c), "put consent")
	got, err := s.GetConsent(ctx, "alice", "c1", "r")
	mustOK(t, err, "get consent")
	checkStoredTime(t, "consent CreatedAt", got.CreatedAt, past())
	checkUpdatedAt(t, "consent UpdatedAt", got.UpdatedAt, before)
	want := c
	want.CreatedAt, want.UpdatedAt = asStored(past()), got.UpdatedAt
	wantDiff(t, "consent", want, got)

	// A replacement keeps the creation time and moves the update time.
	time.Sleep(2 * time.Millisecond)
	repl := newConsent("alice", "c1", "r")
	repl.Scopes, repl.CreatedAt = []string{}, time.Now()
	mustOK(t, s.PutConsent(ctx, repl), "replace consent")
	again, err := s.GetConsent(ctx, "alice", "c1", "r")
	mustOK(t, err, "get replaced consent")
	checkStoredTime(t, "CreatedAt after replacement", again.CreatedAt, past())
	checkUpdatedAt(t, "UpdatedAt after replacement", again.UpdatedAt, got.UpdatedAt)
	if again.Scopes == nil || len(again.Scopes) != 0 {
		t.Errorf("empty scopes came back as %#v", again.Scopes)
	}

	// A zero creation time means now; nil scopes stay nil.
	fresh := newConsent("alice", "c2", "r")
	fresh.Scopes = nil
	mustOK(t, s.PutConsent(ctx, fresh), "put consent with zero time")
	got, err = s.GetConsent(ctx, "alice", "c2", "r")
	mustOK(t, err, "get fresh consent")
	checkUpdatedAt(t, "CreatedAt of a consent put with a zero time", got.CreatedAt, before)
	if got.Scopes != nil {
		t.Errorf("nil scopes came back as %#v", got.Scopes)
	}

	// Each part of the key matters.
	for _, k := range [][3]string{{"bob", "c1", "r"}, {"alice", "c3", "r"}, {"alice", "c1", "r2"}} {
		_, err := s.GetConsent(ctx, k[0], k[1], k[2])
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("get consent %v", k))
	}
	for what, c := range map[string]storage.OAuthConsent{
		"no user":      newConsent("", "c1", "r"),
		"no client id": newConsent("alice", "", "r"),
	} {
		wantRefused(t, s.PutConsent(ctx, c), "put a consent with "+what)
	}

	mustOK(t, s.DeleteConsent(ctx, "alice", "c1", "r"), "delete consent")
	_, err = s.GetConsent(ctx, "alice", "c1", "r")
	wantErr(t, err, storage.ErrNotFound, "get a deleted consent")
	wantErr(t, s.DeleteConsent(ctx, "alice", "c1", "r"), storage.ErrNotFound, "delete a consent twice")
	_, err = s.GetConsent(ctx, "alice", "c2", "r")
	mustOK(t, err, "get the other consent after a delete")
}

// testConsentCascade: revoking a consent deletes the refresh tokens of its
// grant, whatever their family, and no others.
func testConsentCascade(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustOK(t, s.PutConsent(ctx, newConsent("alice", "c1", "r")), "put consent")
	mustOK(t, s.PutConsent(ctx, newConsent("alice", "c1", "r2")), "put other consent")
	for _, rt := range []storage.OAuthRefreshToken{
		newRefreshToken("grant-1", "fam-1", "c1", "alice", "r"),
		newRefreshToken("grant-2", "fam-2", "c1", "alice", "r"),
		newRefreshToken("other-resource", "fam-3", "c1", "alice", "r2"),
		newRefreshToken("other-client", "fam-4", "c2", "alice", "r"),
		newRefreshToken("other-user", "fam-5", "c1", "bob", "r"),
	} {
		mustOK(t, s.CreateRefreshToken(ctx, rt), "create token")
	}
	all := []string{"grant-1", "grant-2", "other-resource", "other-client", "other-user"}
	// A missing consent deletes nothing.
	wantErr(t, s.DeleteConsent(ctx, "bob", "c1", "r"), storage.ErrNotFound, "delete a missing consent")
	wantDiff(t, "tokens after deleting a missing consent", all, storedRefreshTokens(t, s, all...))

	mustOK(t, s.DeleteConsent(ctx, "alice", "c1", "r"), "delete consent")
	wantDiff(t, "tokens after deleting the consent", all[2:], storedRefreshTokens(t, s, all...))
}

func testListConsents(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	list, err := s.ListConsents(ctx, storage.ConsentFilter{User: "alice"})
	mustOK(t, err, "list consents of an empty store")
	if len(list) != 0 {
		t.Errorf("empty store lists consents %v", list)
	}
	// Put out of order; "c1" and "c1a" order bytewise, as do "B" and "a".
	var want [][2]string
	for _, k := range [][2]string{{"c2", "r1"}, {"c1", "r2"}, {"c1a", ""}, {"c1", "r1"}, {"B", "z"}, {"c1", ""}, {"a", "a"}} {
		mustOK(t, s.PutConsent(ctx, newConsent("alice", k[0], k[1])), "put consent")
		mustOK(t, s.PutConsent(ctx, newConsent("bob", k[0], k[1]+"-bob")), "put bob's consent")
	}
	want = [][2]string{{"B", "z"}, {"a", "a"}, {"c1", ""}, {"c1", "r1"}, {"c1", "r2"}, {"c1a", ""}, {"c2", "r1"}}

	keys := func(list []storage.OAuthConsent) [][2]string {
		out := [][2]string{}
		for _, c := range list {
			if c.User != "alice" {
				t.Errorf("alice's listing holds %s's consent", c.User)
			}
			out = append(out, [2]string{c.ClientID, c.Resource})
		}
		return out
	}
	list, err = s.ListConsents(ctx, storage.ConsentFilter{User: "alice"})
	mustOK(t, err, "list consents")
	wantDiff(t, "consents in order", want, keys(list))

	for _, limit := range []int{1, 2, 3} {
		var got [][2]string
		f := storage.ConsentFilter{User: "alice", Limit: limit}
		for range len(want) + 1 {
			page, err := s.ListConsents(ctx, f)
			mustOK(t, err, "list a page of consents")
			if len(page) > limit {
				t.Fatalf("page of %d consents with limit %d", len(page), limit)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, keys(page)...)
			last := page[len(page)-1]
			f.AfterClientID, f.AfterResource = last.ClientID, last.Resource
		}
		wantDiff(t, fmt.Sprintf("consents in pages of %d", limit), want, got)
	}
	// Continuing after a key that is not stored starts at the next one.
	list, err = s.ListConsents(ctx, storage.ConsentFilter{User: "alice", AfterClientID: "c1", AfterResource: "r1a"})
	mustOK(t, err, "list after an absent key")
	wantDiff(t, "consents after (c1, r1a)", want[4:], keys(list))
	list, err = s.ListConsents(ctx, storage.ConsentFilter{User: "nobody"})
	mustOK(t, err, "list an unknown user's consents")
	if len(list) != 0 {
		t.Errorf("an unknown user has consents %v", list)
	}
}

func testConsentPageLimits(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for i := range defaultPageLimit + 1 {
		mustOK(t, s.PutConsent(ctx, newConsent("alice", fmt.Sprintf("c%03d", i), "r")), "put consent")
	}
	for _, limit := range []int{0, -1} {
		list, err := s.ListConsents(ctx, storage.ConsentFilter{User: "alice", Limit: limit})
		mustOK(t, err, "list consents")
		if len(list) != defaultPageLimit {
			t.Errorf("limit %d listed %d consents, want %d", limit, len(list), defaultPageLimit)
		}
	}
	list, err := s.ListConsents(ctx, storage.ConsentFilter{User: "alice", Limit: maxPageLimit + 1})
	mustOK(t, err, "list consents")
	if len(list) != defaultPageLimit+1 {
		t.Errorf("a large limit listed %d consents, want all %d", len(list), defaultPageLimit+1)
	}
}

func testTokenIDs(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	used, err := s.TokenIDUsed(ctx, "iss|jti-1")
	mustOK(t, err, "look up a token id in an empty store")
	if used {
		t.Error("an unrecorded token id is used")
	}
	now := time.Now()
	mustOK(t, s.UseTokenID(ctx, "iss|jti-1", now.Add(time.Hour)), "use token id")
	used, err = s.TokenIDUsed(ctx, "iss|jti-1")
	mustOK(t, err, "look up a used token id")
	if !used {
		t.Error("a recorded token id is not used")
	}
	wantErr(t, s.UseTokenID(ctx, "iss|jti-1", now.Add(2*time.Hour)), storage.ErrAlreadyExists, "use a token id twice")
	// Keys are compared exactly.
	mustOK(t, s.UseTokenID(ctx, "ISS|jti-1", now.Add(time.Hour)), "use a token id differing in case")

	// An expired id is not used and may be recorded again, once.
	mustOK(t, s.UseTokenID(ctx, "iss|old", now.Add(-time.Minute)), "record an expired token id")
	used, err = s.TokenIDUsed(ctx, "iss|old")
	mustOK(t, err, "look up an expired token id")
	if used {
		t.Error("an expired token id is used")
	}
	mustOK(t, s.UseTokenID(ctx, "iss|old", now.Add(time.Hour)), "reuse an expired token id")
	wantErr(t, s.UseTokenID(ctx, "iss|old", now.Add(time.Hour)), storage.ErrAlreadyExists, "reuse a renewed token id")

	// Keys are bounded.
	longest := strings.Repeat("k", 1024)
	mustOK(t, s.UseTokenID(ctx, longest, now.Add(time.Hour)), "use a 1024-byte token id")
	used, err = s.TokenIDUsed(ctx, longest)
	mustOK(t, err, "look up a 1024-byte token id")
	if !used {
		t.Error("the 1024-byte token id is not used")
	}
	wantRefused(t, s.UseTokenID(ctx, longest+"k", now.Add(time.Hour)), "use a 1025-byte token id")
	_, err = s.TokenIDUsed(ctx, longest+"k")
	wantRefused(t, err, "look up a 1025-byte token id")
	wantRefused(t, s.UseTokenID(ctx, "", now.Add(time.Hour)), "use an empty token id")
	wantRefused(t, s.UseTokenID(ctx, "iss|no-expiry", time.Time{}), "use a token id without expiry")

	// The purge counts what expired before its cutoff.
	mustOK(t, s.UseTokenID(ctx, "iss|gone-1", now.Add(-2*time.Hour)), "record an expired token id")
	mustOK(t, s.UseTokenID(ctx, "iss|gone-2", now.Add(-time.Hour)), "record an expired token id")
	n, err := s.DeleteExpiredTokenIDs(ctx, now.Add(-3*time.Hour))
	mustOK(t, err, "purge before the expiries")
	if n != 0 {
		t.Errorf("purged %d token ids that expired after the cutoff", n)
	}
	n, err = s.DeleteExpiredTokenIDs(ctx, now)
	mustOK(t, err, "purge expired token ids")
	if n != 2 {
		t.Errorf("purged %d token ids, want 2", n)
	}
	used, err = s.TokenIDUsed(ctx, "iss|jti-1")
	mustOK(t, err, "look up a live token id after the purge")
	if !used {
		t.Error("the purge removed a live token id")
	}
}

// testAuditedAuthorizationServer: the authorization server's writes
// through a WithAudit view commit with their record, failed ones append
// nothing, and a reused refresh token's revocation is a change the record
// commits with even though the call reports a conflict.
func testAuditedAuthorizationServer(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	var committed int
	requestIDs := func() []string {
		ids := []string{}
		recs := listAllAudit(t, s)
		checkAuditChain(t, s, recs)
		for _, r := range recs {
			ids = append(ids, r.RequestID)
		}
		return ids
	}

	put := s.WithAudit(changeBinding("put-consent", chainAudit, &committed))
	mustOK(t, put.PutConsent(ctx, newConsent("alice", "c1", "r")), "put consent through the view")
	mustOK(t, s.CreateRefreshToken(ctx, newRefreshToken("rt", "fam", "c1", "alice", "r")), "create token")

	// A delete that fails leaves no record; one that succeeds leaves its
	// record with its cascade.
	del := s.WithAudit(changeBinding("delete-consent", chainAudit, &committed))
	wantErr(t, del.DeleteConsent(ctx, "bob", "c1", "r"), storage.ErrNotFound, "delete a missing consent through the view")
	wantDiff(t, "records after a failed delete", []string{"put-consent"}, requestIDs())
	mustOK(t, del.DeleteConsent(ctx, "alice", "c1", "r"), "delete consent through the view")
	wantDiff(t, "records after the delete", []string{"put-consent", "delete-consent"}, requestIDs())
	wantDiff(t, "tokens after the audited delete", []string{}, storedRefreshTokens(t, s, "rt"))

	// A change whose record cannot be chained is not stored.
	broken := s.WithAudit(changeBinding("broken", func(storage.AuditHead, []storage.AuditRecord) error {
		return errors.New("no chain key")
	}, &committed))
	if err := broken.PutConsent(ctx, newConsent("alice", "c2", "r")); err == nil {
		t.Error("a consent whose record cannot be chained was stored")
	}
	_, err := s.GetConsent(ctx, "alice", "c2", "r")
	wantErr(t, err, storage.ErrNotFound, "get the consent whose record failed")
	if err := broken.UseTokenID(ctx, "iss|jti", time.Now().Add(time.Hour)); err == nil {
		t.Error("a token id whose record cannot be chained was recorded")
	}
	used, err := s.TokenIDUsed(ctx, "iss|jti")
	mustOK(t, err, "look up the token id whose record failed")
	if used {
		t.Error("the token id whose record failed is used")
	}

	// A replayed refresh token: the revocation commits with the record.
	mustOK(t, s.CreateRefreshToken(ctx, newRefreshToken("r1", "fam-2", "c1", "alice", "r")), "create token")
	_, err = s.RotateRefreshToken(ctx, sum("refresh:r1"), newRefreshToken("r2", "fam-2", "c1", "alice", "r"))
	mustOK(t, err, "rotate token")
	reuse := s.WithAudit(changeBinding("reuse", chainAudit, &committed))
	_, err = reuse.RotateRefreshToken(ctx, sum("refresh:r1"), newRefreshToken("r3", "fam-2", "c1", "alice", "r"))
	wantErr(t, err, storage.ErrConflict, "reuse a token through the view")
	wantDiff(t, "records after reuse", []string{"put-consent", "delete-consent", "reuse"}, requestIDs())
	wantDiff(t, "tokens after audited reuse", []string{}, storedRefreshTokens(t, s, "r1", "r2", "r3"))

	// A replayed code changes nothing, so it appends nothing.
	issueCode(t, s, "req")
	_, err = s.RedeemAuthCode(ctx, sum("code:req"), "fam-3")
	mustOK(t, err, "redeem code")
	replay := s.WithAudit(changeBinding("replay", chainAudit, &committed))
	_, err = replay.RedeemAuthCode(ctx, sum("code:req"), "fam-4")
	wantErr(t, err, storage.ErrConflict, "replay a code through the view")
	wantDiff(t, "records after a replayed code", []string{"put-consent", "delete-consent", "reuse"}, requestIDs())
	if committed != 3 {
		t.Errorf("Committed called %d times, want 3", committed)
	}
}

// testConcurrentRedeemAuthCode: of concurrent redemptions of one code,
// exactly one succeeds; every other is a conflict that names the winner's
// family.
func testConcurrentRedeemAuthCode(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for round := range 3 {
		id := fmt.Sprintf("req-%d", round)
		issueCode(t, s, id)
		var (
			wins   atomic.Int32
			winner atomic.Int64
			seen   = make([]string, workers)
		)
		parallel(workers, func(i int) {
			a, err := s.RedeemAuthCode(ctx, sum("code:"+id), fmt.Sprintf("fam-%d", i))
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(int64(i))
			case errors.Is(err, storage.ErrConflict):
				seen[i] = a.RefreshFamily
			default:
				checkConcurrentErr(t, err, fmt.Sprintf("redemption by worker %d", i))
			}
		})
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d concurrent redemptions of one code succeeded, want exactly 1", round, n)
		}
		want := fmt.Sprintf("fam-%d", winner.Load())
		for i, fam := range seen {
			if int64(i) != winner.Load() && fam != want {
				t.Errorf("round %d: worker %d's conflict names family %q, want the winner's %q", round, i, fam, want)
			}
		}
		got, err := s.GetAuthRequest(ctx, id)
		mustOK(t, err, "get redeemed request")
		if got.Status != storage.AuthRequestRedeemed || got.RefreshFamily != want {
			t.Errorf("round %d: request has status %s and family %q, want %s and %q", round, got.Status, got.RefreshFamily, storage.AuthRequestRedeemed, want)
		}
	}
}

// testConcurrentRotateRefreshToken: of two concurrent rotations of one
// token, exactly one succeeds and the other is reuse, which revokes the
// family, the winner's successor included. With many rotators, those that
// come after the revocation find nothing.
func testConcurrentRotateRefreshToken(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	rotate := func(round, n int) (wins, conflicts int32, names []string) {
		family := fmt.Sprintf("fam-%d", round)
		start := fmt.Sprintf("start-%d", round)
		mustOK(t, s.CreateRefreshToken(ctx, newRefreshToken(start, family, "c1", "alice", "r")), "create token")
		mustOK(t, s.CreateRefreshToken(ctx, newRefreshToken(start+"-kept", "other-"+family, "c1", "alice", "r")), "create another family's token")
		var w, c atomic.Int32
		names = []string{start, start + "-kept"}
		for i := range n {
			names = append(names, fmt.Sprintf("%s-next-%d", start, i))
		}
		parallel(n, func(i int) {
			_, err := s.RotateRefreshToken(ctx, sum("refresh:"+start), newRefreshToken(fmt.Sprintf("%s-next-%d", start, i), family, "c1", "alice", "r"))
			switch {
			case err == nil:
				w.Add(1)
			case errors.Is(err, storage.ErrConflict):
				c.Add(1)
			case !errors.Is(err, storage.ErrNotFound):
				checkConcurrentErr(t, err, fmt.Sprintf("rotation by worker %d", i))
			}
		})
		return w.Load(), c.Load(), names
	}
	for round := range 5 {
		wins, conflicts, names := rotate(round, 2)
		if wins != 1 || conflicts != 1 {
			t.Errorf("round %d: of two concurrent rotations %d succeeded and %d conflicted, want 1 and 1", round, wins, conflicts)
		}
		wantDiff(t, fmt.Sprintf("round %d: tokens left", round), names[1:2], storedRefreshTokens(t, s, names...))
	}
	wins, conflicts, names := rotate(5, workers)
	if wins != 1 || conflicts < 1 {
		t.Errorf("of %d concurrent rotations %d succeeded and %d conflicted, want 1 and at least 1", workers, wins, conflicts)
	}
	wantDiff(t, "tokens left after many rotations", names[1:2], storedRefreshTokens(t, s, names...))
}

// testConcurrentUseTokenID: of concurrent uses of one token id, exactly
// one records it, whether the id is new or recorded and expired.
func testConcurrentUseTokenID(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	expires := time.Now().Add(time.Hour)
	oneWinner(t, func(int) error { return s.UseTokenID(ctx, "iss|fresh", expires) })
	mustOK(t, s.UseTokenID(ctx, "iss|expired", time.Now().Add(-time.Minute)), "record an expired token id")
	oneWinner(t, func(int) error { return s.UseTokenID(ctx, "iss|expired", expires) })
	for _, key := range []string{"iss|fresh", "iss|expired"} {
		used, err := s.TokenIDUsed(ctx, key)
		mustOK(t, err, "look up "+key)
		if !used {
			t.Errorf("%s is not used after the race", key)
		}
	}
}
