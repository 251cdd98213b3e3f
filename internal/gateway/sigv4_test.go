package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/smithy-go"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// runtimeARN names the agent route's runtime by its workload.
const runtimeARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/" + workload

// invoker is the official data-plane client, signed as keyID, calling the
// gateway's InvokeAgentRuntime.
func (w *world) invoker(keyID, secret string) *bedrockagentcore.Client {
	return bedrockagentcore.NewFromConfig(behalftest.AWSConfig(keyID, secret), func(o *bedrockagentcore.Options) {
		o.BaseEndpoint, o.HTTPSignerV4 = aws.String(w.gateway), w.s.Signer()
	})
}

func (w *world) principal(t *testing.T, keyID string, workloads, operations []string) {
	t.Helper()
	w.do(t, "/behalf/CreatePrincipal", map[string]any{"role": "runtime", "workloads": workloads, "accessKeyId": keyID,
		"secretAccessKey": keyID + "-secret-0123456789", "operations": operations}, http.StatusCreated)
}

// TestInvokeAgentRuntimeSigV4: the official SDK's InvokeAgentRuntime,
// signed with SigV4 by a principal allowed to act for the agent's
// workload and to name users, reaches the agent through the gateway,
// standalone or mounted, with a workload access token for the user it
// names, and reads the agent's server-sent events through the SDK's
// response body. behalf verified the signature
// (GetWorkloadAccessTokenForSignedCaller, by the gateway's principal,
// naming the signer). A caller naming no user, or with a wrong signature,
// is refused (the negative corpus has the principals that may not call).
func TestInvokeAgentRuntimeSigV4(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, mounted := range []bool{false, true} {
			t.Run(map[bool]string{false: "standalone", true: "mounted"}[mounted], func(t *testing.T) {
				testInvokeAgentRuntimeSigV4(t, newWorld(t, b, mounted))
			})
		}
	})
}

func testInvokeAgentRuntimeSigV4(t *testing.T, w *world) {
	w.principal(t, "BEHALFCALLERTEST01", []string{workload}, []string{"GetWorkloadAccessTokenForUserId"})
	in := &bedrockagentcore.InvokeAgentRuntimeInput{AgentRuntimeArn: aws.String(runtimeARN), Payload: []byte(`{"stream":true}`),
		RuntimeUserId: aws.String("alice"), Accept: aws.String("text/event-stream"), ContentType: aws.String("application/json")}
	out, err := w.invoker("BEHALFCALLERTEST01", "BEHALFCALLERTEST01-secret-0123456789").InvokeAgentRuntime(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Response.Close()
	events := bufio.NewReader(out.Response)
	first, err := events.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "data: ") || aws.ToString(out.ContentType) != "text/event-stream" || aws.ToString(out.RuntimeSessionId) == "" {
		t.Fatalf("first event %q %v (content type %q, session %q)", first, err, aws.ToString(out.ContentType), aws.ToString(out.RuntimeSessionId))
	}
	var seen struct {
		APIKey  string              `json:"apiKey"`
		Headers map[string][]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(first, "data: ")), &seen); err != nil || seen.APIKey != weatherKey {
		t.Fatalf("the agent could not use the WAT it was given: %v %+v", err, seen)
	}
	if h := http.Header(seen.Headers); h.Get("Authorization") != "" || h.Get("X-Amzn-Bedrock-Agentcore-Runtime-User-Id") != "" {
		t.Errorf("the caller's signature or user header reached the agent: %v", h)
	}
	if blank, _ := events.ReadString('\n'); blank != "\n" {
		t.Errorf("the first event ends with %q", blank)
	}
	if rest, err := events.ReadString('\n'); err != nil || rest != "data: done\n" {
		t.Errorf("second event %q %v", rest, err)
	}
	recs, _ := w.gatewayRecords(t)
	if len(recs) != 1 || recs[0].User != "id:alice" || recs[0].Workload != workload || recs[0].Outcome != "success" {
		t.Errorf("the call's record: %+v", recs)
	}
	verified, _ := w.records(t, "GetWorkloadAccessTokenForSignedCaller")
	if len(verified) != 1 || verified[0].Principal != gatewayKeyID || verified[0].Workload != workload || verified[0].User != "id:alice" ||
		verified[0].Resource != "principal/BEHALFCALLERTEST01" || verified[0].Outcome != "success" {
		t.Errorf("the signed caller's record: %+v", verified)
	}
	// The agent's own call with its token acts for the user the caller named.
	if vends, _ := w.records(t, "GetResourceApiKey"); len(vends) != 1 || vends[0].User != "id:alice" || vends[0].Workload != workload {
		t.Errorf("the agent's call with its WAT: %+v", vends)
	}

	noUser := *in
	noUser.RuntimeUserId = nil
	_, err = w.invoker("BEHALFCALLERTEST01", "BEHALFCALLERTEST01-secret-0123456789").InvokeAgentRuntime(t.Context(), &noUser)
	if apiErr := smithy.APIError(nil); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" {
		t.Errorf("a SigV4 caller naming no user: %v", err)
	}
	_, err = w.invoker("BEHALFCALLERTEST01", "wrong-secret-0123456789").InvokeAgentRuntime(t.Context(), in)
	if apiErr := smithy.APIError(nil); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDeniedException" || httpStatus(err) != http.StatusForbidden {
		t.Errorf("a wrong signature: %v", err)
	}
}

func httpStatus(err error) int {
	if re := (interface{ HTTPStatusCode() int })(nil); errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// capture is an SDK client's HTTP client that keeps a copy of each
// request it sends, to be sent again.
type capture struct {
	last *http.Request
	body []byte
}

func (c *capture) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	c.last, c.body = req.Clone(context.Background()), body
	req.Body = io.NopCloser(bytes.NewReader(body))
	return http.DefaultClient.Do(req)
}

// resend sends a captured request again, after edit changes it.
func (c *capture) resend(t *testing.T, edit func(r *http.Request, body []byte) []byte) reply {
	t.Helper()
	body := edit(c.last, slices.Clone(c.body))
	req, err := http.NewRequestWithContext(t.Context(), c.last.Method, c.last.URL.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = c.last.Header.Clone()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return reply{StatusCode: res.StatusCode, Header: res.Header, body: raw, readErr: err}
}

// TestInvokeAgentRuntimeSigV4Replayed: an InvokeAgentRuntime request
// the official SDK signed, sent again as it was, is accepted within the
// five minutes its X-Amz-Date allows (SigV4 does not prevent replays),
// and refused once they are over, or when its body or the user it names
// was changed, on a standalone gateway as on a mounted one; none of the
// refused reaches the agent.
func TestInvokeAgentRuntimeSigV4Replayed(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, mounted := range []bool{false, true} {
			t.Run(map[bool]string{false: "standalone", true: "mounted"}[mounted], func(t *testing.T) {
				testInvokeAgentRuntimeSigV4Replayed(t, newWorld(t, b, mounted))
			})
		}
	})
}

func testInvokeAgentRuntimeSigV4Replayed(t *testing.T, w *world) {
	w.principal(t, "BEHALFCALLERTEST01", []string{workload}, []string{"GetWorkloadAccessTokenForUserId"})
	c := &capture{}
	client := bedrockagentcore.NewFromConfig(behalftest.AWSConfig("BEHALFCALLERTEST01", "BEHALFCALLERTEST01-secret-0123456789"), func(o *bedrockagentcore.Options) {
		o.BaseEndpoint, o.HTTPSignerV4, o.HTTPClient = aws.String(w.gateway), w.s.Signer(), c
	})
	out, err := client.InvokeAgentRuntime(t.Context(), &bedrockagentcore.InvokeAgentRuntimeInput{AgentRuntimeArn: aws.String(runtimeARN),
		Payload: []byte(`{"prompt":"hi"}`), RuntimeUserId: aws.String("alice"), ContentType: aws.String("application/json")})
	if err != nil {
		t.Fatal(err)
	}
	_ = out.Response.Close()

	same := func(_ *http.Request, body []byte) []byte { return body }
	if r := c.resend(t, same); r.StatusCode != http.StatusOK || decode(t, r)["apiKey"] != weatherKey {
		t.Fatalf("sent again within five minutes: %d %s", r.StatusCode, r.body)
	}
	agentCalls, _ := w.records(t, "GetResourceApiKey")
	for _, tc := range []struct {
		name string
		edit func(r *http.Request, body []byte) []byte
		says string
	}{
		{"a tampered body", func(_ *http.Request, body []byte) []byte {
			return bytes.Replace(body, []byte("hi"), []byte("ho"), 1) // the same length: only the payload hash differs
		}, "signature we calculated does not match"},
		{"another user", func(r *http.Request, body []byte) []byte {
			r.Header.Set("X-Amzn-Bedrock-AgentCore-Runtime-User-Id", "mallory")
			return body
		}, "signature we calculated does not match"},
		{"outside the date window", func(_ *http.Request, body []byte) []byte {
			w.clock.Advance(5*time.Minute + time.Second)
			return body
		}, "Signature expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := w.gatewayRecords(t)
			r := c.resend(t, tc.edit)
			if got := decode(t, r); r.StatusCode != http.StatusForbidden || got["__type"] != "AccessDeniedException" ||
				!strings.Contains(got["message"].(string), tc.says) {
				t.Fatalf("%d %s, want 403 AccessDeniedException saying %q", r.StatusCode, r.body, tc.says)
			}
			after, _ := w.gatewayRecords(t)
			if added := after[len(before):]; len(added) != 1 || added[0].Outcome != "failure" || added[0].ErrorType != "AccessDeniedException" {
				t.Errorf("the refused call's record: %+v", added)
			}
		})
	}
	if calls, _ := w.records(t, "GetResourceApiKey"); len(calls) != len(agentCalls) {
		t.Errorf("a refused call reached the agent: %d calls with its token, %d before", len(calls), len(agentCalls))
	}
}
