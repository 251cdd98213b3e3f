package dataplane_test

// End-to-end happy paths of the data plane (issue 3): a real Dex issues
// the users' JWTs and serves the client-credentials grant, the official
// bedrockagentcore client calls behalf, on SQLite and PostgreSQL.

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/google/go-cmp/cmp"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/wat"
)

// TestE2EWorkloadAccessTokens mints a token each way with the official
// client, signing as a runtime principal granted the workload, and spends
// each on the API key. Each token binds the workload, the user (JWT
// iss+sub, or userId, in namespaces that cannot collide) and the minting
// principal, for the default 15 minutes.
func TestE2EWorkloadAccessTokens(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		idToken := w.dex.PasswordLogin(t, userClientID, userClientSecret).IDToken

		for _, tc := range []struct {
			name     string
			mint     func() string
			wantUser string
		}{
			{"ForJWT with a Dex ID token", func() string { return mintForJWT(t, w.rt, idToken) },
				wat.UserFromJWT(w.dex.Issuer, dextest.PasswordSubject)},
			{"ForUserId", func() string { return mintForUser(t, w.rt, workloadW1, "alice") }, "id:alice"},
			{"for the workload alone", func() string { return mintPlain(t, w.rt, workloadW1) }, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				token := tc.mint()
				if strings.Count(token, ".") != 4 || strings.Contains(token, workloadW1) || tc.wantUser != "" && strings.Contains(token, tc.wantUser) {
					t.Errorf("token is not an opaque JWE: %.60s…", token)
				}
				claims := openWAT(t, w.s, token)
				if claims.Workload != workloadW1 || claims.User != tc.wantUser || claims.Principal != w.runtime.ID {
					t.Errorf("token binds %+v; want workload %s, user %q, principal %s", claims, workloadW1, tc.wantUser, w.runtime.ID)
				}
				if life := claims.Expiry - claims.IssuedAt; life != int64((15 * time.Minute).Seconds()) {
					t.Errorf("lifetime %ds, want the default 900s", life)
				}

				out, err := getAPIKey(ctx(t), w.rt, token, apiKeyProvider)
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.ApiKey) != apiKeyValue {
					t.Errorf("api key = %q", aws.ToString(out.ApiKey))
				}
				rec := auditByRequest(t, w.s, requestIDOf(out.ResultMetadata, nil))
				want := auditRecord{RequestID: rec.RequestID, Principal: w.runtime.ID, Operation: "GetResourceApiKey",
					Workload: workloadW1, User: tc.wantUser, Provider: apiKeyProvider, Outcome: "success"}
				if diff := cmp.Diff(want, rec, ignoreChainFields); diff != "" {
					t.Errorf("audit record (-want +got):\n%s", diff)
				}
			})
		}

		// A caller-asserted user id that spells a JWT user key stays in the
		// id: namespace.
		spoof := wat.UserFromJWT(w.dex.Issuer, dextest.PasswordSubject)
		if got := openWAT(t, w.s, mintForUser(t, w.rt, workloadW1, spoof)).User; got != "id:"+spoof || got == spoof {
			t.Errorf("userId %q bound as %q", spoof, got)
		}
	})
}

// ignoreChainFields leaves out what a test cannot predict.
var ignoreChainFields = cmp.FilterPath(func(p cmp.Path) bool {
	switch p.Last().String() {
	case ".Seq", ".Time", ".Hash":
		return true
	}
	return false
}, cmp.Ignore())

// TestE2EM2MToken gets client-credentials tokens from Dex through
// GetResourceOauth2Token: real Dex JWTs for the provider's client, shaped
// by the scopes asked for, then served from the encrypted cache.
func TestE2EM2MToken(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		token := mintPlain(t, w.rt, workloadW1)
		before := w.dex.TokenRequests("client_credentials")

		bare, err := getM2M(ctx(t), w.rt, token, m2mProvider)
		if err != nil {
			t.Fatal(err)
		}
		withProfile, err := getM2M(ctx(t), w.rt, token, m2mProvider, "profile")
		if err != nil {
			t.Fatal(err)
		}
		if got := w.dex.TokenRequests("client_credentials") - before; got != 2 {
			t.Fatalf("%d upstream requests for two scope sets, want 2", got)
		}
		if bare.AuthorizationUrl != nil || bare.SessionUri != nil || bare.SessionStatus != "" {
			t.Errorf("M2M answered a 3LO session: %+v", bare)
		}

		// Real Dex JWTs for the M2M client: sub is the client itself.
		for _, tc := range []struct {
			name     string
			token    string
			wantName any
		}{
			{"no scopes", aws.ToString(bare.AccessToken), nil},
			{"scope profile", aws.ToString(withProfile.AccessToken), m2mClientID},
		} {
			claims := verifyAccessToken(t, w.dex, m2mClientID, tc.token)
			want := map[string]any{"iss": w.dex.Issuer, "sub": dextest.Subject(m2mClientID, ""), "aud": m2mClientID}
			if tc.wantName != nil {
				want["name"] = tc.wantName
			}
			got := map[string]any{}
			for _, k := range []string{"iss", "sub", "aud", "name"} {
				if v, ok := claims[k]; ok {
					got[k] = v
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: claims (-want +got):\n%s", tc.name, diff)
			}
		}
		if bare.AccessToken == withProfile.AccessToken {
			t.Error("the profile scope did not change the token")
		}

		// Served from the cache: the same tokens, no new upstream request,
		// whatever the scopes' order or repetition.
		mid := w.dex.TokenRequests("client_credentials")
		for _, scopes := range [][]string{{"profile"}, {"profile", "profile"}, nil} {
			out, err := getM2M(ctx(t), w.rt, token, m2mProvider, scopes...)
			if err != nil {
				t.Fatal(err)
			}
			want := withProfile.AccessToken
			if scopes == nil {
				want = bare.AccessToken
			}
			if aws.ToString(out.AccessToken) != aws.ToString(want) {
				t.Errorf("scopes %v: a different token, not the cached one", scopes)
			}
		}
		// Another workload access token for the same workload (here bound to
		// a user) shares the workload's cache entry.
		if out, err := getM2M(ctx(t), w.rt, mintForUser(t, w.rt, workloadW1, "alice"), m2mProvider, "profile"); err != nil || aws.ToString(out.AccessToken) != aws.ToString(withProfile.AccessToken) {
			t.Errorf("other token of the same workload: %v", err)
		}
		if got := w.dex.TokenRequests("client_credentials"); got != mid {
			t.Errorf("cached calls made %d upstream requests", got-mid)
		}

		// Another workload has its own entry.
		createWorkload(t, w.s, workloadW2, map[string]any{"allowedCredentialProviders": grants(m2mProvider)})
		admin := w.s.Data()
		other, err := getM2M(ctx(t), admin, mintPlain(t, admin, workloadW2), m2mProvider, "profile")
		if err != nil {
			t.Fatal(err)
		}
		if w.dex.TokenRequests("client_credentials") != mid+1 || aws.ToString(other.AccessToken) == aws.ToString(withProfile.AccessToken) {
			t.Error("workload W2 was served W1's cached token")
		}

		// The cache holds the tokens encrypted: neither appears in the
		// database in the clear.
		db, _ := rawDB(t, w.s)
		rows, err := db.QueryContext(ctx(t), `SELECT token FROM cached_tokens`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var blob []byte
			if err := rows.Scan(&blob); err != nil {
				t.Fatal(err)
			}
			n++
			for _, tok := range []*string{bare.AccessToken, withProfile.AccessToken} {
				sig := aws.ToString(tok)[strings.LastIndex(aws.ToString(tok), ".")+1:]
				if bytes.Contains(blob, []byte(sig)) {
					t.Error("a cached token is stored in the clear")
				}
			}
		}
		if n != 3 {
			t.Errorf("%d cached tokens, want 3", n)
		}
	})
}

// TestE2EM2MConcurrentColdCache: 50 callers asking at once for a token not
// yet cached make exactly one upstream request and all get its token. Dex
// holds the one request until every caller has sent its own, so that all of
// them are in flight together.
func TestE2EM2MConcurrentColdCache(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		token := mintPlain(t, w.rt, workloadW1)

		release := make(chan struct{})
		arrived := make(chan struct{}, 100)
		w.dex.SetTokenFault(func(_ http.ResponseWriter, r *http.Request) bool {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return false // then Dex answers
		})
		before := w.dex.TokenRequests("client_credentials")

		const callers = 50
		var sent atomic.Int32
		client := bedrockagentcore.NewFromConfig(behalftest.AWSConfig(w.runtime.ID, w.runtime.Secret), func(o *bedrockagentcore.Options) {
			o.BaseEndpoint = aws.String(w.s.URL)
			o.HTTPClient = countingClient{&sent}
		})
		tokens := make([]string, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		cx := ctx(t)
		for i := range callers {
			wg.Go(func() {
				out, err := getM2M(cx, client, token, m2mProvider, "profile")
				errs[i] = err
				if err == nil {
					tokens[i] = aws.ToString(out.AccessToken)
				}
			})
		}
		select {
		case <-arrived:
		case <-time.After(20 * time.Second):
			t.Fatal("no token request reached Dex")
		}
		deadline := time.Now().Add(20 * time.Second)
		for sent.Load() < callers && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := sent.Load(); n != callers {
			t.Fatalf("only %d of %d callers sent their request", n, callers)
		}
		time.Sleep(300 * time.Millisecond) // let the last requests reach the handler
		close(release)
		wg.Wait()
		w.dex.SetTokenFault(nil)

		for i, err := range errs {
			if err != nil {
				t.Fatalf("caller %d: %v", i, err)
			}
		}
		if got := w.dex.TokenRequests("client_credentials") - before; got != 1 {
			t.Errorf("%d callers on a cold cache made %d upstream requests, want 1", callers, got)
		}
		if distinct := slices.Compact(slices.Sorted(slices.Values(tokens))); len(distinct) != 1 || distinct[0] == "" {
			t.Errorf("callers got %d different tokens", len(distinct))
		}
	})
}

// countingClient counts the requests an SDK client sends.
type countingClient struct{ n *atomic.Int32 }

func (c countingClient) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultClient.Do(r)
}

// TestE2EM2MRequestParameters observes, with a dextest fault that reads the
// form and then lets Dex answer (SetTokenFault returning false), what
// reaches the token endpoint: scopes, RFC 8707 resources, audiences and the
// custom parameters, with the client authenticated as Dex's discovery
// document prefers (client_secret_basic) and never in the form.
func TestE2EM2MRequestParameters(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		const postProvider = "dex-m2m-post"
		w := newWorld(t, b, worldOptions{w1Policy: map[string]any{"allowedCredentialProviders": grants(m2mProvider, postProvider)}})
		token := mintPlain(t, w.rt, workloadW1)

		type seen struct {
			form url.Values
			auth string
		}
		var mu sync.Mutex
		var requests []seen
		w.dex.SetTokenFault(func(_ http.ResponseWriter, r *http.Request) bool {
			if err := r.ParseForm(); err != nil {
				t.Errorf("token request form: %v", err)
			}
			mu.Lock()
			requests = append(requests, seen{r.PostForm, r.Header.Get("Authorization")})
			mu.Unlock()
			return false
		})
		last := func() seen {
			mu.Lock()
			defer mu.Unlock()
			if len(requests) == 0 {
				t.Fatal("no token request")
			}
			return requests[len(requests)-1]
		}
		count := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(requests)
		}

		in := &bedrockagentcore.GetResourceOauth2TokenInput{
			WorkloadIdentityToken: aws.String(token), ResourceCredentialProviderName: aws.String(m2mProvider),
			Scopes: []string{"openid", "profile"}, Oauth2Flow: types.Oauth2FlowTypeM2m,
			Resources:        []string{"https://api.example.com/", "https://files.example.com/v1"},
			Audiences:        []string{"urn:example:aud-a", "urn:example:aud-b"},
			CustomParameters: map[string]string{"tenant_hint": "blue", "x.trace-id": "t-1"},
		}
		out, err := w.rt.GetResourceOauth2Token(ctx(t), in)
		if err != nil {
			t.Fatal(err)
		}
		verifyAccessToken(t, w.dex, m2mClientID, aws.ToString(out.AccessToken))
		got := last()
		want := url.Values{
			"grant_type":  {"client_credentials"},
			"scope":       {"openid profile"},
			"resource":    {"https://api.example.com/", "https://files.example.com/v1"},
			"audience":    {"urn:example:aud-a", "urn:example:aud-b"},
			"tenant_hint": {"blue"},
			"x.trace-id":  {"t-1"},
		}
		if diff := cmp.Diff(want, got.form); diff != "" {
			t.Errorf("token request form (-want +got):\n%s", diff)
		}
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(m2mClientID+":"+m2mClientSecret))
		if got.auth != basic {
			t.Errorf("Authorization = %q, want client_secret_basic for %s", got.auth, m2mClientID)
		}

		// The same request again is cached; other resources or audiences
		// or custom parameters are another cache entry.
		if _, err := w.rt.GetResourceOauth2Token(ctx(t), in); err != nil || count() != 1 {
			t.Fatalf("repeat: %v, %d upstream requests", err, count())
		}
		for name, change := range map[string]func(*bedrockagentcore.GetResourceOauth2TokenInput){
			"resources": func(in *bedrockagentcore.GetResourceOauth2TokenInput) { in.Resources = in.Resources[:1] },
			"audiences": func(in *bedrockagentcore.GetResourceOauth2TokenInput) { in.Audiences = nil },
			"customParameters": func(in *bedrockagentcore.GetResourceOauth2TokenInput) {
				in.CustomParameters = map[string]string{"tenant_hint": "red"}
			},
		} {
			before := count()
			other := *in
			change(&other)
			if _, err := w.rt.GetResourceOauth2Token(ctx(t), &other); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if count() != before+1 {
				t.Errorf("changed %s: served from another request's cache entry", name)
			}
		}

		// A provider configured for client_secret_post sends the client's
		// credentials in the form instead.
		cfg := dexProviderConfig(w.dex, m2mClientSecret).(*ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig)
		cfg.Value.ClientAuthenticationMethod = ctltypes.ClientAuthenticationMethodTypeClientSecretPost
		if _, err := w.s.Control().CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String(postProvider), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: cfg,
		}); err != nil {
			t.Fatal(err)
		}
		post, err := getM2M(ctx(t), w.rt, token, postProvider, "profile")
		if err != nil {
			t.Fatal(err)
		}
		verifyAccessToken(t, w.dex, m2mClientID, aws.ToString(post.AccessToken))
		got = last()
		want = url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}, "client_id": {m2mClientID}, "client_secret": {m2mClientSecret}}
		if diff := cmp.Diff(want, got.form); diff != "" || got.auth != "" {
			t.Errorf("client_secret_post: Authorization %q, form (-want +got):\n%s", got.auth, diff)
		}

		// Custom parameters may not override the standard ones.
		before := count()
		for _, key := range []string{"client_id", "grant_type", "scope", "Resource", "client_secret"} {
			bad := *in
			bad.CustomParameters = map[string]string{key: "evil"}
			_, err := w.rt.GetResourceOauth2Token(ctx(t), &bad)
			ve := wantAPIError[*types.ValidationException](t, err)
			if !strings.Contains(aws.ToString(ve.Message), key) && len(ve.FieldList) == 0 {
				t.Errorf("%s: %v", key, err)
			}
		}
		if count() != before {
			t.Error("a refused request reached the token endpoint")
		}
	})
}

// TestE2EM2MUpstreamErrors: the provider's error comes back typed, quoting
// the provider's error and error_description, never the client secret.
func TestE2EM2MUpstreamErrors(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		token := mintPlain(t, w.rt, workloadW1)
		if _, err := getM2M(ctx(t), w.rt, token, m2mProvider); err != nil {
			t.Fatal(err) // cached with the right secret
		}

		// What Dex itself says to a wrong secret.
		const wrongSecret = "WRONG-secret-TEST-9876543210fedcba"
		_, dexErr := w.dex.TokenRequest(t, m2mClientID, wrongSecret, url.Values{"grant_type": {"client_credentials"}})
		if dexErr == nil || dexErr.Code != "invalid_client" || dexErr.Description == "" {
			t.Fatalf("Dex with a wrong secret: %v", dexErr)
		}

		update := func(secret string) {
			_, err := w.s.Control().UpdateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
				Name: aws.String(m2mProvider), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
				Oauth2ProviderConfigInput: dexProviderConfig(w.dex, secret),
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		update(wrongSecret)
		_, err := getM2M(ctx(t), w.rt, token, m2mProvider)
		ade := wantAPIError[*types.AccessDeniedException](t, err)
		msg := aws.ToString(ade.Message)
		for _, want := range []string{m2mProvider, "invalid_client", dexErr.Description} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not quote %q", msg, want)
			}
		}
		for _, secret := range []string{wrongSecret, m2mClientSecret} {
			if strings.Contains(msg, secret) {
				t.Errorf("message %q reveals a client secret", msg)
			}
		}

		// An error the provider blames on the request is a
		// ValidationException quoting it (Dex refuses offline_access for
		// client credentials with invalid_scope).
		update(m2mClientSecret)
		_, err = getM2M(ctx(t), w.rt, token, m2mProvider, "offline_access")
		ve := wantAPIError[*types.ValidationException](t, err)
		if msg := aws.ToString(ve.Message); !strings.Contains(msg, "invalid_scope") {
			t.Errorf("message %q does not quote invalid_scope", msg)
		}

		// Fixed again: a fresh token (the update dropped the cache).
		if _, err := getM2M(ctx(t), w.rt, token, m2mProvider); err != nil {
			t.Fatalf("after restoring the secret: %v", err)
		}

		// Other failures, injected in front of Dex. Each scope set is a
		// cold cache entry, so each call reaches the fault.
		answer := func(status int, contentType, body string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, _ *http.Request) bool {
				w.Header().Set("Content-Type", contentType)
				w.WriteHeader(status)
				w.Write([]byte(body))
				return true
			}
		}
		for i, tc := range []struct {
			name       string
			fault      func(http.ResponseWriter, *http.Request) bool
			check      func(t *testing.T, err error) string // returns the message
			wantStatus int
			wantQuote  []string
		}{
			{"503 without a JSON body", answer(503, "text/html", "<h1>down</h1>"),
				func(t *testing.T, err error) string {
					return aws.ToString(wantAPIError[*types.InternalServerException](t, err).Message)
				}, http.StatusBadGateway, []string{m2mProvider, "HTTP 503"}},
			{"429 slow_down", answer(429, "application/json", `{"error":"slow_down","error_description":"too many requests from this client"}`),
				func(t *testing.T, err error) string {
					return aws.ToString(wantAPIError[*types.ThrottlingException](t, err).Message)
				}, http.StatusTooManyRequests, []string{"slow_down", "too many requests from this client"}},
			{"unauthorized_client", answer(400, "application/json", `{"error":"unauthorized_client","error_description":"client_credentials is not enabled for this client"}`),
				func(t *testing.T, err error) string {
					return aws.ToString(wantAPIError[*types.AccessDeniedException](t, err).Message)
				}, http.StatusForbidden, []string{"unauthorized_client", "client_credentials is not enabled for this client"}},
			{"200 without an access token", answer(200, "application/json", `{"token_type":"bearer"}`),
				func(t *testing.T, err error) string {
					return aws.ToString(wantAPIError[*types.InternalServerException](t, err).Message)
				}, http.StatusBadGateway, []string{"no access_token"}},
			// A provider that echoes the secret it was sent must not make
			// behalf reveal it: the issue says never the client secret.
			{"description echoing the client secret", answer(401, "application/json",
				`{"error":"invalid_client","error_description":"client secret `+m2mClientSecret+` does not match"}`),
				func(t *testing.T, err error) string {
					return aws.ToString(wantAPIError[*types.AccessDeniedException](t, err).Message)
				}, http.StatusForbidden, []string{"invalid_client", "does not match"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w.dex.SetTokenFault(tc.fault)
				defer w.dex.SetTokenFault(nil)
				_, err := w.rt.GetResourceOauth2Token(ctx(t), &bedrockagentcore.GetResourceOauth2TokenInput{
					WorkloadIdentityToken: aws.String(token), ResourceCredentialProviderName: aws.String(m2mProvider),
					Scopes: []string{}, Oauth2Flow: types.Oauth2FlowTypeM2m, Resources: []string{fmt.Sprintf("urn:fault:%d", i)},
				})
				msg := tc.check(t, err)
				if got := httpStatus(err); got != tc.wantStatus {
					t.Errorf("status %d, want %d", got, tc.wantStatus)
				}
				for _, q := range tc.wantQuote {
					if !strings.Contains(msg, q) {
						t.Errorf("message %q does not quote %q", msg, q)
					}
				}
				if strings.Contains(msg, m2mClientSecret) {
					t.Errorf("message %q reveals the client secret", msg)
				}
			})
		}
	})
}

// TestE2EM2MTimeout: a token endpoint that never answers fails the call
// within outbound.timeout (1s here) with a typed error, and nothing is
// cached.
func TestE2EM2MTimeout(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		token := mintPlain(t, w.rt, workloadW1)
		hung := make(chan struct{}, 1)
		w.dex.SetTokenFault(func(_ http.ResponseWriter, r *http.Request) bool {
			<-r.Context().Done() // until behalf gives up
			hung <- struct{}{}
			return true
		})

		start := time.Now()
		_, err := getM2M(ctx(t), w.rt, token, m2mProvider)
		elapsed := time.Since(start)
		ise := wantAPIError[*types.InternalServerException](t, err)
		if elapsed < 900*time.Millisecond || elapsed > 3*time.Second {
			t.Errorf("failed after %v; outbound.timeout is 1s", elapsed)
		}
		if got := httpStatus(err); got != http.StatusBadGateway {
			t.Errorf("status %d, want 502", got)
		}
		if msg := aws.ToString(ise.Message); !strings.Contains(msg, m2mProvider) || !strings.Contains(msg, "could not reach") {
			t.Errorf("message %q does not say which provider timed out", msg)
		}
		select {
		case <-hung:
		case <-time.After(5 * time.Second):
			t.Error("behalf did not close the hanging request")
		}

		w.dex.SetTokenFault(nil)
		before := w.dex.TokenRequests("client_credentials")
		if _, err := getM2M(ctx(t), w.rt, token, m2mProvider); err != nil {
			t.Fatal(err)
		}
		if w.dex.TokenRequests("client_credentials") != before+1 {
			t.Error("the failed call left something in the cache")
		}
	})
}

// TestE2EM2MCacheRefreshesBeforeExpiry: a cached token is replaced shortly
// before it expires: within its last tenth, or its last minute when that
// is shorter. Dex's tokens live 10 minutes here; the server's clock is
// advanced into the last minute.
func TestE2EM2MCacheRefreshesBeforeExpiry(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		w := newWorld(t, b, worldOptions{dex: dextest.Options{IDTokensValidFor: 10 * time.Minute}, now: clock.Now})
		token := mintPlain(t, w.rt, workloadW1)
		first, err := getM2M(ctx(t), w.rt, token, m2mProvider)
		if err != nil {
			t.Fatal(err)
		}
		n := w.dex.TokenRequests("client_credentials")
		if again, err := getM2M(ctx(t), w.rt, token, m2mProvider); err != nil || aws.ToString(again.AccessToken) != aws.ToString(first.AccessToken) || w.dex.TokenRequests("client_credentials") != n {
			t.Fatalf("not served from the cache: %v", err)
		}
		clock.Advance(10*time.Minute - 30*time.Second)
		later, err := getM2M(ctx(t), w.rt, token, m2mProvider)
		if err != nil {
			t.Fatal(err)
		}
		if w.dex.TokenRequests("client_credentials") != n+1 || aws.ToString(later.AccessToken) == aws.ToString(first.AccessToken) {
			t.Error("a token in the last tenth of its lifetime was served from the cache")
		}
	})
}

// TestE2EM2MForceAuthentication: a caller whose M2M token an API refused
// asks again with forceAuthentication and gets a new token from Dex, which
// replaces the cached one for the next callers. The forced call is audited
// like any other; concurrent forced callers share one upstream request.
func TestE2EM2MForceAuthentication(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		token := mintPlain(t, w.rt, workloadW1)
		forced := func(c *bedrockagentcore.Client) (*bedrockagentcore.GetResourceOauth2TokenOutput, error) {
			return c.GetResourceOauth2Token(ctx(t), &bedrockagentcore.GetResourceOauth2TokenInput{
				WorkloadIdentityToken: aws.String(token), ResourceCredentialProviderName: aws.String(m2mProvider),
				Scopes: []string{"profile"}, Oauth2Flow: types.Oauth2FlowTypeM2m, ForceAuthentication: aws.Bool(true)})
		}
		cached, err := getM2M(ctx(t), w.rt, token, m2mProvider, "profile")
		if err != nil {
			t.Fatal(err)
		}
		n := w.dex.TokenRequests("client_credentials")

		fresh, err := forced(w.rt)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(fresh.AccessToken) == aws.ToString(cached.AccessToken) || w.dex.TokenRequests("client_credentials") != n+1 {
			t.Fatalf("forceAuthentication was served the cached token (%d upstream requests)", w.dex.TokenRequests("client_credentials")-n)
		}
		if sub := verifyAccessToken(t, w.dex, m2mClientID, aws.ToString(fresh.AccessToken))["sub"]; sub != dextest.Subject(m2mClientID, "") {
			t.Errorf("the new token's sub = %v", sub)
		}
		rec := auditByRequest(t, w.s, requestIDOf(fresh.ResultMetadata, nil))
		want := auditRecord{RequestID: rec.RequestID, Principal: w.runtime.ID, Operation: "GetResourceOauth2Token",
			Workload: workloadW1, Provider: m2mProvider, Scopes: []string{"profile"}, Flow: "M2M", Outcome: "success"}
		if diff := cmp.Diff(want, rec, ignoreChainFields); diff != "" {
			t.Errorf("audit record of the forced call (-want +got):\n%s", diff)
		}

		next, err := getM2M(ctx(t), w.rt, token, m2mProvider, "profile")
		if err != nil || aws.ToString(next.AccessToken) != aws.ToString(fresh.AccessToken) || w.dex.TokenRequests("client_credentials") != n+1 {
			t.Fatalf("the next call did not get the new token from the cache: %v", err)
		}

		// Callers refused at once: Dex holds the first forced request until
		// every caller has sent its own, and answers it once for all.
		release := make(chan struct{})
		w.dex.SetTokenFault(func(_ http.ResponseWriter, r *http.Request) bool {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return false
		})
		var sent atomic.Int32
		client := bedrockagentcore.NewFromConfig(behalftest.AWSConfig(w.runtime.ID, w.runtime.Secret), func(o *bedrockagentcore.Options) {
			o.BaseEndpoint = aws.String(w.s.URL)
			o.HTTPClient = countingClient{&sent}
		})
		const callers = 10
		tokens := make([]string, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				if out, err := forced(client); err == nil {
					tokens[i] = aws.ToString(out.AccessToken)
				}
			})
		}
		deadline := time.Now().Add(20 * time.Second)
		for sent.Load() < callers && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // let the last requests reach the handler
		close(release)
		wg.Wait()
		w.dex.SetTokenFault(nil)
		if got := w.dex.TokenRequests("client_credentials") - (n + 1); got != 1 {
			t.Errorf("%d concurrent forced callers made %d upstream requests, want 1", callers, got)
		}
		if distinct := slices.Compact(slices.Sorted(slices.Values(tokens))); len(distinct) != 1 || distinct[0] == "" || distinct[0] == aws.ToString(fresh.AccessToken) {
			t.Errorf("concurrent forced callers got %d tokens (or the replaced one)", len(distinct))
		}
	})
}

// TestE2EWATNeverOutlivesUserJWT: a token minted for a user's JWT expires
// when the JWT does, even though the default lifetime is 15 minutes and the
// inbound verifier allows 60s of clock skew. Dex's ID tokens live 2 minutes
// here; the server's clock is advanced past their expiry.
func TestE2EWATNeverOutlivesUserJWT(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		w := newWorld(t, b, worldOptions{dex: dextest.Options{IDTokensValidFor: 2 * time.Minute}, now: clock.Now})
		idToken := w.dex.PasswordLogin(t, userClientID, userClientSecret).IDToken
		exp := int64(behalftest.JWTClaims(t, idToken)["exp"].(float64))

		token := mintForJWT(t, w.rt, idToken)
		if c := openWAT(t, w.s, token); c.Expiry != exp {
			t.Errorf("token expires at %d, the JWT at %d", c.Expiry, exp)
		}
		if _, err := getAPIKey(ctx(t), w.rt, token, apiKeyProvider); err != nil {
			t.Fatalf("before the JWT expires: %v", err)
		}

		clock.AdvanceTo(time.Unix(exp, 0).Add(time.Second))
		out, err := getAPIKey(ctx(t), w.rt, token, apiKeyProvider)
		ue := wantAPIError[*types.UnauthorizedException](t, err)
		if out != nil || !strings.Contains(aws.ToString(ue.Message), "expired") {
			t.Errorf("after the JWT expired: %v", err)
		}

		// The JWT is still inside the verifier's 60s leeway, but no token is
		// minted past its expiry.
		_, err = w.rt.GetWorkloadAccessTokenForJWT(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
			WorkloadName: aws.String(workloadW1), UserToken: aws.String(idToken),
		})
		wantAPIError[*types.UnauthorizedException](t, err)
	})
}

// TestE2EChangesTakeEffectAtOnce: the data plane keeps workload identities,
// providers and cached tokens in memory for a moment; a change made through
// the same server must still apply to the very next call.
func TestE2EChangesTakeEffectAtOnce(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		ctl := w.s.Control()
		idToken := w.dex.PasswordLogin(t, userClientID, userClientSecret).IDToken
		token := mintForJWT(t, w.rt, idToken)
		if _, err := getAPIKey(ctx(t), w.rt, token, apiKeyProvider); err != nil {
			t.Fatal(err) // warms the caches
		}
		if _, err := getM2M(ctx(t), w.rt, token, m2mProvider); err != nil {
			t.Fatal(err)
		}
		updateW1 := func(policy map[string]any) {
			t.Helper()
			body := map[string]any{"name": workloadW1}
			for k, v := range policy {
				body[k] = v
			}
			do(t, w.s, "/identities/UpdateWorkloadIdentity", body, http.StatusOK)
		}

		t.Run("API key rotated", func(t *testing.T) {
			const rotated = "sk-live-behalf-TEST-rotated-00112233445566"
			if _, err := ctl.UpdateApiKeyCredentialProvider(ctx(t), &bedrockagentcorecontrol.UpdateApiKeyCredentialProviderInput{
				Name: aws.String(apiKeyProvider), ApiKey: aws.String(rotated)}); err != nil {
				t.Fatal(err)
			}
			out, err := getAPIKey(ctx(t), w.rt, token, apiKeyProvider)
			if err != nil || aws.ToString(out.ApiKey) != rotated {
				t.Errorf("after rotation: %v, the old key still served: %v", err, out != nil && aws.ToString(out.ApiKey) == apiKeyValue)
			}
		})

		t.Run("provider removed from the allow-list", func(t *testing.T) {
			updateW1(map[string]any{"allowedCredentialProviders": grants(m2mProvider)})
			out, err := getAPIKey(ctx(t), w.rt, token, apiKeyProvider)
			wantAPIError[*types.AccessDeniedException](t, err)
			if out != nil {
				t.Error("an API key was returned")
			}
			updateW1(map[string]any{"allowedCredentialProviders": grants(m2mProvider + "=email")})
			_, err = getM2M(ctx(t), w.rt, token, m2mProvider, "profile")
			wantAPIError[*types.AccessDeniedException](t, err)
			updateW1(map[string]any{"allowedCredentialProviders": grants(apiKeyProvider, m2mProvider)})
			if _, err := getAPIKey(ctx(t), w.rt, token, apiKeyProvider); err != nil {
				t.Errorf("provider allowed again: %v", err)
			}
		})

		t.Run("inbound authorizer withdrawn", func(t *testing.T) {
			updateW1(map[string]any{"allowedInboundAuthorizers": []string{}})
			_, err := w.rt.GetWorkloadAccessTokenForJWT(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
				WorkloadName: aws.String(workloadW1), UserToken: aws.String(idToken)})
			wantAPIError[*types.AccessDeniedException](t, err)
			updateW1(map[string]any{"allowedInboundAuthorizers": []string{"*"}})
			mintForJWT(t, w.rt, idToken)
		})

		t.Run("provider deleted", func(t *testing.T) {
			if _, err := ctl.DeleteApiKeyCredentialProvider(ctx(t), &bedrockagentcorecontrol.DeleteApiKeyCredentialProviderInput{
				Name: aws.String(apiKeyProvider)}); err != nil {
				t.Fatal(err)
			}
			out, err := getAPIKey(ctx(t), w.rt, token, apiKeyProvider)
			wantAPIError[*types.ResourceNotFoundException](t, err)
			if out != nil {
				t.Error("the deleted provider's key was returned")
			}
			if _, err := ctl.DeleteOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.DeleteOauth2CredentialProviderInput{
				Name: aws.String(m2mProvider)}); err != nil {
				t.Fatal(err)
			}
			m2m, err := getM2M(ctx(t), w.rt, token, m2mProvider)
			wantAPIError[*types.ResourceNotFoundException](t, err)
			if m2m != nil {
				t.Error("the deleted provider's cached token was returned")
			}
		})

		t.Run("workload deleted", func(t *testing.T) {
			if _, err := ctl.DeleteWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.DeleteWorkloadIdentityInput{Name: aws.String(workloadW1)}); err != nil {
				t.Fatal(err)
			}
			createAPIKeyProvider(t, w.s, apiKeyProvider, apiKeyValue)
			_, err := getAPIKey(ctx(t), w.rt, token, apiKeyProvider)
			wantAPIError[*types.AccessDeniedException](t, err)
			_, err = w.rt.GetWorkloadAccessToken(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String(workloadW1)})
			wantAPIError[*types.ResourceNotFoundException](t, err)
		})
	})
}
