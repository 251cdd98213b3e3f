//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/behalf-dev/behalf/internal/vault"
)

// Key implements vault.Backend: id must name an AES-256 key of the token.
func (b *Backend) Key(_ context.Context, id string) (vault.KeyWrapper, error) {
	label, err := b.objectLabel(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", vault.ErrUnknownKey, err)
	}
	if _, _, err := b.secret(label); err != nil {
		if errors.Is(err, vault.ErrKeyGone) {
			return nil, fmt.Errorf("%w: %w", vault.ErrUnknownKey, err)
		}
		return nil, err
	}
	return &wrapper{b: b, id: id, label: label}, nil
}

// Check implements vault.Backend. It looks in the token anew, and proves
// an AES key usable by wrapping and unwrapping a data key with it.
func (b *Backend) Check(ctx context.Context, id string) error {
	label, err := b.objectLabel(id)
	if errors.Is(err, ErrBadID) {
		return fmt.Errorf("%w: %w", vault.ErrKeyGone, err)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", vault.ErrKeyUnavailable, err)
	}
	b.forget(label)
	if _, _, err := b.secret(label); !errors.Is(err, vault.ErrKeyGone) {
		if err != nil {
			return err
		}
		w := &wrapper{b: b, id: id, label: label}
		dek, aad := make([]byte, 32), []byte("behalf-pkcs11-check")
		wrapped, err := w.Wrap(ctx, dek, aad)
		if err == nil {
			_, err = w.Unwrap(ctx, wrapped, aad)
		}
		if errors.Is(err, vault.ErrDecrypt) {
			return fmt.Errorf("%w: %s wraps data keys it cannot unwrap", vault.ErrKeyUnavailable, id)
		}
		return err
	}
	if _, _, err = b.pair(label); errors.Is(err, vault.ErrNotSigningKey) {
		return fmt.Errorf("%w: %w", vault.ErrKeyUnavailable, err)
	}
	return err
}

// ResolveWrappingKey implements vault.WrappingKeyResolver: a key names
// itself, and must be an AES-256 key of this backend's token that wraps
// and unwraps a data key now (Check).
func (b *Backend) ResolveWrappingKey(ctx context.Context, id string) (string, error) {
	if _, err := b.objectLabel(id); err != nil && !errors.Is(err, ErrBadID) {
		return "", fmt.Errorf("%w: %w", vault.ErrNotWrappingKey, err)
	}
	if err := b.Check(ctx, id); err != nil {
		return "", err
	}
	// Check passes a key pair too, which signs.
	if _, err := b.Key(ctx, id); errors.Is(err, vault.ErrUnknownKey) {
		return "", fmt.Errorf("%w: %s is a key pair; an AES-256 key wraps data keys", vault.ErrNotWrappingKey, id)
	} else if err != nil {
		return "", err
	}
	return id, nil
}

// Signer implements vault.Backend: id must name an ECDSA key pair, or an
// RSA key pair of at least 2048 bits.
func (b *Backend) Signer(ctx context.Context, id string) (crypto.Signer, error) {
	label, err := b.objectLabel(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", vault.ErrUnknownKey, err)
	}
	p, _, err := b.pair(label)
	if errors.Is(err, vault.ErrKeyGone) {
		if _, _, secretErr := b.secret(label); secretErr == nil {
			return nil, fmt.Errorf("%w: %s is an AES key", vault.ErrNotSigningKey, id)
		}
		return nil, fmt.Errorf("%w: %w", vault.ErrUnknownKey, err)
	}
	if err != nil {
		return nil, err
	}
	return &signer{b: b, ctx: context.WithoutCancel(ctx), id: id, label: label, pub: p.Public()}, nil
}

// CreateKey generates an AES-256 key labelled label in the token, which
// never leaves it (sensitive, not extractable), and returns its id. The
// label must be new to the token.
func (b *Backend) CreateKey(_ context.Context, label string) (string, error) {
	return b.create(label, func(c *crypto11.Context, ckaID []byte) error {
		_, err := c.GenerateSecretKeyWithLabel(ckaID, []byte(label), 256, crypto11.CipherAES)
		return err
	})
}

// CreateKeyPair generates a key pair of type t labelled label in the
// token, whose private key never leaves it and may only sign, and returns
// its id. The label must be new to the token.
func (b *Backend) CreateKeyPair(_ context.Context, label string, t SigningKeyType) (string, error) {
	bits := map[SigningKeyType]int{RSA2048: 2048, RSA3072: 3072}[t]
	if t != ECDSAP256 && bits == 0 {
		return "", fmt.Errorf("pkcs11: unknown signing key type %d", t)
	}
	return b.create(label, func(c *crypto11.Context, ckaID []byte) error {
		pub, err := crypto11.NewAttributeSetWithIDAndLabel(ckaID, []byte(label))
		if err != nil {
			return err
		}
		priv := pub.Copy()
		if t == ECDSAP256 {
			_, err = c.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P256())
			return err
		}
		// Signing only: crypto11's RSA key pairs would also decrypt.
		if err := errors.Join(pub.Set(crypto11.CkaEncrypt, false), priv.Set(crypto11.CkaDecrypt, false)); err != nil {
			return err
		}
		_, err = c.GenerateRSAKeyPairWithAttributes(pub, priv, bits)
		return err
	})
}

// create generates a key labelled label with generate, refusing a label
// the token already has: keys are found by label.
func (b *Backend) create(label string, generate func(c *crypto11.Context, ckaID []byte) error) (string, error) {
	id := KeyID(b.cfg.TokenLabel, label)
	if _, _, err := ParseKeyID(id); err != nil {
		return "", err
	}
	c, _, err := b.context()
	if err != nil {
		return "", err
	}
	secrets, err := c.FindKeys(nil, []byte(label))
	if err != nil {
		return "", b.unavailable(c, id, err)
	}
	pairs, err := c.FindKeyPairs(nil, []byte(label))
	if err != nil {
		return "", b.unavailable(c, id, err)
	}
	if len(secrets)+len(pairs) > 0 {
		return "", fmt.Errorf("pkcs11: token %q already has a key labelled %q", b.cfg.TokenLabel, label)
	}
	// CKA_ID pairs a private key with its public key; crypto11 needs one.
	ckaID := make([]byte, 16)
	if _, err := rand.Read(ckaID); err != nil {
		return "", err
	}
	if err := generate(c, ckaID); err != nil {
		return "", b.unavailable(c, id, err)
	}
	return id, nil
}

// objectLabel returns the label of the object id names, which must be in
// this backend's token.
func (b *Backend) objectLabel(id string) (string, error) {
	token, object, err := ParseKeyID(id)
	if err != nil {
		return "", err
	}
	if token != b.cfg.TokenLabel {
		return "", fmt.Errorf("pkcs11: %s is in token %q, and this server opens token %q only", id, token, b.cfg.TokenLabel)
	}
	return object, nil
}

// wrapper wraps data keys under an AES key of the token, looked up (or
// remembered) at each call, so that it outlives a token opened anew.
type wrapper struct {
	b         *Backend
	id, label string
}

func (w *wrapper) KeyID() string { return w.id }

func (w *wrapper) secret() (cipher.AEAD, *crypto11.Context, error) { return w.b.secret(w.label) }

// Wrap returns nonce || AES-GCM(dek, aad), encrypted in the token.
func (w *wrapper) Wrap(ctx context.Context, dek, aad []byte) (wrapped []byte, err error) {
	_, done := vault.ObserveCall(ctx, w.b.Metrics, w.b.Name(), "C_Encrypt")
	defer func() { done(err) }()
	err = retried(w.b, w.id, w.secret, func(aead cipher.AEAD) error {
		nonce := make([]byte, nonceSize, nonceSize+len(dek)+tagSize)
		if _, err := rand.Read(nonce); err != nil {
			return err
		}
		var err error
		wrapped, err = seal(aead, nonce, dek, aad)
		return err
	})
	return wrapped, err
}

// Unwrap decrypts what Wrap returned, in the token; a ciphertext or aad
// that fails GCM's authentication is vault.ErrDecrypt.
func (w *wrapper) Unwrap(ctx context.Context, wrapped, aad []byte) (dek []byte, err error) {
	if len(wrapped) < nonceSize+tagSize || len(wrapped) > maxWrapped {
		return nil, vault.ErrDecrypt
	}
	_, done := vault.ObserveCall(ctx, w.b.Metrics, w.b.Name(), "C_Decrypt")
	defer func() { done(err) }()
	err = retried(w.b, w.id, w.secret, func(aead cipher.AEAD) error {
		var err error
		dek, err = aead.Open(nil, wrapped[:nonceSize], wrapped[nonceSize:], aad)
		// SoftHSM2 answers a failed tag check with CKR_GENERAL_ERROR.
		if code, ok := returnValue(err); ok && (code == pkcs11.CKR_ENCRYPTED_DATA_INVALID ||
			code == pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE || code == pkcs11.CKR_GENERAL_ERROR) {
			return vault.ErrDecrypt
		}
		return err
	})
	return dek, err
}

// seal is aead.Seal appending to nonce, with crypto11's panic on a failed
// C_Encrypt returned as an error.
func seal(aead cipher.AEAD, nonce, plaintext, aad []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(error)
			if !ok {
				panic(r)
			}
			err = e
		}
	}()
	return aead.Seal(nonce, nonce, plaintext, aad), nil
}

// signer signs with a key pair of the token, looked up (or remembered) at
// each call, so that it outlives a token opened anew.
type signer struct {
	b         *Backend
	ctx       context.Context // Signer's, for the calls' spans
	id, label string
	pub       crypto.PublicKey
}

func (s *signer) Public() crypto.PublicKey { return s.pub }

// Sign signs digest in the token, which draws its own randomness. An
// RSA-PSS salt length of rsa.PSSSaltLengthAuto becomes the hash's length,
// which RFC 7518 §3.5 requires of PS256 and verifiers accept.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) (sig []byte, err error) {
	if h := opts.HashFunc(); h != 0 && len(digest) != h.Size() {
		return nil, fmt.Errorf("pkcs11: a %v digest has %d bytes, not %d", h, h.Size(), len(digest))
	}
	if pss, ok := opts.(*rsa.PSSOptions); ok && pss.SaltLength == rsa.PSSSaltLengthAuto {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: pss.Hash}
	}
	_, done := vault.ObserveCall(s.ctx, s.b.Metrics, s.b.Name(), "C_Sign")
	defer func() { done(err) }()
	err = retried(s.b, s.id, func() (crypto11.Signer, *crypto11.Context, error) { return s.b.pair(s.label) }, func(p crypto11.Signer) error {
		if pub, ok := p.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(s.pub) {
			return fmt.Errorf("%s was replaced by another key pair since this signer was made", s.id)
		}
		var err error
		sig, err = p.Sign(rand.Reader, digest, opts)
		return err
	})
	return sig, err
}

var (
	_ vault.Backend             = (*Backend)(nil)
	_ vault.WrappingKeyResolver = (*Backend)(nil)
)
