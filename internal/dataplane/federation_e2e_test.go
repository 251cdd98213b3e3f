package dataplane_test

// Three-legged OAuth end to end (issue 4, items 1 and 2): the official
// bedrockagentcore client asks for a user's token, a real Dex plays the
// provider and its consent, a browser without redirects follows the
// provider back to behalf's callback, and CompleteResourceTokenAuth binds
// the tokens — on SQLite and PostgreSQL.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
)

// requestURIPattern is the sessionUri shape of GetResourceOauth2Token in
// the AWS API reference.
var requestURIPattern = regexp.MustCompile(`^urn:ietf:params:oauth:request_uri:[a-zA-Z0-9-._~]+$`)

// TestFederationFlow runs the whole flow for a ForUserId user and a ForJWT
// user (a Dex ID token) and checks every step: the authorization request,
// polling before the callback, the callback's redirect, polling before
// binding, the binding, and the stored token afterwards.
func TestFederationFlow(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		for _, tc := range []struct {
			name string
			mint func() string
			who  types.UserIdentifier
			user string
		}{
			{"ForUserId", func() string { return mintForUser(t, fw.rt, workloadW1, "alice") }, asUserID("alice"), "id:alice"},
			{"ForJWT", func() string { return mintForJWT(t, fw.rt, fw.aliceJWT) }, asUserToken(fw.aliceJWT), fw.aliceJWTUser},
		} {
			t.Run(tc.name, func(t *testing.T) {
				token := tc.mint()
				const customState = "csrf-TEST-7f3a9c01"
				resources, audiences := []string{"https://api.example.com/"}, []string{"urn:example:audience"}
				params := func(in *oauth2Input) {
					in.CustomState = aws.String(customState)
					in.CustomParameters = map[string]string{"login_hint": "kilgore", "connector_id": dextest.CallbackConnectorID}
					in.Resources, in.Audiences = resources, audiences
				}
				s := fw.start(t, fedInput(token, params))
				if !requestURIPattern.MatchString(s.uri) {
					t.Errorf("sessionUri %q is not a request_uri URN", s.uri)
				}

				// The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
				u, err := url.Parse(s.authURL)
				if err != nil {
					t.Fatal(err)
				}
				q := u.Query()
				if got := u.Scheme + "://" + u.Host + u.Path; got != fw.dex.AuthURL {
					t.Errorf("authorization endpoint %s, want Dex's %s", got, fw.dex.AuthURL)
				}
				for k, want := range map[string]string{
					"response_type": "code", "client_id": fedClientID, "redirect_uri": fw.callbackURL,
					"code_challenge_method": "S256", "login_hint": "kilgore", "connector_id": dextest.CallbackConnectorID,
				} {
					if got := q[k]; len(got) != 1 || got[0] != want {
						t.Errorf("authorization URL %s = %q, want exactly %q", k, got, want)
					}
				}
				if got := strings.Fields(q.Get("scope")); !sameStringSet(got, fedScopes) {
					t.Errorf("scope %q, want %q", got, fedScopes)
				}
				if !slices.Equal(q["resource"], resources) || !slices.Equal(q["audience"], audiences) {
					t.Errorf("resource %q, audience %q", q["resource"], q["audience"])
				}
				id := strings.TrimPrefix(s.uri, "urn:ietf:params:oauth:request_uri:")
				if len(s.state) < 32 || s.state == customState || strings.Contains(s.state, id) || strings.Contains(id, s.state) {
					t.Errorf("state %q is not an unguessable value of its own", s.state)
				}
				challenge := q.Get("code_challenge")
				if len(challenge) != 43 {
					t.Errorf("code_challenge %q is not an S256 challenge", challenge)
				}
				for k, v := range q {
					if len(v) != 1 && k != "resource" && k != "audience" {
						t.Errorf("authorization URL repeats %s: %q", k, v)
					}
				}
				if strings.Contains(s.authURL, customState) {
					t.Error("the custom state went to the provider")
				}

				// Polling before the callback: the same session, URL and status.
				out := fw.poll(t, token, s.uri)
				if out.SessionStatus != types.SessionStatusInProgress || aws.ToString(out.AuthorizationUrl) != s.authURL ||
					aws.ToString(out.SessionUri) != s.uri || out.AccessToken != nil {
					t.Errorf("poll before the callback: status %q, same URL %v, same session %v, token %v",
						out.SessionStatus, aws.ToString(out.AuthorizationUrl) == s.authURL, aws.ToString(out.SessionUri) == s.uri, out.AccessToken != nil)
				}

				// The user consents; Dex sends the browser to the callback.
				exchanges := len(fw.tokens.grant("authorization_code"))
				toCallback := fw.dex.Authorize(t, s.authURL)
				code := toCallback.Query().Get("code")
				if toCallback.Query().Get("state") != s.state || code == "" {
					t.Fatalf("Dex's redirect %s", toCallback)
				}
				cb := fedBrowse(t, toCallback.String())
				if cb.status != http.StatusFound {
					t.Fatalf("callback: %d %s", cb.status, cb.body)
				}
				loc := cb.location(t)
				if got := loc.Scheme + "://" + loc.Host + loc.Path; got != "http://127.0.0.1:9999/after-consent" {
					t.Errorf("redirected to %s, want the return URL", loc)
				}
				lq := loc.Query()
				if lq.Get("app") != "demo" || lq.Get("session_id") != s.uri || lq.Get("state") != customState || len(lq) != 3 {
					t.Errorf("return URL query %v: want app=demo kept, session_id = the sessionUri, state = the custom state, nothing else", lq)
				}

				// The code was exchanged once, with the PKCE verifier of the
				// challenge (Dex checks it too: a wrong one fails there).
				ex := fw.tokens.grant("authorization_code")[exchanges:]
				if len(ex) != 1 {
					t.Fatalf("%d code exchanges, want 1", len(ex))
				}
				f := ex[0]
				if f.Get("code") != code || f.Get("redirect_uri") != fw.callbackURL || pkceS256(f.Get("code_verifier")) != challenge ||
					f.Get("(basic client_id)") != fedClientID || f.Get("client_secret") != "" || !slices.Equal(f["resource"], resources) {
					t.Errorf("code exchange: code ok %v, redirect_uri %q, verifier matches the challenge %v, basic client %q, resource %q",
						f.Get("code") == code, f.Get("redirect_uri"), pkceS256(f.Get("code_verifier")) == challenge, f.Get("(basic client_id)"), f["resource"])
				}

				// After the callback, before binding: still IN_PROGRESS, and
				// the tokens are nowhere usable.
				out = fw.poll(t, token, s.uri)
				if out.SessionStatus != types.SessionStatusInProgress || out.AccessToken != nil {
					t.Errorf("poll before binding: status %q, token %v", out.SessionStatus, out.AccessToken != nil)
				}
				if _, err := fw.connection(t, tc.user); err == nil {
					t.Error("a connection exists before binding")
				}
				if st := fw.storedSession(t, s.uri).Status; st != storage.SessionAuthorized {
					t.Errorf("session status %s after the callback, want AUTHORIZED", st)
				}

				if err := fw.complete(t, s.uri, tc.who); err != nil {
					t.Fatalf("CompleteResourceTokenAuth: %v", err)
				}
				tok := fw.token(t, fedInput(token, params, withSession(s.uri)))
				if sub := verifyAccessToken(t, fw.dex, fedClientID, tok)["sub"]; sub != dextest.CallbackSubject {
					t.Errorf("token sub %v, want Dex's browser user %s", sub, dextest.CallbackSubject)
				}
				conn, err := fw.connection(t, tc.user)
				if err != nil || conn.Status != storage.ConnectionActive {
					t.Fatalf("connection after binding: %+v %v", conn.Status, err)
				}

				// The stored token comes back at once, without asking Dex,
				// also for fewer scopes and without a return URL.
				n := fw.tokens.count()
				for _, mods := range [][]func(*oauth2Input){
					{params}, {params, withoutReturnURL}, {params, withScopes("openid")},
				} {
					if again := fw.token(t, fedInput(token, mods...)); again != tok {
						t.Error("a later call did not return the stored token")
					}
				}
				if fw.tokens.count() != n {
					t.Errorf("the stored token cost %d token requests", fw.tokens.count()-n)
				}

				// A scope not granted needs new consent.
				s2 := fw.start(t, fedInput(token, params, withScopes("openid", "groups")))
				if s2.uri == s.uri || !strings.Contains(s2.authURL, "groups") {
					t.Errorf("new session %s for a new scope", s2.uri)
				}
				// forceAuthentication starts over even with a stored token …
				s3 := fw.start(t, fedInput(token, params, func(in *oauth2Input) {
					in.ForceAuthentication = aws.Bool(true)
				}))
				if s3.uri == s.uri || s3.uri == s2.uri || s3.state == s.state {
					t.Error("forceAuthentication reused a session")
				}
				// … and leaves the stored token in place until the new
				// session binds.
				if again := fw.token(t, fedInput(token, params)); again != tok || fw.tokens.count() != n {
					t.Error("the stored token is gone after forceAuthentication")
				}
				// Once it binds, its tokens replace the stored ones. (Dex's
				// tokens carry no jti: two issued in one second are equal,
				// so the connection's version says it, not the token.)
				fw.consentOK(t, s3)
				if err := fw.complete(t, s3.uri, tc.who); err != nil {
					t.Fatal(err)
				}
				if renewed, _ := fw.connection(t, tc.user); renewed.Version <= conn.Version {
					t.Errorf("connection version %d after a new consent, was %d", renewed.Version, conn.Version)
				}
				fw.token(t, fedInput(token, params))
			})
		}
	})
}

func sameStringSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// TestFederationReturnURLRules: a session starts only for a return URL
// registered on the workload, compared exactly; a workload with none, a
// missing URL and every near miss are ValidationExceptions naming the
// member.
func TestFederationReturnURLRules(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		createWorkload(t, fw.s, workloadW2, map[string]any{"allowedCredentialProviders": grants(fedProvider)})
		grant(t, fw.s, fw.runtime, workloadW1, workloadW2)
		onW1, onW2 := mintForUser(t, fw.rt, workloadW1, "alice"), mintForUser(t, fw.rt, workloadW2, "alice")

		for _, tc := range []struct {
			name, token string
			returnURL   *string
			wantMessage string // "" means accepted
		}{
			{"registered, loopback http", onW1, aws.String(fedReturnURL), ""},
			{"registered, https", onW1, aws.String(fedReturnURL2), ""},
			{"none registered on the workload", onW2, aws.String(fedReturnURL), "register at least one"},
			{"missing", onW1, nil, "resourceOauth2ReturnUrl is required"},
			{"not registered", onW1, aws.String("http://127.0.0.1:9999/elsewhere"), "is not one of"},
			{"scheme in upper case", onW1, aws.String("HTTP://127.0.0.1:9999/after-consent?app=demo"), "is not one of"},
			{"path in another case", onW1, aws.String("http://127.0.0.1:9999/After-Consent?app=demo"), "is not one of"},
			{"host in upper case", onW1, aws.String("https://APP.example.com/oauth/done"), "is not one of"},
			{"trailing slash added", onW1, aws.String(fedReturnURL2 + "/"), "is not one of"},
			{"query dropped", onW1, aws.String("http://127.0.0.1:9999/after-consent"), "is not one of"},
			{"query added", onW1, aws.String(fedReturnURL2 + "?next=/admin"), "is not one of"},
			{"another port", onW1, aws.String("http://127.0.0.1:9998/after-consent?app=demo"), "is not one of"},
			{"localhost for 127.0.0.1", onW1, aws.String("http://localhost:9999/after-consent?app=demo"), "is not one of"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(tc.token, func(in *oauth2Input) {
					in.ResourceOauth2ReturnUrl = tc.returnURL
				}))
				if tc.wantMessage == "" {
					if err != nil {
						t.Fatal(err)
					}
					s := wantSession(t, out)
					loc := fw.consentOK(t, s)
					loc.RawQuery = ""
					registered, _ := url.Parse(*tc.returnURL)
					registered.RawQuery = ""
					if loc.String() != registered.String() {
						t.Errorf("callback sent the browser to %s, want %s", loc, registered)
					}
					return
				}
				ve := wantAPIError[*types.ValidationException](t, err)
				if msg := aws.ToString(ve.Message); !strings.Contains(msg, tc.wantMessage) {
					t.Errorf("message %q does not say %q", msg, tc.wantMessage)
				}
				if !slices.ContainsFunc(ve.FieldList, func(f types.ValidationExceptionField) bool {
					return aws.ToString(f.Name) == "resourceOauth2ReturnUrl"
				}) {
					t.Errorf("fieldList %+v does not name resourceOauth2ReturnUrl", ve.FieldList)
				}
			})
		}

		// Registration: plain http only on a loopback host.
		t.Run("registering http", func(t *testing.T) {
			for _, u := range []string{"http://app.example.com/cb", "http://10.0.0.1:8080/cb", "http://127.0.0.1.example.com/cb"} {
				_, err := fw.s.Control().UpdateWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.UpdateWorkloadIdentityInput{
					Name: aws.String(workloadW2), AllowedResourceOauth2ReturnUrls: []string{u}})
				if err == nil {
					t.Errorf("%s was registered", u)
				}
				wantAPIError[*ctltypes.ValidationException](t, err)
			}
			setReturnURLs(t, fw.s, workloadW2, "http://localhost:8080/cb", "http://[::1]:8080/cb", "http://127.0.0.1:8080/cb")
		})
	})
}

// TestFederationNeedsAUser: a workload access token minted for the
// workload alone cannot start or continue USER_FEDERATION.
func TestFederationNeedsAUser(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		plain := mintPlain(t, fw.rt, workloadW1)
		s := fw.start(t, fedInput(mintForUser(t, fw.rt, workloadW1, "alice")))
		for name, in := range map[string]*oauth2Input{
			"start":    fedInput(plain),
			"continue": fedInput(plain, withSession(s.uri)),
		} {
			out, err := fw.data.GetResourceOauth2Token(ctx(t), in)
			ve := wantAPIError[*types.ValidationException](t, err)
			if msg := aws.ToString(ve.Message); !strings.Contains(msg, "GetWorkloadAccessTokenForUserId") || out != nil {
				t.Errorf("%s: message %q does not say how to get a user-bound token", name, msg)
			}
		}
	})
}

// TestFederationRequestParameters: customParameters may not replace a
// standard authorization parameter, whatever its case; and a provider
// without S256 gets no PKCE challenge, and the flow still completes.
func TestFederationRequestParameters(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{extraProviders: []string{"no-pkce"}})
		token := mintForUser(t, fw.rt, workloadW1, "alice")

		t.Run("standard parameters cannot be overridden", func(t *testing.T) {
			for _, k := range []string{"state", "redirect_uri", "client_id", "scope", "response_type", "code_challenge",
				"code_challenge_method", "resource", "audience", "request_uri", "nonce", "STATE", "Redirect_Uri"} {
				out, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(token, func(in *oauth2Input) {
					in.CustomParameters = map[string]string{k: "https://evil.example/cb"}
				}))
				if out != nil {
					t.Errorf("%s: a session started", k)
				}
				ve := wantAPIError[*types.ValidationException](t, err)
				if msg := aws.ToString(ve.Message); !strings.Contains(msg, "may not override") {
					t.Errorf("%s: message %q", k, msg)
				}
			}
		})

		t.Run("no PKCE for a provider without S256", func(t *testing.T) {
			// The provider's metadata is Dex's, except that it offers only
			// the plain method.
			var meta map[string]any
			res, err := http.Get(fw.dex.DiscoveryURL)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(res.Body).Decode(&meta)
			res.Body.Close()
			md := httptest.NewServer(nil)
			t.Cleanup(md.Close)
			meta["issuer"] = md.URL
			meta["code_challenge_methods_supported"] = []string{"plain"}
			md.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(meta)
			})
			_, err = fw.s.Control().CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
				Name: aws.String("no-pkce"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
				Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
					ClientId: aws.String(fedClientID), ClientSecret: aws.String(fedClientSecret),
					OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: md.URL + "/.well-known/openid-configuration"},
				}},
			})
			if err != nil {
				t.Fatal(err)
			}
			cb, _ := callbackOf(t, fw.s, "no-pkce")
			fw.dex.SetRedirectURIs(t, fedClientID, fw.callbackURL, cb)
			in := fedInput(token, func(in *oauth2Input) {
				in.ResourceCredentialProviderName = aws.String("no-pkce")
			})
			s := fw.start(t, in)
			q, _ := url.ParseQuery(s.authURL[strings.Index(s.authURL, "?")+1:])
			if q.Has("code_challenge") || q.Has("code_challenge_method") {
				t.Errorf("PKCE sent to a provider without S256: %v", q)
			}
			toCallback := fw.dex.Authorize(t, s.authURL)
			n := len(fw.tokens.grant("authorization_code"))
			if p := fedBrowse(t, toCallback.String()); p.status != http.StatusFound {
				t.Fatalf("callback: %d %s", p.status, p.body)
			}
			if ex := fw.tokens.grant("authorization_code")[n:]; len(ex) != 1 || ex[0].Has("code_verifier") {
				t.Errorf("code exchange %v", ex)
			}
			if err := fw.complete(t, s.uri, asUserID("alice")); err != nil {
				t.Fatal(err)
			}
			in.SessionUri = aws.String(s.uri)
			fw.token(t, in)
		})
	})
}
