package sqlstore

import "testing"

func TestRebind(t *testing.T) {
	for _, c := range []struct {
		in, postgres string
	}{
		{"SELECT 1", "SELECT 1"},
		{"SELECT a FROM t WHERE b = ? AND c > ? LIMIT ?", "SELECT a FROM t WHERE b = $1 AND c > $2 LIMIT $3"},
		{"INSERT INTO t VALUES (?, '?', ?)", "INSERT INTO t VALUES ($1, '?', $2)"},
		{"SELECT 'it''s ?' || ?", "SELECT 'it''s ?' || $1"},
		{"SELECT ?, 'é', ?", "SELECT $1, 'é', $2"},
	} {
		if got := dialectPostgres.rebind(c.in); got != c.postgres {
			t.Errorf("postgres rebind(%q) = %q, want %q", c.in, got, c.postgres)
		}
		if got := dialectSQLite.rebind(c.in); got != c.in {
			t.Errorf("sqlite rebind(%q) = %q, want it unchanged", c.in, got)
		}
	}
}

func TestParseDSN(t *testing.T) {
	for _, c := range []struct {
		dsn     string
		dialect dialect
		target  string
	}{
		{"postgres://u@h:5432/db?sslmode=disable", dialectPostgres, "postgres://u@h:5432/db?sslmode=disable"},
		{"postgresql://u@h/db", dialectPostgres, "postgresql://u@h/db"},
		{"PostgreSQL://u@h/db", dialectPostgres, "PostgreSQL://u@h/db"},
		{"/var/lib/behalf/behalf.db", dialectSQLite, "/var/lib/behalf/behalf.db"},
		{"behalf.db", dialectSQLite, "behalf.db"},
		{"sqlite:///var/lib/behalf.db", dialectSQLite, "/var/lib/behalf.db"},
		{"sqlite://behalf.db", dialectSQLite, "behalf.db"},
		{"file:/var/lib/behalf.db", dialectSQLite, "/var/lib/behalf.db"},
		{"file:data/behalf.db", dialectSQLite, "data/behalf.db"},
	} {
		d, target, err := parseDSN(c.dsn)
		if err != nil || d != c.dialect || target != c.target {
			t.Errorf("parseDSN(%q) = %v, %q, %v; want %v, %q", c.dsn, d, target, err, c.dialect, c.target)
		}
	}
	for _, dsn := range []string{"", "sqlite://", "file:", "behalf.db?mode=ro", "file:behalf.db#x", ":memory:", "file::memory:?cache=shared"} {
		if _, _, err := parseDSN(dsn); err == nil {
			t.Errorf("parseDSN(%q) succeeded, want an error", dsn)
		}
	}
}

func TestPageLimit(t *testing.T) {
	for in, want := range map[int]int{-1: 100, 0: 100, 1: 1, 100: 100, 1000: 1000, 1001: 1000} {
		if got := pageLimit(in); got != want {
			t.Errorf("pageLimit(%d) = %d, want %d", in, got, want)
		}
	}
}
