package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// gatewayRecords lists the audit records of gateway calls, oldest first,
// and the whole log as JSON.
func (w *world) gatewayRecords(t *testing.T) ([]behalfapi.AuditRecord, string) {
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
		if r.Operation == "RecordGatewayCall" {
			recs = append(recs, r)
		}
	}
	return recs, string(res.Body)
}

// TestGatewayCallsAudited: each call through the gateway, standalone or
// mounted, leaves exactly one record naming its route, the gateway's
// principal, the workload and the user, with the outcome the caller got
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
	want := []struct{ outcome, errorType string }{{"success", ""}, {"failure", "UnauthorizedException"}, {"failure", "Upstream418"}}
	for i, wr := range want {
		r := recs[i+1]
		if r.Resource != "gateway-route/weather" || r.Principal != gatewayKeyID || r.Outcome != wr.outcome || r.ErrorType != wr.errorType {
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
