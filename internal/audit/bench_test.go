package audit

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkRecord measures group commit: many callers recording at once on
// a SQLite file and on PostgreSQL. It reports committed records per second
// and the mean batch the writer appended.
func BenchmarkRecord(b *testing.B) {
	for _, db := range []struct {
		name string
		open func(testing.TB) backend
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		for _, callers := range []int{1, 16, 128, 1024} {
			b.Run(fmt.Sprintf("%s/callers=%d", db.name, callers), func(b *testing.B) {
				cs := &countingStore{Storage: db.open(b).st}
				l := New(cs, testKey(1), Options{})
				defer l.Close()
				procs := runtime.GOMAXPROCS(0)
				b.SetParallelism(max(1, callers/procs))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if err := l.Record(b.Context(), event(i)); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
				if batches := len(cs.counts()); batches > 0 {
					b.ReportMetric(float64(b.N)/float64(batches), "records/batch")
				}
			})
		}
	}
}
