package logging_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/logging"
)

type idKey struct{}

func requestID(ctx context.Context) []slog.Attr {
	if id, ok := ctx.Value(idKey{}).(string); ok {
		return []slog.Attr{slog.String(logging.KeyRequestID, id)}
	}
	return nil
}

// A line logged with a context gets its attributes once, also through a
// logger derived with With; a line that names the key itself keeps its
// own; a line without them is left alone.
func TestContextHandler(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(logging.ContextHandler{Inner: slog.NewTextHandler(&out, nil), Attrs: requestID}).With(slog.String(logging.KeyOp, "Op"))
	ctx := context.WithValue(context.Background(), idKey{}, "req-1")

	log.InfoContext(ctx, "inside")
	log.LogAttrs(ctx, slog.LevelInfo, "explicit", slog.String(logging.KeyRequestID, "req-1"))
	log.Info("outside")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("log: %q", out.String())
	}
	for i, want := range []int{1, 1, 0} {
		if n := strings.Count(lines[i], "request_id=req-1"); n != want || !strings.Contains(lines[i], "op=Op") {
			t.Errorf("line %q: request id %d times, want %d, and op", lines[i], n, want)
		}
	}
}
