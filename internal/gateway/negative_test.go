package gateway_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// negativeCase is one call the gateway must refuse, or repair before
// forwarding, and what the caller and the audit trail must show of it.
type negativeCase struct {
	name string
	// call makes the call; in is the suite's shared state.
	call func(t *testing.T, in *negativeWorld) reply
	want expect
	// check makes the case's own assertions, if any.
	check func(t *testing.T, in *negativeWorld, r reply)
}

// expect is what the caller gets and the audit trail shows of a call.
type expect struct {
	// status and errType are what the caller gets (errType: the body's
	// __type and X-Amzn-ErrorType; "" for an upstream's answer).
	status  int
	errType string
	// challenge is the WWW-Authenticate header, when one is due.
	challenge string
	// cut: the response body ends before its end.
	cut bool
	// records are the audit records the call adds, in order.
	records []wantRecord
}

type wantRecord struct{ route, errorType string }

// negativeWorld is a world with what the cases share.
type negativeWorld struct {
	*world
	// wat is alice's workload access token for the routes' workload;
	// otherWAT hers for another workload.
	wat, otherWAT string
	jwt           string
}

// TestNegativeCorpus is every way a call through the gateway must fail,
// or have what a caller forged removed, on SQLite and PostgreSQL, with
// the gateway standalone and mounted: each case asserts the status, the
// typed error (and the bearer challenge where one is due) and the audit
// records of the call.
func TestNegativeCorpus(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, mounted := range []bool{false, true} {
			t.Run(map[bool]string{false: "standalone", true: "mounted"}[mounted], func(t *testing.T) {
				in := newNegativeWorld(t, b, mounted)
				for _, c := range negativeCases {
					t.Run(c.name, func(t *testing.T) { in.run(t, c) })
				}
			})
		}
	})
}

func newNegativeWorld(t *testing.T, b behalftest.Backend, mounted bool) *negativeWorld {
	w := newWorld(t, b, mounted)
	in := &negativeWorld{world: w, wat: w.wat(t, "alice"), jwt: w.userJWT(t, "alice")}
	if _, err := w.s.Control().CreateWorkloadIdentity(t.Context(), &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("other-agent")}); err != nil {
		t.Fatal(err)
	}
	other, err := w.s.Data().GetWorkloadAccessTokenForUserId(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String("other-agent"), UserId: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	in.otherWAT = aws.ToString(other.WorkloadAccessToken)
	w.principal(t, "BEHALFNONAMETEST01", []string{workload}, []string{"GetWorkloadAccessTokenForJWT"})
	w.principal(t, "BEHALFOTHERTEST001", []string{"other-agent"}, []string{"GetWorkloadAccessTokenForUserId"})
	w.principal(t, "BEHALFCALLERTEST01", []string{workload}, []string{"GetWorkloadAccessTokenForUserId"})
	return in
}

func (in *negativeWorld) run(t *testing.T, c negativeCase) {
	want := c.want
	before, _ := in.gatewayRecords(t)
	r := c.call(t, in)
	if r.StatusCode != want.status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, want.status, r.body)
	}
	if (r.readErr != nil) != want.cut {
		t.Errorf("reading the response: %v", r.readErr)
	}
	if want.errType != "" {
		if got := decode(t, r)["__type"]; got != want.errType || r.Header.Get("X-Amzn-ErrorType") != want.errType {
			t.Errorf("error type %v (header %q), want %s", got, r.Header.Get("X-Amzn-ErrorType"), want.errType)
		}
	}
	if got := r.Header.Get("WWW-Authenticate"); got != want.challenge {
		t.Errorf("WWW-Authenticate %q, want %q", got, want.challenge)
	}
	if c.check != nil {
		c.check(t, in, r)
	}
	after, _ := in.gatewayRecords(t)
	in.expectRecords(t, after[len(before):], want.records)
}

// expectRecords checks the records a call added: each by the gateway's
// principal, naming the route, with the outcome the caller got.
func (in *negativeWorld) expectRecords(t *testing.T, added []behalfapi.AuditRecord, want []wantRecord) {
	t.Helper()
	if len(added) != len(want) {
		t.Fatalf("%d records added, want %d: %+v", len(added), len(want), added)
	}
	for i, wr := range want {
		rec, outcome := added[i], map[bool]string{true: "success", false: "failure"}[wr.errorType == ""]
		if rec.Resource != "gateway-route/"+wr.route || rec.Outcome != outcome || rec.ErrorType != wr.errorType || rec.Principal != gatewayKeyID {
			t.Errorf("record %d: %s %s %s by %s, want route %s, %s %s", i, rec.Resource, rec.Outcome, rec.ErrorType, rec.Principal,
				wr.route, outcome, wr.errorType)
		}
	}
}

// invoke calls the agent route with the official SDK's InvokeAgentRuntime,
// signed with SigV4 as keyID, naming alice, and returns the answer as a
// reply.
func (in *negativeWorld) invoke(t *testing.T, keyID string) reply {
	t.Helper()
	return in.invokeAs(t, keyID, keyID+"-secret-0123456789", []byte(`{}`))
}

// invokeAs is invoke signing with secret, sending payload.
func (in *negativeWorld) invokeAs(t *testing.T, keyID, secret string, payload []byte) reply {
	t.Helper()
	out, err := in.invoker(keyID, secret).InvokeAgentRuntime(t.Context(), &bedrockagentcore.InvokeAgentRuntimeInput{
		AgentRuntimeArn: aws.String(runtimeARN), Payload: payload, RuntimeUserId: aws.String("alice")})
	if err == nil {
		_ = out.Response.Close()
		return reply{StatusCode: http.StatusOK, Header: http.Header{}}
	}
	var apiErr smithy.APIError
	var re *smithyhttp.ResponseError
	if !errors.As(err, &apiErr) || !errors.As(err, &re) {
		t.Fatalf("not an API error: %v", err)
	}
	return reply{StatusCode: re.HTTPStatusCode(), Header: re.Response.Header,
		body: []byte(`{"__type":"` + apiErr.ErrorCode() + `","message":` + quote(apiErr.ErrorMessage()) + `}`)}
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// agentCall calls the agent route's path with alice's JWT (auth "" for
// none) and headers.
func (in *negativeWorld) agentCall(t *testing.T, path, body, auth string, headers map[string]string) reply {
	h := map[string]string{}
	if auth != "" {
		h["Authorization"] = auth
	}
	for k, v := range headers {
		h[k] = v
	}
	return in.send(t, "POST", "/agent"+path, body, h)
}

// toolCall calls a tool route's path with a workload access token.
func (in *negativeWorld) toolCall(t *testing.T, path, body, wat string, headers map[string]string) reply {
	h := map[string]string{}
	if wat != "" {
		h[gateway.HeaderWAT] = wat
	}
	for k, v := range headers {
		h[k] = v
	}
	return in.send(t, "POST", path, body, h)
}

// rawCall sends a request through the gateway with headers as given,
// several values of one name included.
func (in *negativeWorld) rawCall(t *testing.T, method, path, body string, headers http.Header) reply {
	t.Helper()
	req, _ := http.NewRequest(method, in.gateway+path, strings.NewReader(body))
	req.Header = headers
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return reply{StatusCode: res.StatusCode, Header: res.Header, body: raw, readErr: err}
}

// sendOnce sends a request through the gateway without following a
// redirect.
func (in *negativeWorld) sendOnce(t *testing.T, method, path string, headers map[string]string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, in.gateway+path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return reply{StatusCode: res.StatusCode, Header: res.Header, body: raw, readErr: err}
}

// trickle sends a POST through the gateway that announces a body of 100
// bytes but sends 10 of them, and reads the answer it gets within 10
// seconds.
func (in *negativeWorld) trickle(t *testing.T, path string, headers map[string]string) reply {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", strings.TrimPrefix(in.gateway, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "POST " + path + " HTTP/1.1\r\nHost: gateway\r\nContent-Length: 100\r\n"
	for k, v := range headers {
		req += k + ": " + v + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body: %v", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return reply{StatusCode: res.StatusCode, Header: res.Header, body: raw, readErr: err}
}

// forwardedHeaders are the headers the test agent says it received.
func forwardedHeaders(t *testing.T, r reply) http.Header {
	h := http.Header{}
	for k, v := range decode(t, r)["headers"].(map[string]any) {
		for _, s := range v.([]any) {
			h.Add(k, s.(string))
		}
	}
	return h
}

const invalidToken = `Bearer error="invalid_token"`

// says checks that the refusal's message says why.
func says(why string) func(t *testing.T, _ *negativeWorld, r reply) {
	return func(t *testing.T, _ *negativeWorld, r reply) {
		if msg, _ := decode(t, r)["message"].(string); !strings.Contains(msg, why) {
			t.Errorf("the refusal %q does not say %q", msg, why)
		}
	}
}

// refused is the answer to a refused call: the gateway's typed error, and
// its one record.
func refused(route string, status int, errType, challenge string) expect {
	return expect{status: status, errType: errType, challenge: challenge, records: []wantRecord{{route, errType}}}
}

var negativeCases = []negativeCase{
	{name: "JWT missing", want: refused(workload, 401, "UnauthorizedException", "Bearer"),
		call: func(t *testing.T, in *negativeWorld) reply { return in.agentCall(t, "/invocations", `{}`, "", nil) }},
	{name: "not a bearer token", want: refused(workload, 401, "UnauthorizedException", "Bearer"),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/invocations", `{}`, "Basic YTpi", nil)
		}},
	{name: "JWT malformed", want: refused(workload, 401, "UnauthorizedException", invalidToken),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/invocations", `{}`, "Bearer not-a-jwt", nil)
		}},
	{name: "JWT expired", want: refused(workload, 401, "UnauthorizedException", invalidToken),
		call: func(t *testing.T, in *negativeWorld) reply {
			in.idpClock.Advance(-2 * time.Hour) // issued two hours ago, for one
			jwt := in.userJWT(t, "alice")
			in.idpClock.Advance(2 * time.Hour)
			return in.agentCall(t, "/invocations", `{}`, "Bearer "+jwt, nil)
		}},
	{name: "JWT with a forged signature", want: refused(workload, 401, "UnauthorizedException", invalidToken),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/invocations", `{}`, "Bearer "+in.jwt[:strings.LastIndex(in.jwt, ".")+1]+"AAAA", nil)
		}},
	{name: "JWT for another audience", want: refused(workload, 401, "UnauthorizedException", invalidToken),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/invocations", `{}`, "Bearer "+in.userJWTFor(t, "agent", "agent-secret", "alice"), nil)
		}},
	// A SigV4 caller, standalone or mounted, must sign as a principal
	// behalf knows, with its secret, allowed to act for the route's
	// workload and to name users: behalf verifies it.
	{name: "SigV4 caller not allowed to name users", want: refused(workload, 403, "AccessDeniedException", ""),
		call:  func(t *testing.T, in *negativeWorld) reply { return in.invoke(t, "BEHALFNONAMETEST01") },
		check: says("GetWorkloadAccessTokenForUserId")},
	{name: "SigV4 caller of another workload", want: refused(workload, 403, "AccessDeniedException", ""),
		call:  func(t *testing.T, in *negativeWorld) reply { return in.invoke(t, "BEHALFOTHERTEST001") },
		check: says("not granted workload identity " + workload)},
	{name: "SigV4 caller with a wrong secret", want: refused(workload, 403, "AccessDeniedException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.invokeAs(t, "BEHALFCALLERTEST01", "not-its-secret-0123456789", []byte(`{}`))
		},
		check: says("signature we calculated does not match")},
	{name: "SigV4 caller's body over the route's limit", want: refused(workload, 413, "ValidationException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.invokeAs(t, "BEHALFCALLERTEST01", "BEHALFCALLERTEST01-secret-0123456789", []byte(strings.Repeat("x", 2<<10)))
		}},
	{name: "SigV4 caller unknown to behalf", want: refused(workload, 401, "UnauthorizedException", ""),
		call:  func(t *testing.T, in *negativeWorld) reply { return in.invoke(t, "BEHALFNOBODYTEST01") },
		check: says("does not exist")},
	{name: "forged Runtime headers dropped on an agent route", want: expect{status: 200, records: []wantRecord{{workload, ""}}},
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/invocations", `{}`, "Bearer "+in.jwt, map[string]string{
				gateway.HeaderWAT: "forged-wat", gateway.HeaderWATLegacy: "forged-wat", "X-Amzn-Bedrock-AgentCore-Runtime-User-Id": "mallory",
				"X-Amz-Security-Token": "forged", "X-Amzn-Trace-Id": "forged", "Cookie": "a=b", gateway.HeaderRequestID: "forged-request",
				"X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant": "t1"})
		},
		check: func(t *testing.T, _ *negativeWorld, r reply) {
			h := forwardedHeaders(t, r)
			if wat := h.Get(gateway.HeaderWAT); wat == "" || wat == "forged-wat" || h.Get(gateway.HeaderWATLegacy) != wat || decode(t, r)["apiKey"] != weatherKey {
				t.Errorf("the agent's workload access token: %q, legacy %q", wat, h.Get(gateway.HeaderWATLegacy))
			}
			if rid := h.Get(gateway.HeaderRequestID); rid == "" || rid == "forged-request" {
				t.Errorf("request id %q", rid)
			}
			for _, k := range []string{"X-Amzn-Bedrock-Agentcore-Runtime-User-Id", "X-Amz-Security-Token", "X-Amzn-Trace-Id", "Cookie"} {
				if h.Get(k) != "" {
					t.Errorf("%s reached the agent", k)
				}
			}
			if h.Get("X-Amzn-Bedrock-Agentcore-Runtime-Custom-Tenant") != "t1" {
				t.Errorf("a custom header was dropped: %v", h)
			}
		}},
	// Authorization is a singleton (RFC 9110 §11.6.2): a second one, which
	// the gateway would not have checked, must not reach the agent beside
	// the JWT it did check.
	{name: "two Authorization headers on an agent route", want: refused(workload, 400, "ValidationException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.rawCall(t, "POST", "/agent/invocations", `{}`, http.Header{"Authorization": {"Bearer " + in.jwt, "Bearer forged.jwt.value"}})
		}},
	// Headers a caller names in Connection are hop-by-hop to the proxy,
	// which would drop them from what it forwards: never the Runtime's,
	// which the gateway sets after.
	{name: "Connection naming the Runtime headers on an agent route", want: expect{status: 200, records: []wantRecord{{workload, ""}}},
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/invocations", `{}`, "Bearer "+in.jwt, map[string]string{
				"Connection": gateway.HeaderWAT + ", " + gateway.HeaderWATLegacy + ", " + gateway.HeaderSessionID + ", Authorization"})
		},
		check: func(t *testing.T, _ *negativeWorld, r reply) {
			h := forwardedHeaders(t, r)
			if h.Get(gateway.HeaderWAT) == "" || h.Get(gateway.HeaderWATLegacy) == "" || h.Get(gateway.HeaderSessionID) == "" || h.Get("Connection") != "" {
				t.Errorf("the agent got %v", h)
			}
		}},
	{name: "workload access token missing on a tool route", want: refused("weather", 401, "UnauthorizedException", "Bearer"),
		call: func(t *testing.T, in *negativeWorld) reply { return in.toolCall(t, "/weather", ``, "", nil) }},
	{name: "workload access token forged on a tool route", want: refused("weather", 401, "UnauthorizedException", invalidToken),
		call: func(t *testing.T, in *negativeWorld) reply { return in.toolCall(t, "/weather", ``, "forged", nil) }},
	{name: "workload access token of another workload on a tool route", want: refused("weather", 403, "AccessDeniedException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			in.tool.status.Store(http.StatusTeapot) // the tool must not be called
			defer in.tool.status.Store(0)
			return in.toolCall(t, "/weather", ``, in.otherWAT, nil)
		}},
	{name: "forged credential replaced on a tool route", want: expect{status: 200, records: []wantRecord{{"weather", ""}}},
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.toolCall(t, "/weather", `{"q":1}`, in.wat, map[string]string{"X-Api-Key": "forged", "Authorization": "Bearer forged",
				"X-Amz-Security-Token": "forged", gateway.HeaderWATLegacy: "forged", "Cookie": "a=b",
				"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Baggage": "user=alice"})
		},
		check: func(t *testing.T, in *negativeWorld, _ reply) {
			seen := in.tool.last()
			if got := seen.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != weatherKey {
				t.Errorf("the tool got X-Api-Key %v", got)
			}
			for _, k := range []string{"Authorization", "X-Amz-Security-Token", gateway.HeaderWAT, gateway.HeaderWATLegacy, "Cookie", "Traceparent", "Baggage"} {
				if seen.Header.Get(k) != "" {
					t.Errorf("%s reached the tool", k)
				}
			}
		}},
	{name: "oversized body on an agent route", want: refused(workload, 413, "ValidationException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/invocations", strings.Repeat("x", 2<<10), "Bearer "+in.jwt, nil)
		}},
	{name: "oversized body on a tool route", want: refused("stream", 413, "ValidationException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.toolCall(t, "/stream", strings.Repeat("x", 2<<10), in.wat, nil)
		}},
	{name: "slow agent", want: refused(workload, 504, "GatewayTimeoutException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/slow", `{}`, "Bearer "+in.jwt, nil)
		}},
	{name: "slow tool", want: refused("stream", 504, "GatewayTimeoutException", ""),
		call: func(t *testing.T, in *negativeWorld) reply { return in.toolCall(t, "/stream/slow", ``, in.wat, nil) }},
	{name: "agent hangs up without answering", want: refused(workload, 502, "BadGatewayException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/drop", `{}`, "Bearer "+in.jwt, nil)
		}},
	// The response started, and was recorded, before the tool hung up:
	// the caller sees the stream cut, and a second record says so.
	{name: "tool cuts its stream", want: expect{status: 200, cut: true, records: []wantRecord{{"stream", ""}, {"stream", "UpstreamStreamCut"}}},
		call: func(t *testing.T, in *negativeWorld) reply { return in.toolCall(t, "/stream/cut", ``, in.wat, nil) },
		check: func(t *testing.T, _ *negativeWorld, r reply) {
			if !errors.Is(r.readErr, io.ErrUnexpectedEOF) || string(r.body) != "data: first\n\n" {
				t.Errorf("the caller read %q, then %v; want the first event and a cut stream", r.body, r.readErr)
			}
		}},
	// Dot segments the mux does not see (percent-encoded, or behind an
	// encoded slash) would take the call out of the route's upstream path
	// once the upstream decodes and resolves them (RFC 3986 §5.2.4): the
	// tool under /weather must not be made to serve /admin with the key.
	{name: "encoded dot segments on a tool route", want: refused("weather", 400, "ValidationException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			in.tool.status.Store(http.StatusTeapot) // the tool must not be called
			defer in.tool.status.Store(0)
			return in.toolCall(t, "/weather/x/%2e%2e/%2E%2E/admin", ``, in.wat, nil)
		}},
	{name: "dot segments behind encoded slashes on a tool route", want: refused("weather", 400, "ValidationException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			in.tool.status.Store(http.StatusTeapot)
			defer in.tool.status.Store(0)
			return in.toolCall(t, "/weather/x%2F..%2F..%2Fadmin", ``, in.wat, nil)
		}},
	{name: "encoded dot segments on an agent route", want: refused(workload, 400, "ValidationException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/%2e%2e/admin", `{}`, "Bearer "+in.jwt, nil)
		}},
	{name: "encoded slash kept in a tool route's path", want: expect{status: 200, records: []wantRecord{{"weather", ""}}},
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.toolCall(t, "/weather/cities/Paris%2FFrance", ``, in.wat, nil)
		},
		check: func(t *testing.T, in *negativeWorld, _ reply) {
			if got := in.tool.last().URL.EscapedPath(); got != "/weather/cities/Paris%2FFrance" {
				t.Errorf("the tool was asked for %s", got)
			}
		}},
	// A proxy drops the hop-by-hop headers a caller names (RFC 9110
	// §7.6.1) and, as net/http/httputil's does, the forwarding headers a
	// caller could forge to pass for another client (RFC 7239).
	{name: "hop-by-hop and forwarding headers dropped on a tool route", want: expect{status: 200, records: []wantRecord{{"weather", ""}}},
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.toolCall(t, "/weather", ``, in.wat, map[string]string{"Connection": "X-Api-Key, X-Tenant", "X-Tenant": "t1",
				"Keep-Alive": "timeout=5", "Proxy-Connection": "keep-alive", "X-Forwarded-For": "10.1.2.3", "Forwarded": "for=10.1.2.3",
				"X-Forwarded-Host": "admin.internal", "X-Forwarded-Proto": "https", "X-Kept": "yes"})
		},
		check: func(t *testing.T, in *negativeWorld, _ reply) {
			seen := in.tool.last()
			for _, k := range []string{"Connection", "X-Tenant", "Keep-Alive", "Proxy-Connection", "X-Forwarded-For", "Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v := seen.Header.Values(k); len(v) > 0 {
					t.Errorf("%s %q reached the tool", k, v)
				}
			}
			if got := seen.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != weatherKey || seen.Header.Get("X-Kept") != "yes" {
				t.Errorf("the tool got X-Api-Key %v, X-Kept %q", got, seen.Header.Get("X-Kept"))
			}
		}},
	// A tool's redirect that echoes its request's query (a trailing-slash
	// redirect, say) must not hand the caller the key the gateway put
	// there.
	{name: "query-parameter credential removed from a tool's redirect", want: expect{status: 302, records: []wantRecord{{"weather-q", ""}}},
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.sendOnce(t, "GET", "/weather-q/moved?city=Paris", map[string]string{gateway.HeaderWAT: in.wat})
		},
		check: func(t *testing.T, _ *negativeWorld, r reply) {
			for _, k := range []string{"Location", "Content-Location"} {
				if got := r.Header.Get(k); got != "/weather-q/moved/there?city=Paris" {
					t.Errorf("%s %q", k, got)
				}
			}
			if strings.Contains(string(r.body), weatherKey) {
				t.Errorf("the redirect's body holds the key: %s", r.body)
			}
		}},
	// The listeners set no ReadTimeout: the route's timeout bounds the
	// reading of a body, which a caller sending a little of it and then
	// nothing (slowloris) would otherwise hold the call with for ever.
	{name: "caller trickling its body on a tool route", want: refused("stream", 408, "RequestTimeoutException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.trickle(t, "/stream", map[string]string{gateway.HeaderWAT: in.wat})
		}},
	{name: "caller trickling its body on an agent route", want: refused(workload, 408, "RequestTimeoutException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.trickle(t, "/agent/stream", map[string]string{"Authorization": "Bearer " + in.jwt})
		}},
	{name: "SigV4 caller trickling its body", want: refused(workload, 408, "RequestTimeoutException", ""),
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.trickle(t, "/agent/invocations", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=BEHALFCALLERTEST01/",
				behalfapi.RuntimeUserIDHeader: "alice"})
		}},
	// The body read, its read deadline is lifted: the route's timeout,
	// not the caller's connection, ends the stream, and says so.
	{name: "agent stream past the route's timeout", want: expect{status: 200, cut: true,
		records: []wantRecord{{workload, ""}, {workload, "GatewayTimeoutException"}}},
		call: func(t *testing.T, in *negativeWorld) reply {
			return in.agentCall(t, "/stream", `{}`, "Bearer "+in.jwt, nil)
		}},
	{name: "tool refusing connections", want: refused("down", 502, "BadGatewayException", ""),
		call: func(t *testing.T, in *negativeWorld) reply { return in.toolCall(t, "/down", ``, in.wat, nil) }},
}
