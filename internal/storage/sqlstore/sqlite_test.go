package sqlstore_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/conformance"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
)

func newSQLite(t *testing.T) storage.Storage {
	return openStore(t, filepath.Join(t.TempDir(), "behalf.db"))
}

func TestSQLite(t *testing.T) {
	conformance.RunTests(t, newSQLite)
}

func TestSQLiteConcurrency(t *testing.T) {
	conformance.RunConcurrencyTests(t, newSQLite)
}

// openStore opens dsn for t and closes the store when t ends.
func openStore(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), dsn, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}
