package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/server"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/fakesecretsmanager"
	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
)

func TestNoPlaintextSecretsAtRest(t *testing.T) {
	secrets := []string{
		"gho-client-secret-4f1b2c3d", "sk-live-api-key-9a8b7c6d", "corp-client-secret-77e1",
		// Kept outside behalf (EXTERNAL), and read by a vend.
		"sk-external-file-key-3e4f5a", "sk-external-sm-key-6b7c8d", "ext-client-secret-1a2b3c",
	}
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		dataDir, secretDir := t.TempDir(), t.TempDir()
		dsn := b.DSN(t, dataDir)
		sm := fakesecretsmanager.Start(t, "us-east-1")
		sm.Put("weather", `{"apiKey":"`+secrets[4]+`"}`)
		sm.Put("ext-oauth", `{"clientSecret":"`+secrets[5]+`"}`)
		if err := os.WriteFile(filepath.Join(secretDir, "maps.json"), []byte(`{"apiKey":"`+secrets[3]+`"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		s := behalftest.Start(t, b, behalftest.Options{DataDir: dataDir, DSN: dsn, Edit: func(f *config.File) {
			f.ExternalSecrets = config.ExternalSecretsFile{AWSSecretsManager: &config.AWSSecretsManagerFile{Region: "us-east-1", Endpoint: sm.URL},
				Files: &config.SecretFilesFile{Directories: []string{secretDir}}}
		}})
		c, ctx := s.Control(), context.Background()
		vendExternalSecrets(t, s, secretDir, secrets[3:])
		if _, err := c.CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("github"), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
			Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: types.GithubOauth2ProviderConfigInput{
				ClientId: aws.String("Iv1.client"), ClientSecret: aws.String(secrets[0])}},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
			Name: aws.String("openai"), ApiKey: aws.String(secrets[1])}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("corp"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: types.CustomOauth2ProviderConfigInput{
				ClientId: aws.String("c"), ClientSecret: aws.String(secrets[2]),
				OauthDiscovery: &types.Oauth2DiscoveryMemberAuthorizationServerMetadata{Value: types.Oauth2AuthorizationServerMetadata{
					Issuer: aws.String("https://idp.example.com"), AuthorizationEndpoint: aws.String("https://idp.example.com/a"),
					TokenEndpoint: aws.String("https://idp.example.com/t")}}}},
		}); err != nil {
			t.Fatal(err)
		}
		res := s.Do(t, behalftest.Raw{Path: "/behalf/CreatePrincipal", Body: []byte(`{"role":"runtime","workloads":["*"]}`)})
		principalSecret := res.JSON(t)["secretAccessKey"].(string)
		secrets = append(secrets, principalSecret, behalftest.AdminSecret)

		var dump []byte
		switch b.Name {
		case "sqlite":
			s.Stop() // checkpoint and close, then read every file the database left behind
			files, _ := filepath.Glob(filepath.Join(dataDir, "behalf.db*"))
			if len(files) == 0 {
				t.Fatal("no database files")
			}
			for _, f := range files {
				raw, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				dump = append(dump, raw...)
			}
		case "postgres":
			out, err := exec.Command("pg_dump", "--data-only", dsn).Output()
			if err != nil {
				t.Fatalf("pg_dump: %v", err)
			}
			dump = out
			if !containsAnyForm(dump, "Iv1.client") {
				t.Fatal("the dump does not contain the non-secret client id: it is not a dump of this database")
			}
		}
		if len(dump) < 1000 {
			t.Fatalf("suspiciously small dump: %d bytes", len(dump))
		}
		for _, secret := range secrets {
			if containsAnyForm(dump, secret) {
				t.Errorf("secret %q is readable in the %s database", secret[:6]+"…", b.Name)
			}
		}
	})
}

// vendExternalSecrets creates providers whose secrets are kept outside
// behalf (a file, Secrets Manager) and vends the API keys, which reads
// them, for an API key provider per secret but the last, the client
// secret of an OAuth2 provider that is only created.
func vendExternalSecrets(t *testing.T, s *behalftest.Server, secretDir string, want []string) {
	t.Helper()
	c, ctx := s.Control(), context.Background()
	refs := []*types.SecretReference{
		{SecretId: aws.String(filepath.Join(secretDir, "maps.json")), JsonKey: aws.String("apiKey")},
		{SecretId: aws.String("weather"), JsonKey: aws.String("apiKey")},
	}
	if _, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("agent")}); err != nil {
		t.Fatal(err)
	}
	out, err := s.Data().GetWorkloadAccessToken(ctx, &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String("agent")})
	if err != nil {
		t.Fatal(err)
	}
	for i, ref := range refs {
		name := fmt.Sprintf("external-%d", i)
		if _, err := c.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
			Name: aws.String(name), ApiKeySecretSource: types.SecretSourceTypeExternal, ApiKeySecretConfig: ref}); err != nil {
			t.Fatal(err)
		}
		key, err := s.Data().GetResourceApiKey(ctx, &bedrockagentcore.GetResourceApiKeyInput{
			WorkloadIdentityToken: out.WorkloadAccessToken, ResourceCredentialProviderName: aws.String(name)})
		if err != nil || aws.ToString(key.ApiKey) != want[i] {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := c.CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String("external-oauth"), CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
		Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: types.GithubOauth2ProviderConfigInput{
			ClientId: aws.String("Iv1.external"), ClientSecretSource: types.SecretSourceTypeExternal,
			ClientSecretConfig: &types.SecretReference{SecretId: aws.String("ext-oauth"), JsonKey: aws.String("clientSecret")}}},
	}); err != nil {
		t.Fatal(err)
	}
}

// containsAnyForm looks for s as text and in the encodings a dump may use
// for binary columns (pg_dump writes bytea as hex).
func containsAnyForm(dump []byte, s string) bool {
	for _, form := range []string{s, hex.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s))} {
		if bytes.Contains(dump, []byte(form)) {
			return true
		}
	}
	return false
}

func startWithEnv(t *testing.T, dataDir string, env map[string]string) (*server.Server, *bytes.Buffer) {
	t.Helper()
	f := config.Defaults()
	f.DataDir = dataDir
	cfg, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), server.Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, &logs
}

func TestBootstrapGeneratesAdminCredentials(t *testing.T) {
	dataDir := t.TempDir()
	srv, logs := startWithEnv(t, dataDir, nil)
	path := filepath.Join(dataDir, "admin-credentials")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-credentials mode %04o", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	var id, secret string
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, " = "); ok {
			switch k {
			case "aws_access_key_id":
				id = v
			case "aws_secret_access_key":
				secret = v
			}
		}
	}
	if !strings.HasPrefix(string(raw), "# behalf") || !strings.Contains(string(raw), "[default]") || id == "" || len(secret) != 40 {
		t.Fatalf("credentials file:\n%s", raw)
	}
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), path) || !strings.Contains(logs.String(), id) {
		t.Fatalf("the log must name the path and key id, never the secret:\n%s", logs)
	}
	p, err := srv.Store().GetPrincipal(context.Background(), id)
	if err != nil || p.Role != "admin" {
		t.Fatalf("bootstrap principal: %+v %v", p, err)
	}
	srv.Close()

	// A restart keeps the existing admin and the file.
	srv2, _ := startWithEnv(t, dataDir, nil)
	ps, _ := srv2.Store().ListPrincipals(context.Background(), storagePage())
	raw2, _ := os.ReadFile(path)
	if len(ps) != 1 || !bytes.Equal(raw, raw2) {
		t.Fatalf("restart changed the principals (%d) or the credentials file", len(ps))
	}
	if left, _ := filepath.Glob(filepath.Join(dataDir, ".admin-credentials-*")); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestBootstrapFromEnvironment(t *testing.T) {
	dataDir := t.TempDir()
	srv, logs := startWithEnv(t, dataDir, map[string]string{
		"BEHALF_BOOTSTRAP_ACCESS_KEY_ID": "AKIDFROMENVIRONMENT1", "BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY": "env-provided-secret-value-0123456789",
	})
	if _, err := srv.Store().GetPrincipal(context.Background(), "AKIDFROMENVIRONMENT1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "admin-credentials")); !os.IsNotExist(err) {
		t.Fatal("credentials from the environment were written to disk")
	}
	if strings.Contains(logs.String(), "env-provided-secret-value") {
		t.Fatal("the secret reached the log")
	}

	f := config.Defaults()
	f.DataDir = t.TempDir()
	cfg, _ := f.Validate()
	for _, env := range []map[string]string{
		{"BEHALF_BOOTSTRAP_ACCESS_KEY_ID": "AKIDONLYTHEID0000000"},
		{"BEHALF_BOOTSTRAP_ACCESS_KEY_ID": "lower", "BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY": "long-enough-secret-0000"},
	} {
		if _, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler), server.Options{Getenv: func(k string) string { return env[k] }}); err == nil {
			t.Errorf("bootstrap accepted %v", env)
		}
	}
}

// Replicas starting together on one empty PostgreSQL database create
// exactly one bootstrap admin.
func TestConcurrentReplicasBootstrapOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	// Replicas using local keys share one keyring file.
	keyring := filepath.Join(t.TempDir(), "keyring.json")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := config.Defaults()
			f.DataDir, f.Storage, f.Vault.Keyring = t.TempDir(), dsn, keyring
			cfg, _ := f.Validate()
			srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler), server.Options{Getenv: func(string) string { return "" }})
			if err != nil {
				errs <- err
				return
			}
			srv.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f := config.Defaults()
	f.DataDir, f.Storage, f.Vault.Keyring = t.TempDir(), dsn, keyring
	cfg, _ := f.Validate()
	srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler), server.Options{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ps, _ := srv.Store().ListPrincipals(context.Background(), storagePage())
	if len(ps) != 1 {
		t.Fatalf("%d bootstrap admins", len(ps))
	}
}

func TestHealthAndReadiness(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, res.StatusCode, body)
		}
	}
	s.Server.Store().Close()
	res, err := http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with storage closed: %d", res.StatusCode)
	}
}

func TestGracefulShutdown(t *testing.T) {
	f := config.Defaults()
	f.DataDir = t.TempDir()
	cfg, _ := f.Validate()
	srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler), server.Options{Getenv: func(k string) string {
		return map[string]string{"BEHALF_BOOTSTRAP_ACCESS_KEY_ID": behalftest.AdminKeyID, "BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY": behalftest.AdminSecret}[k]
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Run(ctx, ln) }()
	url := "http://" + ln.Addr().String()

	// A slow client is mid-request, still sending its body, when shutdown
	// begins; it must get its (typed) answer.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", url+"/identities/ListWorkloadIdentities", pr)
	req.Header.Set("Content-Type", "application/json")
	result := make(chan int)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- -1
			return
		}
		res.Body.Close()
		result <- res.StatusCode
	}()
	pw.Write([]byte(`{`))
	time.Sleep(100 * time.Millisecond)
	cancel()
	time.Sleep(100 * time.Millisecond)
	pw.Write([]byte(`}`))
	pw.Close()
	if code := <-result; code != http.StatusUnauthorized {
		t.Fatalf("in-flight request: %d", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
}

// Every served operation has a row in the authorization policy, and the
// policy names no operation that is not served.
func TestPolicyCoversEveryOperation(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	served := map[string]bool{}
	for _, op := range s.Server.Operations() {
		served[op] = true
		if _, ok := authz.RuleFor(op); !ok {
			t.Errorf("operation %s has no policy row: it would be denied to everyone", op)
		}
	}
	for _, op := range authz.Operations() {
		if !served[op] {
			t.Errorf("policy row %s names no served operation", op)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:hunter2@db:5432/behalf":    "postgres://u:REDACTED@db:5432/behalf",
		"postgres://u@db/behalf?sslmode=disable": "postgres://u@db/behalf?sslmode=disable",
		"./behalf-data/behalf.db":                "./behalf-data/behalf.db",
		"postgres://db/behalf?password=hunter2":  "postgres://db/behalf?password=REDACTED",
		// Not parseable as URLs: everything between "://" and the last "@".
		"postgres://u:hunter2@db:5432/x%zz":         "postgres://REDACTED@db:5432/x%zz",
		"postgres://u:hun ter2@db/x":                "postgres://REDACTED@db/x",
		"postgresql://u:p%zzhunter2@db/x":           "postgresql://REDACTED@db/x",
		"postgres://u:hunter2@[::1:5432/x":          "postgres://REDACTED@[::1:5432/x",
		"postgres://u:a@b@hunter2@db/x%zz":          "postgres://REDACTED@db/x%zz",
		"postgres://db/x%zz?password=hunter2&a=b":   "postgres://db/x%zz?password=REDACTED&a=b",
		"postgres:u:hunter2@db/x":                   "postgres:REDACTED",
		"host=db user=u password=hunter2 dbname=x":  "host=db user=u password=REDACTED dbname=x",
		"host=db password = 'hun ter\\'2' dbname=x": "host=db password = REDACTED dbname=x",
		"host=db PASSWORD=hunter2":                  "host=db PASSWORD=REDACTED",
	} {
		if got := server.RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// A DSN that does not parse makes start-up fail with an error that names
// it, without its password.
func TestStorageErrorHidesPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:hunter2@db:5432/x%zz",
		"postgres://u:hun ter2@db:5432/x",
		"postgresql://u:p%zzhunter2@127.0.0.1:1/x",
		"postgres://u:hunter2@[::1:5432/x",
		"postgres://u:hunter2@127.0.0.1:1/x?password=hunter3&sslmode=bogus",
	} {
		f := config.Defaults()
		f.DataDir, f.Storage = t.TempDir(), dsn
		cfg, err := f.Validate()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = server.New(ctx, cfg, slog.New(slog.DiscardHandler), server.Options{})
		cancel()
		if err == nil {
			t.Fatalf("%s: started", dsn)
		}
		if msg := err.Error(); strings.Contains(msg, "hunter") || strings.Contains(msg, "ter2") || !strings.Contains(msg, "open storage") {
			t.Errorf("%s: %s", dsn, msg)
		}
	}
}

func storagePage() storage.Page { return storage.Page{Limit: 100} }
