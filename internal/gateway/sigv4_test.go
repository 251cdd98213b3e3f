package gateway_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

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
// workload and to name users, reaches the agent through the mounted
// gateway with a workload access token for the user it names, and reads
// the agent's server-sent events through the SDK's response body. A
// caller naming no user, or with a wrong signature, is refused (the
// negative corpus has the principals that may not call).
func TestInvokeAgentRuntimeSigV4(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, true)
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

		noUser := *in
		noUser.RuntimeUserId = nil
		_, err = w.invoker("BEHALFCALLERTEST01", "BEHALFCALLERTEST01-secret-0123456789").InvokeAgentRuntime(t.Context(), &noUser)
		if apiErr := smithy.APIError(nil); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" {
			t.Errorf("a SigV4 caller naming no user: %v", err)
		}
		_, err = w.invoker("BEHALFCALLERTEST01", "wrong-secret-0123456789").InvokeAgentRuntime(t.Context(), in)
		if re := (interface{ HTTPStatusCode() int })(nil); !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
			t.Errorf("a wrong signature: %v", err)
		}
	})
}
