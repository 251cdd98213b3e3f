//go:build linux

package replicatest

// The harness: the behalf binary, built once; replicas as child processes
// (start, SIGKILL, restart on the same port); a world of two replicas on
// one PostgreSQL database with a user's connection to Dex made through the
// real consent flow; a tap in front of Dex's token endpoint that records,
// holds or rewrites refresh requests; and a reader of the stored
// connection, unsealed with the shared keyring.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/aws/smithy-go"
	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wat"
)

// The world's names and secrets.
const (
	dexClientID     = "behalf-at-dex"
	dexClientSecret = "dex-client-secret-TEST-0123456789"
	workloadName    = "replica-agent"
	providerName    = "dex"
	userID          = "alice"
	returnURL       = "http://127.0.0.1:9/after-consent"
)

// leaseTTL mirrors refreshLeaseTTL in internal/dataplane/federation.go. The
// tests only use it to explain what they measure; they wait on storage, not
// on this constant.
const leaseTTL = 15 * time.Second

// binary is the behalf binary, built once per test run.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestMain raises -test.parallel, unless it was given, to run the crash
// tests together: each spends most of its time waiting for a dead replica's lease
// to run out, which costs no CPU, and the default (GOMAXPROCS) would run
// them two at a time.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// behalfBinary builds ./cmd/behalf of this module (without -race, whatever
// the test process has) and returns its path.
func behalfBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		var err error
		if binary.dir, err = os.MkdirTemp("", "replicatest-"); err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(binary.dir, "behalf")
		// By import path: in the go.work workspace `go list -m` names every
		// module, so no single module root can be asked for.
		cmd := exec.Command("go", "build", "-o", binary.path, "github.com/behalf-dev/behalf/cmd/behalf")
		if out, err := cmd.CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("go build ./cmd/behalf: %w\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// logBuffer collects a replica's output across its restarts.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last n bytes, from a line start.
func (b *logBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = s[len(s)-n:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		s = "…\n" + s
	}
	return s
}

// replica is one `behalf serve` process, restartable on the same address.
type replica struct {
	name string
	url  string
	args []string
	env  []string
	log  *logBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// start runs the process and waits until /readyz answers 200.
func (r *replica) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(r.args[0], r.args[1:]...)
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = r.log, r.log
	// The replica dies with the test process, even if the test panics.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r.mu.Lock()
	r.starts++
	fmt.Fprintf(r.log, "=== replicatest: start #%d of %s at %s\n", r.starts, r.name, time.Now().Format(time.StampMilli))
	r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", r.name, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(r.log, "=== replicatest: %s exited at %s: %v\n", r.name, time.Now().Format(time.StampMilli), err)
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()

	probe := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited while starting:\n%s", r.name, r.log.tail(4000))
		default:
		}
		if res, err := probe.Get(r.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30s:\n%s", r.name, r.log.tail(4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig and waits for the process to exit; after SIGTERM it
// escalates to SIGKILL if the process outlives the grace period.
func (r *replica) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	fmt.Fprintf(r.log, "=== replicatest: %s sent %v at %s\n", r.name, sig, time.Now().Format(time.StampMilli))
	_ = cmd.Process.Signal(sig)
	grace := 10 * time.Second
	if sig == syscall.SIGTERM {
		grace = 30 * time.Second // the server's ShutdownTimeout is 20s
	}
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		if sig != syscall.SIGKILL {
			t.Errorf("%s ignored %v for %s; killed", r.name, sig, grace)
		}
	}
}

// kill is SIGKILL: no deferred function, no graceful shutdown, no flush.
func (r *replica) kill(t *testing.T) time.Time {
	t.Helper()
	r.stop(t, syscall.SIGKILL)
	return time.Now()
}

// world is Dex, two replicas A and B of behalf on one fresh PostgreSQL
// database with a shared keyring, and user alice's connection to Dex for
// workload replica-agent, made through A.
type world struct {
	dex      *dextest.Dex
	tap      *tap // nil unless worldOptions.tap
	replicas []*replica
	runtime  struct{ id, secret string }
	clients  map[*replica]*bedrockagentcore.Client
	wat      string
	key      storage.ConnectionKey
	store    *sqlstore.Store
	vault    *vault.Vault
	verifier *oidc.IDTokenVerifier

	// connectedAt is when the consent flow's code exchange had happened:
	// Dex counts a refresh token's reuse window from there.
	connectedAt time.Time
	firstToken  string
}

type worldOptions struct {
	dex dextest.Options
	// tap puts a tap in front of Dex's token endpoint.
	tap bool
	// outbound is the replicas' outbound.timeout; default 10s (behalf's).
	outbound time.Duration
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	dsn := pgtest.NewDatabase(t) // skips without PostgreSQL
	bin := behalfBinary(t)
	o.dex.Clients = append(o.dex.Clients, dextest.Client{ID: dexClientID, Secret: dexClientSecret})
	w := &world{dex: dextest.Start(t, o.dex), clients: map[*replica]*bedrockagentcore.Client{}}
	if o.tap {
		w.tap = newTap(w.dex)
		w.dex.SetTokenFault(w.tap.fault)
	}

	dir := t.TempDir()
	keyring := filepath.Join(dir, "shared", "keyring.json")
	env := []string{
		"BEHALF_BOOTSTRAP_ACCESS_KEY_ID=" + behalftest.AdminKeyID,
		"BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY=" + behalftest.AdminSecret,
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BEHALF_") { // no stray setting overrides the file
			env = append(env, kv)
		}
	}
	if o.outbound == 0 {
		o.outbound = 10 * time.Second
	}
	for _, name := range []string{"A", "B"} {
		addr := testnet.FreeAddr(t)
		dataDir := filepath.Join(dir, name)
		cfg := fmt.Sprintf("listen: %q\ndataDir: %q\npublicUrl: %q\nstorage: %q\n"+
			"log:\n  level: info\n  format: text\nvault:\n  keyring: %q\noutbound:\n  timeout: %s\n",
			addr, dataDir, "http://"+addr, dsn, keyring, o.outbound)
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		w.replicas = append(w.replicas, &replica{
			name: "replica " + name, url: "http://" + addr, log: &logBuffer{},
			args: []string{bin, "serve", "--config", path}, env: env,
		})
	}
	t.Cleanup(func() {
		for _, r := range w.replicas {
			r.stop(t, syscall.SIGTERM)
		}
		if t.Failed() {
			for _, r := range w.replicas {
				t.Logf("log of %s:\n%s", r.name, r.log.tail(6000))
			}
		}
	})
	// A first: it creates the shared keyring file.
	for _, r := range w.replicas {
		r.start(t)
	}

	w.setUp(t, dsn, keyring)
	return w
}

func (w *world) A() *replica { return w.replicas[0] }
func (w *world) B() *replica { return w.replicas[1] }

func callCtx(t *testing.T) context.Context {
	// Longer than a refresh lease, so that a caller waiting on one is
	// never cut off by the test.
	ctx, cancel := context.WithTimeout(context.Background(), 2*leaseTTL)
	t.Cleanup(cancel)
	return ctx
}

// setUp creates, through A and the official SDK, the workload identity,
// the provider, a runtime principal and the user's connection.
func (w *world) setUp(t *testing.T, dsn, keyring string) {
	t.Helper()
	a := w.A()
	ctl := bedrockagentcorecontrol.NewFromConfig(behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret),
		func(o *bedrockagentcorecontrol.Options) { o.BaseEndpoint = aws.String(a.url) })
	if _, err := ctl.CreateWorkloadIdentity(callCtx(t), &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
		Name: aws.String(workloadName), AllowedResourceOauth2ReturnUrls: []string{returnURL},
	}); err != nil {
		t.Fatalf("CreateWorkloadIdentity: %v", err)
	}
	p, err := ctl.CreateOauth2CredentialProvider(callCtx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String(providerName), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String(dexClientID), ClientSecret: aws.String(dexClientSecret),
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: w.dex.DiscoveryURL},
		}},
	})
	if err != nil {
		t.Fatalf("CreateOauth2CredentialProvider: %v", err)
	}
	// Each replica builds callback URLs from its own publicUrl; Dex must
	// accept both.
	callbackPath, ok := strings.CutPrefix(aws.ToString(p.CallbackUrl), a.url)
	if !ok {
		t.Fatalf("callbackUrl %q is not on %s", aws.ToString(p.CallbackUrl), a.url)
	}
	var uris []string
	for _, r := range w.replicas {
		uris = append(uris, r.url+callbackPath)
	}
	w.dex.SetRedirectURIs(t, dexClientID, uris...)

	body, _ := json.Marshal(map[string]any{"role": "runtime", "workloads": []string{workloadName}})
	res := (&behalftest.Server{URL: a.url}).Do(t, behalftest.Raw{Path: "/behalf/CreatePrincipal", Body: body})
	if res.Status != http.StatusCreated {
		t.Fatalf("CreatePrincipal: %d %s", res.Status, res.Body)
	}
	var created struct{ AccessKeyID, SecretAccessKey string }
	if err := json.Unmarshal(res.Body, &created); err != nil || created.AccessKeyID == "" || created.SecretAccessKey == "" {
		t.Fatalf("CreatePrincipal: %s (%v)", res.Body, err)
	}
	w.runtime.id, w.runtime.secret = created.AccessKeyID, created.SecretAccessKey
	for _, r := range w.replicas {
		w.clients[r] = bedrockagentcore.NewFromConfig(behalftest.AWSConfig(w.runtime.id, w.runtime.secret),
			func(o *bedrockagentcore.Options) { o.BaseEndpoint = aws.String(r.url) })
	}

	out, err := w.clients[a].GetWorkloadAccessTokenForUserId(callCtx(t), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String(workloadName), UserId: aws.String(userID),
	})
	if err != nil {
		t.Fatalf("GetWorkloadAccessTokenForUserId: %v", err)
	}
	w.wat = aws.ToString(out.WorkloadAccessToken)

	provider, err := oidc.NewProvider(callCtx(t), w.dex.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	// Expiry is checked by check, with the tolerance it explains.
	w.verifier = provider.Verifier(&oidc.Config{ClientID: dexClientID, SkipExpiryCheck: true})

	if w.store, err = sqlstore.Open(callCtx(t), dsn, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })
	kr, err := vault.OpenLocalKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	tv, err := w.store.GetTokenVault(callCtx(t), "default")
	if err != nil {
		t.Fatal(err)
	}
	if w.vault, err = vault.New(callCtx(t), kr, kr.ServiceKeyID()); err != nil {
		t.Fatal(err)
	}
	if err := w.vault.SetCurrent(callCtx(t), tv.KeyID); err != nil {
		t.Fatal(err)
	}
	stored, err := w.store.GetOAuth2Provider(callCtx(t), providerName)
	if err != nil {
		t.Fatal(err)
	}
	w.key = storage.ConnectionKey{ProviderID: stored.ID, Workload: workloadName, User: wat.UserFromID(userID)}

	first, err := w.get(callCtx(t), a)
	if err != nil || first.AuthorizationUrl == nil || first.AccessToken != nil {
		t.Fatalf("first GetResourceOauth2Token should start an authorization: %+v, %v", first, err)
	}
	w.firstToken = w.consent(t, a, first)
}

// input is the agent's request: alice's token from Dex, and where to send
// her if she must consent (again).
func (w *world) input() *bedrockagentcore.GetResourceOauth2TokenInput {
	return &bedrockagentcore.GetResourceOauth2TokenInput{
		WorkloadIdentityToken: aws.String(w.wat), ResourceCredentialProviderName: aws.String(providerName),
		Oauth2Flow: types.Oauth2FlowTypeUserFederation, Scopes: []string{"openid", "offline_access"},
		ResourceOauth2ReturnUrl: aws.String(returnURL),
	}
}

func (w *world) get(ctx context.Context, r *replica) (*bedrockagentcore.GetResourceOauth2TokenOutput, error) {
	return w.clients[r].GetResourceOauth2Token(ctx, w.input())
}

// consent plays the user for an authorization that out started: Dex's
// login, the browser's visit to behalf's callback, the application's
// CompleteResourceTokenAuth; then it fetches the token with the session
// URI, as the agent does, and returns it.
func (w *world) consent(t *testing.T, via *replica, out *bedrockagentcore.GetResourceOauth2TokenOutput) string {
	t.Helper()
	toCallback := w.dex.Authorize(t, aws.ToString(out.AuthorizationUrl))
	browser := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := browser.Get(toCallback.String())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), returnURL) ||
		loc.Query().Get("session_id") != aws.ToString(out.SessionUri) {
		t.Fatalf("callback answered %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	w.connectedAt = time.Now()
	if _, err := w.clients[via].CompleteResourceTokenAuth(callCtx(t), &bedrockagentcore.CompleteResourceTokenAuthInput{
		SessionUri: out.SessionUri, UserIdentifier: &types.UserIdentifierMemberUserId{Value: userID},
	}); err != nil {
		t.Fatalf("CompleteResourceTokenAuth: %v", err)
	}
	in := w.input()
	in.SessionUri = out.SessionUri
	got, err := w.clients[via].GetResourceOauth2Token(callCtx(t), in)
	if err != nil || aws.ToString(got.AccessToken) == "" {
		t.Fatalf("GetResourceOauth2Token after consent: %+v, %v", got, err)
	}
	if problem := w.check(aws.ToString(got.AccessToken), time.Now()); problem != "" {
		t.Fatalf("token after consent: %s", problem)
	}
	return aws.ToString(got.AccessToken)
}

// check returns why token is not a good answer for a call that started at
// start, or "": it must be an access token Dex signed for behalf's client
// and alice, not expired when the call started. Dex's exp claim is whole
// seconds and behalf counts expiry from when it received expires_in, so a
// token may legitimately be served up to a second past its exp; an older
// token (the one a refresh replaced was due a tenth of a lifetime earlier)
// is stale.
func (w *world) check(token string, start time.Time) string {
	if token == "" {
		return "empty token"
	}
	idt, err := w.verifier.Verify(context.Background(), token)
	if err != nil {
		return fmt.Sprintf("not an access token from Dex: %v", err)
	}
	if idt.Subject != dextest.CallbackSubject {
		return fmt.Sprintf("token for sub %q, want alice's %q", idt.Subject, dextest.CallbackSubject)
	}
	if idt.Expiry.Before(start.Add(-time.Second)) {
		return fmt.Sprintf("stale token: expired at %s, served to a call started at %s",
			idt.Expiry.Format(time.StampMilli), start.Format(time.StampMilli))
	}
	return ""
}

// connection reads the stored connection.
func (w *world) connection(t *testing.T) storage.Connection {
	t.Helper()
	c, err := w.store.GetConnection(callCtx(t), w.key)
	if err != nil {
		t.Fatalf("read the connection: %v", err)
	}
	return c
}

// storedTokens is the connection's token set, unsealed with the keyring
// the replicas share (the JSON of tokenSet in internal/dataplane).
type storedTokens struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	Expiry       int64  `json:"expiry"`
}

func (w *world) tokens(t *testing.T, c storage.Connection) storedTokens {
	t.Helper()
	raw, err := w.vault.Open(callCtx(t), c.Tokens, vault.Binding{
		Kind: storage.SecretConnection, Owner: c.ProviderID, Workload: c.Workload, User: c.User,
	})
	if err != nil {
		t.Fatalf("unseal the connection's tokens: %v", err)
	}
	var ts storedTokens
	if err := json.Unmarshal(raw, &ts); err != nil {
		t.Fatal(err)
	}
	return ts
}

// leaseHeld reports whether someone holds the connection's refresh lease.
func leaseHeld(c storage.Connection) bool {
	return c.LeaseOwner != "" && time.Now().Before(c.LeaseUntil)
}

// waitDue waits until the stored access token is due for refresh (behalf
// refreshes in the last tenth of its lifetime: refreshMargin in
// internal/dataplane/oauth2.go), with no lease held, and returns the
// connection as it then is.
func (w *world) waitDue(t *testing.T) storage.Connection {
	t.Helper()
	deadline := time.Now().Add(2*leaseTTL + 30*time.Second)
	for {
		c := w.connection(t)
		var d struct{ Lifetime int64 }
		_ = json.Unmarshal(c.Details, &d)
		if c.ExpiresAt.IsZero() || d.Lifetime <= 0 {
			t.Fatalf("the connection has no expiry (%v) or lifetime (%d)", c.ExpiresAt, d.Lifetime)
		}
		due := c.ExpiresAt.Add(-time.Duration(d.Lifetime) * time.Second / 10).Add(200 * time.Millisecond)
		if !leaseHeld(c) && time.Now().After(due) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the token did not become due (expires %s, lease %q until %s)", c.ExpiresAt, c.LeaseOwner, c.LeaseUntil)
		}
		time.Sleep(min(time.Until(due)+time.Millisecond, 50*time.Millisecond))
	}
}

// waitFor polls cond until it holds, or fails t once d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !pollUntil(d, cond) {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// pollUntil polls cond every 10ms until it holds (true) or d passes.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// call is one GetResourceOauth2Token and what came of it.
type call struct {
	replica    *replica
	start, end time.Time
	kind       string // see classify
	token      string
	detail     string
}

func (c call) String() string {
	return fmt.Sprintf("%s %s→%s (%s) %s %s", c.replica.name, c.start.Format("15:04:05.000"), c.end.Format("15:04:05.000"),
		c.end.Sub(c.start).Round(time.Millisecond), c.kind, c.detail)
}

// do calls r once and classifies the outcome.
func (w *world) do(ctx context.Context, r *replica) call {
	c := call{replica: r, start: time.Now()}
	out, err := w.get(ctx, r)
	c.end = time.Now()
	c.kind, c.token, c.detail = w.classify(out, err, c.start)
	return c
}

// Kinds of outcome. Only kindOK carries a token; kindWrong, kindEmpty and
// kindConsent are the failures this package exists to catch.
const (
	kindOK      = "ok"
	kindWrong   = "WRONG-TOKEN"
	kindEmpty   = "EMPTY-TOKEN"
	kindConsent = "NEEDS-CONSENT" // an authorization URL instead of a token: the credential is gone
	kindRefused = "refused"       // nothing listening: the replica was down
	kindDropped = "dropped"       // the connection died before a response: the replica died, or cut us off
	kindTimeout = "timeout"
)

func (w *world) classify(out *bedrockagentcore.GetResourceOauth2TokenOutput, err error, start time.Time) (kind, token, detail string) {
	var apiErr smithy.APIError
	switch {
	case err == nil && aws.ToString(out.AccessToken) != "":
		token = aws.ToString(out.AccessToken)
		if problem := w.check(token, start); problem != "" {
			return kindWrong, token, problem
		}
		return kindOK, token, ""
	case err == nil && out.AuthorizationUrl != nil:
		return kindConsent, "", "sessionStatus " + string(out.SessionStatus)
	case err == nil:
		return kindEmpty, "", fmt.Sprintf("%+v", out)
	case errors.As(err, &apiErr):
		return "api:" + apiErr.ErrorCode(), "", apiErr.ErrorMessage()
	case errors.Is(err, syscall.ECONNREFUSED):
		return kindRefused, "", ""
	case errors.Is(err, context.DeadlineExceeded):
		return kindTimeout, "", err.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return kindDropped, "", err.Error()
	}
	return "other", "", err.Error()
}

// tally counts outcomes by kind.
type tally map[string]int

func (t tally) String() string {
	var keys []string
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, t[k]))
	}
	return strings.Join(parts, " ")
}

// exchange is one refresh request behalf sent to Dex, as the tap saw it.
type exchange struct {
	at       time.Time
	sentRT   string
	reached  bool // Dex processed it (it may have rotated the token)
	status   int
	code     string // error code, when status is not 200
	gotRT    string
	gotAT    string
	answered bool // behalf was sent the answer
}

type tapMode int

const (
	// passThrough forwards to Dex and answers with Dex's answer.
	passThrough tapMode = iota
	// holdBeforeDex does not forward: the provider never sees the request.
	// It blocks until the caller goes away.
	holdBeforeDex
	// holdAfterDex forwards (Dex rotates the refresh token), keeps Dex's
	// answer and blocks until the caller goes away, never answering: the
	// replica dies inside the window between the provider's rotation and
	// its own commit.
	holdAfterDex
	// slowAfterDex forwards (Dex rotates), signals, and answers only
	// after the tap's delay: a provider slow to answer.
	slowAfterDex
)

// tap sits in front of Dex's token endpoint (dextest.SetTokenFault) and
// sees every refresh: it forwards it to Dex itself, over HTTP, marked so
// that it passes the fault, and so records each request and answer. The
// forwarded request counts in Dex's TokenRequests too; tests with a tap
// count with the tap.
type tap struct {
	dex  *dextest.Dex
	http *http.Client

	mu       sync.Mutex
	mode     tapMode // for the next refresh only, then passThrough
	holding  chan exchange
	rewrite  bool          // answer Dex's rejection of a refresh token with invalid_grant
	delay    time.Duration // for slowAfterDex
	exchange []exchange
}

const tapHeader = "X-Replicatest-Forwarded"

func newTap(d *dextest.Dex) *tap {
	return &tap{dex: d, http: &http.Client{Timeout: 30 * time.Second}, holding: make(chan exchange, 1)}
}

// arm makes the next refresh request be handled in mode m; the request,
// once held, is sent on the returned channel.
func (x *tap) arm(m tapMode) <-chan exchange {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.mode = m
	return x.holding
}

func (x *tap) exchanges() []exchange {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.exchange)
}

func (x *tap) setDelay(d time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.delay = d
}

func (x *tap) setRewrite(on bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.rewrite = on
}

func (x *tap) fault(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get(tapHeader) != "" {
		return false // our own forwarded request: Dex answers it
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" {
		return false
	}
	x.mu.Lock()
	mode, rewrite, delay := x.mode, x.rewrite, x.delay
	x.mode = passThrough
	x.mu.Unlock()
	ex := exchange{at: time.Now(), sentRT: r.PostForm.Get("refresh_token")}

	if mode == holdBeforeDex {
		x.record(ex)
		x.holding <- ex
		<-r.Context().Done()
		return true
	}

	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), http.MethodPost, x.dex.TokenURL, strings.NewReader(r.PostForm.Encode()))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	req.Header.Set(tapHeader, "1")
	res, err := x.http.Do(req)
	if err != nil {
		x.record(ex)
		http.Error(w, "replicatest tap: "+err.Error(), http.StatusBadGateway)
		return true
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	ex.reached, ex.status = true, res.StatusCode
	var parsed struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	_ = json.Unmarshal(body, &parsed)
	ex.gotAT, ex.gotRT, ex.code = parsed.AccessToken, parsed.RefreshToken, parsed.Error
	if rewrite && res.StatusCode == http.StatusBadRequest && parsed.Error == "invalid_request" {
		// What RFC 6749 §5.2 says a provider answers for an invalid
		// refresh token, and what Okta, Auth0 and Google answer.
		body = []byte(`{"error":"invalid_grant","error_description":"refresh token is invalid or has already been claimed (rewritten from Dex's invalid_request by the test)"}`)
		ex.code = "invalid_grant"
	}

	switch mode {
	case holdAfterDex:
		x.record(ex)
		x.holding <- ex
		<-r.Context().Done()
		return true
	case slowAfterDex:
		x.holding <- ex
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			x.record(ex)
			return true
		}
	}
	ex.answered = true
	x.record(ex)
	w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(res.StatusCode)
	w.Write(body)
	return true
}

func (x *tap) record(ex exchange) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.exchange = append(x.exchange, ex)
}

// stream is a steady stream of callers against every replica.
type stream struct {
	w        *world
	mu       sync.Mutex
	calls    []call
	paused   bool
	inflight int
	stop     chan struct{}
	wg       sync.WaitGroup
}

// startStream runs perReplica callers against each replica, each calling
// every 20–60ms, until close.
func (w *world) startStream(t *testing.T, perReplica int) *stream {
	s := &stream{w: w, stop: make(chan struct{})}
	for _, r := range w.replicas {
		for range perReplica {
			s.wg.Go(func() { s.run(r) })
		}
	}
	t.Cleanup(s.close)
	return s
}

func (s *stream) run(r *replica) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-s.stop; cancel() }()
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		s.mu.Lock()
		if s.paused {
			s.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.inflight++
		s.mu.Unlock()
		cctx, ccancel := context.WithTimeout(ctx, 2*leaseTTL)
		c := s.w.do(cctx, r)
		ccancel()
		s.mu.Lock()
		s.inflight--
		if ctx.Err() == nil { // a call the test's end cut short is no result
			s.calls = append(s.calls, c)
		}
		s.mu.Unlock()
		pause := 20*time.Millisecond + rand.N(40*time.Millisecond)
		if c.kind == kindRefused || c.kind == kindDropped {
			pause = 100 * time.Millisecond
		}
		time.Sleep(pause)
	}
}

// pause stops new calls and waits for those in flight.
func (s *stream) pause(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
	waitFor(t, 2*leaseTTL+10*time.Second, "the stream's calls in flight", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.inflight == 0
	})
}

func (s *stream) resume() {
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
}

func (s *stream) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
}

func (s *stream) results() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}
