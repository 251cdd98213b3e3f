package sqlstore

import (
	"sync"
	"testing"

	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
)

// TestPostgresPoolKeepsItsConnections fills the pool with concurrent
// queries and returns them all: not one connection may be closed for lack
// of idle room, since under steady load each would be opened again at once.
func TestPostgresPoolKeepsItsConnections(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t))
	var wg sync.WaitGroup
	for range DefaultPostgresMaxOpenConns {
		wg.Go(func() {
			if _, err := s.writer.ExecContext(t.Context(), "SELECT pg_sleep(0.05)"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st := s.writer.Stats()
	if st.OpenConnections != DefaultPostgresMaxOpenConns {
		t.Fatalf("%d connections open after %d concurrent queries, want %d", st.OpenConnections, DefaultPostgresMaxOpenConns, DefaultPostgresMaxOpenConns)
	}
	if st.MaxIdleClosed != 0 {
		t.Fatalf("%d connections closed for lack of idle room", st.MaxIdleClosed)
	}
}

func TestPostgresPoolSize(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s, err := Open(t.Context(), dsn, nil, PostgresMaxOpenConns(3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.writer.Stats().MaxOpenConnections; got != 3 {
		t.Fatalf("pool of %d connections, want 3", got)
	}
}
