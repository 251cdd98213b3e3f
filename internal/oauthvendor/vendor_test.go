package oauthvendor

import (
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
)

// apiOrder is CredentialProviderVendorType as the AgentCore API model lists
// it (AgentCore Control API reference; bedrockagentcorecontrol types/enums.go).
var apiOrder = []string{
	"GoogleOauth2", "GithubOauth2", "SlackOauth2", "SalesforceOauth2", "MicrosoftOauth2",
	"CustomOauth2", "AtlassianOauth2", "LinkedinOauth2", "XOauth2", "OktaOauth2",
	"OneLoginOauth2", "PingOneOauth2", "FacebookOauth2", "YandexOauth2", "RedditOauth2",
	"ZoomOauth2", "TwitchOauth2", "SpotifyOauth2", "DropboxOauth2", "NotionOauth2",
	"HubspotOauth2", "CyberArkOauth2", "FusionAuthOauth2", "Auth0Oauth2", "CognitoOauth2",
}

func TestCatalogueIsTheAPIEnumeration(t *testing.T) {
	names := Names()
	if len(names) != 25 || len(All()) != 25 {
		t.Fatalf("catalogue has %d names, %d vendors; want 25", len(names), len(All()))
	}
	if !slices.Equal(names, apiOrder) {
		t.Errorf("Names() = %v\nwant %v", names, apiOrder)
	}
	seen := map[string]bool{}
	for i, v := range All() {
		if seen[v.Name] {
			t.Errorf("duplicate vendor %s", v.Name)
		}
		seen[v.Name] = true
		if v.Name != names[i] {
			t.Errorf("All()[%d] = %s, Names()[%d] = %s", i, v.Name, i, names[i])
		}
	}
}

// TestConfigMembers checks the vendor → Oauth2ProviderConfigInput member
// mapping of CreateOauth2CredentialProvider.
func TestConfigMembers(t *testing.T) {
	named := map[string]string{
		CustomOauth2:     "customOauth2ProviderConfig",
		GoogleOauth2:     "googleOauth2ProviderConfig",
		GithubOauth2:     "githubOauth2ProviderConfig",
		SlackOauth2:      "slackOauth2ProviderConfig",
		SalesforceOauth2: "salesforceOauth2ProviderConfig",
		MicrosoftOauth2:  "microsoftOauth2ProviderConfig",
		AtlassianOauth2:  "atlassianOauth2ProviderConfig",
		LinkedinOauth2:   "linkedinOauth2ProviderConfig",
	}
	for _, name := range apiOrder {
		want, ok := named[name]
		if !ok {
			want = "includedOauth2ProviderConfig"
		}
		v, found := Lookup(name)
		if !found {
			t.Fatalf("Lookup(%q) found nothing", name)
		}
		if v.ConfigMember != want {
			t.Errorf("%s: ConfigMember = %q, want %q", name, v.ConfigMember, want)
		}
	}
}

func TestTenantScopedVendors(t *testing.T) {
	want := []string{
		CustomOauth2, OktaOauth2, OneLoginOauth2, PingOneOauth2,
		CyberArkOauth2, FusionAuthOauth2, Auth0Oauth2, CognitoOauth2,
	}
	var got []string
	for _, v := range All() {
		urls := []string{v.Issuer, v.AuthorizationEndpoint, v.TokenEndpoint, v.RevocationEndpoint, v.DiscoveryURL}
		if v.TenantScoped {
			got = append(got, v.Name)
			for _, u := range urls {
				if u != "" {
					t.Errorf("%s is tenant-scoped but has default URL %q", v.Name, u)
				}
			}
			if !v.OIDC {
				t.Errorf("%s is tenant-scoped but not OIDC: an issuer alone could not be resolved", v.Name)
			}
			continue
		}
		if v.AuthorizationEndpoint == "" || v.TokenEndpoint == "" {
			t.Errorf("%s has no default authorization or token endpoint", v.Name)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("tenant-scoped vendors = %v, want %v", got, want)
	}
}

// TestDefaultURLs checks that every default URL, with its placeholders
// filled in, is an absolute https URL that Resolve would accept.
func TestDefaultURLs(t *testing.T) {
	for _, v := range All() {
		fields := map[string]string{
			"Issuer":                v.Issuer,
			"AuthorizationEndpoint": v.AuthorizationEndpoint,
			"TokenEndpoint":         v.TokenEndpoint,
			"RevocationEndpoint":    v.RevocationEndpoint,
			"DiscoveryURL":          v.DiscoveryURL,
		}
		for field, raw := range fields {
			if raw == "" {
				continue
			}
			if strings.Contains(raw, TenantPlaceholder) && v.DefaultTenant == "" {
				t.Errorf("%s.%s carries %s but the vendor has no DefaultTenant", v.Name, field, TenantPlaceholder)
			}
			if strings.Contains(raw, ClientIDPlaceholder) && (field != "RevocationEndpoint" || v.RevocationStyle != RevocationGitHub) {
				t.Errorf("%s.%s carries %s outside a GitHub-style revocation endpoint", v.Name, field, ClientIDPlaceholder)
			}
			filled := strings.ReplaceAll(raw, TenantPlaceholder, v.DefaultTenant)
			filled = strings.ReplaceAll(filled, ClientIDPlaceholder, "Iv1.0123456789abcdef")
			u, err := url.Parse(filled)
			if err != nil {
				t.Errorf("%s.%s = %q does not parse: %v", v.Name, field, raw, err)
				continue
			}
			if u.Scheme != "https" || !u.IsAbs() || u.Hostname() == "" {
				t.Errorf("%s.%s = %q is not an absolute https URL", v.Name, field, raw)
			}
			if p := endpointProblem(filled); p != "" {
				t.Errorf("%s.%s = %q: %s", v.Name, field, raw, p)
			}
		}
		if v.DefaultTenant != "" && !strings.Contains(v.TokenEndpoint, TenantPlaceholder) {
			t.Errorf("%s has DefaultTenant but its token endpoint has no %s", v.Name, TenantPlaceholder)
		}
		// A default discovery document must belong to the default issuer.
		if v.Issuer != "" && v.DiscoveryURL != "" && v.DiscoveryURL != v.Issuer+discoverySuffix {
			t.Errorf("%s: DiscoveryURL %q is not Issuer %q + %s", v.Name, v.DiscoveryURL, v.Issuer, discoverySuffix)
		}
		if v.DiscoveryURL != "" && !v.OIDC {
			t.Errorf("%s has a DiscoveryURL but OIDC is false", v.Name)
		}
	}
}

func TestRowInvariants(t *testing.T) {
	for _, v := range All() {
		if v.DisplayName == "" {
			t.Errorf("%s has no DisplayName", v.Name)
		}
		switch v.TokenAuthMethod {
		case ClientSecretBasic, ClientSecretPost:
		default:
			t.Errorf("%s: TokenAuthMethod %q", v.Name, v.TokenAuthMethod)
		}
		switch v.TokenBodyFormat {
		case BodyForm, BodyJSON:
		default:
			t.Errorf("%s: TokenBodyFormat %q", v.Name, v.TokenBodyFormat)
		}
		if v.ScopeSeparator != " " && v.ScopeSeparator != "," {
			t.Errorf("%s: ScopeSeparator %q", v.Name, v.ScopeSeparator)
		}
		if (v.RevocationEndpoint == "") != (v.RevocationStyle == RevocationNone) {
			t.Errorf("%s: RevocationEndpoint %q with RevocationStyle %q", v.Name, v.RevocationEndpoint, v.RevocationStyle)
		}
		if (v.UserScopeParam == "") != (v.UserTokenField == "") {
			t.Errorf("%s: UserScopeParam and UserTokenField must be set together", v.Name)
		}
		if len(v.Sources) == 0 {
			t.Errorf("%s has no Sources", v.Name)
		}
		for _, s := range v.Sources {
			if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" {
				t.Errorf("%s: source %q is not an https URL", v.Name, s)
			}
		}
		for k := range v.AuthorizationParams {
			switch k {
			case "response_type", "client_id", "redirect_uri", "scope", "state",
				"code_challenge", "code_challenge_method":
				t.Errorf("%s: AuthorizationParams sets the standard parameter %q", v.Name, k)
			}
		}
	}
}

// TestUnconfirmedIsDocumented pins the vendors whose rows carry something
// the sources did not confirm, so that the list in the report and the
// catalogue cannot drift apart silently.
func TestUnconfirmedIsDocumented(t *testing.T) {
	want := []string{
		AtlassianOauth2, LinkedinOauth2, OneLoginOauth2, RedditOauth2,
		ZoomOauth2, TwitchOauth2, CyberArkOauth2,
	}
	var got []string
	for _, v := range All() {
		if v.Unconfirmed != "" {
			got = append(got, v.Name)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("vendors with Unconfirmed = %v, want %v", got, want)
	}
}

// TestQuirks spot-checks the quirks later flows depend on.
func TestQuirks(t *testing.T) {
	get := func(name string) Vendor {
		t.Helper()
		v, ok := Lookup(name)
		if !ok {
			t.Fatalf("Lookup(%q) found nothing", name)
		}
		return v
	}
	params := []struct {
		vendor string
		want   map[string]string
	}{
		{GoogleOauth2, map[string]string{"access_type": "offline", "prompt": "consent"}},
		{DropboxOauth2, map[string]string{"token_access_type": "offline"}},
		{RedditOauth2, map[string]string{"duration": "permanent"}},
		{AtlassianOauth2, map[string]string{"audience": "api.atlassian.com", "prompt": "consent"}},
		{NotionOauth2, map[string]string{"owner": "user"}},
	}
	for _, p := range params {
		got := get(p.vendor).AuthorizationParams
		if len(got) != len(p.want) {
			t.Errorf("%s: AuthorizationParams = %v, want %v", p.vendor, got, p.want)
		}
		for k, w := range p.want {
			if got[k] != w {
				t.Errorf("%s: AuthorizationParams[%q] = %q, want %q", p.vendor, k, got[k], w)
			}
		}
	}

	if gh := get(GithubOauth2); gh.TokenRequestHeaders["Accept"] != "application/json" || !gh.TokenErrorsWithStatusOK {
		t.Errorf("GitHub: headers %v, errors-with-200 %v", gh.TokenRequestHeaders, gh.TokenErrorsWithStatusOK)
	}
	if n := get(NotionOauth2); n.TokenAuthMethod != ClientSecretBasic || n.TokenBodyFormat != BodyJSON {
		t.Errorf("Notion: %s with %s bodies, want Basic with JSON", n.TokenAuthMethod, n.TokenBodyFormat)
	}
	if s := get(SlackOauth2); s.ScopeSeparator != "," || s.UserScopeParam != "user_scope" || s.UserTokenField != "authed_user" {
		t.Errorf("Slack: separator %q, user scope %q, user token %q", s.ScopeSeparator, s.UserScopeParam, s.UserTokenField)
	}
	if x := get(XOauth2); !x.PKCE || x.TokenAuthMethod != ClientSecretBasic || !slices.Equal(x.RefreshScopes, []string{"offline.access"}) {
		t.Errorf("X: PKCE %v, auth %s, refresh scopes %v", x.PKCE, x.TokenAuthMethod, x.RefreshScopes)
	}
	if r := get(RedditOauth2); !r.RequiresUserAgent || r.TokenAuthMethod != ClientSecretBasic {
		t.Errorf("Reddit: user agent %v, auth %s", r.RequiresUserAgent, r.TokenAuthMethod)
	}
	if m := get(MicrosoftOauth2); m.DefaultTenant != "common" {
		t.Errorf("Microsoft: DefaultTenant %q", m.DefaultTenant)
	}
}

func TestLookup(t *testing.T) {
	if v, ok := Lookup("OktaOauth2"); !ok || v.Name != "OktaOauth2" {
		t.Errorf("Lookup(OktaOauth2) = %v, %v", v.Name, ok)
	}
	for _, name := range []string{"", "oktaoauth2", "OktaOAuth2", "Okta", "AppleOauth2", " GoogleOauth2"} {
		if _, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) found a vendor", name)
		}
	}
}

// TestCopies checks that callers cannot change the catalogue through the
// values it hands out.
func TestCopies(t *testing.T) {
	v, _ := Lookup(GoogleOauth2)
	v.AuthorizationParams["prompt"] = "none"
	v.Sources[0] = "https://attacker.example/"
	v.TokenEndpoint = "https://attacker.example/token"
	all := All()
	all[0].AuthorizationParams["access_type"] = "online"
	gh, _ := Lookup(GithubOauth2)
	gh.TokenRequestHeaders["Accept"] = "text/html"
	sf, _ := Lookup(SalesforceOauth2)
	sf.RefreshScopes[0] = "api"

	g, _ := Lookup(GoogleOauth2)
	if g.AuthorizationParams["prompt"] != "consent" || g.AuthorizationParams["access_type"] != "offline" ||
		g.TokenEndpoint != "https://oauth2.googleapis.com/token" || strings.Contains(g.Sources[0], "attacker") {
		t.Errorf("Google row was modified through a copy: %+v", g)
	}
	if gh, _ := Lookup(GithubOauth2); gh.TokenRequestHeaders["Accept"] != "application/json" {
		t.Error("GitHub headers were modified through a copy")
	}
	if sf, _ := Lookup(SalesforceOauth2); sf.RefreshScopes[0] != "refresh_token" {
		t.Error("Salesforce refresh scopes were modified through a copy")
	}
}

func TestJoinScopes(t *testing.T) {
	slack, _ := Lookup(SlackOauth2)
	google, _ := Lookup(GoogleOauth2)
	scopes := []string{"a", "b"}
	if got := slack.JoinScopes(scopes); got != "a,b" {
		t.Errorf("Slack JoinScopes = %q", got)
	}
	if got := google.JoinScopes(scopes); got != "a b" {
		t.Errorf("Google JoinScopes = %q", got)
	}
	if got := (Vendor{}).JoinScopes(scopes); got != "a b" {
		t.Errorf("zero Vendor JoinScopes = %q", got)
	}
}

// docRow is a vendor's row in the doc.go table, as fields.
func docRow(v Vendor) []string {
	token := strings.TrimPrefix(v.TokenEndpoint, "https://")
	if v.TenantScoped {
		token = "(from configuration)"
	}
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	auth := "post"
	if v.TokenAuthMethod == ClientSecretBasic {
		auth = "basic"
	}
	rev := string(v.RevocationStyle)
	if rev == "" {
		rev = "none"
		if v.TenantScoped {
			rev = "discovery"
		}
	}
	return strings.Fields(strings.Join([]string{v.Name, token, auth, yesNo(v.PKCE), yesNo(v.SupportsClientCredentials), rev}, " "))
}

// TestDocTable keeps the package documentation's table in step with the
// catalogue.
func TestDocTable(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(src), "\n") {
		fields := strings.Fields(strings.TrimPrefix(line, "//"))
		if len(fields) > 0 && strings.HasPrefix(line, "//\t") {
			if _, ok := Lookup(fields[0]); ok {
				rows[fields[0]] = fields
			}
		}
	}
	for _, v := range All() {
		got, ok := rows[v.Name]
		if !ok {
			t.Errorf("doc.go table has no row for %s", v.Name)
			continue
		}
		if want := docRow(v); !slices.Equal(got, want) {
			t.Errorf("doc.go row for %s = %v\nwant %v", v.Name, got, want)
		}
	}
}
