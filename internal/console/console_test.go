package console_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
)

const consoleKeyID = "BEHALFCONSOLEADMIN01"

// TestConsoleOffByDefault: without the console section, /console/ is no
// page.
func TestConsoleOffByDefault(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		if got := behalftest.NewBrowser(t).Get(s.URL + "/console/"); got.Status != http.StatusNotFound {
			t.Errorf("/console/ with the console off: %d", got.Status)
		}
	})
}

// consoleWorld: people sign in at corp (a dev IdP putting groups in
// alice's ID token, making her an admin, and not in bob's); carol has
// connected corp for the workload identity support-agent.
type consoleWorld struct {
	s     *behalftest.Server
	corp  *devidp.Server
	carol string // carol's user key
	base  string // the console's URL
	logs  *lockedLog
}

// lockedLog is the server's log, at debug level, written from many
// goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newConsoleWorld starts the server, with edits applied to its
// configuration.
func newConsoleWorld(t *testing.T, b behalftest.Backend, edits ...func(*config.File)) *consoleWorld {
	t.Helper()
	corp := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "console", Secret: "console-secret"}},
		UserClaims: map[string]map[string]any{"alice": {"groups": []string{"staff", "behalf-admins"}}, "bob": {"groups": "staff"}}})
	logs := &lockedLog{}
	s := behalftest.Start(t, b, behalftest.Options{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Edit: func(f *config.File) {
		f.Development = true
		f.Console = config.ConsoleFile{Enabled: true, Provider: "corp", Scopes: []string{"profile"},
			AdminClaim: config.ConsoleClaimFile{Name: "groups", Value: "behalf-admins"}, Principal: consoleKeyID}
		for _, edit := range edits {
			edit(f)
		}
	}})
	ctx := t.Context()
	if _, err := s.Control().CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String("corp"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String("console"), ClientSecret: aws.String("console-secret"),
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: corp.Issuer() + "/.well-known/openid-configuration"}}},
	}); err != nil {
		t.Fatal(err)
	}
	api := func(path string, body any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		if res := s.Do(t, behalftest.Raw{Path: path, Body: raw}); res.Status/100 != 2 {
			t.Fatalf("%s: %d %s", path, res.Status, res.Body)
		}
	}
	api("/behalf/CreatePrincipal", map[string]any{"role": "admin", "accessKeyId": consoleKeyID, "secretAccessKey": "console-principal-secret-0123456789"})
	api("/identities/CreateWorkloadIdentity", map[string]any{"name": "support-agent", "allowedResourceOauth2ReturnUrls": []string{s.URL + "/dev/complete"},
		"allowedCredentialProviders": []map[string]any{{"provider": "corp", "scopes": []string{"tickets.read"}}}})
	// carol connects corp for support-agent: USER_FEDERATION, consent
	// at the dev IdP, the development completion page.
	carol := "id:carol"
	data := s.Data()
	wat, err := data.GetWorkloadAccessTokenForUserId(ctx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String("support-agent"), UserId: aws.String("carol")})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := data.GetResourceOauth2Token(ctx, &bedrockagentcore.GetResourceOauth2TokenInput{ResourceCredentialProviderName: aws.String("corp"),
		WorkloadIdentityToken: wat.WorkloadAccessToken, Oauth2Flow: types.Oauth2FlowTypeUserFederation, Scopes: []string{"tickets.read"},
		ResourceOauth2ReturnUrl: aws.String(s.URL + "/dev/complete")})
	if err != nil || tok.AuthorizationUrl == nil {
		t.Fatalf("USER_FEDERATION: %v", err)
	}
	if code, page := behalftest.Consent(t, *tok.AuthorizationUrl, "carol", true); code != http.StatusOK {
		t.Fatalf("carol's consent: %d %s", code, page)
	}
	return &consoleWorld{s: s, corp: corp, carol: carol, base: s.URL + "/console/", logs: logs}
}

// weatherPrefix is a route's header prefix, never shown.
var weatherPrefix = "Key-prefix-never-shown "

// TestConsole: people sign in at corp (a dev IdP putting groups in
// alice's ID token); alice, an admin, sees every page with the server's
// data and revokes a connection through RevokeConnection, audited as
// her; bob, who is not, is refused and audited.
func TestConsole(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newConsoleWorld(t, b, func(f *config.File) {
			f.Telemetry.Metrics.Prometheus.Enabled = true
			f.Telemetry.Audit.AnchorInterval = time.Hour
			f.Gateway = config.MountedGatewayFile{Listen: testnet.FreeAddr(t), Principal: "BEHALFGATEWAYRUN01", Routes: []config.GatewayRouteFile{
				{Name: "support", Path: "/agents/support", Upstream: "http://127.0.0.1:9/", Kind: "agent", Workload: "support-agent"},
				{Name: "weather", Path: "/tools/weather", Upstream: "http://weather.example:8443/forecast",
					Kind: "tool", Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key", Prefix: &weatherPrefix}},
			}}
		})
		s, corp, carol, ctx := w.s, w.corp, w.carol, t.Context()
		provider, err := s.Server.Store().GetOAuth2Provider(ctx, "corp")
		if err != nil {
			t.Fatal(err)
		}
		base := w.base

		// Not signed in: sent to sign in; a POST is refused.
		anon := behalftest.NewBrowser(t)
		anon.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		if got := anon.Get(base + "audit"); got.Status != http.StatusSeeOther {
			t.Errorf("signed out GET: %d", got.Status)
		}
		if got := anon.Send(http.MethodPost, base+"connections/revoke", url.Values{"csrf": {"x"}}); got.Status != http.StatusUnauthorized {
			t.Errorf("signed out POST: %d", got.Status)
		}

		// bob signs in but is not an admin.
		bob := behalftest.NewBrowser(t)
		if got := bob.Consent(bob.Get(base), "bob"); got.Status != http.StatusForbidden || !strings.Contains(got.Body, "not an administrator") {
			t.Errorf("bob: %d %s", got.Status, got.Body)
		}

		// alice: a cookie planted before sign-in never becomes the session.
		alice := behalftest.NewBrowser(t)
		u, _ := url.Parse(base)
		planted := &http.Cookie{Name: "behalf_console", Value: "planted-by-an-attacker", Path: u.Path} //nolint:gosec // G124: an attacker's cookie
		alice.Client.Jar.SetCookies(u, []*http.Cookie{planted})
		home := alice.Consent(alice.Get(base), "alice")
		if home.Status != http.StatusOK || home.URL != base || !strings.Contains(home.Body, "Workload identities</a></th><td>1</td>") {
			t.Fatalf("overview: %d %s %s", home.Status, home.URL, home.Body)
		}
		for _, c := range alice.Client.Jar.Cookies(u) {
			if c.Name == "behalf_console" && c.Value == planted.Value {
				t.Error("the planted cookie survived sign-in")
			}
		}
		// The anchor the server publishes, shown and checked on the audit page.
		s.Server.PublishAnchor(ctx)
		head, err := s.Server.Store().GetAuditHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var keyIDs []string
		var sealed []string
		for _, purpose := range []string{"mcp-client-signing", "workload-access-token"} {
			keys, err := s.Server.Store().ListServerKeys(ctx, purpose)
			if err != nil || len(keys) == 0 {
				t.Fatalf("%s: %v %v", purpose, keys, err)
			}
			for _, k := range keys {
				keyIDs = append(keyIDs, k.ID)
				sealed = append(sealed, base64.StdEncoding.EncodeToString(k.Key.Blob), base64.RawURLEncoding.EncodeToString(k.Key.Blob))
			}
		}
		never := append([]string{"console-secret", "<script", weatherPrefix}, sealed...)
		for path, want := range map[string]string{
			"keys":                    keyIDs[0] + "</code></th>",
			"keys?again":              keyIDs[1] + "</code></th>",
			"gateway":                 "<code>http://weather.example:8443</code>",
			"gateway?again":           "<code>X-Api-Key</code>",
			"audit":                   fmt.Sprintf("Last published anchor: <code>%d:%s</code>", head.Seq, hex.EncodeToString(head.Hash)),
			"audit?again":             "checked: the log still holds it",
			"workloads":               ">support-agent</a>",
			"workloads/support-agent": "<code>tickets.read</code>",
			"providers":               ">corp</a>",
			"providers/corp":          corp.Issuer() + "/.well-known/openid-configuration",
			"principals":              consoleKeyID,
			"connections?user=" + url.QueryEscape(carol): "Revoke",
			"audit?operation=CreatePrincipal":            "Verified",
		} {
			got := alice.Get(base + path)
			if got.Status != http.StatusOK || !strings.Contains(got.Body, want) {
				t.Errorf("%s: %d, want %q in %s", path, got.Status, want, got.Body)
			}
			for _, secret := range never {
				if strings.Contains(got.Body, secret) {
					t.Errorf("%s shows a secret or a script: %q", path, secret)
				}
			}
		}

		// The overview's metrics figures move with the calls made.
		figure := func(row string) int {
			t.Helper()
			body := alice.Get(base).Body
			m := regexp.MustCompile(regexp.QuoteMeta(row) + `</th><td>(\d+)`).FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("no %q figure in %s", row, body)
			}
			n, _ := strconv.Atoi(m[1])
			return n
		}
		requests, failed := figure("API requests"), figure("Failed requests")
		if res := s.Do(t, behalftest.Raw{Path: "/identities/GetWorkloadIdentity", Body: []byte(`{"name":"nobody"}`)}); res.Status != http.StatusNotFound {
			t.Fatalf("GetWorkloadIdentity of nobody: %d", res.Status)
		}
		if got := figure("Failed requests"); got < failed+1 {
			t.Errorf("failed requests %d, then %d after a failed call", failed, got)
		}
		if got := figure("API requests"); got < requests+2 {
			t.Errorf("requests %d, then %d after calls", requests, got)
		}
		if got := alice.Get(base + "workloads/nobody"); got.Status != http.StatusNotFound || strings.Contains(got.Body, "sql") {
			t.Errorf("a missing workload: %d %s", got.Status, got.Body)
		}

		// CSRF: a revoke without the form token, or with a wrong one, is refused.
		conns := alice.Get(base + "connections?user=" + url.QueryEscape(carol))
		form := url.Values{"provider": {"corp"}, "workload": {"support-agent"}, "user": {carol}}
		if got := alice.Send(http.MethodPost, base+"connections/revoke", form); got.Status != http.StatusForbidden {
			t.Errorf("revoke without a form token: %d", got.Status)
		}
		form.Set("csrf", "AAAA"+behalftest.CSRF(t, conns)[4:])
		if got := alice.Send(http.MethodPost, base+"connections/revoke", form); got.Status != http.StatusForbidden {
			t.Errorf("revoke with a wrong form token: %d", got.Status)
		}
		form.Set("csrf", behalftest.CSRF(t, conns))
		if got := alice.Send(http.MethodPost, base+"connections/revoke", form); got.Status != http.StatusOK || !strings.Contains(got.Body, "deleted") {
			t.Fatalf("revoke: %d %s", got.Status, got.Body)
		}
		if _, err := s.Server.Store().GetConnection(ctx, storage.ConnectionKey{ProviderID: provider.ID, Workload: "support-agent", User: carol}); err == nil {
			t.Error("the connection survived its revocation")
		}
		if got := alice.Send(http.MethodPost, base+"connections/revoke", form); got.Status != http.StatusNotFound {
			t.Errorf("revoking it again: %d %s", got.Status, got.Body)
		}

		// Sign-out: the old cookie, replayed, no longer signs in.
		old := alice.Client.Jar.Cookies(u)
		if got := alice.Send(http.MethodPost, base+"signout", url.Values{"csrf": {behalftest.CSRF(t, conns)}}); got.Status != http.StatusOK || !strings.Contains(got.Body, "signed out") {
			t.Fatalf("sign-out: %d %s", got.Status, got.Body)
		}
		replay := behalftest.NewBrowser(t)
		replay.Client.Jar.SetCookies(u, old)
		replay.Client.CheckRedirect = anon.Client.CheckRedirect
		if got := replay.Get(base); got.Status != http.StatusSeeOther {
			t.Errorf("a signed-out cookie replayed: %d", got.Status)
		}

		// The audit trail names the person with the console's principal.
		as := func(user string) string { return "console:" + consoleKeyID + "/jwt:" + corp.Issuer() + "#" + user }
		want := []string{
			"ConsoleSignIn " + as("bob") + " failure AccessDeniedException",
			"ConsoleSignIn " + as("alice") + " success ",
			"RevokeConnection " + as("alice") + " success ",
			"RevokeConnection " + as("alice") + " failure ResourceNotFoundException",
			"ConsoleSignOut " + as("alice") + " success ",
		}
		auditTrail(t, s, func(r storage.AuditRecord) string {
			if strings.HasPrefix(r.Principal, "console:") && r.Operation != "ListConnections" {
				return r.Operation + " " + r.Principal + " " + r.Outcome + " " + r.ErrorType
			}
			return ""
		}, want)
	})
}

// auditTrail waits for the audit records that line names (a non-empty
// line) to be want, and returns every record.
func auditTrail(t *testing.T, s *behalftest.Server, line func(storage.AuditRecord) string, want []string) []storage.AuditRecord {
	t.Helper()
	var got []string
	var recs []storage.AuditRecord
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if recs, err = s.Server.Store().ListAudit(t.Context(), storage.AuditFilter{Limit: 1000}); err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, r := range recs {
			if l := line(r); l != "" {
				got = append(got, l)
			}
		}
		if slices.Equal(got, want) {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit records:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	return recs
}

// TestConsoleQuiet: with metrics, anchoring and the gateway off, the
// pages say so; and the console's calls spend its principal's allowance
// under the per-principal rate limit, as the API's signed calls do.
func TestConsoleQuiet(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		// The overview makes 5 calls, the audit page 2 and the gateway page
		// none: the keys page is the 8th call.
		const burst = 7
		w := newConsoleWorld(t, b, func(f *config.File) { f.Limits = config.LimitsFile{RequestsPerSecond: 0.001, Burst: burst} })
		s, base := w.s, w.base
		alice := behalftest.NewBrowser(t)
		for _, step := range []struct{ path, want string }{
			{"", "Metrics are off"},
			{"gateway", "mounts no gateway"},
			{"audit", "publishes no anchors"},
		} {
			var got behalftest.Page
			if step.path == "" {
				got = alice.Consent(alice.Get(base), "alice")
			} else {
				got = alice.Get(base + step.path)
			}
			if got.Status != http.StatusOK || !strings.Contains(got.Body, step.want) {
				t.Errorf("%s: %d, want %q in %s", step.path, got.Status, step.want, got.Body)
			}
		}
		if got := alice.Get(base + "keys"); got.Status != http.StatusTooManyRequests || !strings.Contains(got.Body, "rate exceeded for "+consoleKeyID) {
			t.Errorf("past the console principal's burst: %d %s", got.Status, got.Body)
		}
		// The admin that signs API calls has an allowance of its own.
		if res := s.Do(t, behalftest.Raw{Path: "/behalf/GetKeyRotationStatus", Body: []byte(`{}`)}); res.Status != http.StatusOK {
			t.Errorf("the bootstrap admin: %d %s", res.Status, res.Body)
		}
	})
}
