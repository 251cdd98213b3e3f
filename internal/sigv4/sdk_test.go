package sigv4_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/smithy-go"

	"github.com/behalf-dev/behalf/internal/sigv4"
)

const (
	testAKID    = "AKIAIOSFODNN7EXAMPLE"
	testSecret  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRegion  = "us-east-1"
	testService = "bedrock-agentcore"

	testARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:workload-identity-directory/default/workload-identity/my-agent"
	// testARNPath is testARN as the SDK puts it in the path: a label, so
	// ':' and '/' are percent-encoded.
	testARNPath = "arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A123456789012%3Aworkload-identity-directory%2Fdefault%2Fworkload-identity%2Fmy-agent"
)

func lookup(_ context.Context, id string) (string, error) {
	if id == testAKID {
		return testSecret, nil
	}
	return "", fmt.Errorf("test store: %w", sigv4.ErrUnknownKey)
}

func newVerifier() *sigv4.Verifier {
	return &sigv4.Verifier{Service: testService, Regions: []string{testRegion}, Lookup: lookup}
}

// call is what the test server saw for one request.
type call struct {
	method, requestURI, sdkRequest, authorization string
	accessKeyID                                   string
	err                                           error
}

// testServer runs Verify on every request and answers like behalf will: a
// valid empty response, or the AWS error that the Kind maps to.
type testServer struct {
	*httptest.Server
	mu    sync.Mutex
	calls []call
	// failFirst answers the first verified request with a retryable 503.
	failFirst bool
}

func newTestServer(t *testing.T, v *sigv4.Verifier, prefix string) *testServer {
	t.Helper()
	ts := &testServer{}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, err := v.Verify(r, body)
		ts.mu.Lock()
		ts.calls = append(ts.calls, call{r.Method, r.RequestURI, r.Header.Get("Amz-Sdk-Request"), r.Header.Get("Authorization"), id, err})
		n := len(ts.calls)
		ts.mu.Unlock()
		switch {
		case err != nil:
			writeAuthError(w, err)
		case ts.failFirst && n == 1:
			writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "try again")
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "{}")
		}
	})
	if prefix != "" {
		// Routers strip the prefix; Verify must still see what was signed.
		mux := http.NewServeMux()
		mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
		h = mux
	}
	ts.Server = httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

func TestVerifyAcceptsSDKClientsOverHTTP2(t *testing.T) {
	v := newVerifier()
	var protos []string
	var mu sync.Mutex
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		_, err := v.Verify(r, body)
		mu.Lock()
		protos = append(protos, r.Proto)
		mu.Unlock()
		if err != nil {
			writeAuthError(w, err)
			return
		}
		io.WriteString(w, "{}")
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	cp, dp := newClients(srv.URL, clientConfig{httpClient: srv.Client()})
	for _, call := range []sdkCall{createWorkloadIdentity, getResourceOauth2Token, listTagsForResource, untagResource} {
		if err := call(t.Context(), cp, dp); err != nil {
			t.Fatalf("SDK call over HTTP/2: %v", err)
		}
	}
	if len(protos) != 4 {
		t.Fatalf("server saw %d requests, want 4", len(protos))
	}
	for _, p := range protos {
		if p != "HTTP/2.0" {
			t.Errorf("request used %s, want HTTP/2.0", p)
		}
	}
}

func (ts *testServer) Calls() []call {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]call(nil), ts.calls...)
}

// writeAuthError is the Kind → AWS error mapping the package documents.
func writeAuthError(w http.ResponseWriter, err error) {
	var e *sigv4.Error
	if !errors.As(err, &e) {
		writeError(w, http.StatusInternalServerError, "InternalServerException", "internal error")
		return
	}
	if e.Unauthenticated() {
		writeError(w, http.StatusUnauthorized, "UnauthorizedException", e.Message)
		return
	}
	writeError(w, http.StatusForbidden, "AccessDeniedException", e.Message)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

type clientConfig struct {
	akid, secret, token, region, signingName string
	httpClient                               *http.Client
}

func newClients(baseURL string, cc clientConfig) (*bedrockagentcorecontrol.Client, *bedrockagentcore.Client) {
	if cc.akid == "" {
		cc.akid, cc.secret = testAKID, testSecret
	}
	if cc.region == "" {
		cc.region = testRegion
	}
	cfg := aws.Config{
		Region:      cc.region,
		Credentials: credentials.NewStaticCredentialsProvider(cc.akid, cc.secret, cc.token),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
	if cc.httpClient != nil {
		cfg.HTTPClient = cc.httpClient
	}
	cp := bedrockagentcorecontrol.NewFromConfig(cfg, func(o *bedrockagentcorecontrol.Options) {
		o.BaseEndpoint = aws.String(baseURL)
		if cc.signingName != "" {
			bedrockagentcorecontrol.WithSigV4SigningName(cc.signingName)(o)
		}
	})
	dp := bedrockagentcore.NewFromConfig(cfg, func(o *bedrockagentcore.Options) {
		o.BaseEndpoint = aws.String(baseURL)
	})
	return cp, dp
}

type sdkCall func(ctx context.Context, cp *bedrockagentcorecontrol.Client, dp *bedrockagentcore.Client) error

var (
	createWorkloadIdentity sdkCall = func(ctx context.Context, cp *bedrockagentcorecontrol.Client, _ *bedrockagentcore.Client) error {
		_, err := cp.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
			Name:                            aws.String("my-agent"),
			AllowedResourceOauth2ReturnUrls: []string{"https://app.example.com/callback?x=1 2"},
			Tags:                            map[string]string{"team": "identity"},
		})
		return err
	}
	getResourceOauth2Token sdkCall = func(ctx context.Context, _ *bedrockagentcorecontrol.Client, dp *bedrockagentcore.Client) error {
		_, err := dp.GetResourceOauth2Token(ctx, &bedrockagentcore.GetResourceOauth2TokenInput{
			Oauth2Flow:                     "M2M",
			ResourceCredentialProviderName: aws.String("github"),
			Scopes:                         []string{"repo", "read:user"},
			WorkloadIdentityToken:          aws.String("eyJhbGciOiJub25lIn0.e30."),
		})
		return err
	}
	getWorkloadAccessToken sdkCall = func(ctx context.Context, _ *bedrockagentcorecontrol.Client, dp *bedrockagentcore.Client) error {
		_, err := dp.GetWorkloadAccessToken(ctx, &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String("my-agent")})
		return err
	}
	listTagsForResource sdkCall = func(ctx context.Context, cp *bedrockagentcorecontrol.Client, _ *bedrockagentcore.Client) error {
		_, err := cp.ListTagsForResource(ctx, &bedrockagentcorecontrol.ListTagsForResourceInput{ResourceArn: aws.String(testARN)})
		return err
	}
	untagResource sdkCall = func(ctx context.Context, cp *bedrockagentcorecontrol.Client, _ *bedrockagentcore.Client) error {
		_, err := cp.UntagResource(ctx, &bedrockagentcorecontrol.UntagResourceInput{
			ResourceArn: aws.String(testARN),
			// Decoded, "a/b" sorts after "a-b"; encoded ("a%2Fb"), before.
			TagKeys: []string{"team", "a/b", "a-b", "cost center", "x+y"},
		})
		return err
	}
	tagResource sdkCall = func(ctx context.Context, cp *bedrockagentcorecontrol.Client, _ *bedrockagentcore.Client) error {
		_, err := cp.TagResource(ctx, &bedrockagentcorecontrol.TagResourceInput{
			ResourceArn: aws.String(testARN),
			Tags:        map[string]string{"team": "identity", "env": "prod"},
		})
		return err
	}
)

func TestVerifyAcceptsSDKClients(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		now     time.Duration // server clock offset
		call    sdkCall
		wantReq string // method and request URI the server received
	}{
		{name: "control POST JSON CreateWorkloadIdentity", call: createWorkloadIdentity,
			wantReq: "POST /identities/CreateWorkloadIdentity"},
		{name: "data POST JSON GetResourceOauth2Token", call: getResourceOauth2Token,
			wantReq: "POST /identities/oauth2/token"},
		{name: "GET escaped ARN path ListTagsForResource", call: listTagsForResource,
			wantReq: "GET /tags/" + testARNPath},
		{name: "DELETE repeated query UntagResource", call: untagResource,
			wantReq: "DELETE /tags/" + testARNPath + "?tagKeys=a%2Fb&tagKeys=a-b&tagKeys=cost%20center&tagKeys=team&tagKeys=x%2By"},
		{name: "POST escaped ARN path with body TagResource", call: tagResource,
			wantReq: "POST /tags/" + testARNPath},
		{name: "base endpoint with path prefix control", prefix: "/base/v1", call: createWorkloadIdentity,
			wantReq: "POST /base/v1/identities/CreateWorkloadIdentity"},
		{name: "base endpoint with path prefix data", prefix: "/base/v1", call: getWorkloadAccessToken,
			wantReq: "POST /base/v1/identities/GetWorkloadAccessToken"},
		{name: "base endpoint with path prefix escaped path and query", prefix: "/base/v1", call: untagResource,
			wantReq: "DELETE /base/v1/tags/" + testARNPath + "?tagKeys=a%2Fb&tagKeys=a-b&tagKeys=cost%20center&tagKeys=team&tagKeys=x%2By"},
		{name: "server clock 4m ahead", now: 4 * time.Minute, call: createWorkloadIdentity,
			wantReq: "POST /identities/CreateWorkloadIdentity"},
		{name: "server clock 4m behind", now: -4 * time.Minute, call: getResourceOauth2Token,
			wantReq: "POST /identities/oauth2/token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier()
			v.Now = func() time.Time { return time.Now().Add(tt.now) }
			ts := newTestServer(t, v, tt.prefix)
			cp, dp := newClients(ts.URL+tt.prefix, clientConfig{})
			if err := tt.call(t.Context(), cp, dp); err != nil {
				t.Fatalf("SDK call: %v", err)
			}
			calls := ts.Calls()
			if len(calls) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(calls))
			}
			c := calls[0]
			if c.err != nil || c.accessKeyID != testAKID {
				t.Fatalf("Verify = %q, %v; want %q, nil", c.accessKeyID, c.err, testAKID)
			}
			if got := c.method + " " + c.requestURI; got != tt.wantReq {
				t.Errorf("request = %q, want %q", got, tt.wantReq)
			}
		})
	}
}

func TestVerifyAcceptsRetriedRequest(t *testing.T) {
	ts := newTestServer(t, newVerifier(), "")
	ts.failFirst = true
	cp, dp := newClients(ts.URL, clientConfig{})
	if err := createWorkloadIdentity(t.Context(), cp, dp); err != nil {
		t.Fatalf("SDK call: %v", err)
	}
	calls := ts.Calls()
	if len(calls) != 2 {
		t.Fatalf("server saw %d requests, want 2 (one retry)", len(calls))
	}
	for i, c := range calls {
		if c.err != nil {
			t.Errorf("attempt %d: Verify: %v", i+1, c.err)
		}
		if want := fmt.Sprintf("attempt=%d; max=3", i+1); c.sdkRequest != want {
			t.Errorf("attempt %d: Amz-Sdk-Request = %q, want %q", i+1, c.sdkRequest, want)
		}
	}
	if calls[0].authorization == calls[1].authorization {
		t.Error("the retry carries the same signature; want it re-signed")
	}
}

func TestVerifyRejectsSDKClients(t *testing.T) {
	tests := []struct {
		name     string
		client   clientConfig
		now      time.Duration // server clock offset
		call     sdkCall
		wantKind sigv4.Kind
	}{
		{name: "wrong secret", client: clientConfig{akid: testAKID, secret: "not-the-secret"},
			call: createWorkloadIdentity, wantKind: sigv4.KindSignatureMismatch},
		{name: "wrong secret GET escaped path", client: clientConfig{akid: testAKID, secret: "not-the-secret"},
			call: listTagsForResource, wantKind: sigv4.KindSignatureMismatch},
		{name: "unknown key", client: clientConfig{akid: "AKIAUNKNOWNEXAMPLE00", secret: testSecret},
			call: getResourceOauth2Token, wantKind: sigv4.KindUnknownKey},
		{name: "wrong region", client: clientConfig{region: "us-west-2"},
			call: createWorkloadIdentity, wantKind: sigv4.KindWrongScope},
		{name: "wrong service", client: clientConfig{signingName: "bedrock"},
			call: createWorkloadIdentity, wantKind: sigv4.KindWrongScope},
		{name: "session token", client: clientConfig{akid: testAKID, secret: testSecret, token: "FwoGZXIvYXdzEXAMPLE"},
			call: getResourceOauth2Token, wantKind: sigv4.KindUnsupported},
		{name: "signed 6m in the past", now: 6 * time.Minute,
			call: createWorkloadIdentity, wantKind: sigv4.KindTimeSkew},
		{name: "signed 6m in the future", now: -6 * time.Minute,
			call: getResourceOauth2Token, wantKind: sigv4.KindTimeSkew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier()
			v.Now = func() time.Time { return time.Now().Add(tt.now) }
			ts := newTestServer(t, v, "")
			cp, dp := newClients(ts.URL, tt.client)
			err := tt.call(t.Context(), cp, dp)

			calls := ts.Calls()
			if len(calls) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(calls))
			}
			var e *sigv4.Error
			if !errors.As(calls[0].err, &e) || e.Kind != tt.wantKind {
				t.Fatalf("Verify error = %v, want Kind %v", calls[0].err, tt.wantKind)
			}
			assertSafeMessage(t, e.Message)

			// The client decodes the mapped AWS error.
			var apiErr smithy.APIError
			switch {
			case err == nil:
				t.Fatal("SDK call succeeded, want an error")
			case !errors.As(err, &apiErr):
				t.Fatalf("SDK error %v is not an API error", err)
			case e.Unauthenticated() && apiErr.ErrorCode() != "UnauthorizedException",
				!e.Unauthenticated() && apiErr.ErrorCode() != "AccessDeniedException":
				t.Errorf("SDK error code %q does not match Unauthenticated() = %v", apiErr.ErrorCode(), e.Unauthenticated())
			}
			if !strings.Contains(err.Error(), e.Message) {
				t.Errorf("SDK error %q does not carry the message %q", err, e.Message)
			}
		})
	}
}

// assertSafeMessage checks that a client-facing message leaks nothing secret.
func assertSafeMessage(t *testing.T, msg string) {
	t.Helper()
	for _, bad := range []string{testSecret, "AWS4" + testSecret, "\n"} {
		if strings.Contains(msg, bad) {
			t.Errorf("message %q contains %q", msg, bad)
		}
	}
}
