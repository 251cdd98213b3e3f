package cli

import (
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/bench"
)

func newBenchCommand() *cobra.Command {
	var opts bench.Options
	var ops, profile string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the credential vend paths over real HTTP, beside the machine's no-op floor",
		Long: `Start a behalf server in this process (SQLite in a temporary directory, or a fresh
PostgreSQL database with --postgres), a local identity provider and token endpoint, and
a load generator that signs every request with SigV4 as the AWS SDKs do. Measure each
vend path in turn, with every call durably audited, and the same harness against a
handler that does nothing: the floor of this machine. Prints requests/s and p50/p99.
With --telemetry, a second server runs beside the first with traces sampled at 100% and
exported over OTLP/HTTP to a receiver in this process, and metrics recorded for Prometheus;
each operation is measured on both in alternating slices, so that the comparison is fair.`,
		Example: `  behalf bench
  behalf bench --postgres 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' --duration 20s
  behalf bench --telemetry`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if ops != "" {
				opts.Operations = strings.Split(ops, ",")
			}
			if profile != "" {
				f, err := os.Create(profile) //nolint:gosec // G304: the operator names the profile file
				if err != nil {
					return err
				}
				defer func() {
					if closeErr := f.Close(); err == nil {
						err = closeErr // the profile is incomplete
					}
				}()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			_, err = bench.Run(cmd.Context(), opts, cmd.OutOrStdout())
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Postgres, "postgres", "", "PostgreSQL URL whose user may create databases; default SQLite")
	fl.DurationVar(&opts.Duration, "duration", 10*time.Second, "measured time per operation")
	fl.DurationVar(&opts.Warmup, "warmup", 2*time.Second, "unmeasured time per operation before measuring")
	fl.IntVar(&opts.Concurrency, "concurrency", 32, "concurrent clients")
	fl.StringVar(&ops, "operations", "", "comma-separated subset of "+strings.Join(bench.Operations, ","))
	fl.BoolVar(&opts.Telemetry, "telemetry", false, "measure every operation again with telemetry on (traces at 100% over OTLP/HTTP, Prometheus metrics)")
	fl.StringVar(&profile, "cpuprofile", "", "write a CPU profile of the whole run (server and load generator) to this file")
	return cmd
}
