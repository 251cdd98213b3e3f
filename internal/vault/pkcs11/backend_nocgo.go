//go:build !cgo

package pkcs11

import (
	"context"
	"crypto"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
)

// Backend is the PKCS#11 backend; this build has no cgo, so none exists.
type Backend struct {
	Metrics *telemetry.Metrics
}

// New reports that this build cannot talk to a PKCS#11 token.
func New(config.PKCS11) (*Backend, error) { return nil, errNoCgo }

// Key implements vault.Backend.
func (b *Backend) Key(context.Context, string) (vault.KeyWrapper, error) { return nil, errNoCgo }

// Check implements vault.Backend.
func (b *Backend) Check(context.Context, string) error { return errNoCgo }

// Signer implements vault.Backend.
func (b *Backend) Signer(context.Context, string) (crypto.Signer, error) { return nil, errNoCgo }

// CreateKey generates an AES-256 key-encryption key.
func (b *Backend) CreateKey(context.Context, string) (string, error) { return "", errNoCgo }

// CreateKeyPair generates a signing key pair.
func (b *Backend) CreateKeyPair(context.Context, string, SigningKeyType) (string, error) {
	return "", errNoCgo
}

// Close releases the token.
func (b *Backend) Close() error { return nil }

var _ vault.Backend = (*Backend)(nil)
