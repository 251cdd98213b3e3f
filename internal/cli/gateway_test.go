package cli_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/behalf-dev/behalf/internal/cli"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
	"github.com/behalf-dev/behalf/internal/testutil/promtest"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
)

const (
	gatewayKeyID  = "BEHALFGATEWAYCLI01"
	gatewaySecret = "behalf-gateway-cli-secret-0123456789"
	weatherKey    = "weather-api-key-123"
)

// gatewayWorld is a behalf server with a weather API key, a workload
// access token for it, and a tool that records the requests it gets.
type gatewayWorld struct {
	s    *behalftest.Server
	wat  string
	tool *httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newGatewayWorld(t *testing.T, edit func(*config.File)) *gatewayWorld {
	w := &gatewayWorld{s: behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: edit})}
	ctx := t.Context()
	c := w.s.Control()
	if _, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("my-agent")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
		Name: aws.String("weather"), ApiKey: aws.String(weatherKey)}); err != nil {
		t.Fatal(err)
	}
	res := w.s.Do(t, behalftest.Raw{Path: "/behalf/CreatePrincipal", Body: []byte(`{"role":"runtime","workloads":["my-agent"],` +
		`"accessKeyId":"` + gatewayKeyID + `","secretAccessKey":"` + gatewaySecret + `","operations":["GetResourceApiKey","RecordGatewayCall"]}`)})
	if res.Status != http.StatusCreated {
		t.Fatalf("CreatePrincipal: %d %s", res.Status, res.Body)
	}
	out, err := w.s.Data().GetWorkloadAccessTokenForUserId(ctx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String("my-agent"), UserId: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	w.wat = aws.ToString(out.WorkloadAccessToken)
	w.tool = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.seen = append(w.seen, r.Header.Clone())
		w.mu.Unlock()
		if r.Header.Get("X-Api-Key") != weatherKey {
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(rw, `{"forecast":"sunny"}`)
	}))
	t.Cleanup(w.tool.Close)
	return w
}

// runGateway runs `behalf gateway --config` with telemetry (YAML, indented
// under telemetry:) until the test calls the returned stop, which waits
// for it to exit (flushing its telemetry) and returns its stderr.
func (w *gatewayWorld) runGateway(t *testing.T, listen, telemetry string) (stop func() string) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	file := "listen: " + listen + "\nendpoint: " + w.s.URL + "\ntelemetry:\n" + telemetry +
		"routes:\n  - {name: weather, path: /weather, upstream: '" + w.tool.URL + "', kind: tool, credential: {provider: weather, type: apiKey, header: X-Api-Key}}\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Execute(ctx, []string{"gateway", "--config", path, "--access-key-id", gatewayKeyID, "--secret-access-key", gatewaySecret},
			nil, io.Discard, &stderr)
	}()
	stopped := false
	stop = func() string {
		if !stopped {
			stopped = true
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("behalf gateway exited %d: %s", code, stderr.String())
			}
		}
		return stderr.String()
	}
	t.Cleanup(func() { stop() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(stderr.String(), "behalf gateway is serving") {
			return stop
		}
	}
	t.Fatalf("behalf gateway did not start: %s", stop())
	return nil
}

// TestStandaloneGatewayTraces: `behalf gateway --config` with a telemetry
// section exports its spans: a tool call is a SERVER span in the caller's
// trace, with a CLIENT span for the upstream under it although metrics
// are off — and behalf's own span of the credential fetch, which the
// gateway's data-plane client carries the trace to. The tool receives no
// trace context; the gateway's log line of the call carries the trace id.
func TestStandaloneGatewayTraces(t *testing.T) {
	recv := otlptest.New(t)
	w := newGatewayWorld(t, func(f *config.File) {
		f.Telemetry.OTLP.Endpoint = recv.URL
		f.Telemetry.Traces.Enabled = true
	})
	listen := testnet.FreeAddr(t)
	stop := w.runGateway(t, listen, "  otlp: {endpoint: '"+recv.URL+"'}\n  traces: {enabled: true}\n")
	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+listen+"/weather", nil)
	req.Header.Set("X-Amz-Bedrock-AgentCore-Identity-WAT", w.wat)
	req.Header.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("tool call: %d", res.StatusCode)
	}
	logged := stop()
	if err := w.s.Server.Telemetry().ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var server, client, fetch *tracepb.Span
	for _, s := range recv.Spans() {
		if hex.EncodeToString(s.TraceId) != traceID {
			continue
		}
		switch {
		case s.Name == "gateway weather" && s.Kind == tracepb.Span_SPAN_KIND_SERVER:
			server = s
		case s.Kind == tracepb.Span_SPAN_KIND_CLIENT && otlptest.Attr(s, "server.address") == "127.0.0.1" && otlptest.Attr(s, "http.request.method") == "GET":
			client = s
		case s.Name == "GetResourceApiKey" && s.Kind == tracepb.Span_SPAN_KIND_SERVER:
			fetch = s
		}
	}
	if server == nil || client == nil || fetch == nil {
		t.Fatalf("spans in the caller's trace: gateway %v, upstream call %v, behalf's GetResourceApiKey %v", server != nil, client != nil, fetch != nil)
	}
	if hex.EncodeToString(server.ParentSpanId) != callerSpan || !bytes.Equal(client.ParentSpanId, server.SpanId) {
		t.Errorf("the gateway's span is not under the caller's, or the upstream call not under the gateway's")
	}
	w.mu.Lock()
	tp := w.seen[len(w.seen)-1].Get("Traceparent")
	w.mu.Unlock()
	if tp != "" {
		t.Errorf("the tool received traceparent %s", tp)
	}
	if !strings.Contains(logged, "msg=\"gateway call\"") || !strings.Contains(logged, "trace_id="+traceID) {
		t.Errorf("the call's log line does not carry its trace id:\n%s", logged)
	}
	if strings.Contains(logged, w.wat) || strings.Contains(logged, weatherKey) {
		t.Error("the log holds a credential")
	}
}

// TestStandaloneGatewayMetrics: with Prometheus on a listener of its own,
// the standalone gateway counts its calls and its credential cache's hits
// and misses there, and no longer serves /metrics beside its routes.
func TestStandaloneGatewayMetrics(t *testing.T) {
	w := newGatewayWorld(t, nil)
	listen, metrics := testnet.FreeAddr(t), testnet.FreeAddr(t)
	w.runGateway(t, listen, "  metrics: {prometheus: {enabled: true, listen: '"+metrics+"'}}\n")
	for range 3 {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+listen+"/weather", nil)
		req.Header.Set("X-Amz-Bedrock-AgentCore-Identity-WAT", w.wat)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("tool call: %d", res.StatusCode)
		}
	}
	// A call is counted once its handler returns, which may be just after
	// the caller has read the response.
	route := map[string]string{"behalf_gateway_route": "weather", "behalf_kind": "tool", "behalf_outcome": "success"}
	fams := promtest.Scrape(t, "http://"+metrics+"/metrics")
	for deadline := time.Now().Add(5 * time.Second); fams.Value(t, "behalf_gateway_calls_total", route) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		fams = promtest.Scrape(t, "http://"+metrics+"/metrics")
	}
	if n := fams.Value(t, "behalf_gateway_calls_total", route); n != 3 {
		t.Errorf("behalf_gateway_calls_total %v, want 3", n)
	}
	for result, want := range map[string]float64{"hit": 2, "miss": 1} {
		if n := fams.Value(t, "behalf_cache_lookups_total", map[string]string{"behalf_cache": "gateway_credential", "behalf_result": result}); n != want {
			t.Errorf("gateway_credential %s: %v, want %v", result, n, want)
		}
	}
	res, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the gateway's listener: %d", res.StatusCode)
	}
	recs := w.s.Do(t, behalftest.Raw{Path: "/behalf/ListAuditRecords", Body: []byte(`{"maxResults":100}`)})
	if n := strings.Count(string(recs.Body), `"operation":"RecordGatewayCall"`); n != 3 {
		t.Errorf("%d RecordGatewayCall records for three calls", n)
	}
}
