package vault

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
)

// Backend is one key-management system: the local keyring, AWS KMS or a
// PKCS#11 token. Its key ids are disjoint from every other backend's, so
// the id stored with each record names the backend that can open it.
type Backend interface {
	// Name names the backend in errors, spans and metrics.
	Name() string
	// Owns reports whether id is a key id of this backend.
	Owns(id string) bool
	// Key returns the wrapper of key id, or an error wrapping
	// ErrUnknownKey.
	Key(ctx context.Context, id string) (KeyWrapper, error)
	// Check reports whether key id can be used now: nil, or an error
	// wrapping ErrKeyGone (it no longer exists and never will again) or
	// ErrKeyUnavailable (disabled, pending deletion, or the backend
	// unreachable).
	Check(ctx context.Context, id string) error
	// Signer returns a signer for the asymmetric key id. The private key
	// never leaves the backend. The error wraps ErrNotSigningKey when the
	// key cannot sign.
	Signer(ctx context.Context, id string) (crypto.Signer, error)
}

var (
	// ErrKeyGone reports a key that was deleted: what it sealed is lost.
	ErrKeyGone = errors.New("vault: key no longer exists")
	// ErrKeyUnavailable reports a key that exists but cannot be used now.
	ErrKeyUnavailable = errors.New("vault: key unavailable")
	// ErrNotSigningKey reports a key that cannot sign.
	ErrNotSigningKey = errors.New("vault: not a signing key")
)

// Keys routes key ids to the backend that owns them. It implements Keyring.
type Keys struct {
	backends []Backend
}

// NewKeys returns a router over backends, which must own disjoint ids.
func NewKeys(backends ...Backend) *Keys {
	return &Keys{backends: backends}
}

// Backend returns the backend that owns id.
func (k *Keys) Backend(id string) (Backend, error) {
	for _, b := range k.backends {
		if b.Owns(id) {
			return b, nil
		}
	}
	names := make([]string, len(k.backends))
	for i, b := range k.backends {
		names[i] = b.Name()
	}
	return nil, fmt.Errorf("%w %q: no configured key-management backend (%s) owns it", ErrUnknownKey, id, strings.Join(names, ", "))
}

// Key implements Keyring.
func (k *Keys) Key(ctx context.Context, id string) (KeyWrapper, error) {
	b, err := k.Backend(id)
	if err != nil {
		return nil, err
	}
	return b.Key(ctx, id)
}

// Check reports whether key id can be used now (see Backend.Check).
func (k *Keys) Check(ctx context.Context, id string) error {
	b, err := k.Backend(id)
	if err != nil {
		return err
	}
	return b.Check(ctx, id)
}

// Signer returns a signer for the asymmetric key id (see Backend.Signer).
func (k *Keys) Signer(ctx context.Context, id string) (crypto.Signer, error) {
	b, err := k.Backend(id)
	if err != nil {
		return nil, err
	}
	return b.Signer(ctx, id)
}
