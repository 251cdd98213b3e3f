package gateway_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
)

// The helper agent's workload identity and the principal it signs its
// data-plane calls with.
const (
	helperWorkload = "helper-agent"
	helperKeyID    = "BEHALFHELPERTEST01"
	helperSecret   = "behalf-helper-test-secret-0123456789"
)

// chainWorld is the gateway world with two more agents: front (the
// route's workload my-agent), which calls another agent through the
// gateway's InvokeAgentRuntime with its own workload access token, as
// sdk.PropagateWorkloadToken sends it; and helper (workload
// helper-agent), which vends the weather key with the token it is given
// and reports what it saw. Routes: front; helper, callable by my-agent;
// helper-closed, callable by another workload only; helper-none, naming
// no callers.
type chainWorld struct {
	*world
	helperCalls atomic.Int32
}

func newChainWorld(t *testing.T, b behalftest.Backend, mounted bool, edits ...func(*config.File)) *chainWorld {
	t.Helper()
	cw := &chainWorld{}
	var gatewayURL atomic.Value // the front agent's, once known
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw.front(w, r, gatewayURL.Load().(string))
	}))
	t.Cleanup(front.Close)
	helper := httptest.NewServer(http.HandlerFunc(cw.helper))
	t.Cleanup(helper.Close)
	routes := []config.GatewayRouteFile{
		{Name: "front", Path: "/front", Upstream: front.URL, Kind: "agent", Workload: workload, Timeout: 10 * time.Second},
		{Name: "helper", Path: "/helper", Upstream: helper.URL, Kind: "agent", Workload: helperWorkload, Callers: []string{"someone-else", workload}},
		{Name: "helper-closed", Path: "/helper-closed", Upstream: helper.URL, Kind: "agent", Workload: helperWorkload, Callers: []string{"someone-else"}},
		{Name: "helper-none", Path: "/helper-none", Upstream: helper.URL, Kind: "agent", Workload: helperWorkload},
	}
	cw.world = newWorld(t, b, mounted, append(edits, func(f *config.File) {
		if mounted {
			f.Gateway.Routes = append(f.Gateway.Routes, routes...)
		}
	})...)
	w := cw.world
	w.do(t, "/identities/CreateWorkloadIdentity", map[string]any{"name": helperWorkload}, http.StatusCreated)
	w.do(t, "/behalf/UpdatePrincipal", map[string]any{"accessKeyId": gatewayKeyID, "workloads": []string{workload, helperWorkload},
		"operations": []string{"GetWorkloadAccessTokenForJWT", "GetWorkloadAccessTokenForChain", "GetResourceApiKey", "RecordGatewayCall"}}, http.StatusOK)
	w.do(t, "/behalf/CreatePrincipal", map[string]any{"role": "runtime", "workloads": []string{helperWorkload}, "accessKeyId": helperKeyID,
		"secretAccessKey": helperSecret, "operations": []string{"GetResourceApiKey"}}, http.StatusCreated)
	if !mounted {
		f := config.GatewayDefaults()
		f.Endpoint, f.Routes = w.s.URL, append(w.routes(), routes...)
		cfg, err := f.Validate()
		if err != nil {
			t.Fatal(err)
		}
		g, err := gateway.New(cfg, gateway.Options{Data: w.s.DataAs(gatewayKeyID, gatewaySecret)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(g.Handler())
		t.Cleanup(srv.Close)
		w.gateway = srv.URL
	}
	gatewayURL.Store(w.gateway)
	return cw
}

// frontReply is what the front agent answers: the chain it was told, and
// the helper's answer or the error the gateway gave it.
type frontReply struct {
	Chain     string      `json:"chain"`
	Helper    helperReply `json:"helper"`
	ErrorType string      `json:"errorType"`
	Status    int         `json:"status"`
}

// helperReply is what the helper agent saw and did.
type helperReply struct {
	Headers      map[string][]string `json:"headers"`
	APIKey       string              `json:"apiKey"`
	VendError    string              `json:"vendError"`
	VendRequest  string              `json:"vendRequest"`
	IdentityWith string              `json:"identityWith"`
}

// front calls the runtime its payload names through the gateway's
// InvokeAgentRuntime, signed with SigV4 and presenting its own workload
// access token (and, when asked, a forged identity chain).
func (cw *chainWorld) front(w http.ResponseWriter, r *http.Request, gatewayURL string) {
	var in struct {
		Target string `json:"target"`
		Forge  bool   `json:"forge"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	wat := r.Header.Get(gateway.HeaderWAT)
	client := bedrockagentcore.NewFromConfig(behalftest.AWSConfig(gatewayKeyID, gatewaySecret), func(o *bedrockagentcore.Options) {
		o.BaseEndpoint, o.HTTPSignerV4 = aws.String(gatewayURL), cw.s.Signer()
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue(gateway.HeaderWAT, wat))
		if in.Forge {
			o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue(gateway.HeaderIdentityChain, "mallory"))
		}
	})
	out := frontReply{Chain: r.Header.Get(gateway.HeaderIdentityChain)}
	res, err := client.InvokeAgentRuntime(r.Context(), &bedrockagentcore.InvokeAgentRuntimeInput{
		AgentRuntimeArn: aws.String("arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/" + in.Target), Payload: []byte(`{}`)})
	var apiErr smithy.APIError
	var withStatus interface{ HTTPStatusCode() int }
	switch {
	case errors.As(err, &apiErr) && errors.As(err, &withStatus):
		out.ErrorType, out.Status = apiErr.ErrorCode(), withStatus.HTTPStatusCode()
	case err != nil:
		out.ErrorType = err.Error()
	default:
		defer res.Response.Close()
		_ = json.NewDecoder(res.Response).Decode(&out.Helper)
	}
	_ = json.NewEncoder(w).Encode(out)
}

// helper vends the weather key with the token the gateway gave it, as its
// own principal, and reports the request id of that call.
func (cw *chainWorld) helper(w http.ResponseWriter, r *http.Request) {
	cw.helperCalls.Add(1)
	_, _ = io.Copy(io.Discard, r.Body)
	out := helperReply{Headers: r.Header}
	key, err := cw.s.DataAs(helperKeyID, helperSecret).GetResourceApiKey(r.Context(), &bedrockagentcore.GetResourceApiKeyInput{
		ResourceCredentialProviderName: aws.String("weather"), WorkloadIdentityToken: aws.String(r.Header.Get(gateway.HeaderWAT))})
	if err != nil {
		out.VendError = err.Error()
	} else {
		out.APIKey = aws.ToString(key.ApiKey)
		out.VendRequest, _ = awsmiddleware.GetRequestIDMetadata(key.ResultMetadata)
	}
	_ = json.NewEncoder(w).Encode(out) //nolint:gosec // G117: the test's stand-in agent reports the key it got, for the test to compare
}

// invokeFront calls the front agent through the gateway as alice.
func (cw *chainWorld) invokeFront(t *testing.T, jwt, payload string, headers map[string]string) frontReply {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + jwt, "Content-Type": "application/json"}
	for k, v := range headers {
		h[k] = v
	}
	res := cw.call(t, "POST", "/front/invocations", payload, h)
	var out frontReply
	if err := json.Unmarshal(res.body, &out); res.StatusCode != 200 || err != nil {
		t.Fatalf("front: %d %s", res.StatusCode, res.body)
	}
	return out
}

// auditRecords lists the whole audit log.
func (w *world) auditRecords(t *testing.T) []behalfapi.AuditRecord {
	t.Helper()
	res := w.s.Do(t, behalftest.Raw{Path: "/behalf/ListAuditRecords", Body: []byte(`{"maxResults":1000}`)})
	var out behalfapi.ListAuditRecordsOutput
	if err := json.Unmarshal(res.Body, &out); err != nil || res.Status != http.StatusOK {
		t.Fatalf("ListAuditRecords: %d %s", res.Status, res.Body)
	}
	return out.Records
}

// TestIdentityChain: alice calls front through the gateway with her JWT;
// front calls helper through the gateway with its own workload access
// token. helper gets a token for alice naming the chain [my-agent], is
// told the chain in X-Behalf-Identity-Chain (front's forged one is
// dropped, as is front's SigV4 signature), and vends with it: that call's
// record names alice and the chain, as does the gateway's record of the
// helper call. A caller the route does not allow, or a route naming no
// callers, is refused 403 and the helper is never called.
func TestIdentityChain(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, mounted := range []bool{false, true} {
			t.Run(map[bool]string{false: "standalone", true: "mounted"}[mounted], func(t *testing.T) {
				testIdentityChain(t, newChainWorld(t, b, mounted))
			})
		}
	})
}

func testIdentityChain(t *testing.T, cw *chainWorld) {
	jwt := cw.userJWT(t, "alice")
	out := cw.invokeFront(t, jwt, `{"target":"helper","forge":true}`, map[string]string{gateway.HeaderIdentityChain: "mallory"})
	if out.Chain != "" || out.Status != 0 || out.Helper.APIKey != weatherKey {
		t.Fatalf("front's reply: %+v", out)
	}
	h := http.Header(out.Helper.Headers)
	if got := h.Values(gateway.HeaderIdentityChain); !slices.Equal(got, []string{workload}) {
		t.Errorf("helper was told the chain %q, want exactly %q", got, workload)
	}
	if h.Get("Authorization") != "" || h.Get(gateway.HeaderWAT) == "" {
		t.Errorf("helper's headers: %v", h)
	}
	recs := cw.auditRecords(t)
	user := "jwt:" + cw.idp.Issuer() + "#"
	vend := slices.IndexFunc(recs, func(r behalfapi.AuditRecord) bool { return r.RequestID == out.Helper.VendRequest })
	if vend < 0 {
		t.Fatalf("no record of the helper's vend %q", out.Helper.VendRequest)
	}
	if r := recs[vend]; r.Principal != helperKeyID || r.Workload != helperWorkload || !strings.HasPrefix(r.User, user) ||
		!slices.Equal(r.Actors, []string{workload}) || r.Outcome != "success" {
		t.Errorf("the helper's vend: %+v", r)
	}
	alice := recs[vend].User
	var helperCall, frontCall *behalfapi.AuditRecord
	for i, r := range recs {
		switch {
		case r.Operation == "RecordGatewayCall" && r.Resource == "gateway-route/helper":
			helperCall = &recs[i]
		case r.Operation == "RecordGatewayCall" && r.Resource == "gateway-route/front":
			frontCall = &recs[i]
		case r.Operation == "GetWorkloadAccessTokenForChain":
			if r.Principal != gatewayKeyID || r.Workload != helperWorkload || r.User != alice || !slices.Equal(r.Actors, []string{workload}) {
				t.Errorf("the chain's minting: %+v", r)
			}
		}
	}
	if helperCall == nil || helperCall.User != alice || helperCall.Workload != helperWorkload || !slices.Equal(helperCall.Actors, []string{workload}) ||
		helperCall.Outcome != "success" {
		t.Errorf("the gateway's record of the helper call: %+v", helperCall)
	}
	if frontCall == nil || frontCall.Actors != nil || frontCall.User != alice {
		t.Errorf("the gateway's record of alice's call: %+v", frontCall)
	}

	// A tool never sees behalf's headers as a caller sent them.
	minted, err := cw.s.Data().GetWorkloadAccessTokenForUserId(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String(workload), UserId: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	res := cw.call(t, "GET", "/weather", "", map[string]string{gateway.HeaderWAT: aws.ToString(minted.WorkloadAccessToken), gateway.HeaderIdentityChain: "mallory"})
	if seen := cw.tool.last(); res.StatusCode != 200 || seen.Header.Get(gateway.HeaderIdentityChain) != "" {
		t.Errorf("a tool call with a forged chain: %d, the tool saw %q", res.StatusCode, seen.Header.Get(gateway.HeaderIdentityChain))
	}

	calls := cw.helperCalls.Load()
	for _, target := range []string{"helper-closed", "helper-none"} {
		out := cw.invokeFront(t, jwt, `{"target":"`+target+`"}`, nil)
		if out.Status != http.StatusForbidden || out.ErrorType != "AccessDeniedException" {
			t.Errorf("front calling %s: %+v, want a 403 AccessDeniedException", target, out)
		}
	}
	if n := cw.helperCalls.Load(); n != calls {
		t.Errorf("the helper was called %d times by callers it does not accept", n-calls)
	}
}

// TestIdentityChainRefusals: a forged or expired caller token is a 401
// challenge; a token of a workload the route does not name, a 403;
// neither reaches the agent, and both are recorded as the gateway's
// refusals.
func TestIdentityChainRefusals(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		cw := newChainWorld(t, b, false)
		mint := func(workloadName string) string {
			out, err := cw.s.Data().GetWorkloadAccessTokenForUserId(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
				WorkloadName: aws.String(workloadName), UserId: aws.String("bob")})
			if err != nil {
				t.Fatal(err)
			}
			return aws.ToString(out.WorkloadAccessToken)
		}
		// A caller the route names, presenting its token under the older
		// header name, as a plain HTTP client.
		res := cw.call(t, "POST", "/helper/invocations", `{}`, map[string]string{gateway.HeaderWATLegacy: mint(workload)})
		var seen helperReply
		if err := json.Unmarshal(res.body, &seen); res.StatusCode != 200 || err != nil || seen.APIKey != weatherKey ||
			http.Header(seen.Headers).Get(gateway.HeaderIdentityChain) != workload {
			t.Fatalf("a named caller: %d %s", res.StatusCode, res.body)
		}
		for _, c := range []struct {
			name, token, errType string
			status               int
		}{
			{"forged", "forged", "UnauthorizedException", 401},
			{"the callee's own token, not a caller", mint(helperWorkload), "AccessDeniedException", 403},
		} {
			res := cw.call(t, "POST", "/helper/invocations", `{}`, map[string]string{gateway.HeaderWAT: c.token})
			if res.StatusCode != c.status || decode(t, res)["__type"] != c.errType {
				t.Errorf("%s: %d %s", c.name, res.StatusCode, res.body)
			}
			if c.status == 401 && res.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Errorf("%s: challenge %q", c.name, res.Header.Get("WWW-Authenticate"))
			}
		}
		if n := cw.helperCalls.Load(); n != 1 {
			t.Errorf("the helper was called %d times, want once", n)
		}
		recs, _ := cw.gatewayRecords(t)
		var refused []string
		for _, r := range recs {
			if r.Resource == "gateway-route/helper" && r.Outcome == "failure" {
				refused = append(refused, r.ErrorType)
			}
		}
		if !slices.Equal(refused, []string{"UnauthorizedException", "AccessDeniedException"}) {
			t.Errorf("the gateway's records of refused calls: %v", refused)
		}
	})
}

// TestIdentityChainTraces: the mounted gateway's span of a chained call,
// and behalf's span minting the chained token under it, name the chain;
// the span of the user's own call names none.
func TestIdentityChainTraces(t *testing.T) {
	recv := otlptest.New(t)
	cw := newChainWorld(t, behalftest.Backends[0], true, func(f *config.File) {
		f.Telemetry.OTLP.Endpoint = recv.URL
		f.Telemetry.Traces.Enabled = true
	})
	if out := cw.invokeFront(t, cw.userJWT(t, "alice"), `{"target":"helper"}`, nil); out.Helper.APIKey != weatherKey {
		t.Fatalf("front's reply: %+v", out)
	}
	if err := cw.s.Server.Telemetry().ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, s := range recv.Spans() {
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
			if name := s.Name; name == "gateway helper" || name == "gateway front" || name == "GetWorkloadAccessTokenForChain" {
				found[name] = otlptest.Attr(s, "behalf.actors")
			}
		}
	}
	want := map[string]string{"gateway helper": workload, "gateway front": "", "GetWorkloadAccessTokenForChain": workload}
	for name, actors := range want {
		if got, ok := found[name]; !ok || got != actors {
			t.Errorf("span %s: behalf.actors %q (found %v), want %q", name, got, ok, actors)
		}
	}
}
