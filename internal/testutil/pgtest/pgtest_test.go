package pgtest_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
)

func TestNewDatabase(t *testing.T) {
	var dsn string
	t.Run("create", func(t *testing.T) {
		dsn = pgtest.NewDatabase(t)
		if other := pgtest.NewDatabase(t); other == dsn {
			t.Fatalf("two calls returned the same database %q", dsn)
		}
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var name string
		if err := db.QueryRowContext(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatalf("connect to the new database: %v", err)
		}
		var tables int
		if err := db.QueryRowContext(t.Context(),
			"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("new database %s has %d tables, want 0", name, tables)
		}
	})
	if dsn == "" {
		return // skipped
	}

	// The subtest's cleanup must have dropped the database.
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(context.Background()); err == nil {
		t.Errorf("database %s still exists after its test ended", dsn)
	}
}
