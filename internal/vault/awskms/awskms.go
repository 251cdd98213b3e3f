// Package awskms puts AWS KMS behind behalf's vault: a vault.Backend whose
// key ids are KMS key ARNs. Data keys are made by GenerateDataKey and
// re-wrapped by Encrypt, and opened by Decrypt, always with the key's ARN
// and an encryption context that binds the wrapped data key to its record;
// asymmetric keys sign (Sign) without their private key leaving KMS.
//
// The backend does no I/O until a key is used, so behalf starts while KMS
// is unreachable; a record under an unusable key then fails to open with
// vault.ErrKeyUnavailable, and records under other keys are unaffected.
package awskms

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"go.opentelemetry.io/otel/attribute"

	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
)

// Name names the backend in errors, spans and metrics.
const Name = "aws-kms"

// DefaultTimeout bounds each KMS operation, its retries included, when
// Options.Timeout is zero: a vend waiting on an unreachable KMS fails
// within it.
const DefaultTimeout = 5 * time.Second

// BindingContextKey is the encryption context key that carries a record's
// binding. CloudTrail logs encryption contexts in clear, and a binding
// names users, so the value is the SHA-256 of the binding's encoding, not
// the binding itself.
const BindingContextKey = "behalf:binding"

// Options configure a Backend.
type Options struct {
	// Region is the region of the keys, and of KMS's endpoint; required.
	Region string
	// Endpoint replaces the region's KMS endpoint: a VPC endpoint, or
	// local-kms in development and tests.
	Endpoint string
	// HTTPClient sends the calls; behalf's egress client, so that KMS is
	// reached under the same policy as every other outbound call.
	HTTPClient aws.HTTPClient
	// Timeout bounds each operation, retries included; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Metrics counts the calls; nil counts nothing.
	Metrics *telemetry.Metrics
}

// Backend is AWS KMS in one region. It is safe for concurrent use.
type Backend struct {
	client  *kms.Client
	region  string
	timeout time.Duration
	metrics *telemetry.Metrics
	// signers caches each signing key's public key: GetPublicKey once.
	signers sync.Map // key ARN → *publicKey
}

var (
	_ vault.Backend             = (*Backend)(nil)
	_ vault.WrappingKeyResolver = (*Backend)(nil)
)

// New returns the backend; it makes no call. cfg carries the credentials
// (the default AWS credential chain, config.LoadDefaultConfig); the
// region and endpoint come from o.
func New(cfg aws.Config, o Options) *Backend {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	client := kms.NewFromConfig(cfg, func(ko *kms.Options) {
		ko.Region = o.Region
		if o.Endpoint != "" {
			ko.BaseEndpoint = aws.String(o.Endpoint)
		}
		if o.HTTPClient != nil {
			ko.HTTPClient = o.HTTPClient
		}
		// The standard retryer (throttling, 5xx, connection errors) with
		// short backoffs: the whole operation must fit in Timeout.
		ko.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.MaxBackoff = 500 * time.Millisecond
		})
	})
	return &Backend{client: client, region: o.Region, timeout: o.Timeout, metrics: o.Metrics}
}

// Name implements vault.Backend.
func (b *Backend) Name() string { return Name }

// Owns implements vault.Backend: the ARNs of KMS keys and aliases in the
// backend's region.
func (b *Backend) Owns(id string) bool {
	_, ok := b.parse(id)
	return ok
}

// parse returns the resource of a KMS ARN in b's region: "key/…" or
// "alias/…".
func (b *Backend) parse(id string) (string, bool) {
	a, err := arn.Parse(id)
	if err != nil || a.Service != "kms" || a.Region != b.region || !strings.HasPrefix(a.Partition, "aws") || a.AccountID == "" {
		return "", false
	}
	return a.Resource, strings.HasPrefix(a.Resource, "key/") || strings.HasPrefix(a.Resource, "alias/")
}

// isKey reports whether id is a key ARN (not an alias ARN) of b's region.
func (b *Backend) isKey(id string) bool {
	r, ok := b.parse(id)
	return ok && strings.HasPrefix(r, "key/") && len(r) > len("key/")
}

// Key implements vault.Backend; it makes no call. A record's key is
// always a key ARN: an alias can be pointed at another key.
func (b *Backend) Key(_ context.Context, id string) (vault.KeyWrapper, error) {
	if !b.isKey(id) || len(id) > 255 {
		return nil, fmt.Errorf("%w %q: AWS KMS keys are named by key ARN (SetTokenVaultCMK resolves an alias ARN to one)", vault.ErrUnknownKey, id)
	}
	return &key{b: b, id: id}, nil
}

// Check implements vault.Backend with DescribeKey.
func (b *Backend) Check(ctx context.Context, id string) error {
	md, err := b.describe(ctx, id)
	if err != nil {
		return err
	}
	if md.KeyState != types.KeyStateEnabled {
		return fmt.Errorf("%w: AWS KMS key %s is %s", vault.ErrKeyUnavailable, id, md.KeyState)
	}
	return nil
}

// ResolveWrappingKey implements vault.WrappingKeyResolver: name is a key
// or alias ARN, and the key it names must be an enabled symmetric
// encryption key (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT).
func (b *Backend) ResolveWrappingKey(ctx context.Context, name string) (string, error) {
	md, err := b.describe(ctx, name)
	if err != nil {
		return "", err
	}
	id := aws.ToString(md.Arn)
	switch {
	case !b.isKey(id):
		return "", fmt.Errorf("%w: AWS KMS describes %s as %q, not a key ARN of region %s", vault.ErrNotWrappingKey, name, id, b.region)
	case md.KeyState != types.KeyStateEnabled:
		return "", fmt.Errorf("%w: AWS KMS key %s is %s; it must be Enabled", vault.ErrNotWrappingKey, id, md.KeyState)
	case md.KeySpec != types.KeySpecSymmetricDefault || md.KeyUsage != types.KeyUsageTypeEncryptDecrypt:
		return "", fmt.Errorf("%w: AWS KMS key %s has key spec %s and key usage %s; it must be a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)",
			vault.ErrNotWrappingKey, id, md.KeySpec, md.KeyUsage)
	}
	return id, nil
}

func (b *Backend) describe(ctx context.Context, name string) (*types.KeyMetadata, error) {
	if !b.Owns(name) {
		return nil, fmt.Errorf("%w %q: not an AWS KMS key or alias ARN of region %s", vault.ErrUnknownKey, name, b.region)
	}
	ctx, done := b.start(ctx, "DescribeKey")
	out, err := b.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)})
	err = b.fail("DescribeKey", name, err)
	done(err)
	if err != nil {
		return nil, err
	}
	if out.KeyMetadata == nil {
		return nil, fmt.Errorf("%w: AWS KMS DescribeKey %s answered no key metadata", vault.ErrKeyUnavailable, name)
	}
	return out.KeyMetadata, nil
}

// start bounds one KMS operation in time and observes it; the returned
// function must be called with its classified error.
func (b *Backend) start(ctx context.Context, op string) (context.Context, func(error)) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	var attrs []attribute.KeyValue
	if telemetry.Recording(ctx) {
		attrs = []attribute.KeyValue{rpcSystem, rpcService, rpcMethod.String(op)}
	}
	ctx, done := vault.ObserveCall(ctx, b.metrics, Name, op, attrs...)
	return ctx, func(err error) {
		done(err)
		cancel()
	}
}

// The OpenTelemetry semantic conventions' attributes of an AWS SDK call.
var (
	rpcSystem  = attribute.String("rpc.system", "aws-api")
	rpcService = attribute.String("rpc.service", "KMS")
	rpcMethod  = attribute.Key("rpc.method")
)

// fail classifies the error of KMS operation op on key id for the vault:
// a key that does not exist is gone; a ciphertext that does not
// authenticate (another key's, or another record's encryption context) is
// vault.ErrDecrypt; everything else — a disabled key or one pending
// deletion, access denied, throttling, KMS unreachable or timing out —
// leaves the key unavailable for now.
func (b *Backend) fail(op, id string, err error) error {
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NotFoundException":
			return fmt.Errorf("%w: AWS KMS %s %s: %w", vault.ErrKeyGone, op, id, err)
		case "InvalidCiphertextException", "IncorrectKeyException":
			return fmt.Errorf("%w: AWS KMS %s %s: %w", vault.ErrDecrypt, op, id, err)
		}
	}
	return fmt.Errorf("%w: AWS KMS %s %s: %w", vault.ErrKeyUnavailable, op, id, err)
}

// encryptionContext binds a wrapped data key to its record: KMS refuses to
// decrypt it under any other context. The value is a digest, so that
// CloudTrail, which logs contexts in clear, learns no user or workload.
func encryptionContext(aad []byte) map[string]string {
	sum := sha256.Sum256(aad)
	return map[string]string{BindingContextKey: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// key wraps data keys under one KMS key.
type key struct {
	b  *Backend
	id string
}

var _ vault.DataKeyGenerator = (*key)(nil)

func (k *key) KeyID() string { return k.id }

// GenerateDataKey implements vault.DataKeyGenerator.
func (k *key) GenerateDataKey(ctx context.Context, aad []byte) (dek, wrapped []byte, err error) {
	ctx, done := k.b.start(ctx, "GenerateDataKey")
	out, err := k.b.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(k.id), KeySpec: types.DataKeySpecAes256, EncryptionContext: encryptionContext(aad),
	})
	err = k.b.fail("GenerateDataKey", k.id, err)
	done(err)
	if err != nil {
		return nil, nil, err
	}
	return out.Plaintext, out.CiphertextBlob, nil
}

// Wrap implements vault.KeyWrapper with Encrypt; the vault re-wraps with
// it.
func (k *key) Wrap(ctx context.Context, dek, aad []byte) ([]byte, error) {
	ctx, done := k.b.start(ctx, "Encrypt")
	out, err := k.b.client.Encrypt(ctx, &kms.EncryptInput{
		KeyId: aws.String(k.id), Plaintext: dek, EncryptionContext: encryptionContext(aad),
	})
	err = k.b.fail("Encrypt", k.id, err)
	done(err)
	if err != nil {
		return nil, err
	}
	return out.CiphertextBlob, nil
}

// Unwrap implements vault.KeyWrapper with Decrypt, naming the key so
// that a ciphertext of any other key is refused.
func (k *key) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	ctx, done := k.b.start(ctx, "Decrypt")
	out, err := k.b.client.Decrypt(ctx, &kms.DecryptInput{
		KeyId: aws.String(k.id), CiphertextBlob: wrapped, EncryptionContext: encryptionContext(aad),
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault,
	})
	err = k.b.fail("Decrypt", k.id, err)
	done(err)
	if err != nil {
		return nil, err
	}
	return out.Plaintext, nil
}

// Signer implements vault.Backend; see signer.go.
func (b *Backend) Signer(ctx context.Context, id string) (crypto.Signer, error) {
	return b.signer(ctx, id)
}
