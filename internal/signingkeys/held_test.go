package signingkeys_test

import (
	"context"
	"crypto"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/testutil/localkms"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/vault/awskms"
)

// counted counts the signers asked of a key-management backend.
type counted struct {
	signingkeys.KeySigners
	loads atomic.Int64
}

func (c *counted) Signer(ctx context.Context, id string) (crypto.Signer, error) {
	c.loads.Add(1)
	return c.KeySigners.Signer(ctx, id)
}

// TestHeldCachesSigners: a key of AWS KMS (local-kms) is loaded from its
// backend once per ttl however many callers ask, concurrently or not;
// Load asks the backend afresh; failures are the backend's and are not
// cached.
func TestHeldCachesSigners(t *testing.T) {
	lk := localkms.Start(t, localkms.Options{})
	id := lk.CreateKey(t.Context(), kmstypes.KeySpecEccNistP256, kmstypes.KeyUsageTypeSignVerify)
	kms := awskms.New(aws.Config{Credentials: credentials.NewStaticCredentialsProvider(localkms.AccessKeyID, localkms.SecretAccessKey, "")}, awskms.Options{
		Region: localkms.Region, Endpoint: lk.URL, Timeout: 3 * time.Second,
		HTTPClient: egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}, Timeout: time.Second}),
	})
	backend := &counted{KeySigners: vault.NewKeys(kms)}
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	held := signingkeys.NewHeld(backend, 5*time.Minute, clock.Now)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if s, err := held.Signer(t.Context(), id); err != nil || s.Public() == nil {
				t.Errorf("Signer: %v", err)
			}
		})
	}
	wg.Wait()
	if n := backend.loads.Load(); n < 1 || n > 20 {
		t.Fatalf("%d loads", n)
	}
	before := backend.loads.Load()
	if _, err := held.Signer(t.Context(), id); err != nil || backend.loads.Load() != before {
		t.Fatalf("a cached signer was loaded again: %v", err)
	}
	if _, err := held.Load(t.Context(), id); err != nil || backend.loads.Load() != before+1 {
		t.Fatalf("Load did not ask the backend: %v", err)
	}
	clock.Advance(6 * time.Minute)
	if _, err := held.Signer(t.Context(), id); err != nil || backend.loads.Load() != before+2 {
		t.Fatalf("an expired signer was not loaded again: %v", err)
	}
	clock.Advance(6 * time.Minute)
	missing := localkms.KeyARN("00000000-0000-0000-0000-000000000000")
	for range 2 {
		if _, err := held.Signer(t.Context(), missing); !errors.Is(err, vault.ErrKeyGone) {
			t.Fatalf("a key KMS does not have: %v", err)
		}
	}
	if backend.loads.Load() != before+4 {
		t.Fatalf("a failure was cached: %d loads", backend.loads.Load()-before)
	}
	if _, err := held.Signer(t.Context(), "pkcs11:token=behalf;object=agent"); !errors.Is(err, vault.ErrUnknownKey) {
		t.Fatalf("a key no backend owns: %v", err)
	}
}
