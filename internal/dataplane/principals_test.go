package dataplane_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// An administrator can limit a runtime principal to some data-plane
// operations, as AWS grants bedrock-agentcore actions one by one: an
// agent's principal that may vend cannot complete users' sessions
// (CompleteResourceTokenAuth). An empty list allows every operation.
func TestRuntimePrincipalOperations(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		createWorkload(t, s, workloadW1, nil)
		createAPIKeyProvider(t, s, apiKeyProvider, apiKeyValue)
		res := do(t, s, "/behalf/CreatePrincipal", map[string]any{"role": "runtime", "workloads": []string{workloadW1},
			"operations": []string{"GetWorkloadAccessTokenForUserId", "GetResourceApiKey"}}, http.StatusCreated)
		m := res.JSON(t)
		agent := principal{ID: m["accessKeyId"].(string), Secret: m["secretAccessKey"].(string)}
		c := agent.data(s)

		token := mintForUser(t, c, workloadW1, "alice")
		if _, err := getAPIKey(ctx(t), c, token, apiKeyProvider); err != nil {
			t.Fatalf("an allowed operation: %v", err)
		}
		complete := func() error {
			_, err := c.CompleteResourceTokenAuth(ctx(t), &bedrockagentcore.CompleteResourceTokenAuthInput{
				SessionUri:     aws.String("urn:ietf:params:oauth:request_uri:no-such-session"),
				UserIdentifier: &types.UserIdentifierMemberUserId{Value: "alice"},
			})
			return err
		}
		ad := wantAPIError[*types.AccessDeniedException](t, complete())
		if !strings.Contains(aws.ToString(ad.Message), "CompleteResourceTokenAuth") {
			t.Errorf("message %q", aws.ToString(ad.Message))
		}
		_, err := c.GetWorkloadAccessToken(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String(workloadW1)})
		wantAPIError[*types.AccessDeniedException](t, err)

		// Every operation again: the completion now reaches its handler,
		// which finds no such session.
		do(t, s, "/behalf/UpdatePrincipal", map[string]any{"accessKeyId": agent.ID, "operations": []string{}}, http.StatusOK)
		wantAPIError[*types.ResourceNotFoundException](t, complete())

		do(t, s, "/behalf/CreatePrincipal", map[string]any{"role": "runtime", "operations": []string{"CreateWorkloadIdentity"}}, http.StatusBadRequest)
		do(t, s, "/behalf/CreatePrincipal", map[string]any{"role": "admin", "operations": []string{"GetResourceApiKey"}}, http.StatusBadRequest)
	})
}

// A workload access token is bound to the incarnation of the principal
// that minted it: deleting the principal and creating its access key id
// again does not bring the token back, whoever presents it.
func TestTokenDoesNotOutlivePrincipalIncarnation(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		createWorkload(t, s, workloadW1, nil)
		createAPIKeyProvider(t, s, apiKeyProvider, apiKeyValue)
		const id, secret = "BHLFRECREATED0000001", "recreated-secret-TEST-0123456789abcdef"
		create := func() {
			do(t, s, "/behalf/CreatePrincipal", map[string]any{"role": "runtime", "workloads": []string{workloadW1},
				"accessKeyId": id, "secretAccessKey": secret}, http.StatusCreated)
		}
		create()
		p := principal{ID: id, Secret: secret}
		token := mintForUser(t, p.data(s), workloadW1, "alice")
		if _, err := getAPIKey(ctx(t), p.data(s), token, apiKeyProvider); err != nil {
			t.Fatal(err)
		}
		deletePrincipal(t, s, p)
		create()
		for name, c := range map[string]*bedrockagentcore.Client{"the re-created principal": p.data(s), "an admin": s.Data()} {
			out, err := getAPIKey(ctx(t), c, token, apiKeyProvider)
			if out != nil {
				t.Fatalf("%s got the API key with a token of the deleted principal", name)
			}
			ad := wantAPIError[*types.AccessDeniedException](t, err)
			if !strings.Contains(aws.ToString(ad.Message), "deleted and created again") {
				t.Errorf("%s: message %q", name, aws.ToString(ad.Message))
			}
		}
		// A token the new incarnation mints works.
		if _, err := getAPIKey(ctx(t), p.data(s), mintForUser(t, p.data(s), workloadW1, "alice"), apiKeyProvider); err != nil {
			t.Fatal(err)
		}
	})
}
