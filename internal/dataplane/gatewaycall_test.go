package dataplane_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/wat"
)

// TestRecordGatewayCallNamesToolCallers: a tool route's record names the
// workload, user and chain the caller's token was minted for, and not the
// token; a token that does not open names no one but is still recorded;
// the token is refused where it has no place.
func TestRecordGatewayCallNamesToolCallers(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		gateway := createPrincipal(t, w.s, workloadW1)
		token := mintForUser(t, w.rt, workloadW1, "alice")
		record := func(in behalfapi.RecordGatewayCallInput) behalftest.Response {
			t.Helper()
			raw, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			return w.s.Do(t, behalftest.Raw{Path: "/behalf/RecordGatewayCall", Body: raw, KeyID: gateway.ID, Secret: gateway.Secret})
		}
		tool := behalfapi.RecordGatewayCallInput{Route: "weather", Kind: "tool", Status: http.StatusOK, CallerToken: token}
		if res := record(tool); res.Status != http.StatusOK {
			t.Fatalf("RecordGatewayCall: %d %s", res.Status, res.Body)
		}
		rec := auditByRequest(t, w.s, lastRequestID(t, w.s, "RecordGatewayCall"))
		if rec.Workload != workloadW1 || rec.User != wat.UserFromID("alice") || rec.Resource != "gateway-route/weather" || rec.Outcome != "success" {
			t.Errorf("the tool call's record: %+v", rec)
		}

		mcpCall := behalfapi.RecordGatewayCallInput{Route: "weather-mcp", Kind: "mcp", Status: http.StatusForbidden,
			ErrorType: "InsufficientScope", Rule: "tools/call:set_alert", Scopes: []string{"weather.alerts"}, CallerToken: token}
		if res := record(mcpCall); res.Status != http.StatusOK {
			t.Fatalf("RecordGatewayCall of an mcp route: %d %s", res.Status, res.Body)
		}
		rec = auditByRequest(t, w.s, lastRequestID(t, w.s, "RecordGatewayCall"))
		if rec.Workload != workloadW1 || rec.User != wat.UserFromID("alice") || rec.Resource != "gateway-route/weather-mcp/tools/call:set_alert" {
			t.Errorf("the mcp call's record: %+v", rec)
		}

		forged := tool
		forged.CallerToken, forged.Status, forged.ErrorType = token[:len(token)-4]+"AAAA", http.StatusUnauthorized, "UnauthorizedException"
		if res := record(forged); res.Status != http.StatusOK {
			t.Fatalf("RecordGatewayCall with a forged token: %d %s", res.Status, res.Body)
		}
		rec = auditByRequest(t, w.s, lastRequestID(t, w.s, "RecordGatewayCall"))
		if rec.Workload != "" || rec.User != "" || rec.Outcome != "failure" || rec.ErrorType != "UnauthorizedException" {
			t.Errorf("the record of a call with a forged token: %+v", rec)
		}

		for name, in := range map[string]behalfapi.RecordGatewayCallInput{
			"on an agent route": {Route: "agent", Kind: "agent", Workload: workloadW1, Status: http.StatusOK, CallerToken: token},
			"with a user named": {Route: "weather", Kind: "tool", User: "id:mallory", Status: http.StatusOK, CallerToken: token},
		} {
			if res := record(in); res.Status != http.StatusBadRequest || !strings.Contains(string(res.Body), "callerToken") {
				t.Errorf("callerToken %s: %d %s", name, res.Status, res.Body)
			}
		}
		_, bodies := listAudit(t, w.s, map[string]any{"operation": "RecordGatewayCall"})
		for _, body := range bodies {
			if strings.Contains(string(body), token[:40]) {
				t.Fatal("the audit log holds the caller's token")
			}
		}
	})
}
