// Package behalftest runs a real behalf server for tests: the production
// server on a loopback listener, on SQLite in a temporary directory or on a
// fresh PostgreSQL database, with clients from the official AWS SDK.
package behalftest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/server"
	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
	"github.com/behalf-dev/behalf/internal/vault"
)

// Admin credentials every test server is bootstrapped with.
const (
	AdminKeyID  = "AKIDBEHALFTESTADMIN0"
	AdminSecret = "behalf-test-admin-secret-0123456789abcd"
)

// Backend names a storage backend and makes a DSN for one test.
type Backend struct {
	Name string
	DSN  func(t testing.TB, dataDir string) string
}

// Backends are SQLite and, when BEHALF_TEST_POSTGRES_DSN is set,
// PostgreSQL (pgtest skips or fails otherwise).
var Backends = []Backend{
	{"sqlite", func(_ testing.TB, dataDir string) string { return filepath.Join(dataDir, "behalf.db") }},
	{"postgres", func(t testing.TB, _ string) string { return pgtest.NewDatabase(t) }},
}

// ForEachBackend runs f once per backend as subtests.
func ForEachBackend(t *testing.T, f func(t *testing.T, b Backend)) {
	for _, b := range Backends {
		t.Run(b.Name, func(t *testing.T) { f(t, b) })
	}
}

// Server is a running behalf server.
type Server struct {
	URL    string
	Config config.Config
	Server *server.Server
	t      testing.TB
	// Now is the server's clock; clients from this package sign with it.
	Now    func() time.Time
	cancel context.CancelFunc
	done   chan error
}

// Options adjust a test server.
type Options struct {
	// Edit changes the configuration file before it is validated.
	Edit func(*config.File)
	// DataDir reuses a data directory (to restart a server); default a
	// new temporary one.
	DataDir string
	// DSN reuses a database; default a new one from the backend.
	DSN string
	// Log receives the server's log; default discarded unless -v.
	Log *slog.Logger
	// Now is the server's clock, e.g. a testclock.Clock's Now, so that a
	// test advances time instead of sleeping; default time.Now.
	Now func() time.Time
	// PrincipalCacheTTL is how long callers' keys are cached; default the
	// server's.
	PrincipalCacheTTL time.Duration
	// KeyBackends are key-management backends besides the configured
	// ones (server.Options.KeyBackends).
	KeyBackends []vault.Backend
}

// Start runs a server on backend b until the test ends.
func Start(t testing.TB, b Backend, opts Options) *Server {
	t.Helper()
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	dsn := opts.DSN
	if dsn == "" {
		dsn = b.DSN(t, dataDir)
	}
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := config.Defaults()
	f.DataDir, f.Storage, f.Listen = dataDir, dsn, ln.Addr().String()
	f.Log.Level = "warn"
	if opts.Edit != nil {
		opts.Edit(&f)
	}
	cfg, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		if testing.Verbose() {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
	}
	getenv := func(k string) string {
		switch k {
		case "BEHALF_BOOTSTRAP_ACCESS_KEY_ID":
			return AdminKeyID
		case "BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY":
			return AdminSecret
		}
		return ""
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log, server.Options{Getenv: getenv, Now: now, PrincipalCacheTTL: opts.PrincipalCacheTTL, KeyBackends: opts.KeyBackends})
	if err != nil {
		cancel()
		_ = ln.Close() // the start failed already; that error says why
		t.Fatalf("start behalf: %v", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), Config: cfg, Server: srv, t: t, Now: now, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Run(ctx, ln) }()
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down gracefully; it is safe to call twice.
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Logf("behalf stopped: %v", err)
		}
	case <-time.After(30 * time.Second):
	}
	if err := s.Server.Close(); err != nil {
		s.t.Errorf("close behalf: %v", err)
	}
}

// AWSConfig returns an SDK configuration signing with the given key.
func AWSConfig(keyID, secret string) aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		RetryMaxAttempts: 1,
	}
}

// Control returns the official control-plane client, signing as admin.
func (s *Server) Control() *bedrockagentcorecontrol.Client {
	return s.ControlAs(AdminKeyID, AdminSecret)
}

// ControlAs returns a control-plane client signing with the given key.
func (s *Server) ControlAs(keyID, secret string) *bedrockagentcorecontrol.Client {
	return bedrockagentcorecontrol.NewFromConfig(AWSConfig(keyID, secret), func(o *bedrockagentcorecontrol.Options) {
		o.BaseEndpoint, o.HTTPSignerV4 = aws.String(s.URL), s.Signer()
	})
}

// Data returns the official data-plane client, signing as admin.
func (s *Server) Data() *bedrockagentcore.Client {
	return s.DataAs(AdminKeyID, AdminSecret)
}

// DataAs returns a data-plane client signing with the given key.
func (s *Server) DataAs(keyID, secret string) *bedrockagentcore.Client {
	return bedrockagentcore.NewFromConfig(AWSConfig(keyID, secret), func(o *bedrockagentcore.Options) {
		o.BaseEndpoint, o.HTTPSignerV4 = aws.String(s.URL), s.Signer()
	})
}

// Signer is the SDK's SigV4 signer dating each request by the server's
// clock, so that a test which advances that clock keeps its requests
// within the allowed skew. Set it as an SDK client's HTTPSignerV4.
func (s *Server) Signer() ClockSigner {
	return ClockSigner{Signer: v4.NewSigner(), Now: s.Now}
}

// ClockSigner signs as Signer does, at Now instead of the SDK's time.
type ClockSigner struct {
	Signer *v4.Signer
	Now    func() time.Time
}

// SignHTTP implements the SDK clients' HTTPSignerV4.
func (c ClockSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	_ time.Time, optFns ...func(*v4.SignerOptions)) error {
	return c.Signer.SignHTTP(ctx, creds, r, payloadHash, service, region, c.Now(), optFns...)
}

// RemoveVaultKey deletes the key keyID from the local keyring file at
// path, as an operator destroying a customer key would: what it sealed is
// then lost. Keyrings re-read the file when they meet an id they lack and
// whenever a key's existence is checked.
func RemoveVaultKey(t testing.TB, path, keyID string) {
	t.Helper()
	raw, err := os.ReadFile(path) //nolint:gosec // G304: a test's keyring
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	kept := f.Keys[:0]
	for _, k := range f.Keys {
		if vault.LocalPrefix+fmt.Sprint(k["id"]) == keyID {
			if k["service"] == true {
				t.Fatalf("RemoveVaultKey: %s is the service key", keyID)
			}
			continue
		}
		kept = append(kept, k)
	}
	if len(kept) == len(f.Keys) {
		t.Fatalf("RemoveVaultKey: %s is not in %s", keyID, path)
	}
	f.Keys = kept
	if raw, err = json.Marshal(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}
