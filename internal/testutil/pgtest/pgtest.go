// Package pgtest gives tests a brand-new PostgreSQL database each.
//
// The server is named by BEHALF_TEST_POSTGRES_DSN, a postgres:// URL whose
// user may create and drop databases. Without it the tests skip, except
// under CI=true, where a skipped PostgreSQL test would hide a gap and so
// fails instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// EnvDSN names the variable holding the admin DSN.
const EnvDSN = "BEHALF_TEST_POSTGRES_DSN"

// NewDatabase creates an empty database for t and returns its DSN. The
// database is dropped, with any connections still open to it, when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvDSN)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(EnvDSN + " is not set; PostgreSQL tests must run in CI")
		}
		t.Skip(EnvDSN + " is not set; skipping PostgreSQL tests")
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: %s must be a postgres:// URL", EnvDSN)
	}

	// Unquoted identifiers fold to lower case; the DSN must match.
	name := "behalf_test_" + strings.ToLower(rand.Text())
	if err := exec(admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: PostgreSQL at %s (%s): %v", EnvDSN, u.Redacted(), err)
	}
	t.Cleanup(func() {
		if err := exec(admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})

	u.Path = "/" + name
	return u.String()
}

// exec runs one statement on a connection of its own, so that no admin
// connection stays open for the length of a test.
func exec(dsn, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }() // the statement's own error decides
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("unreachable: %w", err)
	}
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}
