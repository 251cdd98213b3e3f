package audit

import (
	"errors"
	"sync"
	"testing"

	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/metrictest"
)

// Every transaction the writer runs records its size and outcome, and the
// queue's depth is what waits behind the writer.
func TestAuditBatchMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const n = 20
		metrics := metrictest.New(t)
		cs := gated(b.st)
		l := New(cs, testKey(3), Options{Metrics: metrics.Metrics})
		defer l.Close()
		if err := metrics.Metrics.Gauge("behalf.audit.queue.depth", "{record}", "test", l.QueueDepth); err != nil {
			t.Fatal(err)
		}

		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if err := l.Record(t.Context(), event(i)); err != nil {
					t.Error(err)
				}
			})
		}
		waitAllQueued(t, l, cs, n)
		if depth, ok := metrics.Gauge(t, "behalf.audit.queue.depth"); !ok || depth != int64(n-cs.held) {
			t.Errorf("queue depth %d (%v), want %d", depth, ok, n-cs.held)
		}
		close(cs.gate)
		wg.Wait()

		batches := cs.counts()
		if count, sum := metrics.HistogramCounts(t, "behalf.audit.batch.size"); count != uint64(len(batches)) || sum != n {
			t.Errorf("batch size histogram: %d batches of %d records, want %d of %d (%v)", count, sum, len(batches), n, batches)
		}
		if got := metrics.HistogramOutcomes(t, "behalf.audit.batch.size"); got[telemetry.OutcomeSuccess] != uint64(len(batches)) || len(got) != 1 {
			t.Errorf("batch outcomes %v, want %d successes", got, len(batches))
		}
		if depth, _ := metrics.Gauge(t, "behalf.audit.queue.depth"); depth != 0 {
			t.Errorf("queue depth %d after every record was written", depth)
		}
	})
}

// A failed transaction is recorded as such.
func TestAuditBatchMetricsFailure(t *testing.T) {
	metrics := metrictest.New(t)
	b := openSQLite(t)
	l := New(&countingStore{Storage: b.st, fail: errors.New("disk on fire")}, testKey(6), Options{Metrics: metrics.Metrics})
	defer l.Close()
	if err := l.Record(t.Context(), event(0)); err == nil {
		t.Fatal("a record the store refused was written")
	}
	if got := metrics.HistogramOutcomes(t, "behalf.audit.batch.size"); got["failure"] != 1 || len(got) != 1 {
		t.Errorf("batch outcomes %v, want one failure", got)
	}
}
