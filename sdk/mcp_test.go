package sdk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
)

// scopedServer is an MCP server's HTTP side: it accepts the tokens it
// knows with the scopes each carries, and answers a call that needs more
// with 403 and a Bearer insufficient_scope challenge (RFC 6750 §3.1)
// naming every scope the call needs, as MCP's step-up asks.
type scopedServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "token body" of each request
}

func newScopedServer(t *testing.T, tokens map[string][]string, need func(body string) []string) *scopedServer {
	s := &scopedServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.seen = append(s.seen, token+" "+string(body))
		s.mu.Unlock()
		granted, ok := tokens[token]
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		needed := need(string(body))
		if slices.ContainsFunc(needed, func(sc string) bool { return !slices.Contains(granted, sc) }) {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+strings.Join(needed, " ")+`", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource"`)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, "ok "+string(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scopedServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

func post(t *testing.T, c *http.Client, url, body string) (int, error) {
	t.Helper()
	res, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	_ = res.Body.Close()
	return res.StatusCode, nil
}

// A call that needs a scope the first token lacks steps up: the client
// asks behalf for the challenge's scopes, without forceAuthentication,
// and sends the same body again; later calls keep the stepped-up token.
func TestMCPClientStepsUpOnInsufficientScope(t *testing.T) {
	srv := newScopedServer(t, map[string][]string{"t-read": {"read"}, "t-both": {"read", "write"}}, func(body string) []string {
		if body == "write" {
			return []string{"read", "write"}
		}
		return []string{"read"}
	})
	api := &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{token("t-read"), token("t-both")}}
	ctx := NewContext(context.Background(), Invocation{WorkloadToken: "wat", CallbackURL: "https://agent/cb"})
	c, err := NewMCPClient(ctx, api, MCPServer{Provider: "notes"})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"read", "write", "read", "write"} {
		if status, err := post(t, c, srv.URL, body); status != 200 || err != nil {
			t.Fatalf("%s: %d %v", body, status, err)
		}
	}
	if got, want := srv.requests(), []string{"t-read read", "t-read write", "t-both write", "t-both read", "t-both write"}; !slices.Equal(got, want) {
		t.Errorf("the server saw %q, want %q", got, want)
	}
	if len(api.inputs) != 2 {
		t.Fatalf("%d calls to behalf, want 2", len(api.inputs))
	}
	first, second := api.inputs[0], api.inputs[1]
	if first.Scopes == nil || len(first.Scopes) != 0 || first.Oauth2Flow != types.Oauth2FlowTypeUserFederation || aws.ToString(first.ResourceOauth2ReturnUrl) != "https://agent/cb" {
		t.Errorf("first request: scopes %#v, flow %s: want an empty list (behalf selects), USER_FEDERATION", first.Scopes, first.Oauth2Flow)
	}
	if !slices.Equal(second.Scopes, []string{"read", "write"}) || second.ForceAuthentication != nil {
		t.Errorf("step-up request: scopes %q, forceAuthentication %v", second.Scopes, second.ForceAuthentication)
	}
}

// Step-ups end: when the challenge names nothing the token was not asked
// for (behalf would give the same token back), and after MaxStepUps.
func TestMCPClientStepUpsEnd(t *testing.T) {
	ctx := NewContext(context.Background(), Invocation{WorkloadToken: "wat"})
	t.Run("the same scopes again", func(t *testing.T) {
		srv := newScopedServer(t, map[string][]string{"t1": nil, "t2": nil}, func(string) []string { return []string{"admin"} })
		api := &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{token("t1"), token("t2")}}
		c, _ := NewMCPClient(ctx, api, MCPServer{Provider: "notes", MaxStepUps: 5})
		if status, err := post(t, c, srv.URL, "x"); status != 403 || err != nil {
			t.Errorf("%d %v, want the server's 403", status, err)
		}
		if len(api.inputs) != 2 || len(srv.requests()) != 2 {
			t.Errorf("%d calls to behalf, %d to the server: want one step-up", len(api.inputs), len(srv.requests()))
		}
		// A later call: its token was asked for admin already.
		if status, _ := post(t, c, srv.URL, "x"); status != 403 || len(api.inputs) != 2 {
			t.Errorf("a later call: %d, %d calls to behalf", status, len(api.inputs))
		}
	})
	t.Run("a new scope each time", func(t *testing.T) {
		n := 0
		srv := newScopedServer(t, map[string][]string{"t": nil}, func(string) []string { n++; return []string{"s" + strconv.Itoa(n)} })
		for _, c := range []struct{ max, calls int }{{0, 3}, {1, 2}, {-1, 1}} {
			api := &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{token("t")}}
			client, _ := NewMCPClient(ctx, api, MCPServer{Provider: "notes", MaxStepUps: c.max})
			if status, err := post(t, client, srv.URL, "x"); status != 403 || err != nil || len(api.inputs) != c.calls {
				t.Errorf("MaxStepUps %d: %d %v after %d calls to behalf, want 403 after %d", c.max, status, err, len(api.inputs), c.calls)
			}
		}
	})
	t.Run("not a step-up", func(t *testing.T) {
		for _, challenge := range []string{"", `Bearer error="invalid_token"`, `Bearer error="insufficient_scope", scope="a`, `Basic realm="x"`} {
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if challenge != "" {
					w.Header().Set("WWW-Authenticate", challenge)
				}
				w.WriteHeader(http.StatusForbidden)
			}))
			api := &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{token("t")}}
			c, _ := NewMCPClient(ctx, api, MCPServer{Provider: "notes"})
			if status, err := post(t, c, upstream.URL, "x"); status != 403 || err != nil || len(api.inputs) != 1 {
				t.Errorf("%q: %d %v after %d calls to behalf", challenge, status, err, len(api.inputs))
			}
			upstream.Close()
		}
	})
	t.Run("a body that cannot be sent again", func(t *testing.T) {
		srv := newScopedServer(t, map[string][]string{"t": nil}, func(string) []string { return []string{"a"} })
		api := &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{token("t")}}
		c, _ := NewMCPClient(ctx, api, MCPServer{Provider: "notes"})
		req, _ := http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader("once")))
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != 403 || len(api.inputs) != 1 {
			t.Errorf("%d after %d calls to behalf", res.StatusCode, len(api.inputs))
		}
	})
}

// A step-up the user must consent to fails the call with the
// *ConsentRequired; once Wait has the token, the call succeeds.
func TestMCPClientStepUpNeedsConsent(t *testing.T) {
	srv := newScopedServer(t, map[string][]string{"t-read": {"read"}, "t-both": {"read", "write"}}, func(string) []string { return []string{"read", "write"} })
	pending := &bedrockagentcore.GetResourceOauth2TokenOutput{AuthorizationUrl: aws.String("https://as/authorize?scope=read+write"), SessionUri: aws.String("urn:session:2"), SessionStatus: types.SessionStatusInProgress}
	api := &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{token("t-read"), pending, token("t-both")}}
	ctx := NewContext(context.Background(), Invocation{WorkloadToken: "wat"})
	c, _ := NewMCPClient(ctx, api, MCPServer{Provider: "notes", Scopes: []string{"read"}})
	_, err := post(t, c, srv.URL, "x")
	consent, ok := errors.AsType[*ConsentRequired](err)
	if !ok || consent.AuthorizationURL != "https://as/authorize?scope=read+write" || consent.Provider != "notes" {
		t.Fatalf("%v, want the consent for the step-up", err)
	}
	if _, err := consent.Wait(ctx, Backoff{Initial: time.Millisecond, Max: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if last := api.inputs[len(api.inputs)-1]; aws.ToString(last.SessionUri) != "urn:session:2" || !slices.Equal(last.Scopes, []string{"read", "write"}) {
		t.Errorf("Wait polled with %+v", last)
	}
	if status, err := post(t, c, srv.URL, "x"); status != 200 || err != nil {
		t.Errorf("after consent: %d %v", status, err)
	}
	if got := srv.requests(); len(got) != 2 || got[1] != "t-both x" {
		t.Errorf("the server saw %q", got)
	}
}

// A token refused with 401 whose renewal needs the user's consent (the
// connection was revoked, say) fails the call with the *ConsentRequired,
// rather than the 401, which would leave the agent nothing to show.
func TestTransportRefreshNeedsConsent(t *testing.T) {
	srv := newScopedServer(t, map[string][]string{"good": nil}, func(string) []string { return nil })
	pending := &bedrockagentcore.GetResourceOauth2TokenOutput{AuthorizationUrl: aws.String("https://as/authorize"), SessionUri: aws.String("urn:session:3")}
	api := &fakeAPI{oauth: []*bedrockagentcore.GetResourceOauth2TokenOutput{token("revoked"), pending}}
	c, _ := NewMCPClient(NewContext(context.Background(), Invocation{WorkloadToken: "wat"}), api, MCPServer{Provider: "notes"})
	_, err := post(t, c, srv.URL, "x")
	if _, ok := errors.AsType[*ConsentRequired](err); !ok {
		t.Fatalf("%v, want the consent", err)
	}
	if len(api.inputs) != 2 || api.inputs[1].ForceAuthentication == nil || !*api.inputs[1].ForceAuthentication {
		t.Errorf("the second request did not force: %+v", api.inputs)
	}
}
