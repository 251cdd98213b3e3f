package sdk

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
)

// fakeAPI answers the data plane's two credential operations from scripts,
// recording each input.
type fakeAPI struct {
	mu     sync.Mutex
	oauth  []*bedrockagentcore.GetResourceOauth2TokenOutput // answered in turn; the last repeats
	keys   []string
	inputs []bedrockagentcore.GetResourceOauth2TokenInput
	keyIns int
}

func (f *fakeAPI) GetResourceOauth2Token(_ context.Context, in *bedrockagentcore.GetResourceOauth2TokenInput, _ ...func(*bedrockagentcore.Options)) (*bedrockagentcore.GetResourceOauth2TokenOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inputs = append(f.inputs, *in)
	out := f.oauth[0]
	if len(f.oauth) > 1 {
		f.oauth = f.oauth[1:]
	}
	return out, nil
}

//nolint:revive // the AWS SDK's method name
func (f *fakeAPI) GetResourceApiKey(_ context.Context, _ *bedrockagentcore.GetResourceApiKeyInput, _ ...func(*bedrockagentcore.Options)) (*bedrockagentcore.GetResourceApiKeyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keyIns++
	k := f.keys[0]
	if len(f.keys) > 1 {
		f.keys = f.keys[1:]
	}
	return &bedrockagentcore.GetResourceApiKeyOutput{ApiKey: &k}, nil
}

func token(s string) *bedrockagentcore.GetResourceOauth2TokenOutput {
	return &bedrockagentcore.GetResourceOauth2TokenOutput{AccessToken: &s}
}

func jwt(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(fmt.Appendf(nil, `{"exp":%d}`, exp.Unix())) + ".sig"
}

func TestMiddlewareReadsTheRuntimeHeaders(t *testing.T) {
	var got Invocation
	h := Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got, _ = FromContext(r.Context()) }))
	for _, c := range []struct {
		name    string
		headers map[string]string
		want    string // the workload token
	}{
		{"new header first", map[string]string{HeaderWorkloadToken: "wat-new", HeaderWorkloadTokenLegacy: "wat-old"}, "wat-new"},
		{"older header alone", map[string]string{HeaderWorkloadTokenLegacy: "wat-old"}, "wat-old"},
		{"none", nil, ""},
	} {
		r := httptest.NewRequest("POST", "/invocations", nil)
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		r.Header.Set(HeaderSessionID, "session-1")
		r.Header.Set(HeaderUserID, "alice")
		r.Header.Set(HeaderCallbackURL, "https://agent.example/callback")
		r.Header.Set("Authorization", "Bearer user-jwt")
		r.Header.Set(HeaderCustomPrefix+"Tenant", "t1")
		r.Header.Set("X-Amzn-Trace-Id", "not allow-listed")
		r.Header.Set("Cookie", "c=1")
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got.WorkloadToken != c.want || got.SessionID != "session-1" || got.UserID != "alice" || got.CallbackURL != "https://agent.example/callback" {
			t.Errorf("%s: %+v", c.name, got)
		}
		if len(got.RequestID) != 36 {
			t.Errorf("%s: generated request id %q", c.name, got.RequestID)
		}
		if len(got.Headers) != 2 || got.Headers.Get("Authorization") != "Bearer user-jwt" || got.Headers.Get(HeaderCustomPrefix+"Tenant") != "t1" {
			t.Errorf("%s: allow-listed headers %v", c.name, got.Headers)
		}
	}

	r := httptest.NewRequest("POST", "/invocations", nil)
	r.Header.Set(HeaderRequestID, "req-7")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got.RequestID != "req-7" || got.Actors != nil {
		t.Errorf("request id %q, want the runtime's; actors %v, want none", got.RequestID, got.Actors)
	}
	if WorkloadToken(context.Background()) != "" || RequestHeaders(context.Background()) == nil || Actors(context.Background()) != nil {
		t.Error("accessors of a context without an invocation")
	}
}

// The identity chain behalf gateway names is in the context, outermost
// first; a malformed one is none.
func TestMiddlewareReadsTheIdentityChain(t *testing.T) {
	var got []string
	h := Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = Actors(r.Context()) }))
	for value, want := range map[string][]string{
		"front-agent":                {"front-agent"},
		"front-agent, router.v2":     {"front-agent", "router.v2"},
		"":                           nil,
		"front-agent,,router":        nil,
		"a1,a2,a3,a4,a5,a6,a7,a8,a9": nil,
		"a1,a2,a3,a4,a5,a6,a7,a8":    {"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"},
	} {
		r := httptest.NewRequest("POST", "/invocations", nil)
		if value != "" {
			r.Header.Set(HeaderIdentityChain, value)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if !slices.Equal(got, want) || (want == nil) != (got == nil) {
			t.Errorf("%q: %q, want %q", value, got, want)
		}
	}
}

func TestPingTimestampMovesOnlyOnAStatusChange(t *testing.T) {
	now := time.Unix(1_000, 0)
	p := &Ping{Now: func() time.Time { return now }}
	get := func() string {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", "/ping", nil))
		if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("ping: %d %v", w.Code, w.Header())
		}
		return strings.TrimSpace(w.Body.String())
	}
	steps := []struct {
		do   func()
		want string
	}{
		{func() {}, `{"status":"Healthy","time_of_last_update":1000}`},
		{func() { now = now.Add(time.Minute) }, `{"status":"Healthy","time_of_last_update":1000}`},
		{func() { done := p.Track(); t.Cleanup(done) }, `{"status":"HealthyBusy","time_of_last_update":1060}`},
		{func() { now = now.Add(time.Minute); p.Force(Healthy) }, `{"status":"Healthy","time_of_last_update":1120}`},
		{func() { now = now.Add(time.Minute); p.Force("") }, `{"status":"HealthyBusy","time_of_last_update":1180}`},
	}
	for i, s := range steps {
		s.do()
		if got := get(); got != s.want {
			t.Errorf("step %d: %s, want %s", i, got, s.want)
		}
	}
}

func TestTokenSourceReusesATokenUntilShortlyBeforeItExpires(t *testing.T) {
	now := time.Unix(10_000, 0)
	first, second := jwt(now.Add(5*time.Minute)), jwt(now.Add(10*time.Minute))
	api := &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{token(first), token(second)}}
	ctx := NewContext(context.Background(), Invocation{WorkloadToken: "wat-1", CallbackURL: "https://cb"})
	s, err := NewTokenSource(ctx, api, OAuth2{Provider: "p", Flow: M2M, Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	for _, c := range []struct {
		after time.Duration
		want  string
		calls int
	}{{0, first, 1}, {4 * time.Minute, first, 1}, {31 * time.Second, second, 2}} {
		now = now.Add(c.after)
		tok, err := s.Token()
		if err != nil || tok.AccessToken != c.want || len(api.inputs) != c.calls {
			t.Fatalf("after %v: %v, %v, %d calls", c.after, tok, err, len(api.inputs))
		}
	}
	in := api.inputs[0]
	if *in.WorkloadIdentityToken != "wat-1" || *in.ResourceOauth2ReturnUrl != "https://cb" || in.Oauth2Flow != types.Oauth2FlowTypeM2m || in.ForceAuthentication != nil {
		t.Errorf("input %+v", in)
	}
	if _, err := NewTokenSource(context.Background(), api, OAuth2{Provider: "p"}); !errors.Is(err, ErrNoWorkloadToken) {
		t.Errorf("without a workload token: %v", err)
	}
}

// TestTransportRefreshesOnceOn401 is the retry path: the API refuses the
// first token; the transport forces a new one and sends the same body again.
func TestTransportRefreshesOnceOn401(t *testing.T) {
	var bodies []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, r.Header.Get("Authorization")+" "+string(b))
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer upstream.Close()
	api := &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{token("stale"), token("good")}}
	s, err := NewTokenSource(context.Background(), api, OAuth2{WorkloadToken: "wat", Provider: "p", Flow: M2M})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &Transport{Credential: s}}
	res, err := client.Post(upstream.URL, "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || strings.Join(bodies, "|") != "Bearer stale payload|Bearer good payload" {
		t.Fatalf("%d after %q", res.StatusCode, bodies)
	}
	if len(api.inputs) != 2 || api.inputs[1].ForceAuthentication == nil || !*api.inputs[1].ForceAuthentication {
		t.Errorf("the refresh did not force: %+v", api.inputs)
	}

	// A body that cannot be sent again: the 401 stands, with no second call.
	bodies = nil
	s.Refresh()
	api.oauth = []*bedrockagentcore.GetResourceOauth2TokenOutput{token("stale")}
	req, _ := http.NewRequest("POST", upstream.URL, io.NopCloser(strings.NewReader("once")))
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || len(bodies) != 1 {
		t.Errorf("unreplayable body: %d after %q", res.StatusCode, bodies)
	}
}

// A redirect the client follows to another origin — an open redirect, a
// download link on another host — gets no credential; one to the same
// origin does.
func TestTransportKeepsCredentialsToTheirOrigin(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	record := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Host+r.URL.Path+" "+r.Header.Get("Authorization")+r.URL.Query().Get("key"))
	}
	elsewhere := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { record(r) }))
	defer elsewhere.Close()
	tool := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/here", http.StatusFound)
		case "/away":
			http.Redirect(w, r, elsewhere.URL+"/download", http.StatusFound)
		}
	}))
	defer tool.Close()
	ctx := NewContext(context.Background(), Invocation{WorkloadToken: "wat"})
	header, _ := NewTokenSource(ctx, &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{token("secret")}}, OAuth2{Provider: "p", Flow: M2M})
	query, _ := NewAPIKeySource(ctx, &fakeAPI{keys: []string{"k1"}}, APIKey{Provider: "weather", QueryParameter: "key"})
	toolHost, elsewhereHost := strings.TrimPrefix(tool.URL, "http://"), strings.TrimPrefix(elsewhere.URL, "http://")
	for _, tt := range []struct {
		credential Credential
		sent       string
	}{{header, "Bearer secret"}, {query, "k1"}} {
		seen = nil
		client := &http.Client{Transport: &Transport{Credential: tt.credential}}
		for _, path := range []string{"/moved", "/away"} {
			res, err := client.Get(tool.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
		want := []string{toolHost + "/moved " + tt.sent, toolHost + "/here " + tt.sent, toolHost + "/away " + tt.sent, elsewhereHost + "/download "}
		if !slices.Equal(seen, want) {
			t.Errorf("sent %q, want %q", seen, want)
		}
	}
}

func TestAPIKeySourceHeaderQueryAndRefresh(t *testing.T) {
	var seen []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("X-Api-Key")+r.URL.Query().Get("key"))
		if r.Header.Get("X-Api-Key") == "Key old" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer upstream.Close()
	api := &fakeAPI{keys: []string{"old", "new"}}
	ctx := NewContext(context.Background(), Invocation{WorkloadToken: "wat"})
	s, err := NewAPIKeySource(ctx, api, APIKey{Provider: "weather", Header: "X-Api-Key", Prefix: "Key "})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &Transport{Credential: s}}
	for range 2 {
		res, err := client.Get(upstream.URL)
		if err != nil || res.StatusCode != 200 {
			t.Fatal(res, err)
		}
		res.Body.Close()
	}
	if strings.Join(seen, ",") != "Key old,Key new,Key new" || api.keyIns != 2 {
		t.Errorf("sent %q with %d calls", seen, api.keyIns)
	}

	q, _ := NewAPIKeySource(ctx, &fakeAPI{keys: []string{"k1"}}, APIKey{Provider: "weather", QueryParameter: "key"})
	req, _ := http.NewRequest("GET", upstream.URL+"?a=b", nil)
	if err := q.Apply(ctx, req, false); err != nil || req.URL.Query().Get("key") != "k1" || req.URL.Query().Get("a") != "b" {
		t.Errorf("query: %v %v", req.URL, err)
	}
}

func TestConsentRequiredAndWait(t *testing.T) {
	pending := &bedrockagentcore.GetResourceOauth2TokenOutput{AuthorizationUrl: aws.String("https://idp/authorize?x"), SessionUri: aws.String("urn:session:1"), SessionStatus: types.SessionStatusInProgress}
	ctx := NewContext(context.Background(), Invocation{WorkloadToken: "wat"})
	o := OAuth2{Provider: "github", Flow: UserFederation, Scopes: []string{"repo"}}
	fast := Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond}

	api := &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{pending, pending, pending, token("user-token")}}
	tool := WithAccessToken(api, o, func(_ context.Context, tok string, n int) (string, error) { return fmt.Sprint(tok, n), nil })
	_, err := tool(ctx, 1)
	var consent *ConsentRequired
	if !errors.As(err, &consent) || consent.AuthorizationURL != "https://idp/authorize?x" || consent.SessionURI != "urn:session:1" {
		t.Fatalf("first call: %v", err)
	}
	if strings.Contains(err.Error(), "authorize?x") {
		t.Error("the error message holds the authorization URL")
	}
	tok, err := consent.Wait(ctx, fast)
	if err != nil || tok.AccessToken != "user-token" {
		t.Fatal(tok, err)
	}
	if last := api.inputs[len(api.inputs)-1]; *last.SessionUri != "urn:session:1" {
		t.Errorf("polled without the session URI: %+v", last)
	}

	failed := &bedrockagentcore.GetResourceOauth2TokenOutput{SessionStatus: types.SessionStatusFailed}
	s, _ := NewTokenSource(ctx, &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{pending, failed}}, o)
	if _, err := s.Token(); !errors.As(err, &consent) {
		t.Fatal(err)
	}
	if _, err := consent.Wait(ctx, fast); !errors.Is(err, ErrConsentFailed) {
		t.Errorf("failed session: %v", err)
	}

	s, _ = NewTokenSource(ctx, &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{pending}}, o)
	_, err = s.Token()
	errors.As(err, &consent)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := consent.Wait(short, fast); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled wait: %v", err)
	}

	// The blocking style: OnAuthURL sees the URL, then the call waits.
	var shown string
	o.OnAuthURL = func(_ context.Context, c *ConsentRequired) error { shown = c.AuthorizationURL; return nil }
	old := DefaultBackoff
	DefaultBackoff = fast
	defer func() { DefaultBackoff = old }()
	api = &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{pending, token("user-token")}}
	out, err := WithAccessToken(api, o, func(_ context.Context, tok string, n int) (string, error) { return fmt.Sprint(tok, n), nil })(ctx, 2)
	if err != nil || out != "user-token2" || shown != "https://idp/authorize?x" {
		t.Errorf("blocking style: %q %v, shown %q", out, err, shown)
	}
}

// TestPropagateWorkloadToken uses the AWS SDK's own client: the header goes
// with InvokeAgentRuntime, inside SigV4's signed headers, and not with the
// identity operations.
func TestPropagateWorkloadToken(t *testing.T) {
	seen := map[string]*http.Request{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := "GetResourceApiKey"
		if strings.Contains(r.URL.Path, "/invocations") {
			op = "InvokeAgentRuntime"
		}
		seen[op] = r
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"apiKey":"k"}`)
	}))
	defer srv.Close()
	c := bedrockagentcore.New(bedrockagentcore.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}, nil
		})),
	}, PropagateWorkloadToken)
	ctx := NewContext(context.Background(), Invocation{WorkloadToken: "wat-of-alice"})
	if _, err := c.InvokeAgentRuntime(ctx, &bedrockagentcore.InvokeAgentRuntimeInput{AgentRuntimeArn: aws.String("arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/other"), Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetResourceApiKey(ctx, &bedrockagentcore.GetResourceApiKeyInput{ResourceCredentialProviderName: aws.String("p"), WorkloadIdentityToken: aws.String("wat-of-alice")}); err != nil {
		t.Fatal(err)
	}
	inv := seen["InvokeAgentRuntime"]
	if inv.Header.Get(HeaderWorkloadToken) != "wat-of-alice" || !strings.Contains(inv.Header.Get("Authorization"), strings.ToLower(HeaderWorkloadToken)) {
		t.Errorf("InvokeAgentRuntime: WAT %q, Authorization %q", inv.Header.Get(HeaderWorkloadToken), inv.Header.Get("Authorization"))
	}
	if v := seen["GetResourceApiKey"].Header.Get(HeaderWorkloadToken); v != "" {
		t.Errorf("GetResourceApiKey carried the WAT header")
	}
}
