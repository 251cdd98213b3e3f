package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/cli"
)

func TestServeCheckConfigRedactsUnparseableDSN(t *testing.T) {
	path := filepath.Join(t.TempDir(), "behalf.yaml")
	os.WriteFile(path, []byte("storage: postgres://u:hunter2@db/x%zz\n"), 0o600)
	var out, errb bytes.Buffer
	code := cli.Execute(context.Background(), []string{"serve", "--config", path, "--check-config"}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "postgres://REDACTED@db/x%zz") || strings.Contains(out.String()+errb.String(), "hunter2") {
		t.Fatalf("%d %s %s", code, out.String(), errb.String())
	}
}

func TestServeRefusesDevelopmentOnNonLoopback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "behalf.yaml")
	os.WriteFile(path, []byte("development: true\n"), 0o600)
	var out, errb bytes.Buffer
	code := cli.Execute(context.Background(), []string{"serve", "--config", path, "--listen", "0.0.0.0:8787", "--check-config"}, nil, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "development: is on, but listen \"0.0.0.0:8787\" is not a loopback address") {
		t.Fatalf("%d %s %s", code, out.String(), errb.String())
	}
	os.WriteFile(path, []byte("development: true\ndevelopmentAllowNonLoopback: true\n"), 0o600)
	out.Reset()
	errb.Reset()
	code = cli.Execute(context.Background(), []string{"serve", "--config", path, "--listen", "0.0.0.0:8787", "--check-config"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("forced: %d %s", code, errb.String())
	}
}

func TestServeTLSFlags(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := cli.Execute(context.Background(), []string{"serve", "--data-dir", dir, "--tls-cert-file", filepath.Join(dir, "c.pem"), "--check-config"}, nil, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "tls: certFile and keyFile must be set together") {
		t.Fatalf("%d %s %s", code, out.String(), errb.String())
	}
}
