package sqlstore

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// BenchmarkAppendAuditSQLite measures the audit writer's transaction on a
// SQLite file by batch size, with the durability behalf runs with
// (synchronous=FULL: an fsync a commit). It reports the process's CPU time
// a record, user and system: a batch's fixed cost (the transaction, the
// WAL's page writes and its fsync) shared by its records, and each
// record's own.
func BenchmarkAppendAuditSQLite(b *testing.B) {
	for _, n := range []int{1, 10, 20, 100} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s, err := Open(b.Context(), filepath.Join(b.TempDir(), "behalf.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			recs := make([]storage.AuditRecord, n)
			for i := range recs {
				recs[i] = storage.AuditRecord{Time: time.Now(), RequestID: "0f8fad5b-d9cb-469f-a165-70867728950e",
					Principal: "AKIAEXAMPLE000000001", Workload: "bench-agent", User: "u-5e2b8f0c7a1d4e9f8b3c6a2d1e0f9a8b",
					Operation: "GetResourceApiKey", Provider: "bench-key", Outcome: "success"}
			}
			cpu := processCPU()
			for b.Loop() {
				if err := s.AppendAudit(b.Context(), recs, testChain); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N*n)/1e3, "cpu-µs/record")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
