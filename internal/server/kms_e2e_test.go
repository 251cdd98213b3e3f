package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	awshttp "github.com/aws/smithy-go/transport/http"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/localkms"
	"github.com/behalf-dev/behalf/internal/testutil/softhsm"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/vault/pkcs11"
)

// startWithKMS runs a server whose vault can use the keys of local-kms,
// with credentials from the default AWS credential chain (the
// environment), and of tok when it is not nil.
func startWithKeyBackends(t *testing.T, b behalftest.Backend, lk *localkms.Server, tok *softhsm.Token, opts behalftest.Options) *behalftest.Server {
	t.Helper()
	opts.Edit = func(f *config.File) {
		if lk != nil {
			f.Vault.AWSKMS = &config.AWSKMSFile{Region: localkms.Region, Endpoint: lk.URL}
		}
		if tok != nil {
			f.Vault.PKCS11 = &config.VaultPKCS11File{Module: tok.Config.Module, TokenLabel: tok.Config.TokenLabel, PinFile: tok.Config.PinFile}
		}
	}
	return behalftest.Start(t, b, opts)
}

// newTokenKey makes an AES-256 key labelled label in tok, as an operator
// would before naming it in SetTokenVaultCMK, and returns its id.
func newTokenKey(t *testing.T, tok softhsm.Token, label string) string {
	t.Helper()
	p, err := pkcs11.New(tok.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}()
	id, err := p.CreateKey(t.Context(), label)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// setKey points the token vault at a customer managed key by ARN and
// returns the ARN the vault reports.
func setKey(t *testing.T, s *behalftest.Server, arn string) string {
	t.Helper()
	out, err := s.Control().SetTokenVaultCMK(t.Context(), &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &ctltypes.KmsConfiguration{
		KeyType: ctltypes.KeyTypeCustomerManagedKey, KmsKeyArn: aws.String(arn)}})
	if err != nil {
		t.Fatalf("SetTokenVaultCMK(%s): %v", arn, err)
	}
	return aws.ToString(out.KmsConfiguration.KmsKeyArn)
}

// rotationStatus is GetKeyRotationStatus's vault part.
func rotationStatus(t *testing.T, s *behalftest.Server) behalfapi.VaultKeys {
	t.Helper()
	res := s.Do(t, behalftest.Raw{Path: "/behalf/GetKeyRotationStatus", Body: []byte(`{}`)})
	if res.Status != http.StatusOK {
		t.Fatalf("GetKeyRotationStatus: %d %s", res.Status, res.Body)
	}
	var out behalfapi.GetKeyRotationStatusOutput
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Vault
}

// waitRewrapped waits until GetKeyRotationStatus reports no secret under
// another key than keyID, the current one.
func waitRewrapped(t *testing.T, s *behalftest.Server, keyID string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := rotationStatus(t, s)
		if v.CurrentKeyID != keyID {
			t.Fatalf("current key %s, want %s", v.CurrentKeyID, keyID)
		}
		if v.StaleSecrets == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d secrets still under another key than %s after %s", v.StaleSecrets, keyID, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every stored secret, counted by storage, not only the status;
	// behalf's own stay under the service key.
	service := ""
	for _, k := range rotationStatus(t, s).Keys {
		if k.Service {
			service = k.KeyID
		}
	}
	stale, err := s.Server.Store().ListStaleSecrets(t.Context(), vault.Targets(service, keyID), 0)
	if err != nil || len(stale) != 0 {
		t.Fatalf("stale secrets under %s: %d, %v", keyID, len(stale), err)
	}
}

func newLocalKey(t *testing.T, s *behalftest.Server) string {
	t.Helper()
	res := s.Do(t, behalftest.Raw{Path: "/behalf/CreateVaultKey", Body: []byte(`{}`)})
	if res.Status != http.StatusCreated {
		t.Fatalf("CreateVaultKey: %d %s", res.Status, res.Body)
	}
	return res.JSON(t)["kmsKeyArn"].(string)
}

// vendFixture is a workload with API key providers and an M2M provider
// backed by the dev IdP, and a workload access token to vend with.
type vendFixture struct {
	data *bedrockagentcore.Client
	wat  *string
	mu   sync.RWMutex      // keys is added to while vends read it
	keys map[string]string // provider → API key
}

func newVendFixture(t *testing.T, s *behalftest.Server, providers int, m2m bool) *vendFixture {
	t.Helper()
	cx := t.Context()
	c := s.Control()
	if _, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("agent")}); err != nil {
		t.Fatal(err)
	}
	f := &vendFixture{data: s.Data(), keys: map[string]string{}}
	for i := range providers {
		f.addAPIKey(t, s, fmt.Sprintf("api-%02d", i))
	}
	if m2m {
		idp := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}}})
		if _, err := c.CreateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("m2m"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
				ClientId: aws.String("agent"), ClientSecret: aws.String("agent-secret"),
				OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: idp.Issuer() + "/.well-known/openid-configuration"}}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	wat, err := f.data.GetWorkloadAccessTokenForUserId(cx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String("agent"), UserId: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	f.wat = wat.WorkloadAccessToken
	return f
}

func (f *vendFixture) addAPIKey(t *testing.T, s *behalftest.Server, name string) {
	t.Helper()
	key := "sk-" + name + "-0123456789"
	if _, err := s.Control().CreateApiKeyCredentialProvider(t.Context(), &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
		Name: aws.String(name), ApiKey: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.keys[name] = key
	f.mu.Unlock()
}

// vendAPIKey vends provider's API key and checks it.
func (f *vendFixture) vendAPIKey(t *testing.T, provider string) error {
	out, err := f.data.GetResourceApiKey(t.Context(), &bedrockagentcore.GetResourceApiKeyInput{
		ResourceCredentialProviderName: aws.String(provider), WorkloadIdentityToken: f.wat})
	f.mu.RLock()
	want := f.keys[provider]
	f.mu.RUnlock()
	if err == nil && aws.ToString(out.ApiKey) != want {
		return fmt.Errorf("%s vended another key", provider)
	}
	return err
}

func (f *vendFixture) vendM2M(t *testing.T) error {
	out, err := f.data.GetResourceOauth2Token(t.Context(), &bedrockagentcore.GetResourceOauth2TokenInput{
		ResourceCredentialProviderName: aws.String("m2m"), WorkloadIdentityToken: f.wat, Oauth2Flow: types.Oauth2FlowTypeM2m,
		Scopes: []string{"read"}})
	if err == nil && !strings.HasPrefix(aws.ToString(out.AccessToken), "eyJ") {
		return errors.New("M2M vended no access token")
	}
	return err
}

// The vault key moves from the local keyring to AWS KMS, to a PKCS#11
// token and back to the local keyring, by SetTokenVaultCMK, while agents
// vend API keys and M2M tokens at full speed: no vend fails, and every
// stored secret ends under the key the vault names.
func TestVaultKeyMovesBetweenBackends(t *testing.T) {
	tok := softhsm.New(t, "behalf")
	lk := localkms.Start(t, localkms.Options{})
	localkms.Env(t)
	cx := t.Context()
	kmsKey := lk.CreateSymmetricKey(cx)
	alias := fmt.Sprintf("arn:aws:kms:%s:%s:alias/behalf-kek", localkms.Region, localkms.AccountID)
	if _, err := lk.Client().CreateAlias(cx, &kms.CreateAliasInput{AliasName: aws.String("alias/behalf-kek"), TargetKeyId: aws.String(kmsKey)}); err != nil {
		t.Fatal(err)
	}
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		tokenKey := newTokenKey(t, tok, "kek-"+b.Name)
		s := startWithKeyBackends(t, b, lk, &tok, behalftest.Options{})
		f := newVendFixture(t, s, 12, true)

		var vends, failures atomic.Int64
		var firstErr error
		var once sync.Once
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					if g == 0 {
						err = f.vendM2M(t)
					} else {
						err = f.vendAPIKey(t, fmt.Sprintf("api-%02d", (g*7+i)%12))
					}
					vends.Add(1)
					if err != nil {
						failures.Add(1)
						once.Do(func() { firstErr = err })
					}
				}
			})
		}

		// local → KMS, named by its alias: the vault reports the key.
		if got := setKey(t, s, alias); got != kmsKey {
			t.Fatalf("SetTokenVaultCMK(alias) reports %s, want the key %s", got, kmsKey)
		}
		waitRewrapped(t, s, kmsKey, 60*time.Second)
		if v := rotationStatus(t, s); v.KMSKeyARN != kmsKey || v.KeyType != "CustomerManagedKey" {
			t.Fatalf("vault status under KMS: %+v", v)
		}
		// A secret created now is sealed under KMS too.
		f.addAPIKey(t, s, "created-under-kms")
		if err := f.vendAPIKey(t, "created-under-kms"); err != nil {
			t.Fatal(err)
		}

		// KMS → the token's key, named by its RFC 7512 URI.
		if got := setKey(t, s, tokenKey); got != tokenKey {
			t.Fatalf("SetTokenVaultCMK(%s) reports %s", tokenKey, got)
		}
		waitRewrapped(t, s, tokenKey, 60*time.Second)
		f.addAPIKey(t, s, "created-under-pkcs11")
		if err := f.vendAPIKey(t, "created-under-pkcs11"); err != nil {
			t.Fatal(err)
		}

		// The token → a new key of the local keyring.
		localKey := newLocalKey(t, s)
		setKey(t, s, localKey)
		waitRewrapped(t, s, rotationStatus(t, s).CurrentKeyID, 60*time.Second)
		if cur := rotationStatus(t, s).CurrentKeyID; !strings.HasPrefix(cur, "local:") || !strings.HasSuffix(localKey, strings.TrimPrefix(cur, "local:")) {
			t.Fatalf("current key %s, want the local key of %s", cur, localKey)
		}

		time.Sleep(200 * time.Millisecond) // vends under the final key too
		close(stop)
		wg.Wait()
		if n := failures.Load(); n != 0 {
			t.Fatalf("%d of %d vends failed while the key moved; the first: %v", n, vends.Load(), firstErr)
		}
		if vends.Load() < 50 {
			t.Fatalf("only %d vends ran while the key moved", vends.Load())
		}
		t.Logf("%d vends, none failed", vends.Load())
	})
}

// SetTokenVaultCMK refuses, with a ValidationException that says what is
// wrong, a KMS key that cannot seal the vault, and a key of a region no
// backend serves.
func TestSetTokenVaultCMKRefusesUnfitKMSKeys(t *testing.T) {
	lk := localkms.Start(t, localkms.Options{})
	localkms.Env(t)
	cx := t.Context()
	signing := lk.CreateKey(cx, kmstypes.KeySpecEccNistP256, kmstypes.KeyUsageTypeSignVerify)
	disabled := lk.CreateSymmetricKey(cx)
	if _, err := lk.Client().DisableKey(cx, &kms.DisableKeyInput{KeyId: aws.String(disabled)}); err != nil {
		t.Fatal(err)
	}
	otherRegion := strings.Replace(lk.CreateSymmetricKey(cx), localkms.Region, "eu-central-1", 1)
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := startWithKeyBackends(t, b, lk, nil, behalftest.Options{})
		for arn, want := range map[string]string{
			signing:     "SYMMETRIC_DEFAULT",
			disabled:    "is Disabled",
			otherRegion: "vault.awsKms.region: eu-central-1",
			localkms.KeyARN("00000000-0000-0000-0000-000000000000"): "names no key that exists",
		} {
			_, err := s.Control().SetTokenVaultCMK(cx, &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &ctltypes.KmsConfiguration{
				KeyType: ctltypes.KeyTypeCustomerManagedKey, KmsKeyArn: aws.String(arn)}})
			var ve *ctltypes.ValidationException
			if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.Message), want) {
				t.Errorf("SetTokenVaultCMK(%s) = %v, want a ValidationException saying %q", arn, err, want)
			}
		}
		if v := rotationStatus(t, s); v.KeyType != "ServiceManagedKey" {
			t.Fatalf("a refused key changed the vault: %+v", v)
		}
	})
	// Without AWS KMS configured, a KMS key's ARN says what to configure.
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	_, err := s.Control().SetTokenVaultCMK(cx, &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &ctltypes.KmsConfiguration{
		KeyType: ctltypes.KeyTypeCustomerManagedKey, KmsKeyArn: aws.String(disabled)}})
	var ve *ctltypes.ValidationException
	if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.Message), "set vault.awsKms.region: "+localkms.Region) {
		t.Fatalf("SetTokenVaultCMK(KMS key) without AWS KMS configured = %v", err)
	}
}

// wantKeyUnavailable checks that err is the typed answer to a vend whose
// secret is under an unusable key: 502 InternalServerException saying so.
func wantKeyUnavailable(t *testing.T, err error) {
	t.Helper()
	var ise *types.InternalServerException
	var re *awshttp.ResponseError
	if !errors.As(err, &ise) || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadGateway ||
		!strings.Contains(aws.ToString(ise.Message), "key is unavailable") {
		t.Fatalf("vend under an unusable key: %v; want 502 InternalServerException saying the key is unavailable", err)
	}
}

// local-kms stops while secrets are under its key: see checkKeyOutage.
func TestKMSOutage(t *testing.T) {
	localkms.Env(t)
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		lk := localkms.Start(t, localkms.Options{})
		kmsKey := lk.CreateSymmetricKey(t.Context())
		checkKeyOutage(t, kmsKey, func(opts behalftest.Options) *behalftest.Server {
			return startWithKeyBackends(t, b, lk, nil, opts)
		}, lk.Stop, lk.Restart)
	})
}

// checkKeyOutage starts a server with start, puts secrets under key, and
// makes key unusable with outage: vends that need the key fail with a
// typed error, vends of secrets under another key go on, and the re-wrap
// to that key waits with backoff; once restore brings the key back,
// vends and the re-wrap recover.
func checkKeyOutage(t *testing.T, key string, start func(behalftest.Options) *behalftest.Server, outage, restore func()) {
	t.Helper()
	// Callers stay authenticated through the outage: their secrets are
	// under the service key (and cached).
	deferrals := &countingHandler{message: "re-wrap deferred"}
	s := start(behalftest.Options{PrincipalCacheTTL: time.Hour, Log: slog.New(deferrals)})
	setKey(t, s, key)
	f := newVendFixture(t, s, 3, false)
	waitRewrapped(t, s, key, 30*time.Second)
	if err := f.vendAPIKey(t, "api-00"); err != nil {
		t.Fatal(err)
	}

	outage()
	for _, p := range []string{"api-00", "api-01"} {
		wantKeyUnavailable(t, f.vendAPIKey(t, p))
	}
	// Move to a local key: secrets created now are under it, and vend,
	// while the re-wrap of the others waits for the key.
	localKey := newLocalKey(t, s)
	setKey(t, s, localKey)
	f.addAPIKey(t, s, "created-in-outage")
	if err := f.vendAPIKey(t, "created-in-outage"); err != nil {
		t.Fatalf("a secret under the local key, during the outage: %v", err)
	}
	stale := rotationStatus(t, s).StaleSecrets
	before := deferrals.n.Load()
	time.Sleep(3 * time.Second) // retries after 1s and 2s, with backoff
	if after := rotationStatus(t, s).StaleSecrets; stale == 0 || after != stale {
		t.Fatalf("stale secrets during the outage: %d, then %d; want the same, above 0", stale, after)
	}
	if n := deferrals.n.Load() - before; n < 1 || n > 3 {
		t.Fatalf("%d re-wrap passes deferred in 3s of outage; want a retry with backoff, not a loop", n)
	}
	wantKeyUnavailable(t, f.vendAPIKey(t, "api-02"))

	restore()
	if err := f.vendAPIKey(t, "api-01"); err != nil {
		t.Fatalf("vend once the key is back: %v", err)
	}
	waitRewrapped(t, s, rotationStatus(t, s).CurrentKeyID, 90*time.Second)
	for p := range f.keys {
		if err := f.vendAPIKey(t, p); err != nil {
			t.Fatalf("vend %s after the re-wrap: %v", p, err)
		}
	}
}

// countingHandler counts the log lines that start with message.
type countingHandler struct {
	message string
	n       atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.message) {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
