package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
)

// SigningKeyPurpose names the server keys that sign access tokens.
const SigningKeyPurpose = "oauth-signing"

// signingKeys are the ES256 keys of the access tokens: private keys sealed
// by the vault as server keys, shared by every replica. The newest signs;
// older ones stay in the JWKS until every token they signed has expired,
// as workload access token keys do (package wat).
type signingKeys struct {
	store    storage.Storage
	vault    *vault.Vault
	rotation time.Duration
	ttl      time.Duration
	now      func() time.Time

	mu       sync.RWMutex
	keys     map[string]*ecdsa.PrivateKey
	order    []string // oldest first
	current  string
	lastLoad time.Time
}

// Rotate creates a key when the newest is older than the rotation period,
// deletes keys that can no longer have live tokens, and reloads.
func (k *signingKeys) Rotate(ctx context.Context) error {
	keys, err := k.store.ListServerKeys(ctx, SigningKeyPurpose)
	if err != nil {
		return errorf("list signing keys: %w", err)
	}
	now := k.now()
	if len(keys) == 0 || now.Sub(keys[len(keys)-1].CreatedAt) >= k.rotation {
		if err := k.create(ctx, now); err != nil {
			return err
		}
		if keys, err = k.store.ListServerKeys(ctx, SigningKeyPurpose); err != nil {
			return errorf("list signing keys: %w", err)
		}
	}
	// A key stops signing when its successor appears; it leaves the key
	// set once every token it signed has expired (plus a minute of skew).
	live := keys[len(keys)-1:]
	for n, key := range keys[:len(keys)-1] {
		if now.Sub(keys[n+1].CreatedAt) <= k.ttl+time.Minute {
			live = append(live, key)
			continue
		}
		if err := k.store.DeleteServerKey(ctx, SigningKeyPurpose, key.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return errorf("delete retired signing key: %w", err)
		}
	}
	slices.SortStableFunc(live, func(a, b storage.ServerKey) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return k.load(ctx, live)
}

func (k *signingKeys) create(ctx context.Context, now time.Time) error {
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
	sealed, err := k.vault.Seal(ctx, der, vault.ServerKeyBinding(SigningKeyPurpose, id))
	if err != nil {
		return errorf("seal signing key: %w", err)
	}
	if err := k.store.CreateServerKey(ctx, storage.ServerKey{Purpose: SigningKeyPurpose, ID: id, Key: sealed, CreatedAt: now}); err != nil {
		return errorf("store signing key: %w", err)
	}
	return nil
}

func (k *signingKeys) load(ctx context.Context, keys []storage.ServerKey) error {
	opened := make(map[string]*ecdsa.PrivateKey, len(keys))
	order := make([]string, 0, len(keys))
	for _, sk := range keys {
		der, err := k.vault.Open(ctx, sk.Key, vault.ServerKeyBinding(SigningKeyPurpose, sk.ID))
		if err != nil {
			return errorf("open signing key %s: %w", sk.ID, err)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
		clear(der)
		priv, ok := parsed.(*ecdsa.PrivateKey)
		if err != nil || !ok || priv.Curve != elliptic.P256() {
			return errorf("signing key %s is not a P-256 key", sk.ID)
		}
		opened[sk.ID] = priv
		order = append(order, sk.ID)
	}
	k.mu.Lock()
	k.keys, k.order, k.current, k.lastLoad = opened, order, keys[len(keys)-1].ID, k.now()
	k.mu.Unlock()
	return nil
}

// signer signs with the current key.
func (k *signingKeys) signer(typ string) (jose.Signer, error) {
	k.mu.RLock()
	kid, priv := k.current, k.keys[k.current]
	k.mu.RUnlock()
	return jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.ES256)}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
}

// public returns the verification key of kid; a kid not loaded makes one
// reload from storage, at most every ten seconds, for a key another
// replica has just created.
func (k *signingKeys) public(ctx context.Context, kid string) (*ecdsa.PublicKey, bool) {
	k.mu.RLock()
	priv, ok := k.keys[kid]
	stale := k.now().Sub(k.lastLoad) > 10*time.Second
	k.mu.RUnlock()
	if !ok && stale {
		if keys, err := k.store.ListServerKeys(ctx, SigningKeyPurpose); err == nil && len(keys) > 0 && k.load(ctx, keys) == nil {
			k.mu.RLock()
			priv, ok = k.keys[kid]
			k.mu.RUnlock()
		}
	}
	if !ok {
		return nil, false
	}
	return &priv.PublicKey, true
}

// jwks serves the public keys (RFC 7517 §5).
func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	k := s.keys
	k.mu.RLock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(k.order))}
	for _, kid := range k.order {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.keys[kid].PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	k.mu.RUnlock()
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSONBody(w, set)
}
