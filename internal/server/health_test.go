package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/behalf-dev/behalf/internal/config"
)

// Readiness follows the free space of the SQLite database's disk. The free
// space comes from a fake: filling a real disk needs a mount (see
// TestReadinessOnAFullDisk, which does so where it may).
func TestReadinessFollowsFreeSpace(t *testing.T) {
	f := config.Defaults()
	f.DataDir = t.TempDir()
	cfg, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), Options{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var free uint64
	s.freeSpace = func(string) (uint64, error) { return free, nil } // the fake
	for _, c := range []struct {
		free uint64
		want int
	}{
		{1 << 30, http.StatusOK},
		{minFreeBytes - 1, http.StatusServiceUnavailable},
		{0, http.StatusServiceUnavailable},
		{minFreeBytes, http.StatusOK},
	} {
		free = c.free
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != c.want {
			t.Errorf("readyz with %d bytes free: %d, want %d", c.free, rec.Code, c.want)
		}
	}
}
