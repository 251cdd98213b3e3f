package dataplane_test

// Signed callers: GetWorkloadAccessTokenForSignedCaller verifies the
// SigV4 signature of a caller's request that behalf gateway received, as
// the API verifies its own callers, and mints the workload's token for
// the user the caller names; every refusal is typed, recorded, and mints
// nothing.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

const runtimeARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/" + workloadW1

// invokePayload is what the signed callers send.
const invokePayload = `{"prompt":"hi"}`

// capturer is the HTTP client of an SDK client whose requests go
// nowhere: it keeps the last one as a server would read it, and answers
// 200.
type capturer struct{ last *http.Request }

func (c *capturer) Do(req *http.Request) (*http.Response, error) {
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		return nil, err
	}
	r, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		return nil, err
	}
	c.last = r
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

// signedInvocation is the official SDK's InvokeAgentRuntime for user,
// signed as p at the server's clock, as behalf gateway would receive it
// and pass it on: the headers its signature covers and Authorization, and
// its body's SHA-256.
func signedInvocation(t *testing.T, s *behalftest.Server, p principal, user string) behalfapi.SignedRequest {
	t.Helper()
	c := &capturer{}
	client := bedrockagentcore.NewFromConfig(behalftest.AWSConfig(p.ID, p.Secret), func(o *bedrockagentcore.Options) {
		o.BaseEndpoint, o.HTTPSignerV4, o.HTTPClient = aws.String("http://gateway.example:8788"), s.Signer(), c
	})
	in := &bedrockagentcore.InvokeAgentRuntimeInput{AgentRuntimeArn: aws.String(runtimeARN), Payload: []byte(invokePayload),
		Qualifier: aws.String("DEFAULT"), ContentType: aws.String("application/json")}
	if user != "" {
		in.RuntimeUserId = aws.String(user)
	}
	if _, err := client.InvokeAgentRuntime(ctx(t), in); err != nil {
		t.Fatal(err)
	}
	r := c.last
	path, query, _ := strings.Cut(r.RequestURI, "?")
	headers := map[string][]string{"Host": {r.Host}, "Authorization": r.Header.Values("Authorization")}
	_, names, _ := strings.Cut(r.Header.Get("Authorization"), "SignedHeaders=")
	names, _, _ = strings.Cut(names, ",")
	for _, name := range strings.Split(names, ";") {
		if name != "host" {
			headers[http.CanonicalHeaderKey(name)] = r.Header.Values(name)
		}
	}
	return behalfapi.SignedRequest{Method: r.Method, Path: path, RawQuery: query, Headers: headers, PayloadSHA256: sha256Hex(invokePayload)}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// forSignedCaller calls GetWorkloadAccessTokenForSignedCaller as p.
func forSignedCaller(t *testing.T, s *behalftest.Server, p principal, in behalfapi.GetWorkloadAccessTokenForSignedCallerInput) (behalftest.Response, behalfapi.GetWorkloadAccessTokenForSignedCallerOutput) {
	t.Helper()
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	res := s.Do(t, behalftest.Raw{Path: "/behalf/GetWorkloadAccessTokenForSignedCaller", Body: raw, KeyID: p.ID, Secret: p.Secret})
	var out behalfapi.GetWorkloadAccessTokenForSignedCallerOutput
	if res.Status == http.StatusOK {
		if err := json.Unmarshal(res.Body, &out); err != nil {
			t.Fatal(err)
		}
	}
	return res, out
}

// createPrincipalWith creates a runtime principal granted workloads and
// limited to operations.
func createPrincipalWith(t *testing.T, s *behalftest.Server, workloads, operations []string) principal {
	t.Helper()
	m := do(t, s, "/behalf/CreatePrincipal", map[string]any{"role": "runtime", "workloads": workloads, "operations": operations},
		http.StatusCreated).JSON(t)
	return principal{ID: m["accessKeyId"].(string), Secret: m["secretAccessKey"].(string)}
}

// signedCallerWorld is the standard world with W2, a gateway principal
// granted W1 and allowed only GetWorkloadAccessTokenForSignedCaller, and
// a caller granted W1 and allowed to name users.
type signedCallerWorld struct {
	*world
	clock           *testclock.Clock
	gateway, caller principal
}

func newSignedCallerWorld(t *testing.T, b behalftest.Backend, o worldOptions) *signedCallerWorld {
	t.Helper()
	clock := testclock.Running()
	o.now = clock.Now
	w := newWorld(t, b, o)
	createWorkload(t, w.s, workloadW2, nil)
	return &signedCallerWorld{world: w, clock: clock,
		gateway: createPrincipalWith(t, w.s, []string{workloadW1}, []string{"GetWorkloadAccessTokenForSignedCaller"}),
		caller:  createPrincipalWith(t, w.s, []string{workloadW1}, []string{"GetWorkloadAccessTokenForUserId"})}
}

// TestSignedCaller: the gateway's principal, allowed nothing but this
// operation, gets W1's token for the user the signed caller names,
// minted by the gateway's principal as GetWorkloadAccessTokenForUserId
// mints it and counted as such; the record names the workload, the user
// and the signing caller, and holds no token.
func TestSignedCaller(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		recv, export := exportMetrics(t)
		w := newSignedCallerWorld(t, b, worldOptions{edit: export})
		m := meter{w.s, recv}
		minted := m.counts(t, "behalf.workload_access_tokens.minted", string(telemetry.Kind))

		res, out := forSignedCaller(t, w.s, w.gateway, behalfapi.GetWorkloadAccessTokenForSignedCallerInput{
			WorkloadName: workloadW1, UserID: "alice", SignedRequest: signedInvocation(t, w.s, w.caller, "alice")})
		if res.Status != http.StatusOK || out.WorkloadAccessToken == "" || out.User != "id:alice" {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		if c := openWAT(t, w.s, out.WorkloadAccessToken); c.Workload != workloadW1 || c.User != "id:alice" || c.Principal != w.gateway.ID || c.UserToken != "" {
			t.Errorf("the token binds %+v", c)
		}
		if key, err := getAPIKey(ctx(t), w.rt, out.WorkloadAccessToken, apiKeyProvider); err != nil || aws.ToString(key.ApiKey) != apiKeyValue {
			t.Errorf("vending with the token: %v", err)
		}
		rec := auditByRequest(t, w.s, res.Header.Get("X-Amzn-RequestId"))
		if rec.Operation != "GetWorkloadAccessTokenForSignedCaller" || rec.Principal != w.gateway.ID || rec.Workload != workloadW1 ||
			rec.User != "id:alice" || rec.Resource != "principal/"+w.caller.ID || rec.Outcome != "success" {
			t.Errorf("record %+v", rec)
		}
		wantCounts(t, "tokens minted", since(minted, m.counts(t, "behalf.workload_access_tokens.minted", string(telemetry.Kind))),
			map[string]int64{telemetry.WATUserID: 1})
		_, bodies := listAudit(t, w.s, nil)
		for _, body := range bodies {
			if strings.Contains(string(body), out.WorkloadAccessToken) || strings.Contains(string(body), "Signature=") {
				t.Fatal("the audit log holds the token or the caller's signature")
			}
		}
	})
}

// signedCallerCase is one refused call: who calls, what it sends, and
// what the refusal and its record must show.
type signedCallerCase struct {
	name string
	// gateway names the calling principal among the test's gateways; "":
	// the world's.
	gateway string
	// edit changes the input, the world's caller's signed invocation for
	// alice, and returns who signed it when not that caller.
	edit    func(t *testing.T, w *signedCallerWorld, in *signedCallerInput) principal
	status  int
	errType string
	// says is part of the refusal's message: why.
	says string
	// verified: the signature verified, and the record names the signer.
	verified bool
	// unauthorized: the calling principal may not call the operation,
	// refused before the workload is known.
	unauthorized bool
}

type signedCallerInput = behalfapi.GetWorkloadAccessTokenForSignedCallerInput

// resigned signs the invocation for alice as p instead.
func resigned(p func(t *testing.T, w *signedCallerWorld) principal) func(t *testing.T, w *signedCallerWorld, in *signedCallerInput) principal {
	return func(t *testing.T, w *signedCallerWorld, in *signedCallerInput) principal {
		signer := p(t, w)
		in.SignedRequest = signedInvocation(t, w.s, signer, "alice")
		return signer
	}
}

// edited changes the input as edit does, the signer unchanged.
func edited(edit func(in *signedCallerInput)) func(t *testing.T, w *signedCallerWorld, in *signedCallerInput) principal {
	return func(_ *testing.T, _ *signedCallerWorld, in *signedCallerInput) principal {
		edit(in)
		return principal{}
	}
}

var signedCallerCases = []signedCallerCase{
	{name: "a wrong secret", says: "signature we calculated does not match", status: 403, errType: "AccessDeniedException",
		edit: resigned(func(_ *testing.T, w *signedCallerWorld) principal {
			return principal{w.caller.ID, "not-the-secret-0123456789"}
		})},
	{name: "an unknown access key", says: "Access Key Id you provided does not exist", status: 401, errType: "UnauthorizedException",
		edit: resigned(func(*testing.T, *signedCallerWorld) principal {
			return principal{"BEHALFNOSUCHKEY0001", "not-the-secret-0123456789"}
		})},
	{name: "a body other than the one signed", says: "signature we calculated does not match", status: 403, errType: "AccessDeniedException",
		edit: edited(func(in *signedCallerInput) { in.SignedRequest.PayloadSHA256 = sha256Hex(`{"prompt":"ho"}`) })},
	{name: "a tampered target", says: "signature we calculated does not match", status: 403, errType: "AccessDeniedException",
		edit: edited(func(in *signedCallerInput) { in.SignedRequest.RawQuery = "qualifier=OTHER" })},
	{name: "another user than the one signed", says: "must cover the user it names", status: 403, errType: "AccessDeniedException", verified: true,
		edit: edited(func(in *signedCallerInput) { in.UserID = "mallory" })},
	{name: "a user the signature does not cover", says: "must cover the user it names", status: 403, errType: "AccessDeniedException", verified: true,
		edit: func(t *testing.T, w *signedCallerWorld, in *signedCallerInput) principal {
			in.SignedRequest = signedInvocation(t, w.s, w.caller, "")
			return principal{}
		}},
	{name: "a caller not allowed to name users", says: "not granted operation GetWorkloadAccessTokenForUserId", status: 403, errType: "AccessDeniedException", verified: true,
		edit: resigned(func(t *testing.T, w *signedCallerWorld) principal {
			return createPrincipalWith(t, w.s, []string{workloadW1}, []string{"GetWorkloadAccessTokenForJWT"})
		})},
	{name: "a caller not granted the workload", says: "not granted workload identity agent-w1", status: 403, errType: "AccessDeniedException", verified: true,
		edit: resigned(func(t *testing.T, w *signedCallerWorld) principal {
			return createPrincipalWith(t, w.s, []string{workloadW2}, []string{"GetWorkloadAccessTokenForUserId"})
		})},
	{name: "a header the signature does not cover", says: "X-Amz-Security-Token, which the signature does not cover", status: 400, errType: "ValidationException",
		edit: edited(func(in *signedCallerInput) { in.SignedRequest.Headers["X-Amz-Security-Token"] = []string{"forged"} })},
	{name: "no Authorization", says: "must hold Authorization", status: 400, errType: "ValidationException",
		edit: edited(func(in *signedCallerInput) { delete(in.SignedRequest.Headers, "Authorization") })},
	{name: "too many headers", says: "at most 65 entries", status: 400, errType: "ValidationException",
		edit: edited(func(in *signedCallerInput) {
			for i := range 66 {
				in.SignedRequest.Headers["X-Extra-"+strings.Repeat("a", i+1)] = []string{"x"}
			}
		})},
	{name: "headers over 64 KiB", says: "at most 65536 bytes", status: 400, errType: "ValidationException",
		edit: edited(func(in *signedCallerInput) {
			in.SignedRequest.Headers["X-Amz-Date"] = append(in.SignedRequest.Headers["X-Amz-Date"], strings.Repeat("x", 64<<10))
		})},
	{name: "a control character in a header", says: "no control characters", status: 400, errType: "ValidationException",
		edit: edited(func(in *signedCallerInput) {
			in.SignedRequest.Headers["Content-Type"] = []string{"application/json\r\nX-Injected: 1"}
		})},
	{name: "a payload hash that is no SHA-256", says: "signedRequest.payloadSha256", status: 400, errType: "ValidationException",
		edit: edited(func(in *signedCallerInput) {
			in.SignedRequest.PayloadSHA256 = strings.ToUpper(in.SignedRequest.PayloadSHA256)
		})},
	{name: "a path that is no request target", says: "signedRequest.path must start with", status: 400, errType: "ValidationException",
		edit: edited(func(in *signedCallerInput) { in.SignedRequest.Path = "runtimes/x#y" })},
	{name: "a path holding a space", says: "signedRequest.path must be visible ASCII", status: 400, errType: "ValidationException",
		edit: edited(func(in *signedCallerInput) { in.SignedRequest.Path += " HTTP/1.1" })},
	{name: "a user id over 128 characters", says: "userId must be at most 128", status: 400, errType: "ValidationException",
		edit: edited(func(in *signedCallerInput) { in.UserID = strings.Repeat("a", 129) })},
	{name: "a gateway not allowed the operation", says: "not granted operation GetWorkloadAccessTokenForSignedCaller", gateway: "without the operation", status: 403, errType: "AccessDeniedException", unauthorized: true},
	{name: "a gateway not granted the workload", says: "not granted workload identity agent-w1", gateway: "of W2", status: 403, errType: "AccessDeniedException"},
}

// TestSignedCallerRefusals: each refusal answers with the typed error the
// API gives (a signature that does not verify: the same as for the API's
// own callers), mints nothing, and is recorded naming the workload and,
// once the signature verified, the signing caller.
func TestSignedCallerRefusals(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newSignedCallerWorld(t, b, worldOptions{})
		gateways := map[string]principal{
			"":                      w.gateway,
			"without the operation": createPrincipalWith(t, w.s, []string{workloadW1}, []string{"GetWorkloadAccessTokenForUserId"}),
			"of W2":                 createPrincipalWith(t, w.s, []string{workloadW2}, []string{"GetWorkloadAccessTokenForSignedCaller"}),
		}
		for _, c := range signedCallerCases {
			t.Run(c.name, func(t *testing.T) {
				in := signedCallerInput{WorkloadName: workloadW1, UserID: "alice", SignedRequest: signedInvocation(t, w.s, w.caller, "alice")}
				signer := w.caller
				if c.edit != nil {
					if p := c.edit(t, w, &in); p.ID != "" {
						signer = p
					}
				}
				as := gateways[c.gateway]
				res, out := forSignedCaller(t, w.s, as, in)
				if res.Status != c.status || res.ErrType != c.errType || out.WorkloadAccessToken != "" || strings.Contains(string(res.Body), "workloadAccessToken") {
					t.Fatalf("%d %s %s, want %d %s", res.Status, res.ErrType, res.Body, c.status, c.errType)
				}
				if !strings.Contains(string(res.Body), c.says) {
					t.Errorf("the refusal %s does not say %q", res.Body, c.says)
				}
				rec := auditByRequest(t, w.s, res.Header.Get("X-Amzn-RequestId"))
				if rec.Operation != "GetWorkloadAccessTokenForSignedCaller" || rec.Outcome != "failure" || rec.ErrorType != c.errType || rec.Principal != as.ID {
					t.Errorf("record %+v", rec)
				}
				if c.status != 400 && !c.unauthorized && rec.Workload != workloadW1 {
					t.Errorf("the refusal's record names workload %q", rec.Workload)
				}
				want := ""
				if c.verified {
					want = "principal/" + signer.ID
				}
				if rec.Resource != want {
					t.Errorf("the record names signer %q, want %q", rec.Resource, want)
				}
			})
		}
	})
}

// TestSignedCallerDateWindow: a signed request replayed once its
// X-Amz-Date is more than five minutes old is refused as the API refuses
// it, though the gateway's own call is fresh.
func TestSignedCallerDateWindow(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newSignedCallerWorld(t, b, worldOptions{})
		in := behalfapi.GetWorkloadAccessTokenForSignedCallerInput{WorkloadName: workloadW1, UserID: "alice",
			SignedRequest: signedInvocation(t, w.s, w.caller, "alice")}
		if res, _ := forSignedCaller(t, w.s, w.gateway, in); res.Status != http.StatusOK {
			t.Fatalf("within the window: %d %s", res.Status, res.Body)
		}
		w.clock.Advance(5*time.Minute + time.Second)
		res, _ := forSignedCaller(t, w.s, w.gateway, in)
		if res.Status != http.StatusForbidden || res.ErrType != "AccessDeniedException" || !strings.Contains(string(res.Body), "Signature expired") {
			t.Fatalf("replayed outside the window: %d %s", res.Status, res.Body)
		}
	})
}
