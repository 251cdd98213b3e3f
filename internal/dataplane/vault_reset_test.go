package dataplane_test

// ResetTokenVaultKeyMaterial (issue 14): once the token vault's customer
// managed key is deleted — here removed from the local keyring file — the
// server still starts (behalf's own secrets are under the service key),
// and the reset deletes the users' tokens sealed under the key, keeps the
// providers with their secrets to set again, keeps what other keys seal,
// and puts the vault under the service key, which every replica follows.

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/vault"
)

func TestResetTokenVaultKeyMaterial(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{extraProviders: []string{"svc-key", "k2-key"}})
		cx, st, ctl := ctx(t), fw.s.Server.Store(), fw.s.Control()
		initial, err := st.GetTokenVault(cx, "default")
		if err != nil {
			t.Fatal(err)
		}
		serviceKey := initial.KeyID
		reset := func(c *bedrockagentcorecontrol.Client) (*bedrockagentcorecontrol.ResetTokenVaultKeyMaterialOutput, error) {
			return c.ResetTokenVaultKeyMaterial(cx, &bedrockagentcorecontrol.ResetTokenVaultKeyMaterialInput{TokenVaultId: aws.String("default")})
		}
		refused := func(what, msg string) {
			t.Helper()
			_, err := reset(ctl)
			wantValidation(t, what, err, msg)
		}

		refused("a service-managed vault", "uses the service-managed key")
		_, err = ctl.ResetTokenVaultKeyMaterial(cx, &bedrockagentcorecontrol.ResetTokenVaultKeyMaterialInput{TokenVaultId: aws.String("other")})
		wantAPIError[*ctltypes.ResourceNotFoundException](t, err)

		k1ARN, k1 := createVaultKey(t, fw.s)
		_, k2 := createVaultKey(t, fw.s)
		if _, err := ctl.SetTokenVaultCMK(cx, &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &ctltypes.KmsConfiguration{
			KeyType: ctltypes.KeyTypeCustomerManagedKey, KmsKeyArn: aws.String(k1ARN)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := fw.s.Server.Rewrap(cx); err != nil {
			t.Fatal(err)
		}
		if stale, err := st.ListStaleSecrets(cx, vault.Targets(serviceKey, k1), 10); err != nil || len(stale) != 0 {
			t.Fatalf("%d secrets not under their key: %v", len(stale), err)
		}
		refused("a key that exists", "still exists")

		// Under k1: Alice's connection, Bob's pending session, a cached
		// M2M token, and every provider's secret.
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		fw.connect(t, alice, asUserID("alice"))
		bob := fw.start(t, fedInput(mintForUser(t, fw.rt, workloadW1, "bob"), withScopes("openid", "email")))
		plain := mintPlain(t, fw.rt, workloadW1)
		if _, err := getM2M(cx, fw.rt, plain, m2mProvider, "openid"); err != nil {
			t.Fatal(err)
		}
		edit := func(f *config.File) {
			f.InboundAuthorizers = []config.InboundAuthorizerFile{{Name: dexAuthorizer, DiscoveryURL: fw.dex.DiscoveryURL, AllowedAudience: []string{userClientID}}}
		}
		replica := func() *behalftest.Server {
			return behalftest.Start(t, b, behalftest.Options{DataDir: fw.s.Config.DataDir, DSN: fw.s.Config.Storage, Edit: edit})
		}
		before := replica() // holds k1 in memory

		behalftest.RemoveVaultKey(t, fw.s.Config.Keyring, k1)

		// A server started now, as after a restart, starts: its own keys
		// and the principals' secrets are under the service key.
		after := replica()
		if v, err := after.Control().GetTokenVault(cx, &bedrockagentcorecontrol.GetTokenVaultInput{}); err != nil || v.KmsConfiguration.KeyType != ctltypes.KeyTypeCustomerManagedKey {
			t.Fatalf("GetTokenVault on a server started without the vault's key: %+v %v", v, err)
		}

		// Under the service key and under k2, which both exist: records an
		// interrupted re-wrap left behind. (Stored now, when no replica
		// re-wraps: the one holding a copy of k1 found nothing stale when
		// it started, and the others cannot use k1.)
		putAPIKey(t, st, fw.s.Config.Keyring, "svc-key", "svc-value", "")
		putAPIKey(t, st, fw.s.Config.Keyring, "k2-key", "k2-value", k2)
		wantAPIKey(t, fw.runtime.data(after), "svc-key", "svc-value")

		rec := &behalftest.Recorder{}
		out, err := reset(bedrockagentcorecontrol.NewFromConfig(behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret), func(o *bedrockagentcorecontrol.Options) {
			o.BaseEndpoint, o.HTTPSignerV4, o.HTTPClient = aws.String(fw.s.URL), fw.s.Signer(), rec
		}))
		if err != nil {
			t.Fatalf("ResetTokenVaultKeyMaterial: %v", err)
		}
		if aws.ToString(out.TokenVaultId) != "default" || out.KmsConfiguration.KeyType != ctltypes.KeyTypeServiceManagedKey ||
			out.KmsConfiguration.KmsKeyArn != nil || out.LastModifiedDate == nil {
			t.Errorf("reset output: %+v %+v", out, out.KmsConfiguration)
		}
		var ext struct {
			Reset behalfapi.VaultReset `json:"keyMaterialReset"`
		}
		if err := json.Unmarshal(rec.Last(), &ext); err != nil {
			t.Fatal(err)
		}
		want := behalfapi.VaultReset{DeletedConnections: 1, DeletedSessions: 1, DeletedCachedTokens: 1,
			LostClientSecrets: []string{fedProvider, m2mProvider}, LostAPIKeys: []string{apiKeyProvider}}
		if diff := cmp.Diff(want, ext.Reset); diff != "" {
			t.Errorf("keyMaterialReset (-want +got):\n%s", diff)
		}
		if v, _ := st.GetTokenVault(cx, "default"); v.KeyID != serviceKey || v.KeyType != "ServiceManagedKey" || v.KMSKeyARN != "" {
			t.Errorf("stored vault after reset: %+v", v)
		}

		// The reset's audit record, with the counts and no secret.
		recs, err := st.ListAudit(cx, storage.AuditFilter{Operation: "ResetTokenVaultKeyMaterial"})
		if err != nil {
			t.Fatal(err)
		}
		outcomes := ""
		for _, r := range recs {
			outcomes += r.Outcome + " "
			if r.Outcome == "success" && (!strings.Contains(r.Resource, ":token-vault/default") ||
				!strings.Contains(r.Resource, "deleted 1 connections, 1 sessions, 1 cached tokens; lost 2 client secrets, 1 API keys")) {
				t.Errorf("the reset's audit record names %q", r.Resource)
			}
		}
		// Refused as service-managed, for another vault, and for a key
		// that exists; then done.
		if outcomes != "failure failure failure success " {
			t.Errorf("audit records of ResetTokenVaultKeyMaterial: %s", outcomes)
		}

		// The users' tokens are gone.
		if _, err := fw.connection(t, "id:alice"); err == nil {
			t.Error("Alice's connection outlived the reset")
		}
		if _, err := st.GetOAuthSession(cx, strings.TrimPrefix(bob.uri, "urn:ietf:params:oauth:request_uri:")); err == nil {
			t.Error("Bob's session outlived the reset")
		}

		// The providers stay; those whose secret was lost say so, and
		// refuse to vend, clearly.
		p, err := ctl.GetOauth2CredentialProvider(cx, &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String(fedProvider)})
		if err != nil || p.Status != ctltypes.StatusUpdateFailed || !strings.Contains(aws.ToString(p.FailureReason), "set it again with UpdateOauth2CredentialProvider") {
			t.Errorf("provider with a lost secret: %v, %q, %v", p.Status, aws.ToString(p.FailureReason), err)
		}
		res := fw.s.Do(t, behalftest.Raw{Path: "/identities/GetApiKeyCredentialProvider", Body: []byte(`{"name":"` + apiKeyProvider + `"}`)})
		if m := res.JSON(t); m["status"] != "UPDATE_FAILED" || !strings.Contains(m["failureReason"].(string), "UpdateApiKeyCredentialProvider") {
			t.Errorf("API key provider with a lost key: %s", res.Body)
		}
		if _, err := ctl.GetApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.GetApiKeyCredentialProviderInput{Name: aws.String(apiKeyProvider)}); err != nil {
			t.Errorf("the official client reading a provider with a lost key: %v", err)
		}
		plain = mintPlain(t, fw.rt, workloadW1)
		_, err = getAPIKey(cx, fw.rt, plain, apiKeyProvider)
		wantValidation(t, "API key vend", err, "must set it again with UpdateApiKeyCredentialProvider")
		_, err = getM2M(cx, fw.rt, plain, m2mProvider, "openid")
		wantValidation(t, "M2M vend", err, "must set it again with UpdateOauth2CredentialProvider")
		alice = mintForUser(t, fw.rt, workloadW1, "alice")
		_, err = fw.data.GetResourceOauth2Token(cx, fedInput(alice))
		wantValidation(t, "USER_FEDERATION with a lost client secret", err, "must set it again")

		// What other keys sealed stays, and is re-wrapped under the
		// service key.
		wantAPIKey(t, fw.rt, "svc-key", "svc-value")
		wantAPIKey(t, fw.rt, "k2-key", "k2-value")
		if _, err := fw.s.Server.Rewrap(cx); err != nil {
			t.Fatal(err)
		}
		if stale, err := st.ListStaleSecrets(cx, storage.AllUnder(serviceKey), 10); err != nil || len(stale) != 0 {
			t.Errorf("secrets left outside the service key after the reset: %v %v", stale, err)
		}
		wantAPIKey(t, fw.rt, "k2-key", "k2-value")

		// Set again, the secrets work; Alice must consent again.
		if _, err := ctl.UpdateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.UpdateApiKeyCredentialProviderInput{
			Name: aws.String(apiKeyProvider), ApiKey: aws.String(apiKeyValue)}); err != nil {
			t.Fatal(err)
		}
		wantAPIKey(t, fw.rt, apiKeyProvider, apiKeyValue)
		if _, err := ctl.UpdateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
			Name: aws.String(fedProvider), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
				ClientId: aws.String(fedClientID), ClientSecret: aws.String(fedClientSecret),
				OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: fw.dex.DiscoveryURL},
			}},
		}); err != nil {
			t.Fatal(err)
		}
		if p, err := ctl.GetOauth2CredentialProvider(cx, &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String(fedProvider)}); err != nil ||
			p.Status != ctltypes.StatusReady || p.FailureReason != nil {
			t.Errorf("provider set again: %v %v", p.Status, err)
		}
		fw.start(t, fedInput(alice))

		// Every replica follows: one that was running, one started after
		// the key was deleted, and one started after the reset.
		for name, s := range map[string]*behalftest.Server{"running": before, "started without the key": after, "restarted": replica()} {
			s.Server.FollowVaultKey(cx)
			made := "made-" + strings.ReplaceAll(name, " ", "-")
			if _, err := s.Control().CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
				Name: aws.String(made), ApiKey: aws.String("v")}); err != nil {
				t.Errorf("%s replica: %v", name, err)
				continue
			}
			if p, err := st.GetAPIKeyProvider(cx, made); err != nil || p.APIKey.KeyID != serviceKey {
				t.Errorf("%s replica sealed under %s, not the service key: %v", name, p.APIKey.KeyID, err)
			}
			wantAPIKey(t, fw.runtime.data(s), "svc-key", "svc-value")
		}

		refused("a vault already reset", "uses the service-managed key")
	})
}

// createVaultKey adds a key to the server's local keyring and returns its
// ARN and vault key id.
func createVaultKey(t *testing.T, s *behalftest.Server) (arn, keyID string) {
	t.Helper()
	res := do(t, s, "/behalf/CreateVaultKey", struct{}{}, 201)
	arn = res.JSON(t)["kmsKeyArn"].(string)
	return arn, vault.LocalPrefix + arn[strings.LastIndex(arn, "/")+1:]
}

// putAPIKey stores an API key provider whose key is sealed under keyID
// (the service key when empty), as if written before the vault's key
// changed.
func putAPIKey(t *testing.T, st storage.Storage, keyring, name, value, keyID string) {
	t.Helper()
	cx := ctx(t)
	kr, err := vault.LoadLocalKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(cx, kr, kr.ServiceKeyID())
	if err != nil {
		t.Fatal(err)
	}
	if keyID != "" {
		if err := v.SetCurrent(cx, keyID); err != nil {
			t.Fatal(err)
		}
	}
	p := storage.APIKeyProvider{ID: uuid.NewString(), Name: name, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if p.APIKey, err = v.SealAPIKey(cx, p.ID, []byte(value)); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIKeyProvider(cx, p, nil); err != nil {
		t.Fatal(err)
	}
}

// wantValidation requires a ValidationException, from either plane, that
// says msg.
func wantValidation(t *testing.T, what string, err error, msg string) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" || !strings.Contains(api.ErrorMessage(), msg) {
		t.Errorf("%s: %v, want a ValidationException saying %q", what, err, msg)
	}
}

func wantAPIKey(t *testing.T, c *bedrockagentcore.Client, provider, value string) {
	t.Helper()
	out, err := getAPIKey(ctx(t), c, mintPlain(t, c, workloadW1), provider)
	if err != nil || aws.ToString(out.ApiKey) != value {
		t.Errorf("GetResourceApiKey %s: %v", provider, err)
	}
}
