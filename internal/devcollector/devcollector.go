// Package devcollector is a development-only OpenTelemetry collector: it
// receives OTLP over HTTP (binary protobuf, optionally gzipped, as the OTLP
// specification's "OTLP/HTTP" section describes; not its JSON encoding)
// and prints each
// trace as an indented tree of spans and each log record on one line, so
// that a newcomer sees what behalf emits without installing a collector.
// Metrics are counted, not shown: /metrics and a dashboard show them
// better. It keeps nothing beyond the traces it has not printed yet.
package devcollector

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// maxBody bounds one export request, after decompression.
const maxBody = 16 << 20

// Collector receives exports and prints them to Out.
type Collector struct {
	out   io.Writer
	quiet time.Duration
	now   func() time.Time

	mu      sync.Mutex
	pending map[string]*pendingTrace // by trace id, in hex
	// printed are the traces printed lately, oldest first, so that spans
	// arriving after their trace was printed are marked as its
	// continuation.
	printed []string
}

// remembered bounds Collector.printed.
const remembered = 1000

// pendingTrace is a trace's spans received so far; it is printed once no
// span of it has arrived for the quiet period, since a trace's spans come
// in several exports.
type pendingTrace struct {
	spans []*tracepb.Span
	last  time.Time
}

// DefaultQuiet is how long a trace gets no new span before it is printed:
// longer than the OpenTelemetry SDKs' batch span processor waits between
// exports (OTEL_BSP_SCHEDULE_DELAY, 5s by default), so that the agent's
// spans and behalf's, exported by two processes at different times, make
// one tree.
const DefaultQuiet = 6 * time.Second

// Options configure a Collector.
type Options struct {
	// Quiet is how long a trace gets no new span before it is printed;
	// default DefaultQuiet.
	Quiet time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// New returns a collector printing to out.
func New(out io.Writer, opts Options) *Collector {
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Collector{out: out, quiet: opts.Quiet, now: opts.Now, pending: map[string]*pendingTrace{}}
}

// ServeHTTP receives one export at /v1/traces, /v1/metrics or /v1/logs.
func (c *Collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req, resp proto.Message
	switch r.URL.Path {
	case "/v1/traces":
		req, resp = &coltrace.ExportTraceServiceRequest{}, &coltrace.ExportTraceServiceResponse{}
	case "/v1/metrics":
		req, resp = &colmetrics.ExportMetricsServiceRequest{}, &colmetrics.ExportMetricsServiceResponse{}
	case "/v1/logs":
		req, resp = &collogs.ExportLogsServiceRequest{}, &collogs.ExportLogsServiceResponse{}
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an OTLP export", http.StatusMethodNotAllowed)
		return
	}
	if err := decode(r, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.receive(req)
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out) // a failed write is the exporter's hang-up
}

// decode reads the protobuf export in r's body into m.
func decode(r *http.Request, m proto.Message) error {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		return fmt.Errorf("Content-Type %q: only application/x-protobuf is supported", ct)
	}
	body := io.Reader(r.Body)
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		body = zr
	default:
		return fmt.Errorf("unsupported Content-Encoding %q", r.Header.Get("Content-Encoding"))
	}
	raw, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return err
	}
	if len(raw) > maxBody {
		return fmt.Errorf("export larger than %d bytes", maxBody)
	}
	return proto.Unmarshal(raw, m)
}

// receive takes one decoded export: spans wait for their trace to be
// complete, log records and metric counts are printed at once.
func (c *Collector) receive(m proto.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m := m.(type) {
	case *coltrace.ExportTraceServiceRequest:
		now := c.now()
		for _, rs := range m.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					id := fmt.Sprintf("%x", s.GetTraceId())
					p := c.pending[id]
					if p == nil {
						p = &pendingTrace{}
						c.pending[id] = p
					}
					p.spans, p.last = append(p.spans, s), now
				}
			}
		}
	case *collogs.ExportLogsServiceRequest:
		printLogs(c.out, m)
	case *colmetrics.ExportMetricsServiceRequest:
		printMetricsSummary(c.out, m)
	}
}

// Flush prints the traces that have had no new span for the quiet period;
// with all set, every trace received so far.
func (c *Collector) Flush(all bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var ready []string
	for id, p := range c.pending {
		if all || now.Sub(p.last) >= c.quiet {
			ready = append(ready, id)
		}
	}
	sortTraces(ready, c.pending)
	for _, id := range ready {
		printTrace(c.out, id, c.pending[id].spans, slices.Contains(c.printed, id))
		delete(c.pending, id)
		c.printed = append(c.printed, id)
	}
	if n := len(c.printed) - remembered; n > 0 {
		c.printed = slices.Delete(c.printed, 0, n)
	}
}

// Run flushes quiet traces every tick until stop is closed, then prints
// what is left.
func (c *Collector) Run(stop <-chan struct{}) {
	tick := time.NewTicker(c.quiet / 4)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			c.Flush(false)
		case <-stop:
			c.Flush(true)
			return
		}
	}
}
