// Package sdk_test runs behalf's Go agent SDK (module sdk) against a real
// behalf server, with the dev IdP as the OAuth2 provider and the users'
// identity provider.
package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/aws/smithy-go"
	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/sdk"
)

// TestAgentThroughBehalf is an agent written with the SDK, called with a
// workload access token for alice in the runtime's header: an API key for
// a tool that only accepts that key, an M2M token for an API that revokes
// the first token (the transport asks behalf, with forceAuthentication,
// for a new one and retries), and
// alice's own token, which first needs her consent.
func TestAgentThroughBehalf(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := world(t, b)
		wat := aliceToken(t, s)
		weather, billing := newWeatherAPI(t), newBillingAPI(t)
		agentURL := newAgent(t, s.Data(), weather.URL, billing.URL)

		call := func(path string, headers map[string]string) (int, map[string]string) {
			req, _ := http.NewRequest("POST", agentURL+path, strings.NewReader(`{}`))
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var out map[string]string
			_ = json.NewDecoder(res.Body).Decode(&out)
			return res.StatusCode, out
		}
		headers := map[string]string{sdk.HeaderWorkloadToken: wat, sdk.HeaderSessionID: "session-1",
			sdk.HeaderUserID: "alice", sdk.HeaderCallbackURL: s.URL + "/dev/complete"}

		if status, out := call("/weather", headers); status != 200 || out["forecast"] != "sunny, for session-1" {
			t.Errorf("weather tool: %d %v", status, out)
		}
		if status, out := call("/weather", map[string]string{sdk.HeaderWorkloadTokenLegacy: wat}); status != 200 || out["forecast"] == "" {
			t.Errorf("weather tool with the older header: %d %v", status, out)
		}
		if status, out := call("/weather", nil); status != 500 || !strings.Contains(out["error"], "no workload access token") {
			t.Errorf("without a workload token: %d %v", status, out)
		}

		if status, out := call("/billing", headers); status != 200 || out["invoices"] != "3" {
			t.Errorf("billing: %d %v", status, out)
		}
		if got := billing.seen(); len(got) != 2 || got[0] == got[1] || !strings.HasPrefix(got[0], "Bearer eyJ") || !strings.HasPrefix(got[1], "Bearer eyJ") {
			t.Errorf("billing saw %d requests, want the 401 then the retry with a new M2M token from behalf", len(got))
		}

		status, out := call("/me", headers)
		if status != 401 || !strings.Contains(out["authorization_url"], "/authorize?") || out["session_uri"] == "" {
			t.Fatalf("before consent: %d %v", status, out)
		}
		if code, page := behalftest.Consent(t, out["authorization_url"], "alice", true); code != 200 || !strings.Contains(page, "Connected") {
			t.Fatalf("consent ended on %d:\n%s", code, page)
		}
		if status, out := call("/me", headers); status != 200 || !strings.HasPrefix(out["token"], "eyJ") {
			t.Errorf("after consent: %d %v", status, out)
		}
	})
}

// TestWorkloadJWTThroughBehalf: an agent gets its workload JWT with
// sdk.GetWorkloadJWT, the workload token from its context; a relying
// party verifies it through behalf's discovery document and JWK set
// (go-oidc, ES256 only) and finds the agent's workload ARN for its
// audience, expiring when GetWorkloadJWT said. A refusal is a typed
// smithy.APIError; without a workload token nothing is sent.
func TestWorkloadJWTThroughBehalf(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := world(t, b)
		ctx := context.Background()
		agent := sdk.NewContext(ctx, sdk.Invocation{WorkloadToken: aliceToken(t, s)})
		const aud = "https://as.example.com/oauth2/token"
		jwt, expiry, err := sdk.GetWorkloadJWT(agent, s.Data(), sdk.WorkloadJWT{Audiences: []string{aud}, Duration: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		p, err := oidc.NewProvider(ctx, s.URL+"/workload-identity")
		if err != nil {
			t.Fatal(err)
		}
		idt, err := p.Verifier(&oidc.Config{ClientID: aud, SupportedSigningAlgs: []string{oidc.ES256}}).Verify(ctx, jwt)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if !strings.HasSuffix(idt.Subject, ":workload-identity-directory/default/workload-identity/my-agent") || !idt.Expiry.Equal(expiry) ||
			idt.Expiry.Sub(idt.IssuedAt) != 10*time.Minute {
			t.Errorf("sub %s, issued %v, expiry %v (GetWorkloadJWT said %v)", idt.Subject, idt.IssuedAt, idt.Expiry, expiry)
		}

		_, _, err = sdk.GetWorkloadJWT(agent, s.Data(), sdk.WorkloadJWT{Audiences: []string{aud}, Duration: 2 * time.Hour})
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" || !strings.Contains(apiErr.ErrorMessage(), "durationSeconds") {
			t.Errorf("two hours: %v", err)
		}
		if _, _, err := sdk.GetWorkloadJWT(ctx, s.Data(), sdk.WorkloadJWT{Audiences: []string{aud}}); !errors.Is(err, sdk.ErrNoWorkloadToken) {
			t.Errorf("without a workload token: %v", err)
		}
	})
}

// aliceToken is my-agent's workload access token for alice.
func aliceToken(t *testing.T, s *behalftest.Server) string {
	t.Helper()
	out, err := s.Data().GetWorkloadAccessTokenForUserId(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String("my-agent"), UserId: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	return *out.WorkloadAccessToken
}

// world is behalf with the dev IdP: the workload identity my-agent, the
// API-key provider weather and the OAuth2 provider dev-idp.
func world(t *testing.T, b behalftest.Backend) *behalftest.Server {
	t.Helper()
	idp := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}}})
	s := behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) { f.Development = true }})
	ctx := context.Background()
	c := s.Control()
	if _, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
		Name: aws.String("my-agent"), AllowedResourceOauth2ReturnUrls: []string{s.URL + "/dev/complete"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{Name: aws.String("weather"), ApiKey: aws.String("weather-api-key-123")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String("dev-idp"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String("agent"), ClientSecret: aws.String("agent-secret"),
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: idp.Issuer() + "/.well-known/openid-configuration"}}},
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// newAgent serves the agent: each route calls a tool with a credential the
// SDK gets from behalf with the request's workload access token.
func newAgent(t *testing.T, api sdk.API, weatherURL, billingURL string) string {
	forecast := sdk.WithAPIKey(api, sdk.APIKey{Provider: "weather"}, func(ctx context.Context, key string, _ struct{}) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", weatherURL, nil)
		req.Header.Set("X-Api-Key", key)
		return fetch(req)
	})
	me := sdk.WithAccessToken(api, sdk.OAuth2{Provider: "dev-idp", Flow: sdk.UserFederation, Scopes: []string{"openid", "profile"}},
		func(_ context.Context, token string, _ struct{}) (string, error) { return token, nil })
	mux := http.NewServeMux()
	mux.HandleFunc("POST /weather", func(w http.ResponseWriter, r *http.Request) {
		f, err := forecast(r.Context(), struct{}{})
		reply(w, err, map[string]string{"forecast": f + ", for " + sdk.SessionID(r.Context())})
	})
	mux.HandleFunc("POST /billing", func(w http.ResponseWriter, r *http.Request) {
		ts, err := sdk.NewTokenSource(r.Context(), api, sdk.OAuth2{Provider: "dev-idp", Flow: sdk.M2M, Scopes: []string{"openid"}})
		if err != nil {
			reply(w, err, nil)
			return
		}
		client := &http.Client{Transport: &sdk.Transport{Credential: ts}}
		req, _ := http.NewRequestWithContext(r.Context(), "POST", billingURL, strings.NewReader(`{"month":"2026-11"}`))
		n, err := fetchWith(client, req)
		reply(w, err, map[string]string{"invoices": n})
	})
	mux.HandleFunc("POST /me", func(w http.ResponseWriter, r *http.Request) {
		token, err := me(r.Context(), struct{}{})
		if consent, ok := errors.AsType[*sdk.ConsentRequired](err); ok {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"authorization_url": consent.AuthorizationURL, "session_uri": consent.SessionURI})
			return
		}
		reply(w, err, map[string]string{"token": token})
	})
	mux.Handle("GET /ping", new(sdk.Ping))
	srv := httptest.NewServer(sdk.Middleware(mux))
	t.Cleanup(srv.Close)
	return srv.URL
}

func reply(w http.ResponseWriter, err error, out map[string]string) {
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		out = map[string]string{"error": err.Error()}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func fetch(req *http.Request) (string, error) { return fetchWith(http.DefaultClient, req) }

func fetchWith(c *http.Client, req *http.Request) (string, error) {
	res, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return "", errors.New(res.Status)
	}
	return string(b), nil
}

// newWeatherAPI accepts only the weather provider's key.
func newWeatherAPI(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "weather-api-key-123" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "sunny")
	}))
	t.Cleanup(srv.Close)
	return srv
}

type billingAPI struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
}

// newBillingAPI revokes the first token it sees, refusing every request
// that carries it, and accepts another token with the same body.
func newBillingAPI(t *testing.T) *billingAPI {
	a := &billingAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.auths = append(a.auths, r.Header.Get("Authorization"))
		revoked := r.Header.Get("Authorization") == a.auths[0]
		a.mu.Unlock()
		if revoked || string(body) != `{"month":"2026-11"}` {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "3")
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *billingAPI) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.auths...)
}
