package dataplane_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/fakesecretsmanager"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// external is where a test's external secrets are kept: the fake Secrets
// Manager (no real one runs here) and a directory of files laid out as a
// Kubernetes secret volume.
type external struct {
	sm  *fakesecretsmanager.Server
	dir string
	// files are the volume's files, by name.
	files map[string]map[string]string
}

// newExternal starts the fake and makes the directory; edit configures a
// server to read both.
func newExternal(t *testing.T) (*external, func(*config.File)) {
	t.Helper()
	e := &external{sm: fakesecretsmanager.Start(t, "eu-west-1"), dir: t.TempDir(), files: map[string]map[string]string{}}
	return e, func(f *config.File) {
		f.ExternalSecrets = config.ExternalSecretsFile{
			AWSSecretsManager: &config.AWSSecretsManagerFile{Region: "eu-west-1", Endpoint: e.sm.URL},
			Files:             &config.SecretFilesFile{Directories: []string{e.dir}},
		}
	}
}

// writeSecret writes a secret file the way the kubelet updates a secret
// volume: every file in a new timestamped directory, then ..data switched
// to it, each name a link into ..data.
func (e *external) writeSecret(t *testing.T, name string, members map[string]string) string {
	t.Helper()
	e.files[name] = members
	version := filepath.Join(e.dir, "..v"+time.Now().Format("150405.000000000"))
	if err := os.Mkdir(version, 0o700); err != nil {
		t.Fatal(err)
	}
	for file, m := range e.files {
		if err := os.WriteFile(filepath.Join(version, file), []byte(secretJSON(m)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(e.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.dir, name)
	if _, err := os.Lstat(path); os.IsNotExist(err) {
		if err := os.Symlink(filepath.Join("..data", name), path); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func secretJSON(members map[string]string) string {
	raw, _ := json.Marshal(members)
	return string(raw)
}

func ref(id, key string) *ctltypes.SecretReference {
	return &ctltypes.SecretReference{SecretId: aws.String(id), JsonKey: aws.String(key)}
}

// createExternalDexProvider creates a CustomOauth2 provider for Dex's M2M
// client whose secret is kept at r.
func createExternalDexProvider(t *testing.T, s *behalftest.Server, d *dextest.Dex, name string, r *ctltypes.SecretReference) {
	t.Helper()
	_, err := s.Control().CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String(name), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String(m2mClientID), ClientSecretSource: ctltypes.SecretSourceTypeExternal, ClientSecretConfig: r,
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: d.DiscoveryURL},
		}},
	})
	if err != nil {
		t.Fatalf("CreateOauth2CredentialProvider %s: %v", name, err)
	}
}

func createExternalAPIKeyProvider(t *testing.T, s *behalftest.Server, name string, r *ctltypes.SecretReference) {
	t.Helper()
	_, err := s.Control().CreateApiKeyCredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
		Name: aws.String(name), ApiKeySecretSource: ctltypes.SecretSourceTypeExternal, ApiKeySecretConfig: r})
	if err != nil {
		t.Fatalf("CreateApiKeyCredentialProvider %s: %v", name, err)
	}
}

// TestE2EExternalSecretVends: M2M tokens from Dex and API keys, with the
// client secret or key read from a mounted file and from Secrets Manager;
// each vend's audit record names the secret's reference, and no record,
// response or database row holds the secret.
func TestE2EExternalSecretVends(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		e, edit := newExternal(t)
		w := newWorld(t, b, worldOptions{edit: edit, w1Policy: map[string]any{
			"allowedCredentialProviders": grants("m2m-file", "m2m-sm", "key-file", "key-sm"),
		}})
		const fileKey, smKey = "sk-from-file-TEST-5f1e2d3c", "sk-from-secrets-manager-TEST-9a8b7c"
		e.writeSecret(t, "dex.json", map[string]string{"clientSecret": m2mClientSecret, "unrelated": "other-member-TEST-value"})
		keyPath := e.writeSecret(t, "weather.json", map[string]string{"apiKey": fileKey})
		e.sm.Put("dex/m2m", secretJSON(map[string]string{"clientSecret": m2mClientSecret}))
		e.sm.Put("weather", secretJSON(map[string]string{"apiKey": smKey}))
		createExternalDexProvider(t, w.s, w.dex, "m2m-file", ref("file:"+filepath.Join(e.dir, "dex.json"), "clientSecret"))
		createExternalDexProvider(t, w.s, w.dex, "m2m-sm", ref(e.sm.ARN("dex/m2m"), "clientSecret"))
		createExternalAPIKeyProvider(t, w.s, "key-file", ref(keyPath, "apiKey"))
		createExternalAPIKeyProvider(t, w.s, "key-sm", ref("weather", "apiKey"))

		token := mintPlain(t, w.rt, workloadW1)
		for provider, secretID := range map[string]string{"m2m-file": "file:" + filepath.Join(e.dir, "dex.json"), "m2m-sm": e.sm.ARN("dex/m2m")} {
			out, err := getM2M(ctx(t), w.rt, token, provider)
			if err != nil {
				t.Fatalf("%s: %v", provider, err)
			}
			claims := verifyAccessToken(t, w.dex, m2mClientID, aws.ToString(out.AccessToken))
			if claims["sub"] != dextest.Subject(m2mClientID, "") {
				t.Errorf("%s: token for %v", provider, claims["sub"])
			}
			rec := auditByRequest(t, w.s, requestIDOf(out.ResultMetadata, nil))
			if rec.Resource != "external-secret/"+secretID+" clientSecret" || rec.Outcome != "success" {
				t.Errorf("%s: audit record %+v", provider, rec)
			}
		}
		for provider, want := range map[string]string{"key-file": fileKey, "key-sm": smKey} {
			out, err := getAPIKey(ctx(t), w.rt, token, provider)
			if err != nil || aws.ToString(out.ApiKey) != want {
				t.Fatalf("%s: %v %v", provider, out, err)
			}
			if rec := auditByRequest(t, w.s, requestIDOf(out.ResultMetadata, nil)); !strings.HasPrefix(rec.Resource, "external-secret/") {
				t.Errorf("%s: audit record %+v", provider, rec)
			}
		}
		if e.sm.Calls() != 2 {
			t.Errorf("%d Secrets Manager calls for two secrets", e.sm.Calls())
		}

		// The secrets are nowhere at rest or in the audit log.
		_, bodies := listAudit(t, w.s, nil)
		var dump []byte
		for _, table := range []string{"oauth2_providers", "api_key_providers", "cached_tokens", "audit_records"} {
			dump = append(dump, dumpTable(t, w.s, table)...)
		}
		for _, secret := range []string{m2mClientSecret, fileKey, smKey, "other-member-TEST-value"} {
			for _, where := range append(bodies, dump) {
				if strings.Contains(string(where), secret) {
					t.Errorf("secret %s… found at rest or in the audit log", secret[:8])
				}
			}
		}
	})
}

// TestE2EExternalSecretRotation: a secret changed at its source is used
// once the cached value is older than externalSecrets.cacheTtl, not
// before; for Secrets Manager and for a file the kubelet swaps.
func TestE2EExternalSecretRotation(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		e, edit := newExternal(t)
		w := newWorld(t, b, worldOptions{now: clock.Now, w1Policy: map[string]any{"allowedCredentialProviders": grants("key-sm", "key-file")},
			edit: func(f *config.File) { edit(f); f.ExternalSecrets.CacheTTL = time.Minute }})
		e.sm.Put("weather", secretJSON(map[string]string{"apiKey": "v1-sm"}))
		path := e.writeSecret(t, "weather.json", map[string]string{"apiKey": "v1-file"})
		createExternalAPIKeyProvider(t, w.s, "key-sm", ref("weather", "apiKey"))
		createExternalAPIKeyProvider(t, w.s, "key-file", ref(path, "apiKey"))
		vend := func(provider string) string {
			t.Helper()
			out, err := getAPIKey(ctx(t), w.rt, mintPlain(t, w.rt, workloadW1), provider)
			if err != nil {
				t.Fatalf("%s: %v", provider, err)
			}
			return aws.ToString(out.ApiKey)
		}
		if vend("key-sm") != "v1-sm" || vend("key-file") != "v1-file" {
			t.Fatal("first vend")
		}
		e.sm.Put("weather", secretJSON(map[string]string{"apiKey": "v2-sm"}))
		e.writeSecret(t, "weather.json", map[string]string{"apiKey": "v2-file"})
		clock.Advance(50 * time.Second)
		if vend("key-sm") != "v1-sm" || vend("key-file") != "v1-file" || e.sm.Calls() != 1 {
			t.Fatal("a value younger than cacheTtl was read again")
		}
		clock.Advance(11 * time.Second)
		if got := vend("key-sm"); got != "v2-sm" {
			t.Errorf("Secrets Manager after the TTL: %q", got)
		}
		if got := vend("key-file"); got != "v2-file" {
			t.Errorf("file after the TTL: %q", got)
		}
	})
}

// TestE2EExternalSecretFailures: a secret that cannot be read withholds
// the credential with a 502 InternalServerException naming the provider,
// the secret id and the JSON key, never a value, and the provider's token
// endpoint sees nothing; a Secrets Manager outage fails closed the same
// way, and so does a file whose link leads out of the directory.
func TestE2EExternalSecretFailures(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		e, edit := newExternal(t)
		names := []string{"no-secret", "no-key", "not-json", "escape", "gone", "down", "m2m-no-key", "m2m-wrong"}
		w := newWorld(t, b, worldOptions{edit: edit, w1Policy: map[string]any{"allowedCredentialProviders": grants(names...)}})
		outside := filepath.Join(filepath.Dir(e.dir), "keyring.json")
		if err := os.WriteFile(outside, []byte(`{"apiKey":"keyring-material-TEST"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(e.dir, "escape.json")); err != nil {
			t.Fatal(err)
		}
		e.sm.Put("present", secretJSON(map[string]string{"other": "other-member-TEST-value"}))
		e.sm.Put("down", secretJSON(map[string]string{"apiKey": "unreachable-TEST-value"}))
		e.sm.Put("dex/wrong", secretJSON(map[string]string{"clientSecret": "not-the-client-secret"}))
		notJSON := filepath.Join(e.dir, "plain.txt")
		if err := os.WriteFile(notJSON, []byte("plain-secret-TEST-value"), 0o600); err != nil {
			t.Fatal(err)
		}
		gone := e.writeSecret(t, "gone.json", map[string]string{"apiKey": "k"})
		cases := map[string]struct {
			id, key, reason string
		}{
			"no-secret": {"prod/absent", "apiKey", "does not exist"},
			"no-key":    {"present", "apiKey", "has no member named by the JSON key"},
			"not-json":  {notJSON, "apiKey", "is not one JSON object"},
			"escape":    {"file:" + filepath.Join(e.dir, "escape.json"), "apiKey", "is outside the directories"},
			"gone":      {gone, "apiKey", "does not exist"},
			"down":      {"down", "apiKey", "its source is unavailable"},
		}
		for name, c := range cases {
			createExternalAPIKeyProvider(t, w.s, name, ref(c.id, c.key))
		}
		createExternalDexProvider(t, w.s, w.dex, "m2m-no-key", ref("present", "clientSecret"))
		createExternalDexProvider(t, w.s, w.dex, "m2m-wrong", ref("dex/wrong", "clientSecret"))
		if err := os.Remove(filepath.Join(e.dir, "gone.json")); err != nil {
			t.Fatal(err)
		}

		token := mintPlain(t, w.rt, workloadW1)
		leaks := []string{"keyring-material-TEST", "other-member-TEST-value", "unreachable-TEST-value", "plain-secret-TEST-value", "not-the-client-secret"}
		check := func(what string, err error, id, key, reason string) {
			t.Helper()
			ie := wantAPIError[*types.InternalServerException](t, err)
			msg := aws.ToString(ie.Message)
			if httpStatus(err) != http.StatusBadGateway || !strings.Contains(msg, `"`+id+`"`) || !strings.Contains(msg, `"`+key+`"`) || !strings.Contains(msg, reason) {
				t.Errorf("%s: %d %s", what, httpStatus(err), msg)
			}
			for _, v := range leaks {
				if strings.Contains(msg, v) {
					t.Errorf("%s: the error shows a secret: %s", what, msg)
				}
			}
		}
		for name, c := range cases {
			if name == "down" {
				continue // below, once the others are read
			}
			_, err := getAPIKey(ctx(t), w.rt, token, name)
			check(name, err, c.id, c.key, c.reason)
		}
		before := w.dex.TokenRequests("client_credentials")
		_, err := getM2M(ctx(t), w.rt, token, "m2m-no-key")
		check("M2M without the key", err, "present", "clientSecret", "has no member named by the JSON key")
		if w.dex.TokenRequests("client_credentials") != before {
			t.Error("the token endpoint was called without a client secret")
		}

		e.sm.SetDown(true)
		_, err = getAPIKey(ctx(t), w.rt, token, "down")
		check("outage", err, "down", "apiKey", cases["down"].reason)
		e.sm.SetDown(false)

		// A secret that is simply wrong is the provider's refusal, as for
		// a managed secret.
		_, err = getM2M(ctx(t), w.rt, token, "m2m-wrong")
		wantAPIError[*types.AccessDeniedException](t, err)
	})
}

// TestE2EExternalSecretUserFederation: a provider switched to an
// external client secret exchanges users' codes and refreshes their
// tokens with it.
func TestE2EExternalSecretUserFederation(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		e, edit := newExternal(t)
		fw := newFedWorld(t, b, fedOptions{edit: edit, now: clock.Now, dex: dextest.Options{IDTokensValidFor: 10 * time.Minute}})
		path := e.writeSecret(t, "fed.json", map[string]string{"clientSecret": fedClientSecret})
		_, err := fw.s.Control().UpdateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
			Name: aws.String(fedProvider), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
				ClientId: aws.String(fedClientID), ClientSecretSource: ctltypes.SecretSourceTypeExternal, ClientSecretConfig: ref(path, "clientSecret"),
				OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: fw.dex.DiscoveryURL},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		first := fw.connect(t, alice, asUserID("alice"))
		if got := fw.tokens.grant("authorization_code"); len(got) != 1 {
			t.Fatalf("%d code exchanges", len(got))
		}
		conn, err := fw.connection(t, "id:alice")
		if err != nil {
			t.Fatal(err)
		}
		clock.AdvanceTo(conn.ExpiresAt.Add(time.Second))
		alice = mintForUser(t, fw.rt, workloadW1, "alice")
		refreshed := fw.token(t, fedInput(alice))
		if refreshed == first || len(fw.tokens.grant("refresh_token")) != 1 {
			t.Fatal("the token was not refreshed")
		}
		verifyAccessToken(t, fw.dex, fedClientID, refreshed)
	})
}
