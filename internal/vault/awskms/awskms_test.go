package awskms_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/localkms"
	"github.com/behalf-dev/behalf/internal/testutil/metrictest"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/vault/awskms"
	"github.com/behalf-dev/behalf/internal/vault/vaulttest"
)

// newBackend returns the backend over local-kms at endpoint, as the
// server builds it: through the egress client.
func newBackend(endpoint string, m *telemetry.Metrics) *awskms.Backend {
	cfg := aws.Config{Credentials: credentials.NewStaticCredentialsProvider(localkms.AccessKeyID, localkms.SecretAccessKey, "")}
	return awskms.New(cfg, awskms.Options{
		Region: localkms.Region, Endpoint: endpoint, Metrics: m, Timeout: 3 * time.Second,
		HTTPClient: egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}, Timeout: time.Second}),
	})
}

func disable(srv *localkms.Server) func(t *testing.T, id string) {
	return func(t *testing.T, id string) {
		if _, err := srv.Client().DisableKey(t.Context(), &kms.DisableKeyInput{KeyId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
	}
}

func enable(srv *localkms.Server) func(t *testing.T, id string) {
	return func(t *testing.T, id string) {
		if _, err := srv.Client().EnableKey(t.Context(), &kms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
	}
}

// AWS KMS passes the backends' conformance suite against local-kms.
func TestConformance(t *testing.T) {
	srv := localkms.Start(t, localkms.Options{})
	b := newBackend(srv.URL, nil)
	vaulttest.Run(t, func(t *testing.T) vaulttest.Fixture {
		ctx := t.Context()
		return vaulttest.Fixture{
			Backend: b,
			Keys:    [2]string{srv.CreateSymmetricKey(ctx), srv.CreateSymmetricKey(ctx)},
			Missing: localkms.KeyARN("00000000-0000-0000-0000-000000000000"),
			Disable: disable(srv), Enable: enable(srv),
			Signers: []string{
				srv.CreateKey(ctx, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify),
				srv.CreateKey(ctx, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify),
			},
		}
	})
}

var binding = vault.Binding{Kind: storage.SecretConnection, Owner: "provider-1", Workload: "agent-1", User: "alice@example.com"}

// sealedUnderKMS seals plaintext for binding under a new key of a new
// local-kms.
func sealedUnderKMS(t *testing.T, plaintext []byte) (*localkms.Server, *vault.Vault, storage.Sealed) {
	t.Helper()
	srv := localkms.Start(t, localkms.Options{})
	v, err := vault.New(t.Context(), vault.NewKeys(newBackend(srv.URL, nil)), srv.CreateSymmetricKey(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := v.Seal(t.Context(), plaintext, binding)
	if err != nil {
		t.Fatal(err)
	}
	return srv, v, sealed
}

// KMS itself refuses to decrypt a data key under another record's
// encryption context, and the context names no user.
func TestEncryptionContextIsEnforcedByKMS(t *testing.T) {
	ctx := t.Context()
	srv, v, sealed := sealedUnderKMS(t, []byte("refresh-token"))
	id := sealed.KeyID
	// The envelope: "bhv1" | u8 len | key id | u16 len | wrapped data key | …
	n := 5 + int(sealed.Blob[4])
	wrapped := sealed.Blob[n+2 : n+2+int(sealed.Blob[n])<<8|int(sealed.Blob[n+1])]

	decrypt := func(ec map[string]string) error {
		_, err := srv.Client().Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: wrapped, EncryptionContext: ec})
		return err
	}
	other := binding
	other.User = "mallory@example.com"
	for name, ec := range map[string]map[string]string{
		"none":          nil,
		"another user":  {awskms.BindingContextKey: digest(other)},
		"another key":   {"binding": digest(binding)},
		"an extra pair": {awskms.BindingContextKey: digest(binding), "x": "y"},
	} {
		var ice *types.InvalidCiphertextException
		if err := decrypt(ec); !errors.As(err, &ice) {
			t.Errorf("KMS decrypted with %s encryption context: %v", name, err)
		}
	}
	if err := decrypt(map[string]string{awskms.BindingContextKey: digest(binding)}); err != nil {
		t.Fatalf("KMS refused the record's own encryption context: %v", err)
	}
	if digest(binding) == "" || strings.Contains(digest(binding), "alice") {
		t.Fatal("the encryption context names the user")
	}
	if _, err := v.Open(ctx, sealed, other); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("opened with another binding: %v", err)
	}
}

// digest is the encryption context value of b: the SHA-256 of its
// associated data, which the vault encodes as length-prefixed fields.
func digest(b vault.Binding) string {
	var aad []byte
	for _, f := range []string{"behalf-vault-v1", string(b.Kind), b.Owner, b.Workload, b.User} {
		aad = binary.BigEndian.AppendUint32(aad, uint32(len(f))) //nolint:gosec // G115: short test fields
		aad = append(aad, f...)
	}
	sum := sha256.Sum256(aad)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// A key scheduled for deletion is unavailable; its records fail to open
// with vault.ErrKeyUnavailable until the deletion is cancelled.
func TestKeyPendingDeletionIsUnavailable(t *testing.T) {
	ctx := t.Context()
	srv, v, sealed := sealedUnderKMS(t, []byte("api-key"))
	id := sealed.KeyID
	b := newBackend(srv.URL, nil)
	if _, err := srv.Client().ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Check(ctx, id); !errors.Is(err, vault.ErrKeyUnavailable) || !strings.Contains(err.Error(), "PendingDeletion") {
		t.Fatalf("Check(pending deletion) = %v", err)
	}
	if _, err := v.Open(ctx, sealed, binding); !errors.Is(err, vault.ErrKeyUnavailable) {
		t.Fatalf("open under a key pending deletion: %v", err)
	}
	if _, err := b.ResolveWrappingKey(ctx, id); !errors.Is(err, vault.ErrNotWrappingKey) || !strings.Contains(err.Error(), "PendingDeletion") {
		t.Fatalf("ResolveWrappingKey(pending deletion) = %v", err)
	}
	if _, err := srv.Client().CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	// A cancelled deletion leaves the key disabled, as in AWS KMS.
	enable(srv)(t, id)
	if _, err := v.Open(ctx, sealed, binding); err != nil {
		t.Fatalf("open after the deletion was cancelled: %v", err)
	}
}

// SetTokenVaultCMK's resolution: an alias ARN names its key; only an
// enabled symmetric encryption key of the backend's region wraps.
func TestResolveWrappingKey(t *testing.T) {
	ctx := t.Context()
	srv := localkms.Start(t, localkms.Options{})
	b := newBackend(srv.URL, nil)
	id := srv.CreateSymmetricKey(ctx)
	alias := "arn:aws:kms:" + localkms.Region + ":" + localkms.AccountID + ":alias/behalf-kek"
	if _, err := srv.Client().CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/behalf-kek"), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{id, alias} {
		if got, err := b.ResolveWrappingKey(ctx, name); err != nil || got != id {
			t.Errorf("ResolveWrappingKey(%s) = %q, %v; want %s", name, got, err, id)
		}
	}
	if _, err := b.Key(ctx, alias); !errors.Is(err, vault.ErrUnknownKey) {
		t.Errorf("Key(alias ARN) = %v: a record must name a key, which an alias may stop naming", err)
	}
	signing := srv.CreateKey(ctx, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	disabled := srv.CreateSymmetricKey(ctx)
	disable(srv)(t, disabled)
	for name, want := range map[string]error{
		signing:  vault.ErrNotWrappingKey,
		disabled: vault.ErrNotWrappingKey,
		localkms.KeyARN("00000000-0000-0000-0000-000000000000"):                     vault.ErrKeyGone,
		"arn:aws:kms:" + localkms.Region + ":" + localkms.AccountID + ":alias/none": vault.ErrKeyGone,
	} {
		if _, err := b.ResolveWrappingKey(ctx, name); !errors.Is(err, want) {
			t.Errorf("ResolveWrappingKey(%s) = %v, want %v", name, err, want)
		}
	}
	if b.Owns(strings.Replace(id, localkms.Region, "eu-west-1", 1)) {
		t.Error("the backend owns a key of another region")
	}
	if b.Owns("arn:aws:kms:" + localkms.Region + ":" + localkms.AccountID + ":grant/x") {
		t.Error("the backend owns a KMS ARN that names neither a key nor an alias")
	}
}

// An unreachable KMS leaves every key unavailable, within the call
// timeout, and the calls are counted and traced.
func TestUnreachableKMS(t *testing.T) {
	ctx := t.Context()
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	metrics := metrictest.New(t)
	b := newBackend(endpoint, metrics.Metrics)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, root := tp.Tracer("test").Start(ctx, "vend")

	id := localkms.KeyARN("9b1e2c4a-0000-4000-8000-000000000001")
	start := time.Now()
	if err := b.Check(ctx, id); !errors.Is(err, vault.ErrKeyUnavailable) {
		t.Fatalf("Check with KMS unreachable = %v", err)
	}
	w, err := b.Key(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Unwrap(ctx, []byte("wrapped"), []byte("aad")); !errors.Is(err, vault.ErrKeyUnavailable) || errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("Unwrap with KMS unreachable = %v", err)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("two calls to an unreachable KMS took %s", took)
	}
	root.End()

	if got := metrics.Counts(t, "behalf.key_backend.calls", telemetry.Outcome); got[telemetry.KeyOutcomeUnavailable] != 2 || len(got) != 1 {
		t.Errorf("calls by outcome: %v", got)
	}
	if got := metrics.Counts(t, "behalf.key_backend.calls", telemetry.Operation); got["DescribeKey"] != 1 || got["Decrypt"] != 1 {
		t.Errorf("calls by operation: %v", got)
	}
	names := map[string]bool{}
	for _, s := range rec.Ended() {
		names[s.Name()] = true
		if s.Name() == "aws-kms Decrypt" && (s.Parent().SpanID() != root.SpanContext().SpanID() || s.Status().Description != telemetry.KeyOutcomeUnavailable) {
			t.Errorf("Decrypt span: parent %s, status %v", s.Parent().SpanID(), s.Status())
		}
	}
	if !names["aws-kms DescribeKey"] || !names["aws-kms Decrypt"] {
		t.Errorf("spans: %v", names)
	}
}

// A Signer outlives the call that made it: a cancelled context does not
// stop its signatures.
func TestSignerOutlivesItsContext(t *testing.T) {
	srv := localkms.Start(t, localkms.Options{})
	b := newBackend(srv.URL, nil)
	id := srv.CreateKey(t.Context(), types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := b.Signer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	sum := sha256.Sum256([]byte("x"))
	if _, err := s.Sign(nil, sum[:], crypto.SHA256); err != nil {
		t.Fatalf("sign after the context was cancelled: %v", err)
	}
}

// The README's local-kms seed gives the vault a key through its alias,
// and a P-256 key that signs.
func TestExampleSeed(t *testing.T) {
	seed, err := os.ReadFile("../../../examples/local-kms/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := localkms.Start(t, localkms.Options{Seed: string(seed)})
	b := newBackend(srv.URL, nil)
	ctx := t.Context()
	prefix := "arn:aws:kms:" + localkms.Region + ":" + localkms.AccountID + ":"
	id, err := b.ResolveWrappingKey(ctx, prefix+"alias/behalf-kek")
	if err != nil || id != prefix+"key/81550819-96ab-40e5-adab-7b01b1478b64" {
		t.Fatalf("alias/behalf-kek = %q, %v", id, err)
	}
	s, err := b.Signer(ctx, prefix+"key/8013cb46-8507-42b9-b3bf-492b3cee67ed")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("assertion"))
	sig, err := s.Sign(nil, sum[:], crypto.SHA256)
	if pub, ok := s.Public().(*ecdsa.PublicKey); err != nil || !ok || !ecdsa.VerifyASN1(pub, sum[:], sig) {
		t.Fatalf("the seed's signing key: %T, %v", s.Public(), err)
	}
}
