//go:build cgo

package pkcs11

import (
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
)

const (
	// nonceSize is GCM's 96-bit IV (NIST SP 800-38D §8.2.2), random for
	// each wrap and stored before the ciphertext, as the local keyring does.
	nonceSize = 12
	tagSize   = 16
	// maxWrapped bounds what Unwrap hands the token: a data key of at most
	// 64 bytes.
	maxWrapped = nonceSize + 64 + tagSize
	// maxSessions bounds the sessions opened on the token (crypto11's pool
	// also keeps under the token's own limit); poolWait bounds how long a
	// call waits for one.
	maxSessions = 32
	poolWait    = 10 * time.Second
	// minRSABits is the smallest RSA key that may sign.
	minRSABits = 2048
)

// Backend keeps keys in one PKCS#11 token. It is safe for concurrent use:
// each operation takes a session of its own from crypto11's pool.
//
// The token is opened at first use, not by New, and opened anew after an
// error that says its sessions, its login or its object handles were lost
// (the token was removed, the HSM restarted, the key deleted); the call
// that met the error is tried once more. A token hides its private objects
// from a session that lost its login, so a key missing from a token opened
// over a second ago is looked for again in the token opened anew before it
// is reported gone. After a failure to open it, the token is tried again at
// most once a second; a PIN the token refused is not tried again until the
// PIN file holds another, since tokens lock their user after a few wrong
// PINs.
type Backend struct {
	// Metrics counts the token's operations; nil counts nothing.
	Metrics *telemetry.Metrics

	cfg config.PKCS11
	// retry is how long a failure to open the token is reported before
	// opening it is tried again, and how long a miss in a newly opened
	// token is trusted.
	retry time.Duration

	mu      sync.Mutex
	c       *crypto11.Context // nil until opened, and after a drop
	opened  time.Time         // when c was opened
	lastTry time.Time
	lastErr error
	badPIN  []byte
	// secrets and pairs remember the keys found in c, by label; missing
	// remembers when a token opened anew confirmed a miss, by kind and label.
	secrets map[string]cipher.AEAD
	pairs   map[string]crypto11.Signer
	missing map[string]time.Time
	closed  bool
	// closing counts the dropped contexts still being closed.
	closing sync.WaitGroup
}

// New returns the backend of the token cfg names. It only checks cfg: the
// module is loaded, and the PIN read, at first use.
func New(cfg config.PKCS11) (*Backend, error) {
	if cfg.Module == "" || cfg.PinFile == "" {
		return nil, errors.New("pkcs11: the module and the PIN file are required")
	}
	if err := checkLabel("token", cfg.TokenLabel, maxTokenLabel); err != nil {
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	return &Backend{cfg: cfg, retry: time.Second}, nil
}

// Close closes the token, once the calls using it have returned. The
// backend cannot be used after.
func (b *Backend) Close() error {
	b.mu.Lock()
	c := b.c
	b.c, b.closed = nil, true
	b.mu.Unlock()
	b.closing.Wait()
	if c != nil {
		return c.Close()
	}
	return nil
}

// context returns the open token and when it was opened, opening it if
// need be.
func (b *Backend) context() (*crypto11.Context, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, time.Time{}, fmt.Errorf("%w: the PKCS#11 backend is closed", vault.ErrKeyUnavailable)
	case b.c != nil:
		return b.c, b.opened, nil
	case b.lastErr != nil && time.Since(b.lastTry) < b.retry:
		return nil, time.Time{}, b.lastErr
	}
	b.lastTry = time.Now()
	c, err := b.open()
	if err != nil {
		b.lastErr = fmt.Errorf("%w: PKCS#11 token %q (module %s): %w", vault.ErrKeyUnavailable, b.cfg.TokenLabel, b.cfg.Module, err)
		return nil, time.Time{}, b.lastErr
	}
	b.c, b.opened, b.lastErr = c, time.Now(), nil
	b.secrets, b.pairs = map[string]cipher.AEAD{}, map[string]crypto11.Signer{}
	return c, b.opened, nil
}

// open loads the module, finds the token and logs in; b.mu is held.
func (b *Backend) open() (*crypto11.Context, error) {
	pin, err := b.cfg.PIN()
	if err != nil {
		return nil, err
	}
	if b.badPIN != nil && subtle.ConstantTimeCompare(b.badPIN, []byte(pin)) == 1 {
		return nil, fmt.Errorf("the token refused the PIN in %s; it is not tried again until the file holds another", b.cfg.PinFile)
	}
	c, err := crypto11.Configure(&crypto11.Config{Path: b.cfg.Module, TokenLabel: b.cfg.TokenLabel, Pin: pin,
		MaxSessions: maxSessions, PoolWaitTimeout: poolWait, GCMIVLength: nonceSize})
	if err != nil {
		if code, ok := returnValue(err); ok && code >= pkcs11.CKR_PIN_INCORRECT && code <= pkcs11.CKR_PIN_LOCKED {
			b.badPIN = []byte(pin)
		}
		return nil, err
	}
	b.badPIN = nil
	return c, nil
}

// drop forgets c, so that the next call opens the token anew, and closes
// it once the calls using it have returned.
func (b *Backend) drop(c *crypto11.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != c {
		return
	}
	b.c, b.secrets, b.pairs = nil, nil, nil
	b.closing.Add(1)
	go func() {
		defer b.closing.Done()
		_ = c.Close() // its sessions are lost already; nothing else to do
	}()
}

// forget drops what is remembered of label, so that it is looked up anew.
func (b *Backend) forget(label string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.secrets, label)
	delete(b.pairs, label)
}

// secret returns the AES-256 key labelled label, as an AEAD computed in
// the token, and the token it is in.
func (b *Backend) secret(label string) (cipher.AEAD, *crypto11.Context, error) {
	return remembered(b, "AES key", label, func(b *Backend) map[string]cipher.AEAD { return b.secrets }, b.findSecret)
}

// pair returns the signing key pair labelled label, and the token it is in.
func (b *Backend) pair(label string) (crypto11.Signer, *crypto11.Context, error) {
	return remembered(b, "key pair", label, func(b *Backend) map[string]crypto11.Signer { return b.pairs }, b.findPair)
}

// remembered returns what find finds for the key of a kind labelled label
// in the open token, and that token, remembering it until the token is
// dropped.
//
// A token hides its private objects from sessions that lost their login,
// and crypto11 cannot tell, so a miss is believed only from a token opened
// since the call began, or confirmed by one in the last b.retry: else the
// token is opened anew and asked again. A find that fails because another
// call dropped the token is tried again too.
func remembered[T any](b *Backend, kind, label string, table func(*Backend) map[string]T, find func(*crypto11.Context, string) (T, error)) (T, *crypto11.Context, error) {
	var zero T
	start, miss := time.Now(), kind+"\x00"+label
	for try := 0; ; try++ {
		c, opened, err := b.context()
		if err != nil {
			return zero, nil, err
		}
		b.mu.Lock()
		v, ok := table(b)[label]
		ok = ok && b.c == c
		b.mu.Unlock()
		if ok {
			return v, c, nil
		}
		v, err = find(c, label)
		if err == nil {
			b.mu.Lock()
			if b.c == c {
				table(b)[label] = v
			}
			b.mu.Unlock()
			return v, c, nil
		}
		gone := errors.Is(err, vault.ErrKeyGone)
		switch {
		case gone && !opened.Before(start):
			b.confirmMissing(miss)
		case gone && b.confirmedMissing(miss):
		case try == 0 && (gone || !b.current(c)):
			b.drop(c)
			continue
		}
		return zero, nil, err
	}
}

// maxMissing bounds the misses remembered.
const maxMissing = 1024

// confirmMissing remembers that a token opened anew confirmed a miss;
// confirmedMissing reports whether one did in the last b.retry.
func (b *Backend) confirmMissing(miss string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.missing == nil || len(b.missing) >= maxMissing {
		b.missing = map[string]time.Time{}
	}
	b.missing[miss] = time.Now()
}

func (b *Backend) confirmedMissing(miss string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	at, ok := b.missing[miss]
	return ok && time.Since(at) < b.retry
}

// current reports whether c is the open token.
func (b *Backend) current(c *crypto11.Context) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c == c
}

func (b *Backend) findSecret(c *crypto11.Context, label string) (cipher.AEAD, error) {
	id := KeyID(b.cfg.TokenLabel, label)
	keys, err := c.FindKeys(nil, []byte(label))
	if err != nil {
		return nil, b.unavailable(c, id, err)
	}
	if err := unique(id, "AES key", len(keys)); err != nil {
		return nil, err
	}
	k := keys[0]
	if k.Cipher != crypto11.CipherAES {
		return nil, unfit(fmt.Sprintf("%s is not an AES key", id))
	}
	size, err := c.GetAttribute(k, crypto11.CkaValueLen)
	if err != nil {
		return nil, b.unavailable(c, id, err)
	}
	if n := ulong(size.Value); n != 32 {
		return nil, unfit(fmt.Sprintf("%s is AES-%d; it must be AES-256", id, n*8))
	}
	aead, err := k.NewGCM()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", vault.ErrKeyUnavailable, id, err)
	}
	return aead, nil
}

// unfit reports a secret key that cannot wrap data keys: it is
// vault.ErrKeyUnavailable to Key and Check, and vault.ErrNotWrappingKey to
// ResolveWrappingKey, which SetTokenVaultCMK reports as the caller's error.
type unfit string

func (e unfit) Error() string { return string(e) }

func (e unfit) Is(target error) bool {
	return target == vault.ErrKeyUnavailable || target == vault.ErrNotWrappingKey
}

func (b *Backend) findPair(c *crypto11.Context, label string) (crypto11.Signer, error) {
	id := KeyID(b.cfg.TokenLabel, label)
	pairs, err := c.FindKeyPairs(nil, []byte(label))
	if err != nil {
		return nil, b.unavailable(c, id, err)
	}
	if err := unique(id, "key pair", len(pairs)); err != nil {
		return nil, err
	}
	switch pub := pairs[0].Public().(type) {
	case *ecdsa.PublicKey:
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%w: %s is an RSA key of %d bits; at least %d are needed", vault.ErrNotSigningKey, id, pub.N.BitLen(), minRSABits)
		}
	default:
		return nil, fmt.Errorf("%w: %s is a %T; ECDSA and RSA keys sign", vault.ErrNotSigningKey, id, pub)
	}
	return pairs[0], nil
}

// unique checks that the token has exactly one key of a kind with the
// label of id: a second one would make the key a label names ambiguous.
func unique(id, kind string, n int) error {
	switch {
	case n == 0:
		return fmt.Errorf("%w: the token has no %s %s", vault.ErrKeyGone, kind, id)
	case n > 1:
		return fmt.Errorf("%w: the token has %d of %s; labels must name one key", vault.ErrKeyUnavailable, n, id)
	}
	return nil
}

// retried runs op with what lookup finds; when op fails because the
// token's sessions, login or object handles were lost, or because another
// call dropped the token meanwhile, it runs both once more in the token
// opened anew. An op's vault.ErrDecrypt is returned as it is.
func retried[T any](b *Backend, id string, lookup func() (T, *crypto11.Context, error), op func(T) error) error {
	for try := 0; ; try++ {
		v, c, err := lookup()
		if err != nil {
			return err
		}
		err = op(v)
		if err == nil || errors.Is(err, vault.ErrDecrypt) {
			return err
		}
		if err = b.unavailable(c, id, err); try > 0 || (!errors.Is(err, errLost) && b.current(c)) {
			return err
		}
	}
}

// errLost marks an error after which the token was dropped.
var errLost = errors.New("the token is opened anew")

// lost lists the return values after which the token is opened anew: its
// sessions or login are gone, or its object handles are stale.
var lost = map[pkcs11.Error]bool{
	pkcs11.CKR_SESSION_HANDLE_INVALID: true, pkcs11.CKR_SESSION_CLOSED: true, pkcs11.CKR_USER_NOT_LOGGED_IN: true,
	pkcs11.CKR_DEVICE_REMOVED: true, pkcs11.CKR_DEVICE_ERROR: true, pkcs11.CKR_TOKEN_NOT_PRESENT: true,
	pkcs11.CKR_TOKEN_NOT_RECOGNIZED: true, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED: true,
	pkcs11.CKR_KEY_HANDLE_INVALID: true, pkcs11.CKR_OBJECT_HANDLE_INVALID: true,
}

// unavailable reports err, from an operation on key id in c, as the key
// unavailable, dropping c (and wrapping errLost) when err says it is lost.
func (b *Backend) unavailable(c *crypto11.Context, id string, err error) error {
	if code, ok := returnValue(err); ok && lost[code] {
		b.drop(c)
		return fmt.Errorf("%w: %s: %w (%w)", vault.ErrKeyUnavailable, id, err, errLost)
	}
	return fmt.Errorf("%w: %s: %w", vault.ErrKeyUnavailable, id, err)
}

// returnValueText matches miekg/pkcs11's text of a PKCS#11 return value,
// which crypto11 keeps only as text around some calls (C_Encrypt, C_Decrypt).
var returnValueText = regexp.MustCompile(`pkcs11: 0x([0-9A-F]+):`)

// returnValue is the PKCS#11 return value err reports, if any.
func returnValue(err error) (pkcs11.Error, bool) {
	var p11 pkcs11.Error
	switch {
	case err == nil:
		return 0, false
	case errors.As(err, &p11):
		return p11, true
	}
	if m := returnValueText.FindStringSubmatch(err.Error()); m != nil {
		if v, parseErr := strconv.ParseUint(m[1], 16, 64); parseErr == nil {
			return pkcs11.Error(v), true
		}
	}
	return 0, false
}

// ulong decodes a CK_ULONG attribute value, in the host's byte order.
func ulong(v []byte) uint64 {
	switch len(v) {
	case 8:
		return binary.NativeEndian.Uint64(v)
	case 4:
		return uint64(binary.NativeEndian.Uint32(v))
	}
	return 0
}
