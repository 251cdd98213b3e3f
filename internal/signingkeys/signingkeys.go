// Package signingkeys keeps a rotating set of ES256 signing keys whose
// private halves are server keys sealed by behalf's vault and shared by
// every replica, and publishes their public halves as a JWK set (RFC 7517
// §5). The authorization server signs its access tokens with one set;
// behalf's MCP clients sign their client assertions (RFC 7523 §2.2) with
// another. A private key never leaves the process: only signers and
// public keys do.
package signingkeys

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
)

// Store is the storage of server keys.
type Store interface {
	CreateServerKey(ctx context.Context, k storage.ServerKey) error
	ListServerKeys(ctx context.Context, purpose string) ([]storage.ServerKey, error)
	DeleteServerKey(ctx context.Context, purpose, id string) error
}

// Options configure a Set.
type Options struct {
	// Purpose names the set's server keys; sets of different purposes
	// never share a key.
	Purpose string
	// Rotation is how old the newest key gets before a new one is made.
	Rotation time.Duration
	// Prepublish is how long a new key is published before it signs, so
	// that verifiers holding a cached copy of the set have fetched it
	// again first; zero makes a new key sign at once.
	Prepublish time.Duration
	// Retain is how long a key stays published after its successor began
	// to sign: as long as anything it signed is still accepted.
	Retain time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Set is a rotating key set. It is safe for concurrent use.
type Set struct {
	store Store
	vault *vault.Vault
	o     Options

	mu       sync.RWMutex
	keys     []key // oldest first
	lastLoad time.Time
}

type key struct {
	id      string
	created time.Time
	priv    *ecdsa.PrivateKey
}

// New returns the set, without keys until Rotate.
func New(st Store, v *vault.Vault, o Options) *Set {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Set{store: st, vault: v, o: o}
}

// Rotate creates a key when the newest is older than the rotation period,
// deletes keys that nothing they signed can still need, and reloads.
func (k *Set) Rotate(ctx context.Context) error {
	keys, err := k.store.ListServerKeys(ctx, k.o.Purpose)
	if err != nil {
		return k.errorf("list keys: %w", err)
	}
	now := k.o.Now()
	if len(keys) == 0 || now.Sub(keys[len(keys)-1].CreatedAt) >= k.o.Rotation {
		if err := k.create(ctx, now); err != nil {
			return err
		}
		if keys, err = k.store.ListServerKeys(ctx, k.o.Purpose); err != nil {
			return k.errorf("list keys: %w", err)
		}
	}
	// A key stops signing when its successor begins to (Prepublish after
	// the successor was made); it leaves the set Retain after that, plus a
	// minute of clock skew.
	live := keys[len(keys)-1:]
	for n, sk := range keys[:len(keys)-1] {
		if now.Sub(keys[n+1].CreatedAt.Add(k.o.Prepublish)) <= k.o.Retain+time.Minute {
			live = append(live, sk)
			continue
		}
		if err := k.store.DeleteServerKey(ctx, k.o.Purpose, sk.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return k.errorf("delete retired key: %w", err)
		}
	}
	slices.SortStableFunc(live, func(a, b storage.ServerKey) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return k.load(ctx, live)
}

func (k *Set) create(ctx context.Context, now time.Time) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	defer clear(der)
	id := uuid.Must(uuid.NewV7()).String()
	sealed, err := k.vault.Seal(ctx, der, vault.ServerKeyBinding(k.o.Purpose, id))
	if err != nil {
		return k.errorf("seal key: %w", err)
	}
	if err := k.store.CreateServerKey(ctx, storage.ServerKey{Purpose: k.o.Purpose, ID: id, Key: sealed, CreatedAt: now}); err != nil {
		return k.errorf("store key: %w", err)
	}
	return nil
}

func (k *Set) load(ctx context.Context, stored []storage.ServerKey) error {
	keys := make([]key, 0, len(stored))
	for _, sk := range stored {
		der, err := k.vault.Open(ctx, sk.Key, vault.ServerKeyBinding(k.o.Purpose, sk.ID))
		if err != nil {
			return k.errorf("open key %s: %w", sk.ID, err)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
		clear(der)
		priv, ok := parsed.(*ecdsa.PrivateKey)
		if err != nil || !ok || priv.Curve != elliptic.P256() {
			return k.errorf("key %s is not a P-256 key", sk.ID)
		}
		keys = append(keys, key{id: sk.ID, created: sk.CreatedAt, priv: priv})
	}
	k.mu.Lock()
	k.keys, k.lastLoad = keys, k.o.Now()
	k.mu.Unlock()
	return nil
}

// current is the key that signs: the newest published for Prepublish, or
// the oldest when none has been (the first key of a new set).
func (k *Set) current() (key, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if len(k.keys) == 0 {
		return key{}, k.errorf("no key loaded: Rotate first")
	}
	now := k.o.Now()
	for i := len(k.keys) - 1; i >= 0; i-- {
		if !now.Before(k.keys[i].created.Add(k.o.Prepublish)) {
			return k.keys[i], nil
		}
	}
	return k.keys[0], nil
}

// Signer signs with the current key, naming it in kid, with the header
// typ ("" for none).
func (k *Set) Signer(typ string) (jose.Signer, error) {
	cur, err := k.current()
	if err != nil {
		return nil, err
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	return jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: cur.priv, KeyID: cur.id, Algorithm: string(jose.ES256)}}, opts)
}

// Public returns the verification key of kid; a kid not loaded makes one
// reload from storage, at most every ten seconds, for a key another
// replica has just created.
func (k *Set) Public(ctx context.Context, kid string) (*ecdsa.PublicKey, bool) {
	pub, ok, stale := k.lookup(kid)
	if !ok && stale {
		if keys, err := k.store.ListServerKeys(ctx, k.o.Purpose); err == nil && len(keys) > 0 && k.load(ctx, keys) == nil {
			pub, ok, _ = k.lookup(kid)
		}
	}
	return pub, ok
}

func (k *Set) lookup(kid string) (pub *ecdsa.PublicKey, ok, stale bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	stale = k.o.Now().Sub(k.lastLoad) > 10*time.Second
	for _, c := range k.keys {
		if c.id == kid {
			return &c.priv.PublicKey, true, stale
		}
	}
	return nil, false, stale
}

// JWKS is the public keys, oldest first.
func (k *Set) JWKS() jose.JSONWebKeySet {
	k.mu.RLock()
	defer k.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(k.keys))}
	for _, c := range k.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &c.priv.PublicKey, KeyID: c.id, Algorithm: string(jose.ES256), Use: "sig"})
	}
	return set
}

// MaxAge is the Cache-Control max-age ServeJWKS sets: a verifier that
// honours it has the set again within five minutes.
const MaxAge = 5 * time.Minute

// ServeJWKS serves the public keys (RFC 7517 §5).
func (k *Set) ServeJWKS(w http.ResponseWriter, _ *http.Request) {
	WriteJWKS(w, k.JWKS())
}

// WriteJWKS writes a JWK set of public keys (RFC 7517 §5), which a
// verifier may cache for MaxAge.
func WriteJWKS(w http.ResponseWriter, set jose.JSONWebKeySet) {
	body, err := json.Marshal(set)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(MaxAge/time.Second)))
	_, _ = w.Write(body) // the verifier has gone: nothing to do
}

func (k *Set) errorf(format string, args ...any) error {
	return fmt.Errorf("signingkeys %s: "+format, append([]any{k.o.Purpose}, args...)...)
}

// KeyStatus is one key of a set as its rotation sees it, without its
// material.
type KeyStatus struct {
	ID      string
	Created time.Time
	// SigningSince is when it began, or begins, to sign: Prepublish after
	// it was made.
	SigningSince time.Time
	// RetireAt is when it leaves the set: Retain and a minute of clock
	// skew after its successor began to sign; zero while it has none.
	RetireAt time.Time
	// Current says it is the key that signs now.
	Current bool
}

// SetStatus is a set's keys, oldest first, and when Rotate next makes one.
type SetStatus struct {
	Purpose      string
	Rotation     time.Duration
	NextRotation time.Time
	Keys         []KeyStatus
}

// Schedule is the status of keys (oldest first, as stored) under o's
// rotation at now: the schedule Rotate and the signer follow.
func Schedule(keys []storage.ServerKey, o Options, now time.Time) SetStatus {
	st := SetStatus{Purpose: o.Purpose, Rotation: o.Rotation, Keys: make([]KeyStatus, len(keys))}
	current := -1
	for i, sk := range keys {
		ks := KeyStatus{ID: sk.ID, Created: sk.CreatedAt, SigningSince: sk.CreatedAt.Add(o.Prepublish)}
		if i+1 < len(keys) {
			ks.RetireAt = keys[i+1].CreatedAt.Add(o.Prepublish + o.Retain + time.Minute)
		}
		if !now.Before(ks.SigningSince) {
			current = i
		}
		st.Keys[i] = ks
	}
	if len(keys) > 0 {
		st.Keys[max(current, 0)].Current = true
		st.NextRotation = keys[len(keys)-1].CreatedAt.Add(o.Rotation)
	}
	return st
}

// Status is the loaded keys' schedule now.
func (k *Set) Status() SetStatus {
	k.mu.RLock()
	keys := make([]storage.ServerKey, len(k.keys))
	for i, c := range k.keys {
		keys[i] = storage.ServerKey{Purpose: k.o.Purpose, ID: c.id, CreatedAt: c.created}
	}
	k.mu.RUnlock()
	return Schedule(keys, k.o, k.o.Now())
}
