package gateway_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
)

// gatewayRecords lists the audit records of gateway calls, oldest first,
// and the whole log as JSON.
func (w *world) gatewayRecords(t *testing.T) ([]behalfapi.AuditRecord, string) {
	t.Helper()
	return w.records(t, "RecordGatewayCall")
}

// records lists the audit records of operation, oldest first, and the
// whole log as JSON.
func (w *world) records(t *testing.T, operation string) ([]behalfapi.AuditRecord, string) {
	t.Helper()
	res := w.s.Do(t, behalftest.Raw{Path: "/behalf/ListAuditRecords", Body: []byte(`{"maxResults":1000}`)})
	if res.Status != http.StatusOK {
		t.Fatalf("ListAuditRecords: %d %s", res.Status, res.Body)
	}
	var out behalfapi.ListAuditRecordsOutput
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatal(err)
	}
	var recs []behalfapi.AuditRecord
	for _, r := range out.Records {
		if r.Operation == operation {
			recs = append(recs, r)
		}
	}
	return recs, string(res.Body)
}

// TestGatewayCallsAudited: each call through the gateway, standalone or
// mounted, leaves exactly one record naming its route, the gateway's
// principal, the workload and the user (on a tool route, those of the
// caller's token), with the outcome the caller got
// and no credential; a call that cannot be recorded is answered 500 and
// nothing of the upstream's answer reaches the caller.
func TestGatewayCallsAudited(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, mounted := range []bool{false, true} {
			name := map[bool]string{false: "standalone", true: "mounted"}[mounted]
			t.Run(name, func(t *testing.T) { testGatewayCallsAudited(t, newWorld(t, b, mounted)) })
		}
	})
}

func testGatewayCallsAudited(t *testing.T, w *world) {
	jwt := w.userJWT(t, "alice")
	res := w.call(t, "POST", "/agent/invocations", `{}`, map[string]string{"Authorization": "Bearer " + jwt})
	if res.StatusCode != 200 {
		t.Fatalf("agent: %d %s", res.StatusCode, res.body)
	}
	recs, _ := w.gatewayRecords(t)
	if len(recs) != 1 {
		t.Fatalf("%d gateway records after one call: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.Resource != "gateway-route/"+workload || r.Principal != gatewayKeyID || r.Workload != workload ||
		!strings.HasPrefix(r.User, "jwt:"+w.idp.Issuer()+"#") || r.Outcome != "success" || r.ErrorType != "" {
		t.Errorf("agent call's record: %+v", r)
	}

	minted, err := w.s.Data().GetWorkloadAccessTokenForUserId(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String(workload), UserId: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	wat := aws.ToString(minted.WorkloadAccessToken)
	if res := w.call(t, "GET", "/weather", ``, map[string]string{gateway.HeaderWAT: wat, "X-Api-Key": "forged-key"}); res.StatusCode != 200 {
		t.Fatalf("tool: %d %s", res.StatusCode, res.body)
	}
	if res := w.call(t, "GET", "/weather", ``, nil); res.StatusCode != 401 {
		t.Fatalf("tool without a WAT: %d", res.StatusCode)
	}
	w.tool.status.Store(http.StatusTeapot)
	if res := w.call(t, "GET", "/weather", ``, map[string]string{gateway.HeaderWAT: wat}); res.StatusCode != http.StatusTeapot {
		t.Fatalf("tool answering 418: %d", res.StatusCode)
	}
	w.tool.status.Store(0)
	recs, all := w.gatewayRecords(t)
	if len(recs) != 4 {
		t.Fatalf("%d gateway records after four calls: %+v", len(recs), recs)
	}
	// A tool call's record names the caller its token was minted for —
	// the second call served the key from the gateway's cache — and a
	// call without a token names no one.
	want := []struct{ outcome, errorType, workload, user string }{{"success", "", workload, "id:alice"},
		{"failure", "UnauthorizedException", "", ""}, {"failure", "Upstream418", workload, "id:alice"}}
	for i, wr := range want {
		r := recs[i+1]
		if r.Resource != "gateway-route/weather" || r.Principal != gatewayKeyID || r.Outcome != wr.outcome || r.ErrorType != wr.errorType ||
			r.Workload != wr.workload || r.User != wr.user {
			t.Errorf("tool call %d's record: %+v, want %+v", i, r, wr)
		}
	}
	for _, secret := range []string{jwt, wat, weatherKey, "forged-key", gatewaySecret} {
		if strings.Contains(all, secret) {
			t.Errorf("the audit log holds a credential: %.12s…", secret)
		}
	}

	// Without RecordGatewayCall the gateway's principal cannot record:
	// the agent is still called, but its answer is withheld.
	w.do(t, "/behalf/UpdatePrincipal", map[string]any{"accessKeyId": gatewayKeyID,
		"operations": []string{"GetWorkloadAccessTokenForJWT", "GetResourceApiKey", "GetResourceOauth2Token"}}, http.StatusOK)
	res = w.call(t, "POST", "/agent/invocations", `{}`, map[string]string{"Authorization": "Bearer " + jwt})
	if res.StatusCode != http.StatusInternalServerError || res.Header.Get("X-Amzn-ErrorType") != "InternalServerException" ||
		strings.Contains(string(res.body), weatherKey) {
		t.Errorf("a call that cannot be recorded: %d %s", res.StatusCode, res.body)
	}
	// The refused RecordGatewayCall is recorded as any refused call is.
	if recs, _ := w.gatewayRecords(t); len(recs) != 5 || recs[4].Outcome != "failure" || recs[4].ErrorType != "AccessDeniedException" ||
		recs[4].Resource != "" || recs[4].Principal != gatewayKeyID {
		t.Errorf("gateway records after a refused record: %+v", recs)
	}
}

// TestMountedGatewayMetrics: the mounted gateway counts each call by
// route, kind, outcome and error type, with its latency, and no user or
// workload value is an attribute. Its upstream calls, traced, are not
// counted as calls to providers (behalf.outbound.requests).
func TestMountedGatewayMetrics(t *testing.T) {
	recv := otlptest.New(t)
	w := newWorld(t, behalftest.Backends[0], true, func(f *config.File) {
		f.Telemetry.OTLP.Endpoint = recv.URL
		f.Telemetry.Metrics.OTLP = true
		f.Telemetry.Traces.Enabled = true
	})
	if res := w.call(t, "POST", "/agent/invocations", `{}`, map[string]string{"Authorization": "Bearer " + w.userJWT(t, "alice")}); res.StatusCode != 200 {
		t.Fatalf("agent: %d", res.StatusCode)
	}
	if res := w.call(t, "GET", "/weather", ``, nil); res.StatusCode != 401 {
		t.Fatalf("tool without a WAT: %d", res.StatusCode)
	}
	if err := w.s.Server.Telemetry().ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	counts, latencies := map[string]int64{}, map[string]uint64{}
	for _, m := range recv.Metrics() {
		switch m.Name {
		case "behalf.gateway.calls":
			counts = map[string]int64{} // each export holds every total so far
			for _, dp := range m.GetSum().GetDataPoints() {
				counts[attrs(dp.Attributes)] += dp.GetAsInt()
			}
		case "behalf.gateway.call.duration":
			latencies = map[string]uint64{}
			for _, dp := range m.GetHistogram().GetDataPoints() {
				latencies[attrs(dp.Attributes)] += dp.GetCount()
			}
		case "behalf.outbound.requests":
			for _, dp := range m.GetSum().GetDataPoints() {
				if !slices.ContainsFunc(dp.Attributes, func(kv *commonpb.KeyValue) bool {
					return kv.Key == "behalf.provider" && kv.Value.GetStringValue() != ""
				}) {
					t.Errorf("behalf.outbound.requests counts a call to no provider: %s", attrs(dp.Attributes))
				}
			}
		}
	}
	want := map[string]int64{
		"behalf.gateway.route=my-agent behalf.kind=agent behalf.outcome=success error.type=":                          1,
		"behalf.gateway.route=weather behalf.kind=tool behalf.outcome=access_denied error.type=UnauthorizedException": 1,
	}
	if !maps.Equal(counts, want) {
		t.Errorf("behalf.gateway.calls: %v, want %v", counts, want)
	}
	for k := range want {
		if latencies[k] != 1 {
			t.Errorf("behalf.gateway.call.duration %s: %d", k, latencies[k])
		}
	}
}

// attrs writes a data point's attributes as sorted key=value pairs.
func attrs(kvs []*commonpb.KeyValue) string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key+"="+kv.Value.GetStringValue())
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
