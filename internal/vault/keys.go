package vault

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/behalf-dev/behalf/internal/telemetry"
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
	// ErrNotWrappingKey reports a key that cannot wrap data keys now: an
	// asymmetric key, or one that is not enabled.
	ErrNotWrappingKey = errors.New("vault: not a key that can wrap data keys")
)

// DataKeyGenerator is a KeyWrapper that makes data keys itself and wraps
// them in the same call (AWS KMS GenerateDataKey), so that a new record's
// data key comes from the key-management system's generator. The vault
// seals with it when the current key has one.
type DataKeyGenerator interface {
	// GenerateDataKey returns a fresh 32-byte data key and its wrapping,
	// with aad authenticated as Wrap authenticates it.
	GenerateDataKey(ctx context.Context, aad []byte) (dek, wrapped []byte, err error)
}

// newDataKey returns a fresh 32-byte data key and its wrapping under kek.
func newDataKey(ctx context.Context, kek KeyWrapper, aad []byte) (dek, wrapped []byte, err error) {
	if g, ok := kek.(DataKeyGenerator); ok {
		dek, wrapped, err = g.GenerateDataKey(ctx, aad)
		if err == nil && len(dek) != 32 {
			clear(dek)
			return nil, nil, fmt.Errorf("vault: %s made a data key of %d bytes, not 32", kek.KeyID(), len(dek))
		}
		return dek, wrapped, err
	}
	dek = make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return nil, nil, fmt.Errorf("vault: generate data key: %w", err)
	}
	if wrapped, err = kek.Wrap(ctx, dek, aad); err != nil {
		clear(dek)
		return nil, nil, err
	}
	return dek, wrapped, nil
}

// WrappingKeyResolver is a Backend whose keys have names besides their
// ids (AWS KMS aliases), or not all of whose keys can wrap data keys
// (asymmetric KMS keys).
type WrappingKeyResolver interface {
	// ResolveWrappingKey returns the id of the key that name names, once
	// it has checked that the key can wrap data keys now. The error wraps
	// ErrKeyGone when there is no such key, ErrNotWrappingKey when it
	// cannot wrap data keys (saying why), and ErrKeyUnavailable when the
	// backend could not tell.
	ResolveWrappingKey(ctx context.Context, name string) (string, error)
}

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

// ResolveWrappingKey returns the id of the key that name names, checked
// able to wrap data keys now (see WrappingKeyResolver); a backend that is
// no WrappingKeyResolver names its keys by id only, and is asked Check.
func (k *Keys) ResolveWrappingKey(ctx context.Context, name string) (string, error) {
	b, err := k.Backend(name)
	if err != nil {
		return "", err
	}
	if r, ok := b.(WrappingKeyResolver); ok {
		return r.ResolveWrappingKey(ctx, name)
	}
	if err := b.Check(ctx, name); err != nil {
		return "", err
	}
	return name, nil
}

// ObserveCall starts the span of one call of backend to its
// key-management system, operation (for AWS KMS the API operation, e.g.
// "Decrypt"), and returns the function that ends it with the call's
// error and counts the call (telemetry.Metrics.KeyBackendCall). Its
// outcome is read from the error: nil, ErrKeyUnavailable, ErrKeyGone, or
// any other failure.
func ObserveCall(ctx context.Context, m *telemetry.Metrics, backend, operation string, attrs ...attribute.KeyValue) (context.Context, func(error)) {
	if telemetry.Recording(ctx) {
		attrs = append(attrs, telemetry.KeyBackend.String(backend), telemetry.Operation.String(operation))
	}
	ctx, span := telemetry.StartClient(ctx, backend+" "+operation, attrs...)
	start := time.Now()
	return ctx, func(err error) {
		outcome := keyOutcome(err)
		errType := ""
		if err != nil {
			errType = outcome
		}
		telemetry.End(span, err, errType)
		m.KeyBackendCall(ctx, backend, operation, outcome, time.Since(start))
	}
}

func keyOutcome(err error) string {
	switch {
	case err == nil:
		return telemetry.KeyOutcomeSuccess
	case errors.Is(err, ErrKeyUnavailable):
		return telemetry.KeyOutcomeUnavailable
	case errors.Is(err, ErrKeyGone):
		return telemetry.KeyOutcomeGone
	}
	return telemetry.KeyOutcomeFailure
}
