package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/cli"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/localkms"
	"github.com/behalf-dev/behalf/internal/testutil/softhsm"
	"github.com/behalf-dev/behalf/internal/vault/pkcs11"
)

type run struct {
	t   *testing.T
	url string
	// auth are the flags that make the CLI sign as the test admin.
	auth []string
}

func (r run) do(stdin string, args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	var out, errb bytes.Buffer
	all := append([]string{args[0], "--endpoint", r.url}, r.auth...)
	all = append(all, args[1:]...)
	code = cli.Execute(context.Background(), all, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func (r run) ok(stdin string, args ...string) string {
	r.t.Helper()
	out, errs, code := r.do(stdin, args...)
	if code != 0 {
		r.t.Fatalf("behalf %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func (r run) json(v any, args ...string) {
	r.t.Helper()
	out := r.ok("", append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.t.Fatalf("behalf %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newRun(t *testing.T) run {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	return run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
}

// cmd splits "identity create x" into the first word (placed before the
// global flags) and the rest, matching run.do.
func cmd(s string) []string { return strings.Fields(s) }

func TestIdentityCommands(t *testing.T) {
	r := newRun(t)
	out := r.ok("", cmd("identity create my-agent --return-url http://127.0.0.1:9090/cb --tag team=core")...)
	if !strings.Contains(out, "workload-identity/my-agent") || !strings.Contains(out, "http://127.0.0.1:9090/cb") {
		t.Fatalf("create table:\n%s", out)
	}
	var got map[string]any
	r.json(&got, cmd("identity get my-agent")...)
	if got["name"] != "my-agent" || got["createdTime"] == nil {
		t.Fatalf("get json: %v", got)
	}
	r.ok("", cmd("identity update my-agent --return-url https://app.example.com/cb")...)
	r.json(&got, cmd("identity get my-agent")...)
	if urls := got["allowedResourceOauth2ReturnUrls"].([]any); len(urls) != 1 || urls[0] != "https://app.example.com/cb" {
		t.Fatalf("after update: %v", got)
	}
	var list []map[string]any
	r.json(&list, cmd("identity list")...)
	if len(list) != 1 {
		t.Fatalf("list: %v", list)
	}
	out = r.ok("", cmd("identity list")...)
	if !strings.HasPrefix(out, "NAME") {
		t.Fatalf("list table:\n%s", out)
	}
	r.ok("", cmd("identity delete my-agent")...)
	_, errs, code := r.do("", cmd("identity get my-agent")...)
	if code == 0 || errs != "behalf: ResourceNotFoundException: workload identity my-agent does not exist\n" {
		t.Fatalf("get after delete: %d %q", code, errs)
	}
	_, errs, code = r.do("", cmd("identity create x!")...)
	if code == 0 || !strings.HasPrefix(errs, "behalf: ValidationException:") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("invalid name: %d %q", code, errs)
	}
}

func TestProviderCommands(t *testing.T) {
	r := newRun(t)
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("gh-secret-from-file\n"), 0o600)
	out := r.ok("", cmd("provider oauth2 create github --vendor GithubOauth2 --client-id Iv1.abc --client-secret @"+secretFile)...)
	if !strings.Contains(out, "/identities/oauth2/callback/") || strings.Contains(out, "gh-secret-from-file") {
		t.Fatalf("oauth2 create:\n%s", out)
	}
	var p map[string]any
	r.json(&p, cmd("provider oauth2 get github")...)
	if p["credentialProviderVendor"] != "GithubOauth2" || p["clientId"] != "Iv1.abc" {
		t.Fatalf("oauth2 get: %v", p)
	}
	_, errs, code := r.do("", cmd("provider oauth2 create bad --vendor NopeOauth2 --client-id a --client-secret b")...)
	if code == 0 || !strings.Contains(errs, "is not a vendor") {
		t.Fatalf("unknown vendor: %q", errs)
	}
	r.ok("", cmd("provider oauth2 update github --vendor GithubOauth2 --client-id Iv1.new")...)
	r.json(&p, cmd("provider oauth2 get github")...)
	if p["clientId"] != "Iv1.new" {
		t.Fatalf("after update: %v", p)
	}

	out = r.ok("sk-from-stdin\n", cmd("provider apikey create openai --api-key -")...)
	if strings.Contains(out, "sk-from-stdin") {
		t.Fatal("the API key was echoed")
	}
	var keys []map[string]any
	r.json(&keys, cmd("provider apikey list")...)
	if len(keys) != 1 || keys[0]["name"] != "openai" {
		t.Fatalf("apikey list: %v", keys)
	}
	r.ok("rotated\n", cmd("provider apikey update openai --api-key -")...)
	r.ok("", cmd("provider apikey delete openai")...)
	r.ok("", cmd("provider oauth2 delete github")...)
	_, errs, code = r.do("", cmd("provider apikey create empty --api-key -")...)
	if code == 0 || !strings.Contains(errs, "empty") {
		t.Fatalf("empty key from stdin: %q", errs)
	}
}

func TestPrincipalVaultAndTagCommands(t *testing.T) {
	r := newRun(t)
	var p map[string]any
	r.json(&p, cmd("principal create --role runtime --workload agent-a --description ci")...)
	id, secret := p["accessKeyId"].(string), p["secretAccessKey"].(string)
	if id == "" || secret == "" {
		t.Fatalf("create: %v", p)
	}
	out := r.ok("", cmd("principal list")...)
	if !strings.Contains(out, id) || strings.Contains(out, secret) {
		t.Fatalf("list:\n%s", out)
	}
	r.json(&p, cmd("principal create --role runtime --workload agent-a --key-id BEHALFCHOSENKEY01 --secret behalf-chosen-secret-0123456789")...)
	if p["accessKeyId"] != "BEHALFCHOSENKEY01" {
		t.Fatalf("create with a chosen key id: %v", p)
	}
	if _, errs, code := r.do("", cmd("principal create --role runtime --workload agent-a --key-id BEHALFCHOSENKEY02")...); code == 0 || !strings.Contains(errs, "go together") {
		t.Fatalf("a key id without its secret: %q", errs)
	}
	r.ok("", cmd("principal update "+id+" --workload agent-a --workload agent-b")...)
	r.json(&p, cmd("principal get "+id)...)
	if len(p["workloads"].([]any)) != 2 {
		t.Fatalf("after update: %v", p)
	}

	// The runtime principal signs, but may not manage identities.
	runtime := run{t: t, url: r.url, auth: []string{"--access-key-id", id, "--secret-access-key", secret}}
	_, errs, code := runtime.do("", cmd("identity list")...)
	if code == 0 || !strings.HasPrefix(errs, "behalf: AccessDeniedException:") {
		t.Fatalf("runtime listing identities: %q", errs)
	}
	r.ok("", cmd("principal delete "+id)...)

	var key map[string]string
	r.json(&key, cmd("vault create-key")...)
	arn := key["kmsKeyArn"]
	out = r.ok("", cmd("vault set-key --key-arn "+arn)...)
	if !strings.Contains(out, "CustomerManagedKey") || !strings.Contains(out, arn) {
		t.Fatalf("set-key:\n%s", out)
	}
	r.ok("", cmd("vault set-key --service-managed")...)
	var v map[string]any
	r.json(&v, cmd("vault get")...)
	if v["keyType"] != "ServiceManagedKey" || v["staleSecrets"] == nil || !strings.HasPrefix(v["currentKeyId"].(string), "local:") {
		t.Fatalf("vault get: %v", v)
	}
	if out := r.ok("", cmd("vault get")...); !strings.Contains(out, "awaiting re-wrap") {
		t.Fatalf("vault get:\n%s", out)
	}

	r.ok("", cmd("identity create tagged")...)
	wARN := "arn:aws:bedrock-agentcore:us-east-1:000000000000:workload-identity-directory/default/workload-identity/tagged"
	r.ok("", cmd("tag add "+wARN+" env=prod owner=me")...)
	r.ok("", cmd("tag remove "+wARN+" owner")...)
	var tags map[string]string
	r.json(&tags, cmd("tag list "+wARN)...)
	if len(tags) != 1 || tags["env"] != "prod" {
		t.Fatalf("tags: %v", tags)
	}
}

func TestCredentialsFromDataDir(t *testing.T) {
	dataDir := t.TempDir()
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{DataDir: dataDir})
	os.WriteFile(filepath.Join(dataDir, "admin-credentials"),
		[]byte("[default]\naws_access_key_id = "+behalftest.AdminKeyID+"\naws_secret_access_key = "+behalftest.AdminSecret+"\n"), 0o600)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	r := run{t: t, url: s.URL, auth: []string{"--data-dir", dataDir}}
	r.ok("", cmd("identity list")...)

	empty := run{t: t, url: s.URL, auth: []string{"--data-dir", t.TempDir()}}
	_, errs, code := empty.do("", cmd("identity list")...)
	if code == 0 || !strings.Contains(errs, "no credentials") {
		t.Fatalf("without credentials: %q", errs)
	}
}

func TestServerDown(t *testing.T) {
	r := run{t: t, url: "http://127.0.0.1:1", auth: []string{"--access-key-id", "AKIDX0000000000000000", "--secret-access-key", "x"}}
	_, errs, code := r.do("", cmd("identity list")...)
	if code == 0 || !strings.Contains(errs, "cannot reach the behalf server at http://127.0.0.1:1") {
		t.Fatalf("%q", errs)
	}
}

func TestServeCheckConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "behalf.yaml")
	os.WriteFile(path, []byte("listen: 127.0.0.1:9999\nstorage: postgres://u:hunter2@db/behalf\n"), 0o600)
	var out, errb bytes.Buffer
	code := cli.Execute(context.Background(), []string{"serve", "--config", path, "--check-config"}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "configuration is valid") || strings.Contains(out.String(), "hunter2") {
		t.Fatalf("%d %s %s", code, out.String(), errb.String())
	}
	os.WriteFile(path, []byte("listne: x\nregion: nowhere\n"), 0o600)
	out.Reset()
	errb.Reset()
	code = cli.Execute(context.Background(), []string{"serve", "--config", path, "--check-config"}, nil, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "listne (line 1): unknown key") {
		t.Fatalf("%d %s", code, errb.String())
	}
}

func TestIdentityPolicyFlags(t *testing.T) {
	r := newRun(t)
	out := r.ok("", cmd("identity create reporter --allow-provider github:repo,read:org --allow-provider weather --no-authorizers")...)
	if !strings.Contains(out, "github:repo,read:org,weather") {
		t.Fatalf("create table:\n%s", out)
	}
	var got struct {
		Authorizers *[]string `json:"allowedInboundAuthorizers"`
		Providers   []struct {
			Provider string   `json:"provider"`
			Scopes   []string `json:"scopes"`
		} `json:"allowedCredentialProviders"`
	}
	r.json(&got, cmd("identity get reporter")...)
	if got.Authorizers == nil || len(*got.Authorizers) != 0 || len(got.Providers) != 2 || got.Providers[0].Provider != "github" || len(got.Providers[0].Scopes) != 2 {
		t.Fatalf("get: %+v", got)
	}
	r.ok("", cmd("identity update reporter --allow-provider *")...)
	out = r.ok("", cmd("identity get reporter")...)
	if !strings.Contains(out, "credential providers  any") || !strings.Contains(out, "inbound authorizers   -") {
		t.Fatalf("after lifting the provider restriction:\n%s", out)
	}
	_, errs, code := r.do("", cmd("identity update reporter --allow-authorizer nosuch")...)
	if code == 0 || !strings.Contains(errs, "names no configured inbound authorizer") {
		t.Fatalf("unknown authorizer: %q", errs)
	}
}

// TestIdentityGrantFlags: --allow-resource, --allow-audience and
// --allow-custom-parameter qualify the --allow-provider they name.
func TestIdentityGrantFlags(t *testing.T) {
	r := newRun(t)
	out := r.ok("", cmd("identity create payer --allow-provider dev-idp:openid --allow-provider weather"+
		" --allow-audience dev-idp=https://payments.example/ --allow-resource dev-idp=https://api.example/?a=b,c"+
		" --allow-custom-parameter dev-idp=login_hint --allow-custom-parameter dev-idp=prompt_hint")...)
	if !strings.Contains(out, "dev-idp:openid resource=https://api.example/?a=b,c audience=https://payments.example/ custom-parameter=login_hint custom-parameter=prompt_hint") {
		t.Fatalf("create table:\n%s", out)
	}
	var got struct {
		Providers []behalfapi.ProviderGrant `json:"allowedCredentialProviders"`
	}
	r.json(&got, cmd("identity get payer")...)
	want := []behalfapi.ProviderGrant{{Provider: "dev-idp", Scopes: []string{"openid"}, Resources: []string{"https://api.example/?a=b,c"},
		Audiences: []string{"https://payments.example/"}, CustomParameters: []string{"login_hint", "prompt_hint"}}, {Provider: "weather"}}
	if diff := cmp.Diff(want, got.Providers); diff != "" {
		t.Fatalf("stored grants (-want +got):\n%s", diff)
	}
	for args, msg := range map[string]string{
		"identity update payer --allow-audience dev-idp=urn:a":                          "need the --allow-provider they qualify",
		"identity update payer --allow-provider weather --allow-audience dev-idp=urn:a": "which no --allow-provider allows",
		"identity update payer --allow-provider dev-idp --allow-resource dev-idp":       "is not PROVIDER=VALUE",
		"identity update payer --no-providers --allow-resource dev-idp=*":               "not --no-providers",
	} {
		if _, errs, code := r.do("", cmd(args)...); code == 0 || !strings.Contains(errs, msg) {
			t.Errorf("%s: %d %q, want %q", args, code, errs, msg)
		}
	}
	r.ok("", cmd("identity update payer --allow-provider dev-idp --allow-resource dev-idp=*")...)
	var updated struct {
		Providers []behalfapi.ProviderGrant `json:"allowedCredentialProviders"`
	}
	r.json(&updated, cmd("identity get payer")...)
	if diff := cmp.Diff([]behalfapi.ProviderGrant{{Provider: "dev-idp", Resources: []string{"*"}}}, updated.Providers); diff != "" {
		t.Fatalf("after update (-want +got):\n%s", diff)
	}
}

func TestAuditCommands(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	r.ok("", cmd("identity create audited-agent")...)
	r.ok("k\n", cmd("provider apikey create weather --api-key -")...)
	r.do("", cmd("identity create x!")...) // a validation failure is a change attempt, audited too

	var records []map[string]any
	r.json(&records, cmd("audit list")...)
	if len(records) != 3 || records[0]["operation"] != "CreateWorkloadIdentity" || records[0]["outcome"] != "failure" {
		t.Fatalf("newest first: %v", records)
	}
	r.json(&records, cmd("audit list --oldest-first")...)
	if len(records) != 3 || records[0]["operation"] != "CreateWorkloadIdentity" || records[0]["workload"] != "audited-agent" ||
		records[1]["provider"] != "weather" || records[2]["outcome"] != "failure" || records[2]["errorType"] != "ValidationException" {
		t.Fatalf("records: %v", records)
	}
	r.json(&records, cmd("audit list --provider weather --since 1h")...)
	if len(records) != 1 {
		t.Fatalf("filtered: %v", records)
	}
	out := r.ok("", cmd("audit verify")...)
	if !strings.Contains(out, "records  3") {
		t.Fatalf("verify:\n%s", out)
	}

	// Edit a record behind behalf's back.
	db, err := sql.Open("sqlite", s.Config.Storage)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit_records SET principal = 'someone-else' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	// The default verification resumes after the last one that passed;
	// --full reads the whole log.
	r.ok("", cmd("audit verify")...)
	out, errs, code := r.do("", cmd("audit verify --full")...)
	if code == 0 || !strings.Contains(out, "seq 2:") || !strings.Contains(errs, "failed verification") {
		t.Fatalf("verify after an edit: %d\n%s\n%s", code, out, errs)
	}
}

// TestAuditListShowsIdentityChains: a call that came through other agents
// shows them after its workload; JSON output lists them.
func TestAuditListShowsIdentityChains(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	r.ok("", cmd("identity create front-agent")...)
	r.ok("", cmd("identity create helper-agent")...)
	wat, err := s.Data().GetWorkloadAccessTokenForUserId(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String("front-agent"), UserId: aws.String("alice"),
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(behalfapi.GetWorkloadAccessTokenForChainInput{WorkloadName: "helper-agent",
		CallerToken: aws.ToString(wat.WorkloadAccessToken), AllowedCallers: []string{"front-agent"}})
	if res := s.Do(t, behalftest.Raw{Path: "/behalf/GetWorkloadAccessTokenForChain", Body: body}); res.Status != 200 {
		t.Fatalf("GetWorkloadAccessTokenForChain: %d %s", res.Status, res.Body)
	}
	out := r.ok("", cmd("audit list")...)
	if !strings.Contains(out, "helper-agent (via front-agent)") || strings.Count(out, "(via") != 1 {
		t.Fatalf("audit list:\n%s", out)
	}
	var records []behalfapi.AuditRecord
	r.json(&records, cmd("audit list")...)
	if len(records) != 4 || !slices.Equal(records[0].Actors, []string{"front-agent"}) || records[1].Actors != nil {
		t.Fatalf("records: %+v", records)
	}
}

// TestAuditListEscapesTerminalControls: a runtime principal chooses the
// user id of its calls; what it plants there must not reach the terminal
// as escape sequences or as lines that look like rows.
func TestAuditListEscapesTerminalControls(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	r.ok("", cmd("identity create agent")...)
	planted := "alice\x1b]0;owned\x07\x1b[2J\n42   2026-01-01T00:00:00Z  AKIAADMIN  DeleteWorkloadIdentity  agent  -  -  success\u202e"
	_, err := s.Data().GetWorkloadAccessTokenForUserId(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String("agent"), UserId: aws.String(planted),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := r.ok("", cmd("audit list")...)
	if strings.ContainsAny(out, "\x1b\x07\u202e") || strings.Count(out, "\n") != 3 {
		t.Fatalf("audit list passed control characters through:\n%q", out)
	}
	if !strings.Contains(out, `alice\x1b]0;owned\a\x1b[2J\n42`) {
		t.Fatalf("audit list does not show the escaped user id:\n%s", out)
	}
	var records []map[string]any
	r.json(&records, cmd("audit list")...)
	if records[0]["user"] != "id:"+planted {
		t.Fatalf("JSON output changed the user id: %q", records[0]["user"])
	}
}

// vault set-key takes an AWS KMS alias ARN when the server has AWS KMS
// configured, and a PKCS#11 URI when it has a token; vault get then names
// the key and counts the secrets the background re-wrap has yet to move.
func TestVaultSetKeyWithKMSAndPKCS11(t *testing.T) {
	tok := softhsm.New(t, "behalf")
	token, err := pkcs11.New(tok.Config)
	if err != nil {
		t.Fatal(err)
	}
	tokenKey, err := token.CreateKey(t.Context(), "kek")
	if err != nil {
		t.Fatal(err)
	}
	if err := token.Close(); err != nil {
		t.Fatal(err)
	}
	lk := localkms.Start(t, localkms.Options{})
	localkms.Env(t)
	key := lk.CreateSymmetricKey(t.Context())
	if _, err := lk.Client().CreateAlias(t.Context(), &kms.CreateAliasInput{AliasName: aws.String("alias/cli"), TargetKeyId: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: func(f *config.File) {
		f.Vault.AWSKMS = &config.AWSKMSFile{Region: localkms.Region, Endpoint: lk.URL}
		f.Vault.PKCS11 = &config.VaultPKCS11File{Module: tok.Config.Module, TokenLabel: tok.Config.TokenLabel, PinFile: tok.Config.PinFile}
	}})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	for arn, key := range map[string]string{
		"arn:aws:kms:" + localkms.Region + ":" + localkms.AccountID + ":alias/cli": key,
		tokenKey: tokenKey,
	} {
		out := r.ok("", cmd("vault set-key --key-arn "+arn)...)
		if !strings.Contains(out, key) {
			t.Fatalf("set-key:\n%s", out)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			var v map[string]any
			r.json(&v, cmd("vault get")...)
			if v["kmsKeyArn"] != key || v["currentKeyId"] != key {
				t.Fatalf("vault get: %v", v)
			}
			if v["staleSecrets"] == 0.0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still awaiting re-wrap: %v", v)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestProviderPrivateKeyJWTCommands: --client-auth-method (AgentCore's
// names or RFC 7591's), --private-key-arn (an ECC_NIST_P256 key in
// local-kms), --signing-algorithm and the assertion flags create a
// PRIVATE_KEY_JWT provider, whose table and JSON show its key and
// jwksUrl; an update moves it to a secret.
func TestProviderPrivateKeyJWTCommands(t *testing.T) {
	lk := localkms.Start(t, localkms.Options{})
	localkms.Env(t)
	arn := lk.CreateKey(t.Context(), kmstypes.KeySpecEccNistP256, kmstypes.KeyUsageTypeSignVerify)
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: func(f *config.File) {
		f.Vault.AWSKMS = &config.AWSKMSFile{Region: localkms.Region, Endpoint: lk.URL}
	}})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	idp := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}}})
	discovery := idp.Issuer() + "/.well-known/openid-configuration"
	out := r.ok("", cmd("provider oauth2 create jwt --vendor CustomOauth2 --client-id agent --discovery-url "+discovery+
		" --client-auth-method private_key_jwt --private-key-arn "+arn+" --signing-algorithm ES256 --assertion-header x5t#S256=thumb --assertion-claim tenant=t-1")...)
	for _, want := range []string{"client auth   PRIVATE_KEY_JWT", "signing key   " + arn + " (ES256)", "JWKS URL      " + s.URL + "/identities/oauth2/jwks/jwt"} {
		if !strings.Contains(out, want) {
			t.Errorf("create table lacks %q:\n%s", want, out)
		}
	}
	if secretRow := regexp.MustCompile(`(?m)^secret `); secretRow.MatchString(out) {
		t.Errorf("create table shows a client secret for a PRIVATE_KEY_JWT client:\n%s", out)
	}
	var p map[string]any
	r.json(&p, cmd("provider oauth2 get jwt")...)
	if p["clientAuthenticationMethod"] != "PRIVATE_KEY_JWT" || p["jwksUrl"] != s.URL+"/identities/oauth2/jwks/jwt" {
		t.Fatalf("get json: %v", p)
	}
	if _, errs, code := r.do("", cmd("provider oauth2 create bad --vendor CustomOauth2 --client-id agent --discovery-url "+discovery+
		" --client-auth-method PRIVATE_KEY_JWT --private-key-arn "+arn)...); code == 0 || !strings.Contains(errs, "signingAlgorithm is required") {
		t.Errorf("without --signing-algorithm: exit %d %s", code, errs)
	}
	out = r.ok("s3cret\n", cmd("provider oauth2 update jwt --vendor CustomOauth2 --client-id agent --discovery-url "+discovery+
		" --client-auth-method client_secret_post --client-secret -")...)
	if !strings.Contains(out, "client auth   CLIENT_SECRET_POST") || strings.Contains(out, "signing key") || strings.Contains(out, "JWKS URL") ||
		!regexp.MustCompile(`(?m)^secret +MANAGED`).MatchString(out) {
		t.Errorf("update table:\n%s", out)
	}
	p = nil
	r.json(&p, cmd("provider oauth2 get jwt")...)
	if p["clientAuthenticationMethod"] != "CLIENT_SECRET_POST" || p["jwksUrl"] != nil || p["signingKey"] != nil {
		t.Fatalf("after the update: %v", p)
	}
}

// behalf vault reset-key-material asks for --yes, is refused while the
// vault's key exists, and once the key is deleted prints what went with it;
// the provider whose key was lost then says so.
func TestVaultResetKeyMaterial(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}

	_, errs, code := r.do("", cmd("vault reset-key-material")...)
	if code == 0 || !strings.Contains(errs, "cannot be undone. Pass --yes") {
		t.Fatalf("without --yes: %d %q", code, errs)
	}
	_, errs, code = r.do("", cmd("vault reset-key-material --yes")...)
	if code == 0 || !strings.Contains(errs, "ValidationException: the token vault uses the service-managed key") {
		t.Fatalf("a service-managed vault: %d %q", code, errs)
	}
	var key map[string]string
	r.json(&key, cmd("vault create-key")...)
	r.ok("", cmd("vault set-key --key-arn "+key["kmsKeyArn"])...)
	r.ok("", cmd("provider apikey create lost --api-key v1")...)
	_, errs, code = r.do("", cmd("vault reset-key-material --yes")...)
	if code == 0 || !strings.Contains(errs, "still exists") {
		t.Fatalf("a key that exists: %d %q", code, errs)
	}

	arn := key["kmsKeyArn"]
	behalftest.RemoveVaultKey(t, s.Config.Keyring, "local:"+arn[strings.LastIndex(arn, "/")+1:])
	var got struct {
		KeyType string               `json:"keyType"`
		Reset   behalfapi.VaultReset `json:"keyMaterialReset"`
	}
	r.json(&got, cmd("vault reset-key-material --yes")...)
	if got.KeyType != "ServiceManagedKey" || !slices.Equal(got.Reset.LostAPIKeys, []string{"lost"}) || len(got.Reset.LostClientSecrets) != 0 {
		t.Fatalf("reset: %+v", got)
	}
	out := r.ok("", cmd("provider apikey get lost")...)
	if !strings.Contains(out, "UPDATE_FAILED") || !strings.Contains(out, "set it again with UpdateApiKeyCredentialProvider") {
		t.Fatalf("provider with a lost key:\n%s", out)
	}
	r.ok("", cmd("provider apikey update lost --api-key v2")...)
	if out := r.ok("", cmd("provider apikey get lost")...); strings.Contains(out, "UPDATE_FAILED") {
		t.Fatalf("provider set again:\n%s", out)
	}
}
