package bench

import (
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
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

// TestTelemetryOnAndOff measures each operation with telemetry off and on:
// no call may fail with telemetry on, and the server's spans must reach
// the OTLP receiver.
func TestTelemetryOnAndOff(t *testing.T) {
	var out strings.Builder
	results, err := Run(t.Context(), Options{Duration: 200 * time.Millisecond, Concurrency: 2, Telemetry: true,
		Operations: []string{"noop", "m2m"}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 || results[0].Telemetry || !results[3].Telemetry || results[3].Operation != "m2m" {
		t.Fatalf("results %+v", results)
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s (telemetry %v): %d requests, %d errors (%s)", r.Operation, r.Telemetry, r.Requests, r.Errors, r.FirstError)
		}
	}
	m := regexp.MustCompile(`telemetry received: (\d+) OTLP exports`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no telemetry line in:\n%s", out.String())
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("no span was exported:\n%s", out.String())
	}
	if !regexp.MustCompile(`GetResourceOauth2Token \(M2M, cached\)\s+\d+\s+\d+\s+\d+%`).MatchString(out.String()) {
		t.Errorf("no on/off comparison in:\n%s", out.String())
	}
}
