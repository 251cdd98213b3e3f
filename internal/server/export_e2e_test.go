package server_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
	"github.com/behalf-dev/behalf/internal/testutil/promtest"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
)

// startExporting runs a server exporting everything to recv, with
// Prometheus on the API listener (or on metricsListen) and the audit
// trail appended to auditFile.
func startExporting(t *testing.T, recv *otlptest.Receiver, metricsListen, auditFile string) *behalftest.Server {
	return behalftest.Start(t, behalftest.Backends[0], behalftest.Options{
		// Info lines are written, so they are exported too.
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
		Edit: func(f *config.File) {
			tf := &f.Telemetry
			tf.OTLP.Endpoint, tf.OTLP.Timeout = recv.URL, 300*time.Millisecond
			tf.Traces.Enabled = true
			tf.Metrics.Prometheus.Enabled, tf.Metrics.Prometheus.Listen = true, metricsListen
			tf.Logs.OTLP, tf.Audit.OTLP, tf.Audit.File = true, true, auditFile
		},
	})
}

// vendCalls makes 3 GetResourceApiKey calls that succeed and 1 for a
// provider that does not exist, as user alice.
func vendCalls(t *testing.T, s *behalftest.Server) (ok, notFound int) {
	t.Helper()
	cx := t.Context()
	c, d := s.Control(), s.Data()
	if _, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("agent")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
		Name: aws.String("openai"), ApiKey: aws.String("sk-telemetry-test-secret"),
	}); err != nil {
		t.Fatal(err)
	}
	wat, err := d.GetWorkloadAccessTokenForUserId(cx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String("agent"), UserId: aws.String("alice"),
	})
	if err != nil {
		t.Fatal(err)
	}
	vend := func(provider string) error {
		_, err := d.GetResourceApiKey(cx, &bedrockagentcore.GetResourceApiKeyInput{
			ResourceCredentialProviderName: aws.String(provider), WorkloadIdentityToken: wat.WorkloadAccessToken,
		})
		return err
	}
	for range 3 {
		if err := vend("openai"); err != nil {
			t.Fatalf("vend: %v", err)
		}
	}
	var nf *types.ResourceNotFoundException
	if err := vend("missing"); !errors.As(err, &nf) {
		t.Fatalf("vend from a missing provider: %v, want ResourceNotFoundException", err)
	}
	return 3, 1
}

func auditRecords(t *testing.T, s *behalftest.Server) []storage.AuditRecord {
	t.Helper()
	recs, err := s.Server.Store().ListAudit(t.Context(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func attr(r *logspb.LogRecord, key string) string {
	for _, kv := range r.Attributes {
		if kv.Key == key {
			if v := kv.Value.GetStringValue(); v != "" {
				return v
			}
			if v := kv.Value.GetIntValue(); v != 0 {
				return strconv.FormatInt(v, 10)
			}
		}
	}
	return ""
}

// TestAuditTrailExported: every committed record reaches the JSON Lines
// file and the exporter, with its seq, hash and user, in commit order.
func TestAuditTrailExported(t *testing.T) {
	recv := otlptest.New(t)
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	s := startExporting(t, recv, "", file)
	vendCalls(t, s)
	chainCall(t, s)
	want := auditRecords(t, s)
	// The workload, the provider, the token, 3 vends and the refused one;
	// then a workload, a token and a chained token.
	if len(want) != 10 {
		t.Fatalf("%d audit records, want 10", len(want))
	}

	// Records are exported after their callers are answered: wait for the
	// audit writer to have handed over the last one.
	for deadline := time.Now().Add(10 * time.Second); countLines(t, file) < len(want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", fi.Mode().Perm())
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d: %v: %s", len(lines)+1, err, sc.Bytes())
		}
		lines = append(lines, l)
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines in the audit file, want %d", len(lines), len(want))
	}
	for i, r := range want {
		l := lines[i]
		if l["seq"] != float64(r.Seq) || l["hash"] != hex.EncodeToString(r.Hash) || l["operation"] != r.Operation ||
			l["outcome"] != r.Outcome || l["user"] != nilIfEmpty(r.User) || l["requestId"] != r.RequestID {
			t.Errorf("line %d: %v, record %+v", i+1, l, r)
		}
	}
	if l := lines[6]; l["errorType"] != "ResourceNotFoundException" || l["user"] != "id:alice" || l["provider"] != "missing" {
		t.Errorf("the refused vend's line: %v", l)
	}
	// Only the chained call's line names actors.
	for i, l := range lines {
		actors, named := l["actors"].([]any)
		if chained := i == 9; named != chained || chained && (len(actors) != 1 || actors[0] != "agent") {
			t.Errorf("line %d: actors %v", i+1, l["actors"])
		}
	}

	if err := s.Server.Telemetry().ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var exported []*logspb.LogRecord
	for _, r := range recv.Logs() {
		if r.EventName == "audit.record" {
			exported = append(exported, r)
		}
	}
	if len(exported) != len(want) {
		t.Fatalf("%d audit records exported, want %d", len(exported), len(want))
	}
	for i, r := range want {
		e := exported[i]
		if attr(e, "behalf.audit.hash") != hex.EncodeToString(r.Hash) || attr(e, "behalf.operation") != r.Operation ||
			attr(e, "behalf.audit.user") != r.User || e.TimeUnixNano != uint64(r.Time.UnixNano()) {
			t.Errorf("exported record %d: %v, want %+v", i+1, e, r)
		}
	}
	for i, e := range exported {
		if got, chained := actorsAttr(e), i == 9; (got == "agent") != chained || !chained && got != "" {
			t.Errorf("exported record %d: behalf.actors %q", i+1, got)
		}
	}
	// Each record carries its call's trace, as does the call's log line.
	for i, e := range exported {
		traceID := hex.EncodeToString(e.TraceId)
		if len(e.TraceId) != 16 || traceID == strings.Repeat("0", 32) || lines[i]["traceId"] != traceID {
			t.Errorf("record %d: exported trace %q, file trace %v", i+1, traceID, lines[i]["traceId"])
		}
		if !loggedInTrace(recv.Logs(), want[i].RequestID, e.TraceId) {
			t.Errorf("record %d: no exported log line of request %s in trace %s", i+1, want[i].RequestID, traceID)
		}
	}
	for _, b := range recv.Bodies() {
		if bytes.Contains(b, []byte("sk-telemetry-test-secret")) {
			t.Fatal("the API key was exported")
		}
	}
}

// chainCall has agent (for alice) call helper through an identity chain,
// as behalf gateway asks for it.
func chainCall(t *testing.T, s *behalftest.Server) {
	t.Helper()
	cx := t.Context()
	if _, err := s.Control().CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("helper")}); err != nil {
		t.Fatal(err)
	}
	wat, err := s.Data().GetWorkloadAccessTokenForUserId(cx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String("agent"), UserId: aws.String("alice"),
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"workloadName": "helper", "callerToken": aws.ToString(wat.WorkloadAccessToken), "allowedCallers": []string{"agent"}})
	if res := s.Do(t, behalftest.Raw{Path: "/behalf/GetWorkloadAccessTokenForChain", Body: body}); res.Status != http.StatusOK {
		t.Fatalf("GetWorkloadAccessTokenForChain: %d %s", res.Status, res.Body)
	}
}

// actorsAttr is an exported record's behalf.actors, joined by commas.
func actorsAttr(r *logspb.LogRecord) string {
	var names []string
	for _, kv := range r.Attributes {
		if kv.Key == "behalf.actors" {
			for _, v := range kv.Value.GetArrayValue().GetValues() {
				names = append(names, v.GetStringValue())
			}
		}
	}
	return strings.Join(names, ",")
}

// loggedInTrace reports whether a log line of the request was exported
// with the trace id.
func loggedInTrace(logs []*logspb.LogRecord, requestID string, traceID []byte) bool {
	for _, l := range logs {
		// The record carries its trace natively, not again as attributes.
		if l.EventName == "" && attr(l, "request_id") == requestID && bytes.Equal(l.TraceId, traceID) && len(l.SpanId) == 8 &&
			attr(l, "trace_id") == "" && attr(l, "span_id") == "" {
			return true
		}
	}
	return false
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestPrometheus: /metrics on the API listener parses with Prometheus'
// parser, passes promtool, and counts the calls made.
func TestPrometheus(t *testing.T) {
	recv := otlptest.New(t)
	s := startExporting(t, recv, "", "")
	ok, notFound := vendCalls(t, s)
	body := scrapeBody(t, s.URL+"/metrics")
	fams := promtest.Parse(t, body)
	promtest.Promtool(t, body)
	if _, found := fams["go_goroutines"]; !found {
		t.Error("the Go runtime's metrics are not exposed")
	}
	if v := fams.Value(t, "behalf_telemetry_dropped_total", map[string]string{"behalf_signal": "logs"}); v != 0 {
		t.Errorf("%v log records dropped with the collector up", v)
	}
	// behalf_requests_total is recorded by the router.
	if _, found := fams["behalf_requests_total"]; !found {
		t.Skip("behalf_requests_total is not recorded on this branch yet: the router's requests metric is not here")
	}
	for _, c := range []struct {
		outcome, errType string
		want             int
	}{{"success", "", ok}, {"client_error", "ResourceNotFoundException", notFound}} {
		labels := map[string]string{"behalf_operation": "GetResourceApiKey", "behalf_outcome": c.outcome}
		if c.errType != "" {
			labels["error_type"] = c.errType
		}
		if v := fams.Value(t, "behalf_requests_total", labels); v != float64(c.want) {
			t.Errorf("behalf_requests_total%v = %v, want %d", labels, v, c.want)
		}
	}
}

// TestMetricsListener: with a separate listener /metrics is there, and not
// on the API listener.
func TestMetricsListener(t *testing.T) {
	addr := testnet.FreeAddr(t)
	s := startExporting(t, otlptest.New(t), addr, "")
	vendCalls(t, s)
	var fams promtest.Families
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) { // the listener starts with Run
		resp, err := get(t, "http://"+addr+"/metrics")
		if err == nil {
			_ = resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metrics listener at %s never answered: %v", addr, err)
		}
	}
	fams = promtest.Scrape(t, "http://"+addr+"/metrics")
	if _, found := fams["go_goroutines"]; !found {
		t.Error("the metrics listener does not serve the metrics")
	}
	resp, err := get(t, s.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the API listener: %d, want 404 with a separate listener", resp.StatusCode)
	}
}

func get(t *testing.T, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

func scrapeBody(t *testing.T, url string) []byte {
	resp, err := get(t, url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

// TestCollectorDown: with the collector refusing every export, every call
// still succeeds and what was lost is counted.
func TestCollectorDown(t *testing.T) {
	recv := otlptest.New(t)
	recv.Fail(http.StatusServiceUnavailable)
	s := startExporting(t, recv, "", "")
	t.Cleanup(func() { recv.Fail(0) }) // so that the final flush, at Stop, succeeds
	start := time.Now()
	vendCalls(t, s) // fails the test if a call fails
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the calls took %v with the collector down", took)
	}
	if err := s.Server.Telemetry().ForceFlush(t.Context()); err == nil {
		t.Error("ForceFlush to a collector that is down succeeded")
	}
	fams := promtest.Parse(t, scrapeBody(t, s.URL+"/metrics"))
	// 7 audit records and the info lines were log records: all lost.
	if v := fams.Value(t, "behalf_telemetry_dropped_total", map[string]string{"behalf_signal": "logs"}); v < 7 {
		t.Errorf("%v log records counted dropped, want at least the 7 audit records", v)
	}
	// 7 calls, each with a server span.
	if v := fams.Value(t, "behalf_telemetry_dropped_total", map[string]string{"behalf_signal": "traces"}); v < 7 {
		t.Errorf("%v spans counted dropped, want at least the 7 calls' server spans", v)
	}
	if len(recv.Logs()) != 0 || len(recv.Spans()) != 0 {
		t.Error("the failing collector received something")
	}
}

// countLines counts the lines written to file so far.
func countLines(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}
