package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage"
)

// A line a handler logs with its context carries the call's request id,
// the one the caller got in X-Amzn-RequestId.
func TestHandlerLogLinesCarryTheRequestID(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(logging.ContextHandler{Inner: slog.NewTextHandler(&logs, nil), Attrs: LogAttrs})
	mux := http.NewServeMux()
	rt := NewRouter(mux, allowAll{}, allowAll{}, nil, log, Telemetry{})
	var seen string
	rt.Handle(JSON("Logs", "/logs", 200, func(ctx context.Context, _ *Call, _ *shape) (*out, error) {
		seen = RequestID(ctx)
		log.InfoContext(ctx, "inside the handler")
		return &out{}, nil
	}))
	res, _ := do(t, mux, "POST", "/logs", "application/json", `{"name":"abc"}`)
	id := res.Header.Get("X-Amzn-RequestId")
	if id == "" || seen != id {
		t.Fatalf("handler saw request id %q, caller got %q", seen, id)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Count(line, logging.KeyRequestID+"=") != 1 || !strings.Contains(line, logging.KeyRequestID+"="+id) {
			t.Errorf("log line without its request id once: %s", line)
		}
	}
}

func TestStorageError(t *testing.T) {
	for _, tc := range []struct {
		err      error
		wantType string
		wantMsg  string
	}{
		{fmt.Errorf("get: %w", storage.ErrNotFound), TypeNotFound, "workload identity w does not exist"},
		{storage.ErrAlreadyExists, TypeConflict, "workload identity w already exists"},
		{storage.ErrTooManyTags, TypeServiceQuota, "workload identity w would carry more than"},
		{storage.ErrConflict, TypeConcurrentModification, "workload identity w was changed concurrently"},
		{AccessDenied("no"), TypeAccessDenied, "no"},
		{errors.New("disk full"), TypeInternal, "internal error"},
	} {
		e := AsError(StorageError(tc.err, "workload identity", "w"))
		if e.Type != tc.wantType || !strings.HasPrefix(e.Message, tc.wantMsg) {
			t.Errorf("StorageError(%v) = %s: %s, want %s: %s…", tc.err, e.Type, e.Message, tc.wantType, tc.wantMsg)
		}
	}
	if err := StorageError(nil, "workload identity", "w"); err != nil {
		t.Errorf("StorageError(nil) = %v", err)
	}
	if err := StorageError(errors.New("disk full"), "workload identity", "w"); !strings.Contains(err.Error(), "workload identity w: disk full") {
		t.Errorf("an unknown error loses its context: %v", err)
	}
}
