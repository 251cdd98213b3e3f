package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/behalf-dev/behalf/internal/cli"
)

func TestDevCollectorRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", "0.0.0.0:4318"}, {"--listen", ":4318"}, {"--listen", "192.168.1.10:4318"}, {"--listen", "127.0.0.1"},
		{"--quiet", "10ms"},
	} {
		var out, errb syncBuffer
		code := cli.Execute(t.Context(), append([]string{"dev-collector"}, args...), strings.NewReader(""), &out, &errb)
		if code == 0 || out.String() != "" || !strings.HasPrefix(errb.String(), "behalf: ") {
			t.Errorf("dev-collector %v: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}

// TestDevCollectorPrintsTraces runs the command, exports a trace to it with
// the OpenTelemetry SDK, stops it, and finds the trace's tree in its output.
func TestDevCollectorPrintsTraces(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Execute(ctx, []string{"dev-collector", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &out, &errb)
	}()
	endpoint := regexp.MustCompile(`OTLP/HTTP endpoint:\s+(http://127\.0\.0\.1:\d+) `)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Stop with Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner; stdout %q, stderr %q", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := endpoint.FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), "endpoint: "+m[1]) {
		t.Fatalf("no endpoint in the banner:\n%s", out.String())
	}

	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(m[1]+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	sctx, server := tp.Tracer("test").Start(ctx, "GetResourceOauth2Token")
	_, client := tp.Tracer("test").Start(sctx, "POST token endpoint")
	client.End()
	server.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cancel() // Ctrl-C: what has not been printed yet is printed
	if code := <-done; code != 0 {
		t.Fatalf("exit %d; stderr %q", code, errb.String())
	}
	tree := regexp.MustCompile(`trace [0-9a-f]{32}  2 span\(s\)\n└─ GetResourceOauth2Token  internal  \S+\n   └─ POST token endpoint  internal  \S+\n`)
	if !tree.MatchString(out.String()) {
		t.Errorf("no trace tree in:\n%s", out.String())
	}
}
