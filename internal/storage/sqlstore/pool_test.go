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
	for range postgresMaxOpenConns {
		wg.Go(func() {
			if _, err := s.writer.ExecContext(t.Context(), "SELECT pg_sleep(0.05)"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st := s.writer.Stats()
	if st.OpenConnections != postgresMaxOpenConns {
		t.Fatalf("%d connections open after %d concurrent queries, want %d", st.OpenConnections, postgresMaxOpenConns, postgresMaxOpenConns)
	}
	if st.MaxIdleClosed != 0 {
		t.Fatalf("%d connections closed for lack of idle room", st.MaxIdleClosed)
	}
}
