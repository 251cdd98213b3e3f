// Package localkms runs local-kms (github.com/nsmithuk/local-kms), a
// KMS-compatible server, as a separate process for tests: the official
// AWS SDK's KMS client talks to it as to AWS KMS, and it enforces
// encryption contexts, key states and key usages as KMS does.
//
// local-kms must be on PATH: without it the test is skipped, except in CI
// (CI set), where .ci/run installs it before the tests and its absence
// fails the test.
package localkms

import (
	"bufio"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Where local-kms's keys live: their ARNs name this region and account.
const (
	Region    = "us-east-1"
	AccountID = "111122223333"
)

// Credentials local-kms accepts (it checks none); the default AWS
// credential chain reads them from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY.
const (
	AccessKeyID     = "AKIDLOCALKMSTEST0000"
	SecretAccessKey = "local-kms-does-not-check-this-secret-000" //nolint:gosec // G101: a placeholder local-kms ignores

)

// Version is the local-kms .ci/run installs.
const Version = "v0.0.0-20260228092603-2a5e92d09ab6"

// startTimeout bounds local-kms's start.
const startTimeout = 30 * time.Second

// Server is a running local-kms.
type Server struct {
	// URL is its endpoint, http://127.0.0.1:<port>.
	URL string

	t       testing.TB
	bin     string
	dataDir string
	seed    string
	port    int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Options adjust a server.
type Options struct {
	// Seed is a seed file's YAML (keys and aliases created at start).
	Seed string
}

// Start runs local-kms with its data in a temporary directory until the
// test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("local-kms")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("localkms: local-kms is not installed (go install github.com/nsmithuk/local-kms@%s, with $(go env GOPATH)/bin on PATH): %v", Version, err)
		}
		t.Fatalf("localkms: CI: local-kms is not installed (.ci/run installs it before the tests): %v", err)
	}
	dir := t.TempDir()
	s := &Server{t: t, bin: bin, dataDir: filepath.Join(dir, "data")}
	if o.Seed != "" {
		s.seed = filepath.Join(dir, "seed.yaml")
		if err := os.WriteFile(s.seed, []byte(o.Seed), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.start(0)
	t.Cleanup(s.Stop)
	return s
}

// start runs the process on port (0: any free port) and waits until it
// listens.
func (s *Server) start(port int) {
	s.t.Helper()
	// It lives until Stop, not for one call.
	cmd := exec.CommandContext(context.Background(), s.bin) //nolint:gosec // G204: the local-kms found on PATH
	// An empty KMS_SEED_PATH reads no seed file (the default is
	// /init/seed.yaml).
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "KMS_DATA_PATH="+s.dataDir,
		"KMS_REGION="+Region, "KMS_ACCOUNT_ID="+AccountID, "KMS_SEED_PATH="+s.seed)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("localkms: start %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	listening := make(chan int, 1)
	go func() {
		defer close(done)
		// logrus writes to stderr; the line naming the port comes first.
		re := regexp.MustCompile(`Local KMS started on [^ ]*:(\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				p, _ := strconv.Atoi(m[1])
				listening <- p
				break
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	select {
	case p := <-listening:
		s.mu.Lock()
		s.cmd, s.done, s.port = cmd, done, p
		s.URL = "http://127.0.0.1:" + strconv.Itoa(p)
		s.mu.Unlock()
	case <-done:
		s.t.Fatalf("localkms: %s exited before it listened", s.bin)
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-done
		s.t.Fatalf("localkms: %s did not listen within %s", s.bin, startTimeout)
	}
}

// Stop kills local-kms and waits for it to exit; its data stays. It is
// safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts local-kms again on the same port and data: an outage
// ends.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start(s.port)
}

// Wipe starts local-kms again on the same port without its data: every
// key is gone, as a key is once its deletion completes (local-kms never
// completes one: a deletion waits at least 7 days).
func (s *Server) Wipe() {
	s.t.Helper()
	s.Stop()
	if err := os.RemoveAll(s.dataDir); err != nil {
		s.t.Fatal(err)
	}
	s.start(s.port)
}

// Client returns the official SDK's KMS client for the server.
func (s *Server) Client() *kms.Client {
	return kms.NewFromConfig(aws.Config{
		Region:           Region,
		Credentials:      credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		RetryMaxAttempts: 1,
	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(s.URL) })
}

// Env sets the environment variables the default AWS credential chain
// reads, for a server that loads it; not for parallel tests.
func Env(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	// No shared files: the test machine's profile must not be used.
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_PROFILE", "")
}

// CreateKey creates a key of spec and usage and returns its ARN.
func (s *Server) CreateKey(ctx context.Context, spec types.KeySpec, usage types.KeyUsageType) string {
	s.t.Helper()
	out, err := s.Client().CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
	if err != nil {
		s.t.Fatalf("localkms: CreateKey %s %s: %v", spec, usage, err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// CreateSymmetricKey creates a symmetric encryption key and returns its
// ARN.
func (s *Server) CreateSymmetricKey(ctx context.Context) string {
	s.t.Helper()
	return s.CreateKey(ctx, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt)
}

// PublicKey is the public half of the asymmetric key id.
func (s *Server) PublicKey(ctx context.Context, id string) crypto.PublicKey {
	s.t.Helper()
	out, err := s.Client().GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
	if err != nil {
		s.t.Fatalf("localkms: GetPublicKey %s: %v", id, err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		s.t.Fatalf("localkms: GetPublicKey %s: %v", id, err)
	}
	return pub
}

// KeyARN is the ARN of the key with id keyID in local-kms.
func KeyARN(keyID string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", Region, AccountID, keyID)
}
