package dataplane_test

// Connections' lifecycle (issue 4, item 6): list, revoke (RFC 7009 where
// the provider offers it) and delete, through the API extension and the
// CLI; and the removal of connections unused past
// userFederation.connectionMaxIdle.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/google/go-cmp/cmp"

	"github.com/behalf-dev/behalf/internal/cli"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// threeConnections connects alice (user id) and Alice's JWT user on W1,
// and alice on W2, and returns their access tokens.
func (fw *fedWorld) threeConnections(t *testing.T) []string {
	t.Helper()
	createWorkload(t, fw.s, workloadW2, map[string]any{"allowedCredentialProviders": grants(fedProvider)})
	setReturnURLs(t, fw.s, workloadW2, fedReturnURL)
	grant(t, fw.s, fw.runtime, workloadW1, workloadW2)
	return []string{
		fw.connect(t, mintForUser(t, fw.rt, workloadW1, "alice"), asUserID("alice")),
		fw.connect(t, mintForJWT(t, fw.rt, fw.aliceJWT), asUserToken(fw.aliceJWT)),
		fw.connect(t, mintForUser(t, fw.rt, workloadW2, "alice"), asUserID("alice")),
	}
}

// TestFederationConnectionsAPI: /behalf/ListConnections with its filters
// and pages, RevokeConnection against a provider without revocation, and
// DeleteConnection — admin only, audited, and never showing a token.
func TestFederationConnectionsAPI(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		accessTokens := fw.threeConnections(t)
		key := func(c fedConnection) string { return c.Workload + " " + c.User }

		all := listedConnections(t, fw.s, map[string]any{})
		if len(all) != 3 {
			t.Fatalf("%d connections, want 3", len(all))
		}
		for _, c := range all {
			if c.Provider != fedProvider || c.Status != "ACTIVE" || !sameStringSet(c.Scopes, fedScopes) || c.ExpiresAt == nil ||
				c.CreatedTime == 0 || c.LastUsedTime < c.CreatedTime {
				t.Errorf("connection %+v", c)
			}
		}
		for _, tc := range []struct {
			filter map[string]any
			want   []string
		}{
			{map[string]any{"provider": fedProvider}, []string{workloadW1 + " id:alice", workloadW1 + " " + fw.aliceJWTUser, workloadW2 + " id:alice"}},
			{map[string]any{"provider": m2mProvider}, nil},
			{map[string]any{"provider": "no-such-provider"}, nil},
			{map[string]any{"workload": workloadW2}, []string{workloadW2 + " id:alice"}},
			{map[string]any{"user": "id:alice"}, []string{workloadW1 + " id:alice", workloadW2 + " id:alice"}},
			{map[string]any{"user": fw.aliceJWTUser}, []string{workloadW1 + " " + fw.aliceJWTUser}},
			{map[string]any{"user": "id:alice", "workload": workloadW1, "provider": fedProvider}, []string{workloadW1 + " id:alice"}},
			{map[string]any{"user": "alice"}, nil},
		} {
			var got []string
			for _, c := range listedConnections(t, fw.s, tc.filter) {
				got = append(got, key(c))
			}
			if !sameStringSet(got, tc.want) {
				t.Errorf("filter %v: %q, want %q", tc.filter, got, tc.want)
			}
		}

		// Pages of one.
		var paged []string
		var bodies [][]byte
		next := ""
		for range 5 {
			body := map[string]any{"maxResults": 1}
			if next != "" {
				body["nextToken"] = next
			}
			res := do(t, fw.s, "/behalf/ListConnections", body, http.StatusOK)
			bodies = append(bodies, res.Body)
			var listPage struct {
				Connections []fedConnection `json:"connections"`
				NextToken   string          `json:"nextToken"`
			}
			json.Unmarshal(res.Body, &listPage)
			for _, c := range listPage.Connections {
				paged = append(paged, key(c))
			}
			if next = listPage.NextToken; next == "" {
				break
			}
		}
		if len(paged) != 3 || len(slices.Compact(slices.Sorted(slices.Values(paged)))) != 3 {
			t.Errorf("pages of one gave %q", paged)
		}
		var secrets secretSet
		secrets.add("access token", accessTokens...)
		secrets.add("refresh token", fw.tokens.values("refresh_token")...)
		secrets.checkAbsent(t, "ListConnections", bodies...)

		// Admin only.
		res := fw.s.Do(t, behalftest.Raw{Path: "/behalf/ListConnections", Body: []byte(`{}`), KeyID: fw.runtime.ID, Secret: fw.runtime.Secret})
		if res.Status != http.StatusForbidden || res.ErrType != "AccessDeniedException" {
			t.Errorf("runtime principal listing connections: %d %s", res.Status, res.Body)
		}

		// Revoke: Dex offers no revocation endpoint.
		target := map[string]any{"provider": fedProvider, "workload": workloadW1, "user": "id:alice"}
		res = do(t, fw.s, "/behalf/RevokeConnection", target, http.StatusOK)
		var revoked struct {
			RevokedAtProvider bool   `json:"revokedAtProvider"`
			Message           string `json:"message"`
		}
		if err := json.Unmarshal(res.Body, &revoked); err != nil || revoked.RevokedAtProvider || !strings.Contains(revoked.Message, "offers no token revocation") {
			t.Errorf("revoke: %s", res.Body)
		}
		rec := auditByRequest(t, fw.s, res.Header.Get("X-Amzn-RequestId"))
		want := auditRecord{RequestID: rec.RequestID, Principal: behalftest.AdminKeyID, Operation: "RevokeConnection",
			Workload: workloadW1, User: "id:alice", Provider: fedProvider, Outcome: "success"}
		if diff := cmp.Diff(want, rec, ignoreChainFields); diff != "" {
			t.Errorf("audit record of the revocation (-want +got):\n%s", diff)
		}
		if _, err := fw.connection(t, "id:alice"); err == nil {
			t.Error("the revoked connection is still stored")
		}
		fw.start(t, fedInput(mintForUser(t, fw.rt, workloadW1, "alice"))) // consent again
		wantRawError(t, fw.s.Do(t, behalftest.Raw{Path: "/behalf/RevokeConnection", Body: fedJSON(t, target)}), http.StatusNotFound, "ResourceNotFoundException")

		// Delete.
		target["user"] = fw.aliceJWTUser
		do(t, fw.s, "/behalf/DeleteConnection", target, http.StatusNoContent)
		if _, err := fw.connection(t, fw.aliceJWTUser); err == nil {
			t.Error("the deleted connection is still stored")
		}
		wantRawError(t, fw.s.Do(t, behalftest.Raw{Path: "/behalf/DeleteConnection", Body: fedJSON(t, target)}), http.StatusNotFound, "ResourceNotFoundException")
		target["provider"] = "no-such-provider"
		wantRawError(t, fw.s.Do(t, behalftest.Raw{Path: "/behalf/DeleteConnection", Body: fedJSON(t, target)}), http.StatusNotFound, "ResourceNotFoundException")
		// The remaining one is untouched.
		if left := listedConnections(t, fw.s, map[string]any{}); len(left) != 1 || key(left[0]) != workloadW2+" id:alice" {
			t.Errorf("left: %+v", left)
		}
	})
}

func fedJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantRawError(t *testing.T, res behalftest.Response, status int, errType string) {
	t.Helper()
	if res.Status != status || res.ErrType != errType {
		t.Errorf("%d %s %s, want %d %s", res.Status, res.ErrType, res.Body, status, errType)
	}
}

// cliRun runs the behalf CLI against s, signing as admin.
func fedCLI(t *testing.T, s *behalftest.Server, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	all := append([]string{args[0], "--endpoint", s.URL, "--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}, args[1:]...)
	code = cli.Execute(context.Background(), all, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func fedCLIOK(t *testing.T, s *behalftest.Server, args ...string) string {
	t.Helper()
	out, errs, code := fedCLI(t, s, args...)
	if code != 0 {
		t.Fatalf("behalf %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// TestFederationConnectionsCLI: behalf connection list|revoke|delete.
func TestFederationConnectionsCLI(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		accessTokens := fw.threeConnections(t)

		var all []fedConnection
		out := fedCLIOK(t, fw.s, "connection", "list", "-o", "json")
		if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 3 {
			t.Fatalf("connection list -o json: %v\n%s", err, out)
		}
		var mine []fedConnection
		json.Unmarshal([]byte(fedCLIOK(t, fw.s, "connection", "list", "--user", "id:alice", "--workload", workloadW2, "-o", "json")), &mine)
		if len(mine) != 1 || mine[0].Workload != workloadW2 || mine[0].User != "id:alice" || mine[0].Status != "ACTIVE" {
			t.Errorf("filtered list: %+v", mine)
		}
		table := fedCLIOK(t, fw.s, "connection", "list", "--provider", fedProvider)
		if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "PROVIDER") ||
			!strings.Contains(table, fw.aliceJWTUser) || !strings.Contains(table, "ACTIVE") {
			t.Errorf("table:\n%s", table)
		}
		var secrets secretSet
		secrets.add("access token", accessTokens...)
		secrets.add("refresh token", fw.tokens.values("refresh_token")...)
		secrets.checkAbsent(t, "the CLI's output", []byte(out), []byte(table))

		var revoked struct {
			RevokedAtProvider bool   `json:"revokedAtProvider"`
			Message           string `json:"message"`
		}
		out = fedCLIOK(t, fw.s, "connection", "revoke", "--provider", fedProvider, "--workload", workloadW1, "--user", "id:alice", "-o", "json")
		if err := json.Unmarshal([]byte(out), &revoked); err != nil || revoked.RevokedAtProvider || !strings.Contains(revoked.Message, "offers no token revocation") {
			t.Errorf("revoke: %s", out)
		}
		if out := fedCLIOK(t, fw.s, "connection", "delete", "--provider", fedProvider, "--workload", workloadW1, "--user", fw.aliceJWTUser); !strings.Contains(out, "deleted") {
			t.Errorf("delete: %s", out)
		}
		var left []fedConnection
		json.Unmarshal([]byte(fedCLIOK(t, fw.s, "connection", "list", "-o", "json")), &left)
		if len(left) != 1 || left[0].Workload != workloadW2 {
			t.Errorf("after revoke and delete: %+v", left)
		}

		for _, args := range [][]string{
			{"connection", "delete", "--provider", fedProvider, "--workload", workloadW1, "--user", "id:alice"},
			{"connection", "revoke", "--provider", fedProvider, "--workload", workloadW1, "--user", "id:nobody"},
		} {
			_, errs, code := fedCLI(t, fw.s, args...)
			if code == 0 || !strings.HasPrefix(errs, "behalf: ResourceNotFoundException:") {
				t.Errorf("behalf %s: exit %d %q", strings.Join(args, " "), code, errs)
			}
		}
		if _, errs, code := fedCLI(t, fw.s, "connection", "revoke", "--provider", fedProvider); code == 0 || !strings.Contains(errs, "required") {
			t.Errorf("revoke without a target: exit %d %q", code, errs)
		}
	})
}

// devIDP runs internal/devidp, recording the refresh tokens it issues and
// its revocations.
type devIDP struct {
	url, clientID, secret string

	mu      sync.Mutex
	refresh []string
	access  []string
	events  []devidp.Event
	// hold, if set, sees every token request's form before the dev IdP
	// does, and may block it.
	hold func(form url.Values)
}

func (d *devIDP) setHold(f func(form url.Values)) {
	d.mu.Lock()
	d.hold = f
	d.mu.Unlock()
}

func startDevIDP(t *testing.T) *devIDP {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	d := &devIDP{url: "http://" + hs.Listener.Addr().String(), clientID: "agent", secret: "devidp-secret-TEST-0123456789abcdef"}
	idp, err := devidp.New(devidp.Options{Issuer: d.url, Clients: []devidp.Client{{ID: d.clientID, Secret: d.secret}},
		Observe: func(ev devidp.Event) { d.mu.Lock(); d.events = append(d.events, ev); d.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	h := idp.Handler()
	hs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		d.mu.Lock()
		hold := d.hold
		d.mu.Unlock()
		if hold != nil {
			form, _ := url.ParseQuery(string(body))
			hold(form)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var issued struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &issued) == nil {
			d.mu.Lock()
			if issued.RefreshToken != "" {
				d.refresh = append(d.refresh, issued.RefreshToken)
			}
			if issued.AccessToken != "" {
				d.access = append(d.access, issued.AccessToken)
			}
			d.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
	hs.Start()
	t.Cleanup(hs.Close)
	return d
}

func (d *devIDP) lastRefreshToken() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.refresh) == 0 {
		return ""
	}
	return d.refresh[len(d.refresh)-1]
}

// issuedAccessTokens returns every access token the dev IdP issued.
func (d *devIDP) issuedAccessTokens() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.access)
}

func (d *devIDP) revocations() []devidp.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []devidp.Event
	for _, ev := range d.events {
		if ev.Endpoint == "revoke" {
			out = append(out, ev)
		}
	}
	return out
}

var devIDPFormToken = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

// consent plays the user at the dev IdP's consent page and returns where
// it sends the browser.
func (d *devIDP) consent(t *testing.T, authURL, username string) *url.URL {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := devIDPFormToken.FindSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("dev IdP consent page: %d %s", res.StatusCode, body)
	}
	res, err = b.PostForm(d.url+"/consent", url.Values{"form_token": {string(m[1])}, "username": {username}, "action": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("dev IdP consent: %d %v", res.StatusCode, err)
	}
	return loc
}

// refreshAt redeems a refresh token at the dev IdP directly.
func (d *devIDP) refreshAt(t *testing.T, rt string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, d.url+"/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(d.clientID, d.secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	json.NewDecoder(res.Body).Decode(&e)
	return res.StatusCode, e.Error
}

// addDevIDP creates a CustomOauth2 provider for d, and returns its id and
// a function making USER_FEDERATION requests for it.
func (fw *fedWorld) addDevIDP(t *testing.T, d *devIDP, name string) (string, func(token string, mods ...func(*oauth2Input)) *oauth2Input) {
	t.Helper()
	_, err := fw.s.Control().CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String(name), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String(d.clientID), ClientSecret: aws.String(d.secret),
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: d.url + "/.well-known/openid-configuration"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, id := callbackOf(t, fw.s, name)
	return id, func(token string, mods ...func(*oauth2Input)) *oauth2Input {
		return fedInput(token, append([]func(*oauth2Input){func(in *oauth2Input) {
			in.ResourceCredentialProviderName, in.Scopes = aws.String(name), []string{"openid", "profile"}
		}}, mods...)...)
	}
}

// TestFederationRevokeAtDevIdP: with a provider that offers RFC 7009
// revocation (internal/devidp), RevokeConnection revokes the refresh
// token there — it no longer works at the provider — and deletes the
// connection. A refresh token the provider revoked on its own gives a real
// invalid_grant, and the user is asked to consent again.
func TestFederationRevokeAtDevIdP(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		const provider = "devidp"
		fw := newFedWorld(t, b, fedOptions{extraProviders: []string{provider}})
		d := startDevIDP(t)
		providerID, devInput := fw.addDevIDP(t, d, provider)
		connect := func(user string) (string, string) {
			token := mintForUser(t, fw.rt, workloadW1, user)
			s := fw.start(t, devInput(token))
			if p := fedBrowse(t, d.consent(t, s.authURL, user).String()); p.status != http.StatusFound {
				t.Fatalf("callback: %d %s", p.status, p.body)
			}
			if err := fw.complete(t, s.uri, asUserID(user)); err != nil {
				t.Fatal(err)
			}
			return token, fw.token(t, devInput(token, withSession(s.uri)))
		}

		t.Run("revoke", func(t *testing.T) {
			connect("alice")
			rt := d.lastRefreshToken()
			if rt == "" {
				t.Fatal("the dev IdP issued no refresh token")
			}
			res := do(t, fw.s, "/behalf/RevokeConnection", map[string]any{"provider": provider, "workload": workloadW1, "user": "id:alice"}, http.StatusOK)
			var out struct {
				RevokedAtProvider bool   `json:"revokedAtProvider"`
				Message           string `json:"message"`
			}
			if err := json.Unmarshal(res.Body, &out); err != nil || !out.RevokedAtProvider || !strings.Contains(out.Message, "revoked at "+provider) {
				t.Errorf("revoke: %s", res.Body)
			}
			if revs := d.revocations(); len(revs) == 0 || slices.ContainsFunc(revs, func(ev devidp.Event) bool { return ev.Error != "" }) {
				t.Errorf("revocations at the dev IdP: %+v", revs)
			}
			if status, code := d.refreshAt(t, rt); status != http.StatusBadRequest || code != "invalid_grant" {
				t.Errorf("the revoked refresh token at the dev IdP: %d %s", status, code)
			}
			if _, err := fw.s.Server.Store().GetConnection(ctx(t), storage.ConnectionKey{ProviderID: providerID, Workload: workloadW1, User: "id:alice"}); err == nil {
				t.Error("the revoked connection is still stored")
			}
		})

		t.Run("revocation refused by the provider", func(t *testing.T) {
			connect("carol")
			rt := d.lastRefreshToken()
			update := func(secret string) {
				t.Helper()
				if _, err := fw.s.Control().UpdateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
					Name: aws.String(provider), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
					Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
						ClientId: aws.String(d.clientID), ClientSecret: aws.String(secret),
						OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: d.url + "/.well-known/openid-configuration"},
					}},
				}); err != nil {
					t.Fatal(err)
				}
			}
			update("WRONG-secret-TEST-0123456789abcdef")
			target := map[string]any{"provider": provider, "workload": workloadW1, "user": "id:carol"}
			res := fw.s.Do(t, behalftest.Raw{Path: "/behalf/RevokeConnection", Body: fedJSON(t, target)})
			if res.Status/100 == 2 || !strings.Contains(string(res.Body), "invalid_client") {
				t.Errorf("revocation the provider refused: %d %s", res.Status, res.Body)
			}
			k := storage.ConnectionKey{ProviderID: providerID, Workload: workloadW1, User: "id:carol"}
			if _, err := fw.s.Server.Store().GetConnection(ctx(t), k); err != nil {
				t.Fatalf("the connection was deleted although the provider refused to revoke: %v", err)
			}
			// Still good at the provider (this rotates it there; the
			// revocation below revokes its whole family all the same).
			if status, _ := d.refreshAt(t, rt); status != http.StatusOK {
				t.Errorf("the refresh token stopped working at the provider: %d", status)
			}
			update(d.secret)
			do(t, fw.s, "/behalf/RevokeConnection", target, http.StatusOK)
			if _, err := fw.s.Server.Store().GetConnection(ctx(t), k); err == nil {
				t.Error("the connection survived the retried revocation")
			}
		})

		t.Run("revoked at the provider", func(t *testing.T) {
			token, _ := connect("bob")
			rt := d.lastRefreshToken()
			req, _ := http.NewRequest(http.MethodPost, d.url+"/revoke", strings.NewReader(url.Values{"token": {rt}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(d.clientID, d.secret)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("revoke at the dev IdP: %v", err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("revoke at the dev IdP: HTTP %d", res.StatusCode)
			}
			k := storage.ConnectionKey{ProviderID: providerID, Workload: workloadW1, User: "id:bob"}
			if _, err := fw.s.Server.Store().UpdateConnection(ctx(t), k, func(c storage.Connection) (storage.Connection, error) {
				c.ExpiresAt = time.Now().Add(-time.Second)
				return c, nil
			}); err != nil {
				t.Fatal(err)
			}
			fw.s.Server.ForgetConnections()
			fw.start(t, devInput(token))
			if conn, _ := fw.s.Server.Store().GetConnection(ctx(t), k); conn.Status != storage.ConnectionNeedsConsent {
				t.Errorf("connection %s after invalid_grant", conn.Status)
			}
		})
	})
}

// TestFederationIdleExpiry: with connectionMaxIdle 24h, Server.Maintain
// removes a connection last used more than a day ago and keeps one used
// recently — and using a connection counts as use.
func TestFederationIdleExpiry(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{edit: func(f *config.File) { f.UserFederation.ConnectionMaxIdle = 24 * time.Hour }})
		users := map[string]string{}
		for _, u := range []string{"idle", "recent", "revived"} {
			users[u] = mintForUser(t, fw.rt, workloadW1, u)
			fw.connect(t, users[u], asUserID(u))
		}
		age := func(user string, d time.Duration) {
			t.Helper()
			if _, err := fw.s.Server.Store().UpdateConnection(ctx(t), storage.ConnectionKey{ProviderID: fw.providerID, Workload: workloadW1, User: "id:" + user},
				func(c storage.Connection) (storage.Connection, error) {
					c.LastUsedAt = time.Now().Add(-d)
					return c, nil
				}); err != nil {
				t.Fatal(err)
			}
			fw.s.Server.ForgetConnections()
		}
		age("idle", 25*time.Hour)
		age("recent", 23*time.Hour)
		age("revived", 25*time.Hour)
		fw.token(t, fedInput(users["revived"])) // used now

		fw.s.Server.Maintain(ctx(t))
		var left []string
		for _, c := range listedConnections(t, fw.s, map[string]any{}) {
			left = append(left, c.User)
		}
		if !sameStringSet(left, []string{"id:recent", "id:revived"}) {
			t.Errorf("after maintenance: %q, want id:recent and id:revived", left)
		}
		fw.start(t, fedInput(users["idle"])) // the idle user consents again
		fw.token(t, fedInput(users["recent"]))
	})
}
