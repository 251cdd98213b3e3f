package awskms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/behalf-dev/behalf/internal/vault"
)

// signer returns a crypto.Signer for the asymmetric KMS key id: its
// public key is read once (GetPublicKey) and cached; each signature is a
// Sign call over the digest. The signer's calls carry ctx's values (its
// trace) but not its cancellation, so it may outlive the call that made
// it; each call is bounded by the backend's timeout.
func (b *Backend) signer(ctx context.Context, id string) (crypto.Signer, error) {
	if !b.isKey(id) {
		return nil, fmt.Errorf("%w %q: AWS KMS signing keys are named by key ARN", vault.ErrUnknownKey, id)
	}
	if pk, ok := b.signers.Load(id); ok {
		return &signer{b: b, ctx: context.WithoutCancel(ctx), id: id, pub: pk.(crypto.PublicKey)}, nil
	}
	callCtx, done := b.start(ctx, "GetPublicKey")
	out, err := b.client.GetPublicKey(callCtx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
	err = b.notSigning("GetPublicKey", id, err)
	done(err)
	if err != nil {
		return nil, err
	}
	if out.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, fmt.Errorf("%w: AWS KMS key %s has key usage %s, not SIGN_VERIFY", vault.ErrNotSigningKey, id, out.KeyUsage)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: AWS KMS key %s: public key: %w", vault.ErrNotSigningKey, id, err)
	}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: AWS KMS key %s is on curve %s; only ECC_NIST_P256 signs (ES256)", vault.ErrNotSigningKey, id, p.Curve.Params().Name)
		}
	case *rsa.PublicKey:
	default:
		return nil, fmt.Errorf("%w: AWS KMS key %s is a %T key", vault.ErrNotSigningKey, id, pub)
	}
	b.signers.Store(id, pub)
	return &signer{b: b, ctx: context.WithoutCancel(ctx), id: id, pub: pub}, nil
}

// notSigning classifies the error of a call about a signing key: a key
// that cannot sign (a symmetric key, or another key usage) is
// vault.ErrNotSigningKey.
func (b *Backend) notSigning(op, id string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "UnsupportedOperationException", "InvalidKeyUsageException":
			return fmt.Errorf("%w: AWS KMS %s %s: %w", vault.ErrNotSigningKey, op, id, err)
		}
	}
	return b.fail(op, id, err)
}

// signer signs SHA-256 digests with a KMS key: ECDSA_SHA_256 (ES256) for
// ECC_NIST_P256 keys; RSASSA_PKCS1_V1_5_SHA_256 (RS256) or, with
// *rsa.PSSOptions, RSASSA_PSS_SHA_256 (PS256) for RSA keys.
type signer struct {
	b   *Backend
	ctx context.Context
	id  string
	pub crypto.PublicKey
}

func (s *signer) Public() crypto.PublicKey { return s.pub }

// Sign implements crypto.Signer. An ECDSA signature is ASN.1 DER, as
// crypto/ecdsa's; KMS's PSS salt is as long as the digest.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != sha256Size {
		return nil, fmt.Errorf("awskms: %s signs SHA-256 digests only", s.id)
	}
	var alg types.SigningAlgorithmSpec
	switch s.pub.(type) {
	case *ecdsa.PublicKey:
		alg = types.SigningAlgorithmSpecEcdsaSha256
	case *rsa.PublicKey:
		alg = types.SigningAlgorithmSpecRsassaPkcs1V15Sha256
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if pss.SaltLength != rsa.PSSSaltLengthAuto && pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != sha256Size {
				return nil, fmt.Errorf("awskms: %s signs RSASSA-PSS with a salt as long as the digest, not %d bytes", s.id, pss.SaltLength)
			}
			alg = types.SigningAlgorithmSpecRsassaPssSha256
		}
	}
	ctx, done := s.b.start(s.ctx, "Sign")
	out, err := s.b.client.Sign(ctx, &kms.SignInput{
		KeyId: aws.String(s.id), Message: digest, MessageType: types.MessageTypeDigest, SigningAlgorithm: alg,
	})
	err = s.b.notSigning("Sign", s.id, err)
	done(err)
	if err != nil {
		return nil, err
	}
	return out.Signature, nil
}

const sha256Size = 32
