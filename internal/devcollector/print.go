package devcollector

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// maxValue bounds an attribute value as printed.
const maxValue = 80

// sortTraces orders trace ids by their first span's start.
func sortTraces(ids []string, pending map[string]*pendingTrace) {
	first := func(id string) uint64 {
		return slices.MinFunc(pending[id].spans, func(a, b *tracepb.Span) int {
			return compareStart(a, b)
		}).GetStartTimeUnixNano()
	}
	slices.SortFunc(ids, func(a, b string) int {
		if fa, fb := first(a), first(b); fa != fb {
			if fa < fb {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
}

func compareStart(a, b *tracepb.Span) int {
	switch {
	case a.GetStartTimeUnixNano() < b.GetStartTimeUnixNano():
		return -1
	case a.GetStartTimeUnixNano() > b.GetStartTimeUnixNano():
		return 1
	}
	return 0
}

// printTrace prints a trace as a tree: each span under its parent, in the
// order they started. A span whose parent is not here (the caller's span,
// exported elsewhere, or printed before: continued) is a root.
func printTrace(out io.Writer, traceID string, spans []*tracepb.Span, continued bool) {
	byID := map[string]bool{}
	for _, s := range spans {
		byID[string(s.GetSpanId())] = true
	}
	children := map[string][]*tracepb.Span{}
	var roots []*tracepb.Span
	for _, s := range spans {
		if p := string(s.GetParentSpanId()); p != "" && byID[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	slices.SortFunc(roots, compareStart)
	header := fmt.Sprintf("trace %s  %d span(s)", traceID, len(spans))
	switch {
	case continued:
		header += ", continued: more spans of a trace printed above"
	case len(roots) == 1 && len(roots[0].GetParentSpanId()) > 0:
		header += ", continuing the caller's trace"
	}
	var b strings.Builder
	b.WriteString(header + "\n")
	for i, r := range roots {
		writeSpan(&b, r, children, "", i == len(roots)-1)
	}
	_, _ = io.WriteString(out, b.String()) // the terminal: nothing to do on failure
}

func writeSpan(b *strings.Builder, s *tracepb.Span, children map[string][]*tracepb.Span, indent string, last bool) {
	branch, more := "├─ ", "│  "
	if last {
		branch, more = "└─ ", "   "
	}
	fmt.Fprintf(b, "%s%s%s  %s  %s", indent, branch, s.GetName(), kind(s.GetKind()), round(duration(s)))
	if s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		fmt.Fprintf(b, "  ERROR %s", s.GetStatus().GetMessage())
	}
	if attrs := formatAttributes(keyAttributes(s)); attrs != "" {
		b.WriteString("  " + attrs)
	}
	b.WriteString("\n")
	kids := children[string(s.GetSpanId())]
	slices.SortFunc(kids, compareStart)
	for i, k := range kids {
		writeSpan(b, k, children, indent+more, i == len(kids)-1)
	}
}

// duration is a span's length; zero for a span that ends before it starts,
// as a sender's bad clock can make it.
func duration(s *tracepb.Span) time.Duration {
	start, end := s.GetStartTimeUnixNano(), s.GetEndTimeUnixNano()
	if end <= start {
		return 0
	}
	return time.Duration(min(end-start, math.MaxInt64))
}

// connectionDetails are HTTP semantic-convention attributes that say how a
// request came, not what it did: left out of the tree to keep a span on a
// line.
var connectionDetails = map[string]bool{
	"client.address": true, "network.peer.address": true, "network.peer.port": true, "network.protocol.version": true,
	"http.request.body.size": true, "http.response.body.size": true, "url.scheme": true, "user_agent.original": true,
	"server.port": true,
}

// keyAttributes are the attributes of s worth a newcomer's eye: all but
// the connection details, and but a server span's own address.
func keyAttributes(s *tracepb.Span) []*commonpb.KeyValue {
	var keep []*commonpb.KeyValue
	for _, kv := range s.GetAttributes() {
		server := s.GetKind() == tracepb.Span_SPAN_KIND_SERVER && kv.GetKey() == "server.address"
		if !connectionDetails[kv.GetKey()] && !server {
			keep = append(keep, kv)
		}
	}
	return keep
}

func kind(k tracepb.Span_SpanKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "SPAN_KIND_"))
}

// round shortens a duration to three significant digits or so.
func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// formatAttributes prints attributes as key=value, sorted by key.
func formatAttributes(attrs []*commonpb.KeyValue) string {
	parts := make([]string, 0, len(attrs))
	for _, kv := range attrs {
		parts = append(parts, kv.GetKey()+"="+formatValue(kv.GetValue()))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func formatValue(v *commonpb.AnyValue) string {
	var s string
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		s = x.StringValue
		if s == "" || strings.ContainsAny(s, " \"=") {
			s = fmt.Sprintf("%q", s)
		}
	case *commonpb.AnyValue_IntValue:
		s = fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		s = fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BoolValue:
		s = fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_ArrayValue:
		items := make([]string, len(x.ArrayValue.GetValues()))
		for i, item := range x.ArrayValue.GetValues() {
			items[i] = formatValue(item)
		}
		s = "[" + strings.Join(items, ",") + "]"
	default:
		s = "…"
	}
	if len(s) > maxValue {
		s = s[:maxValue] + "…"
	}
	return s
}

// printLogs prints each log record on one line: time, severity, body,
// attributes, and the trace and span it was written in.
func printLogs(out io.Writer, m *collogs.ExportLogsServiceRequest) {
	var b strings.Builder
	for _, rl := range m.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			for _, r := range sl.GetLogRecords() {
				ts := r.GetTimeUnixNano()
				if ts == 0 {
					ts = r.GetObservedTimeUnixNano()
				}
				severity := r.GetSeverityText()
				if severity == "" {
					severity = strings.TrimPrefix(r.GetSeverityNumber().String(), "SEVERITY_NUMBER_")
				}
				fmt.Fprintf(&b, "log %s %-5s %s", time.Unix(0, int64(ts)).Format("15:04:05.000"), severity, formatValue(r.GetBody())) //nolint:gosec // G115: OTLP nanoseconds since the epoch fit an int64 until 2262
				if attrs := formatAttributes(r.GetAttributes()); attrs != "" {
					b.WriteString("  " + attrs)
				}
				if len(r.GetTraceId()) > 0 {
					fmt.Fprintf(&b, "  trace=%x span=%x", r.GetTraceId(), r.GetSpanId())
				}
				b.WriteString("\n")
			}
		}
	}
	_, _ = io.WriteString(out, b.String()) // the terminal: nothing to do on failure
}

// printMetricsSummary prints how many metrics and data points arrived.
func printMetricsSummary(out io.Writer, m *colmetrics.ExportMetricsServiceRequest) {
	var metrics, points int
	for _, rm := range m.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, md := range sm.GetMetrics() {
				metrics++
				points += dataPoints(md)
			}
		}
	}
	_, _ = fmt.Fprintf(out, "metrics: %d metrics, %d data points received (not shown: see /metrics)\n", metrics, points)
}

func dataPoints(m *metricspb.Metric) int {
	switch d := m.GetData().(type) {
	case *metricspb.Metric_Sum:
		return len(d.Sum.GetDataPoints())
	case *metricspb.Metric_Gauge:
		return len(d.Gauge.GetDataPoints())
	case *metricspb.Metric_Histogram:
		return len(d.Histogram.GetDataPoints())
	case *metricspb.Metric_ExponentialHistogram:
		return len(d.ExponentialHistogram.GetDataPoints())
	case *metricspb.Metric_Summary:
		return len(d.Summary.GetDataPoints())
	}
	return 0
}
