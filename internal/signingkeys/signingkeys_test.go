package signingkeys_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/vault"
)

// TestRotationWithPrepublish: on SQLite and PostgreSQL, a new key is
// published Prepublish before it signs, the old one keeps signing until
// then and stays published Retain after; a second replica sharing the
// storage signs with the key the first made and finds it by its kid; a
// set of another purpose shares no key.
func TestRotationWithPrepublish(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		dir := t.TempDir()
		clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		st, err := sqlstore.Open(t.Context(), b.DSN(t, dir), nil, sqlstore.Now(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		kr, err := vault.OpenLocalKeyring(filepath.Join(dir, "keyring.json"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := vault.New(t.Context(), kr, kr.ServiceKeyID())
		if err != nil {
			t.Fatal(err)
		}
		opts := signingkeys.Options{Purpose: "test-signing", Rotation: 24 * time.Hour, Prepublish: time.Hour, Retain: 10 * time.Minute, Now: clock.Now}
		replica := func(o signingkeys.Options) *signingkeys.Set {
			s := signingkeys.New(st, v, o)
			if err := s.Rotate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s
		}
		a, b2 := replica(opts), replica(opts)
		first := signedKid(t, a)
		if len(a.JWKS().Keys) != 1 || signedKid(t, b2) != first {
			t.Fatalf("a new set: %d keys; replicas sign with %s and %s", len(a.JWKS().Keys), first, signedKid(t, b2))
		}
		if other := replica(signingkeys.Options{Purpose: "other-signing", Rotation: 24 * time.Hour, Now: clock.Now}); signedKid(t, other) == first {
			t.Error("sets of two purposes share a key")
		}

		clock.Advance(24 * time.Hour)
		if err := a.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		keys := a.JWKS().Keys
		if len(keys) != 2 || signedKid(t, a) != first {
			t.Fatalf("a new key is published before it signs: %d keys, signs with %s", len(keys), signedKid(t, a))
		}
		second := keys[1].KeyID
		if _, ok := b2.Public(t.Context(), second); !ok {
			t.Error("replica b does not find the new key by its kid")
		}
		clock.Advance(time.Hour)
		if signedKid(t, a) != second || signedKid(t, b2) != second {
			t.Fatalf("after Prepublish the new key signs: a %s, b %s", signedKid(t, a), signedKid(t, b2))
		}
		clock.Advance(10 * time.Minute)
		if err := a.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(a.JWKS().Keys) != 2 {
			t.Error("the old key left the set within Retain and a minute of skew")
		}
		clock.Advance(2 * time.Minute)
		if err := a.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if keys := a.JWKS().Keys; len(keys) != 1 || keys[0].KeyID != second {
			t.Errorf("the retired key is still published: %v", keys)
		}

		rec := httptest.NewRecorder()
		a.ServeJWKS(rec, httptest.NewRequest(http.MethodGet, "/jwks", nil))
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil || rec.Code != http.StatusOK ||
			rec.Header().Get("Content-Type") != "application/jwk-set+json" || rec.Header().Get("Cache-Control") != "public, max-age=300" {
			t.Fatalf("JWKS: %d %v %v", rec.Code, rec.Header(), err)
		}
		if len(set.Keys) != 1 || set.Keys[0].KeyID != second || !set.Keys[0].IsPublic() || strings.Contains(rec.Body.String(), `"d"`) {
			t.Errorf("JWKS: %s", rec.Body)
		}
	})
}

// signedKid is the kid a set's signer puts in a JWS, checked to verify
// with the set's published key.
func signedKid(t *testing.T, s *signingkeys.Set) string {
	t.Helper()
	signer, err := s.Signer("JWT")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.Sign([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	compact, err := signed.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	kid := jws.Signatures[0].Protected.KeyID
	pub, ok := s.Public(t.Context(), kid)
	if !ok {
		t.Fatalf("the signing key %s is not published", kid)
	}
	if _, err := jws.Verify(pub); err != nil {
		t.Fatalf("a signature of key %s does not verify with its public key: %v", kid, err)
	}
	return kid
}

// TestSchedule: a key signs Prepublish after it is made and leaves the
// set Retain (and a minute) after its successor began to sign; the
// newest key that has begun to sign is the current one.
func TestSchedule(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0).UTC()
	o := signingkeys.Options{Purpose: "p", Rotation: 24 * time.Hour, Prepublish: time.Hour, Retain: 10 * time.Minute}
	keys := []storage.ServerKey{{ID: "a", CreatedAt: t0}, {ID: "b", CreatedAt: t0.Add(24 * time.Hour)}}
	at := func(now time.Time) signingkeys.SetStatus { return signingkeys.Schedule(keys, o, now) }
	before := at(t0.Add(24*time.Hour + time.Minute)) // b is published, not yet signing
	if !before.Keys[0].Current || before.Keys[1].Current || !before.Keys[1].SigningSince.Equal(t0.Add(25*time.Hour)) ||
		!before.Keys[0].RetireAt.Equal(t0.Add(25*time.Hour+11*time.Minute)) || !before.Keys[1].RetireAt.IsZero() ||
		!before.NextRotation.Equal(t0.Add(48*time.Hour)) || before.Purpose != "p" {
		t.Errorf("before b signs: %+v", before)
	}
	if after := at(t0.Add(25 * time.Hour)); after.Keys[0].Current || !after.Keys[1].Current {
		t.Errorf("once b signs: %+v", after)
	}
	if empty := signingkeys.Schedule(nil, o, t0); len(empty.Keys) != 0 || !empty.NextRotation.IsZero() {
		t.Errorf("no keys: %+v", empty)
	}
}
