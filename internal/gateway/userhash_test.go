package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
)

// lockedBuffer is a log's output, written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON lines logged with message msg.
func (l *lockedBuffer) lines(t *testing.T, msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON log line: %s", sc.Bytes())
		}
		if line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// TestMountedGatewayUserHash: mounted, the gateway names a user in its
// log by the hash the server's spans give the same user, so that one user
// has one hash across both.
func TestMountedGatewayUserHash(t *testing.T) {
	recv := otlptest.New(t)
	var logs lockedBuffer
	w := newLoggedWorld(t, behalftest.Backends[0], true, slog.New(slog.NewJSONHandler(&logs, nil)), func(f *config.File) {
		f.Telemetry.OTLP.Endpoint = recv.URL
		f.Telemetry.Traces.Enabled = true
	})
	if res := w.call(t, "POST", "/agent/invocations", `{}`, map[string]string{"Authorization": "Bearer " + w.userJWT(t, "alice")}); res.StatusCode != 200 {
		t.Fatalf("agent: %d %s", res.StatusCode, res.body)
	}
	if err := w.s.Server.Telemetry().ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var server string
	for _, s := range recv.Spans() {
		if s.Name == "GetWorkloadAccessTokenForJWT" {
			server = otlptest.Attr(s, "behalf.user.hash")
		}
	}
	calls := logs.lines(t, "gateway call")
	if len(calls) != 1 || server == "" || calls[0][logging.KeyUserHash] != server {
		t.Errorf("the gateway logged user hash %v, the server's span has %q", calls, server)
	}
}
