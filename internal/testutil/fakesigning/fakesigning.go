// Package fakesigning is a FAKE key-management backend for tests: a
// vault.Backend whose asymmetric keys are held in memory, standing in for
// AWS KMS and PKCS#11 tokens where no real one can run. Its key ids are
// KMS-style key ARNs. It can be told to be unreachable, and to forget a
// key, as a real backend can be.
package fakesigning

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/vault"
)

// Key specs, named as AWS KMS names them.
const (
	ECCNISTP256 = "ECC_NIST_P256"
	ECCNISTP384 = "ECC_NIST_P384"
	RSA2048     = "RSA_2048"
	RSA1024     = "RSA_1024" // shorter than any algorithm allows
	// SymmetricDefault is a key that cannot sign.
	SymmetricDefault = "SYMMETRIC_DEFAULT"
)

// Backend is the fake backend. It is safe for concurrent use.
type Backend struct {
	mu          sync.Mutex
	keys        map[string]crypto.Signer // nil for a symmetric key
	gone        map[string]bool
	unavailable bool
	// Loads counts Signer calls; Signs counts signatures.
	Loads, Signs atomic.Int64
}

// New returns a fake backend without keys.
func New() *Backend {
	return &Backend{keys: map[string]crypto.Signer{}, gone: map[string]bool{}}
}

// Create makes a key of spec and returns its id, a KMS-style key ARN.
func (b *Backend) Create(spec string) (string, error) {
	var key crypto.Signer
	var err error
	switch spec {
	case ECCNISTP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECCNISTP384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case RSA1024:
		key, err = rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // G403: a key too short, to be refused
	case SymmetricDefault:
	default:
		return "", fmt.Errorf("fakesigning: unknown key spec %s", spec)
	}
	if err != nil {
		return "", err
	}
	id := "arn:aws:kms:us-east-1:111122223333:key/" + uuid.NewString()
	b.mu.Lock()
	b.keys[id] = key
	b.mu.Unlock()
	return id, nil
}

// Public is key id's public half.
func (b *Backend) Public(id string) crypto.PublicKey {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.keys[id].Public()
}

// SetUnavailable makes every call fail as an unreachable backend's would.
func (b *Backend) SetUnavailable(down bool) {
	b.mu.Lock()
	b.unavailable = down
	b.mu.Unlock()
}

// Delete deletes key id for good.
func (b *Backend) Delete(id string) {
	b.mu.Lock()
	delete(b.keys, id)
	b.gone[id] = true
	b.mu.Unlock()
}

// Name implements vault.Backend.
func (b *Backend) Name() string { return "fake-signing" }

// Owns implements vault.Backend: the ids it made.
func (b *Backend) Owns(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.keys[id]
	return ok || b.gone[id]
}

// Key implements vault.Backend: its keys wrap nothing.
func (b *Backend) Key(_ context.Context, id string) (vault.KeyWrapper, error) {
	return nil, fmt.Errorf("%w: %s is a signing key of the fake backend", vault.ErrUnknownKey, id)
}

// Check implements vault.Backend.
func (b *Backend) Check(_ context.Context, id string) error {
	_, err := b.lookup(id)
	return err
}

// Signer implements vault.Backend.
func (b *Backend) Signer(_ context.Context, id string) (crypto.Signer, error) {
	b.Loads.Add(1)
	key, err := b.lookup(id)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("%w: %s is a symmetric key", vault.ErrNotSigningKey, id)
	}
	return signer{b: b, id: id, public: key.Public()}, nil
}

func (b *Backend) lookup(id string) (crypto.Signer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch key, ok := b.keys[id]; {
	case b.unavailable:
		return nil, fmt.Errorf("%w: the fake backend is unreachable", vault.ErrKeyUnavailable)
	case b.gone[id]:
		return nil, fmt.Errorf("%w: %s was deleted", vault.ErrKeyGone, id)
	case !ok:
		return nil, fmt.Errorf("%w: %s", vault.ErrUnknownKey, id)
	default:
		return key, nil
	}
}

// signer signs in the backend, as a KMS key's does: each signature looks
// the key up again, so a key deleted or a backend gone since fails it.
type signer struct {
	b      *Backend
	id     string
	public crypto.PublicKey
}

func (s signer) Public() crypto.PublicKey { return s.public }

func (s signer) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	key, err := s.b.lookup(s.id)
	if err != nil {
		return nil, err
	}
	s.b.Signs.Add(1)
	return key.Sign(r, digest, opts)
}

var _ vault.Backend = (*Backend)(nil)
