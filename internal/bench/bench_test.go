package bench

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
)

// TestRunsEveryOperation runs each operation briefly, on SQLite and on
// PostgreSQL: the set-up (including a user's consent through the
// USER_FEDERATION flow) must work, and no measured call may fail.
func TestRunsEveryOperation(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			opts := Options{Duration: 300 * time.Millisecond, Concurrency: 2}
			if backend == "postgres" {
				if opts.Postgres = os.Getenv(pgtest.EnvDSN); opts.Postgres == "" {
					pgtest.NewDatabase(t) // skips, or fails under CI, as every PostgreSQL test does
				}
			}
			results, err := Run(t.Context(), opts, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != len(Operations) {
				t.Fatalf("%d results for %d operations", len(results), len(Operations))
			}
			for _, r := range results {
				if r.Requests == 0 || r.Errors != 0 {
					t.Errorf("%s: %d requests, %d errors (%s)", r.Operation, r.Requests, r.Errors, r.FirstError)
				}
			}
		})
	}
}
