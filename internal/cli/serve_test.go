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

func TestGatewayCheckConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := cli.Execute(context.Background(), []string{"gateway", "--config", filepath.Join("..", "..", "examples", "gateway.yaml"), "--check-config"}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "routes:   4") {
		t.Fatalf("the example: %d %s %s", code, out.String(), errb.String())
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	os.WriteFile(path, []byte("listen: 127.0.0.1:1\nroutes:\n  - name: a\n    path: /a\n    upstream: ftp://x\n    kind: tool\n    credentail: {}\n"+
		"  - name: b\n    path: /b/\n    upstream: http://x\n    kind: agent\n    credential: {provider: p, type: apiKey}\n"), 0o600)
	out.Reset()
	errb.Reset()
	if code := cli.Execute(context.Background(), []string{"gateway", "--config", path, "--check-config"}, nil, &out, &errb); code == 0 ||
		!strings.Contains(errb.String(), "routes[0].credentail (line 7): unknown key") {
		t.Fatalf("unknown key: %d %s", code, errb.String())
	}
	os.WriteFile(path, []byte("listen: 127.0.0.1:1\nroutes:\n  - name: a\n    path: /a\n    upstream: ftp://x\n    kind: tool\n"+
		"  - name: b\n    path: /b/\n    upstream: http://x\n    kind: agent\n    credential: {provider: p, type: apiKey}\n"), 0o600)
	errb.Reset()
	code = cli.Execute(context.Background(), []string{"gateway", "--config", path, "--check-config"}, nil, &out, &errb)
	for _, want := range []string{"routes[0].upstream:", "routes[0].credential.provider:", "routes[0].credential.type:", "routes[1].path:",
		"routes[1].workload:", "routes[1].credential: only tool routes"} {
		if code == 0 || !strings.Contains(errb.String(), want) {
			t.Errorf("%d: no %q in\n%s", code, want, errb.String())
		}
	}
}
