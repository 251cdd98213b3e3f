package telemetry

import (
	"context"
	"sync/atomic"
	"time"

	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// defaultQueueSize bounds the spans, and separately the log records, held
// for export: queued, or in an export that has not returned.
const defaultQueueSize = 2048

// Signals, as the dropped counter names them.
const (
	SignalTraces = "traces"
	SignalLogs   = "logs"
)

// inflight counts the items of one signal handed to a batch processor and
// not yet returned by its exporter. The SDK's batch processors drop what
// does not fit their queue without saying how much (OpenTelemetry trace
// SDK, "Batching processor"); admitting an item only while fewer than size
// are in flight, with the processor's queue as large, means the processor
// never drops, and every item refused here is counted.
type inflight struct {
	n       atomic.Int64
	size    int64
	signal  string
	metrics *Metrics
}

// admit reserves a place for one item, or counts it dropped.
func (q *inflight) admit(ctx context.Context) bool {
	if q.n.Add(1) > q.size {
		q.n.Add(-1)
		q.metrics.Dropped(ctx, q.signal, 1)
		return false
	}
	return true
}

// exported releases n items an export took, counting them dropped when
// the export failed: the collector was down or too slow.
func (q *inflight) exported(ctx context.Context, n int, err error) {
	q.n.Add(-int64(n))
	if err != nil {
		q.metrics.Dropped(ctx, q.signal, int64(n))
	}
}

// boundedSpans is a batch span processor behind an inflight bound.
type boundedSpans struct {
	sdktrace.SpanProcessor
	q *inflight
}

func (p boundedSpans) OnEnd(s sdktrace.ReadOnlySpan) {
	// The batch processor exports sampled spans only.
	if s.SpanContext().IsSampled() && p.q.admit(context.Background()) {
		p.SpanProcessor.OnEnd(s)
	}
}

// countingSpanExporter releases and counts what each export took.
type countingSpanExporter struct {
	sdktrace.SpanExporter
	q *inflight
}

func (e countingSpanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.q.exported(ctx, len(spans), err)
	return err
}

// newBoundedSpans returns a batch span processor exporting to exp that
// holds at most size spans, gives up an export after timeout, and counts
// the spans it drops.
func newBoundedSpans(exp sdktrace.SpanExporter, size int, timeout time.Duration, m *Metrics) sdktrace.SpanProcessor {
	q := &inflight{size: int64(size), signal: SignalTraces, metrics: m}
	bsp := sdktrace.NewBatchSpanProcessor(countingSpanExporter{SpanExporter: exp, q: q},
		sdktrace.WithMaxQueueSize(size), sdktrace.WithExportTimeout(timeout))
	return boundedSpans{SpanProcessor: bsp, q: q}
}

// boundedLogs is a batch log processor behind an inflight bound.
type boundedLogs struct {
	sdklog.Processor
	q *inflight
}

func (p boundedLogs) OnEmit(ctx context.Context, r *sdklog.Record) error {
	if !p.q.admit(ctx) {
		return nil
	}
	return p.Processor.OnEmit(ctx, r)
}

// countingLogExporter releases and counts what each export took.
type countingLogExporter struct {
	sdklog.Exporter
	q *inflight
}

func (e countingLogExporter) Export(ctx context.Context, recs []sdklog.Record) error {
	err := e.Exporter.Export(ctx, recs)
	e.q.exported(ctx, len(recs), err)
	return err
}

// newBoundedLogs is newBoundedSpans for log records.
func newBoundedLogs(exp sdklog.Exporter, size int, timeout time.Duration, m *Metrics) sdklog.Processor {
	q := &inflight{size: int64(size), signal: SignalLogs, metrics: m}
	blp := sdklog.NewBatchProcessor(countingLogExporter{Exporter: exp, q: q},
		sdklog.WithMaxQueueSize(size), sdklog.WithExportTimeout(timeout))
	return boundedLogs{Processor: blp, q: q}
}
