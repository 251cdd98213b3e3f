// Package vault encrypts every secret behalf stores with envelope
// encryption: each record gets a fresh AES-256-GCM data key, and that data
// key is wrapped by a key-encryption key (KEK) behind the KeyWrapper
// interface. Both the data and the wrapped data key are authenticated with
// associated data derived from the record's Binding, so a ciphertext copied
// into another row fails to open.
//
// The KEK's id travels with every record, so the current KEK can change
// while records sealed under earlier ones stay readable until they are
// re-wrapped (see RewrapStale). behalf's own secrets are always sealed
// under the service key, the token vault's under its current key
// (ServiceSealed).
package vault

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// KeyWrapper wraps and unwraps data keys under one key-encryption key.
// Implementations must authenticate aad.
type KeyWrapper interface {
	KeyID() string
	Wrap(ctx context.Context, dek, aad []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

// Keyring resolves key ids to wrappers. It returns an error wrapping
// ErrUnknownKey when it has no key with that id.
type Keyring interface {
	Key(ctx context.Context, id string) (KeyWrapper, error)
}

var (
	// ErrUnknownKey reports a key id that no keyring knows.
	ErrUnknownKey = errors.New("vault: unknown key")
	// ErrDecrypt reports a ciphertext that failed authentication: tampered,
	// truncated, or bound to another record.
	ErrDecrypt = errors.New("vault: decryption failed")
	// ErrSecretLost reports a secret whose key was deleted and whose
	// ciphertext the token vault's reset removed (storage.Sealed.Lost):
	// it must be set again.
	ErrSecretLost = errors.New("vault: secret lost with its deleted key")
)

// Binding names the record a secret belongs to. Its fields become the
// associated data of both AEAD layers.
type Binding struct {
	Kind     storage.SecretKind
	Owner    string
	Workload string
	User     string
}

// aad encodes the binding unambiguously: a version label, then each field
// length-prefixed, so no two bindings share an encoding.
func (b Binding) aad() []byte {
	fields := []string{"behalf-vault-v1", string(b.Kind), b.Owner, b.Workload, b.User}
	n := 0
	for _, f := range fields {
		n += 4 + len(f)
	}
	out := make([]byte, 0, n)
	for _, f := range fields {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f))) //nolint:gosec // G115: binding fields are names and ids the API bounds to a few hundred bytes
		out = append(out, f...)
	}
	return out
}

// Vault seals and opens secrets. It is safe for concurrent use.
type Vault struct {
	keys Keyring
	// service seals behalf's own secrets; current the token vault's.
	service KeyWrapper
	current atomic.Pointer[currentKey]
	// Metrics counts seals, opens and re-wraps; nil counts nothing. Set it
	// before the vault is shared.
	Metrics *telemetry.Metrics
}

// New returns a vault that seals every secret under the service key
// serviceID until SetCurrent names the token vault's key.
func New(ctx context.Context, keys Keyring, serviceID string) (*Vault, error) {
	w, err := keys.Key(ctx, serviceID)
	if err != nil {
		return nil, err
	}
	v := &Vault{keys: keys, service: w}
	v.current.Store(&currentKey{id: serviceID, kek: w})
	return v, nil
}

// SetCurrent makes id the key that seals the token vault's new secrets. A
// key that cannot be used now becomes current all the same, so that the
// vault follows its record: sealing the token vault's secrets then fails,
// until the key can be used again, and SetCurrent returns why.
func (v *Vault) SetCurrent(ctx context.Context, id string) error {
	w, err := v.keys.Key(ctx, id)
	v.current.Store(&currentKey{id: id, kek: w})
	return err
}

// CurrentKeyID returns the id of the key that seals the token vault's new
// secrets.
func (v *Vault) CurrentKeyID() string { return v.current.Load().id }

// ServiceKeyID returns the id of the key that seals behalf's own secrets.
func (v *Vault) ServiceKeyID() string { return v.service.KeyID() }

// Seal encrypts plaintext for the record b under a fresh data key.
func (v *Vault) Seal(ctx context.Context, plaintext []byte, b Binding) (storage.Sealed, error) {
	ctx, span := telemetry.Start(ctx, "vault.seal")
	sealed, err := v.seal(ctx, plaintext, b)
	telemetry.End(span, err, vaultErrorType(err))
	v.Metrics.Vault(ctx, telemetry.VaultSeal, err)
	return sealed, err
}

// Open decrypts s, which must have been sealed for the record b.
func (v *Vault) Open(ctx context.Context, s storage.Sealed, b Binding) ([]byte, error) {
	ctx, span := telemetry.Start(ctx, "vault.open")
	plaintext, err := v.open(ctx, s, b)
	telemetry.End(span, err, vaultErrorType(err))
	v.Metrics.Vault(ctx, telemetry.VaultOpen, err)
	return plaintext, err
}

// vaultErrorType names a failed seal or open in a span.
func vaultErrorType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrDecrypt):
		return "decrypt"
	case errors.Is(err, ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, ErrKeyUnavailable):
		return "key_unavailable"
	case errors.Is(err, ErrKeyGone):
		return "key_gone"
	case errors.Is(err, ErrSecretLost):
		return "secret_lost"
	}
	return "vault_error"
}

func (v *Vault) seal(ctx context.Context, plaintext []byte, b Binding) (storage.Sealed, error) {
	kek, err := v.sealingKey(ctx, b.Kind)
	if err != nil {
		return storage.Sealed{}, err
	}
	aad := b.aad()
	dek, wrapped, err := newDataKey(ctx, kek, aad)
	if err != nil {
		return storage.Sealed{}, fmt.Errorf("vault: wrap data key with %s: %w", kek.KeyID(), err)
	}
	ct, err := gcmSeal(dek, plaintext, aad)
	clear(dek)
	if err != nil {
		return storage.Sealed{}, err
	}
	e := envelope{keyID: kek.KeyID(), wrappedDEK: wrapped, ciphertext: ct}
	blob, err := e.marshal()
	if err != nil {
		return storage.Sealed{}, err
	}
	return storage.Sealed{KeyID: e.keyID, Blob: blob}, nil
}

func (v *Vault) open(ctx context.Context, s storage.Sealed, b Binding) ([]byte, error) {
	e, dek, err := v.unwrap(ctx, s, b)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	return gcmOpen(dek, e.ciphertext, b.aad())
}

// Rewrap re-wraps the data key of s under the key that seals its kind now.
// The data ciphertext is untouched, so this costs one unwrap and one wrap.
func (v *Vault) Rewrap(ctx context.Context, s storage.Sealed, b Binding) (storage.Sealed, error) {
	e, dek, err := v.unwrap(ctx, s, b)
	if err != nil {
		return storage.Sealed{}, err
	}
	defer clear(dek)
	// Prove the data still opens before committing to the new wrapping.
	if _, err := gcmOpen(dek, e.ciphertext, b.aad()); err != nil {
		return storage.Sealed{}, err
	}
	kek, err := v.sealingKey(ctx, b.Kind)
	if err != nil {
		return storage.Sealed{}, err
	}
	wrapped, err := kek.Wrap(ctx, dek, b.aad())
	if err != nil {
		return storage.Sealed{}, fmt.Errorf("vault: wrap data key with %s: %w", kek.KeyID(), err)
	}
	e.keyID, e.wrappedDEK = kek.KeyID(), wrapped
	blob, err := e.marshal()
	if err != nil {
		return storage.Sealed{}, err
	}
	return storage.Sealed{KeyID: e.keyID, Blob: blob}, nil
}

func (v *Vault) unwrap(ctx context.Context, s storage.Sealed, b Binding) (envelope, []byte, error) {
	if s.Lost() {
		return envelope{}, nil, fmt.Errorf("%w: it was sealed under %s", ErrSecretLost, s.KeyID)
	}
	e, err := parseEnvelope(s.Blob)
	if err != nil {
		return envelope{}, nil, err
	}
	if e.keyID != s.KeyID {
		return envelope{}, nil, fmt.Errorf("%w: key id column does not match the envelope", ErrDecrypt)
	}
	kek, err := v.keys.Key(ctx, e.keyID)
	if err != nil {
		return envelope{}, nil, err
	}
	dek, err := kek.Unwrap(ctx, e.wrappedDEK, b.aad())
	if errors.Is(err, ErrKeyUnavailable) || errors.Is(err, ErrKeyGone) {
		// Not this record's fault: the key cannot be used.
		return envelope{}, nil, fmt.Errorf("vault: unwrap data key: %w", err)
	}
	if err != nil {
		return envelope{}, nil, fmt.Errorf("%w: unwrap data key: %w", ErrDecrypt, err)
	}
	if len(dek) != 32 {
		clear(dek)
		return envelope{}, nil, fmt.Errorf("%w: data key has the wrong size", ErrDecrypt)
	}
	return e, dek, nil
}

// RewrapResult reports one pass of RewrapStale.
type RewrapResult struct {
	Rewrapped int
	// Skipped lists the records that did not open and were left as they
	// are (tampered, or sealed under a key no keyring knows).
	Skipped []SkippedSecret
	// Deferred counts the records passed over because a key they need
	// was unavailable (ErrKeyUnavailable); a later pass meets them again.
	// Unavailable says why, once per key id those records were under.
	Deferred    int
	Unavailable map[string]error
}

// SkippedSecret names a record RewrapStale could not re-wrap. Ref carries
// no ciphertext; Err never contains the secret.
type SkippedSecret struct {
	Ref storage.SealedRef
	Err error
}

// RewrapStale re-wraps every stored secret whose key is not the one that
// seals its kind now (Targets), in batches. Records changed or deleted
// meanwhile are passed over: whoever changed them sealed them anew. A
// record that does not open is skipped and reported, so one bad record
// cannot stop the rotation of the others; it stays stale, and is met again
// by the next pass. A key found unavailable is not asked again in the same
// pass: the records under it are deferred. While the token vault's key
// cannot be resolved, nothing is re-wrapped and the error says why.
func (v *Vault) RewrapStale(ctx context.Context, st storage.Storage, batch int) (RewrapResult, error) {
	var res RewrapResult
	if _, err := v.vaultKey(ctx); err != nil {
		return res, err
	}
	target := v.Targets()
	var after storage.SealedRef
	for {
		refs, err := st.ListStaleSecretsAfter(ctx, target, after, batch)
		if err != nil || len(refs) == 0 {
			return res, err
		}
		for _, ref := range refs {
			if _, down := res.Unavailable[ref.Sealed.KeyID]; down {
				res.Deferred++
				continue
			}
			next, err := v.Rewrap(ctx, ref.Sealed, BindingFor(ref))
			if err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				if errors.Is(err, ErrKeyUnavailable) {
					if res.Unavailable == nil {
						res.Unavailable = map[string]error{}
					}
					res.Unavailable[ref.Sealed.KeyID] = err
					res.Deferred++
					continue
				}
				skipped := ref
				skipped.Sealed = storage.Sealed{}
				res.Skipped = append(res.Skipped, SkippedSecret{Ref: skipped, Err: err})
				v.Metrics.Rewrapped(ctx, telemetry.RewrapSkipped, 1)
				continue
			}
			switch err := st.ReplaceSecret(ctx, ref, next); {
			case err == nil:
				res.Rewrapped++
				v.Metrics.Rewrapped(ctx, telemetry.RewrapDone, 1)
			case errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrNotFound):
			default:
				return res, err
			}
		}
		after = refs[len(refs)-1]
	}
}

// envelope is the stored form of a sealed secret:
//
//	"bhv1" | u8 len(keyID) | keyID | u16 len(wrappedDEK) | wrappedDEK | nonce(12) | ciphertext||tag
type envelope struct {
	keyID      string
	wrappedDEK []byte
	ciphertext []byte // nonce || sealed data
}

var magic = []byte("bhv1")

const maxBlob = 1 << 20

func (e envelope) marshal() ([]byte, error) {
	keyIDLen, dekLen := len(e.keyID), len(e.wrappedDEK)
	if keyIDLen == 0 || keyIDLen > math.MaxUint8 {
		return nil, errors.New("vault: key id out of range")
	}
	if dekLen > math.MaxUint16 {
		return nil, errors.New("vault: wrapped key out of range")
	}
	out := make([]byte, 0, len(magic)+1+keyIDLen+2+dekLen+len(e.ciphertext))
	out = append(out, magic...)
	out = append(out, byte(keyIDLen))
	out = append(out, e.keyID...)
	out = binary.BigEndian.AppendUint16(out, uint16(dekLen))
	out = append(out, e.wrappedDEK...)
	return append(out, e.ciphertext...), nil
}

func parseEnvelope(b []byte) (envelope, error) {
	bad := func(why string) (envelope, error) {
		return envelope{}, fmt.Errorf("%w: malformed envelope: %s", ErrDecrypt, why)
	}
	if len(b) > maxBlob {
		return bad("too large")
	}
	if !bytes.HasPrefix(b, magic) {
		return bad("unknown format")
	}
	b = b[len(magic):]
	if len(b) < 1 {
		return bad("truncated")
	}
	n := int(b[0])
	b = b[1:]
	if n == 0 || len(b) < n {
		return bad("truncated key id")
	}
	e := envelope{keyID: string(b[:n])}
	b = b[n:]
	if len(b) < 2 {
		return bad("truncated")
	}
	n = int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < n {
		return bad("truncated data key")
	}
	e.wrappedDEK = b[:n:n]
	e.ciphertext = b[n:]
	if len(e.ciphertext) < gcmNonceSize+gcmTagSize {
		return bad("truncated ciphertext")
	}
	return e, nil
}

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
)

// gcmSeal encrypts with AES-256-GCM under a random nonce and returns
// nonce||ciphertext||tag.
func gcmSeal(key, plaintext, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, gcmNonceSize, gcmNonceSize+len(plaintext)+gcmTagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("vault: nonce: %w", err)
	}
	return aead.Seal(out, out[:gcmNonceSize], plaintext, aad), nil
}

func gcmOpen(key, sealed, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcmNonceSize+gcmTagSize {
		return nil, fmt.Errorf("%w: truncated", ErrDecrypt)
	}
	pt, err := aead.Open(nil, sealed[:gcmNonceSize], sealed[gcmNonceSize:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errors.New("vault: AES-256 needs a 32-byte key")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
