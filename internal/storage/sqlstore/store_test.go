package sqlstore

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
)

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSQLiteCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "behalf")
	path := filepath.Join(dir, "behalf.db")
	s := open(t, "sqlite://"+path)
	if _, err := s.writer.ExecContext(t.Context(), `INSERT INTO token_vaults VALUES ('v', '', '', '', 0)`); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{
		dir:           0o700,
		path:          0o600,
		path + "-wal": 0o600,
	} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", name, got, want)
		}
	}
}

func TestSQLitePathNeedsNoEscaping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir", "100%25 sure.db")
	s := open(t, "file:"+path)
	if _, err := s.writer.ExecContext(t.Context(), `INSERT INTO token_vaults VALUES ('v', '', '', '', 0)`); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("database is not at %q: %v", path, err)
	}
}

func TestSQLiteSettings(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "behalf.db"))
	ctx := t.Context()
	pragma := func(db *sql.DB, name string) string {
		t.Helper()
		var v string
		if err := db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	for _, c := range []struct {
		db         *sql.DB
		pool, name string
		want       string
	}{
		{s.writer, "writer", "journal_mode", "wal"},
		{s.writer, "writer", "synchronous", "2"}, // FULL
		{s.writer, "writer", "busy_timeout", "5000"},
		{s.writer, "writer", "foreign_keys", "1"},
		{s.writer, "writer", "query_only", "0"},
		{s.reader, "reader", "query_only", "1"},
		{s.reader, "reader", "busy_timeout", "5000"},
	} {
		if got := pragma(c.db, c.name); got != c.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", c.pool, c.name, got, c.want)
		}
	}
	if n := s.writer.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("writer pool allows %d connections, want 1", n)
	}
	if _, err := s.reader.ExecContext(ctx, `INSERT INTO token_vaults VALUES ('v', '', '', '', 0)`); err == nil {
		t.Error("the reader pool accepted a write")
	}
}

// TestSQLiteTransactionsBeginImmediate checks that a write transaction holds
// the write lock from its start, so that it never has to upgrade a read lock
// (the upgrade fails with SQLITE_BUSY without waiting).
func TestSQLiteTransactionsBeginImmediate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "behalf.db")
	s := open(t, path)
	ctx := t.Context()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.ExecContext(ctx, `INSERT INTO token_vaults VALUES ('v', '', '', '', 0)`)
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("a write beside an open transaction got %v, want the database to be locked", err)
	}
}

// TestPingChecksMigrations runs on both dialects: Ping fails when the
// database lacks the newest migration this build knows, as after an
// upgrade, and after Close.
func TestPingChecksMigrations(t *testing.T) {
	for _, c := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "behalf.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, c.dsn(t))
			ctx := t.Context()
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("ping a migrated database: %v", err)
			}
			if _, err := s.writer.ExecContext(ctx, `DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)`); err != nil {
				t.Fatal(err)
			}
			if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), "pending migrations") {
				t.Errorf("ping with a migration missing = %v, want a pending-migrations error", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Ping(context.Background()); err == nil {
				t.Error("ping after close succeeded")
			}
		})
	}
}
