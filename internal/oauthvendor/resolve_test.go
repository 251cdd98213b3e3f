package oauthvendor

import (
	"errors"
	"strings"
	"testing"
)

func mustLookup(t testing.TB, name string) Vendor {
	t.Helper()
	v, ok := Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q) found nothing", name)
	}
	return v
}

// fieldErrors flattens an error returned by Resolve into its FieldErrors.
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]*FieldError, 0, len(errs))
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %v is not a *FieldError", e)
		}
		out = append(out, fe)
	}
	return out
}

// wantFieldError checks that err holds exactly one FieldError, for field,
// wrapping sentinel.
func wantFieldError(t *testing.T, err error, sentinel error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v on %s", sentinel, field)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q does not wrap %v", err, sentinel)
	}
	fes := fieldErrors(t, err)
	if len(fes) != 1 || fes[0].Field != field {
		t.Fatalf("errors = %v, want one on %s", err, field)
	}
	if !strings.HasPrefix(err.Error(), "oauthvendor: ") || !strings.Contains(err.Error(), field) {
		t.Errorf("message %q should start with the package name and name %s", err, field)
	}
}

func TestResolveNamedVendorsUseDefaults(t *testing.T) {
	for _, name := range []string{GoogleOauth2, GithubOauth2, SlackOauth2, SalesforceOauth2, AtlassianOauth2, LinkedinOauth2} {
		v := mustLookup(t, name)
		got, err := v.Resolve(ResolveInput{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := Endpoints{
			Issuer:                v.Issuer,
			AuthorizationEndpoint: v.AuthorizationEndpoint,
			TokenEndpoint:         v.TokenEndpoint,
			RevocationEndpoint:    v.RevocationEndpoint,
			DiscoveryURL:          v.DiscoveryURL,
		}
		if got != want {
			t.Errorf("%s: Resolve = %+v, want %+v", name, got, want)
		}
		if got.NeedsDiscovery() {
			t.Errorf("%s: NeedsDiscovery with default endpoints", name)
		}
	}
	got, _ := mustLookup(t, GoogleOauth2).Resolve(ResolveInput{})
	if got.TokenEndpoint != "https://oauth2.googleapis.com/token" {
		t.Errorf("Google token endpoint = %q", got.TokenEndpoint)
	}
}

func TestResolveRefusesFieldsTheMemberDoesNotCarry(t *testing.T) {
	tests := []struct {
		vendor string
		in     ResolveInput
		field  string
	}{
		{GoogleOauth2, ResolveInput{TokenEndpoint: "https://evil.example/token"}, "googleOauth2ProviderConfig.tokenEndpoint"},
		{GithubOauth2, ResolveInput{Issuer: "https://github.com"}, "githubOauth2ProviderConfig.issuer"},
		{SlackOauth2, ResolveInput{TenantID: "T123"}, "slackOauth2ProviderConfig.tenantId"},
		{MicrosoftOauth2, ResolveInput{Issuer: "https://login.microsoftonline.com/x/v2.0"}, "microsoftOauth2ProviderConfig.issuer"},
		{OktaOauth2, ResolveInput{TenantID: "x", Issuer: "https://acme.okta.com"}, "includedOauth2ProviderConfig.tenantId"},
		{ZoomOauth2, ResolveInput{DiscoveryURL: "https://zoom.us/.well-known/openid-configuration"}, "includedOauth2ProviderConfig.discoveryUrl"},
		{CustomOauth2, ResolveInput{TenantID: "x", DiscoveryURL: "https://idp.example/.well-known/openid-configuration"}, "customOauth2ProviderConfig.tenantId"},
	}
	for _, tt := range tests {
		_, err := mustLookup(t, tt.vendor).Resolve(tt.in)
		wantFieldError(t, err, ErrFieldNotAllowed, tt.field)
	}
}

func TestResolveMicrosoftTenant(t *testing.T) {
	ms := mustLookup(t, MicrosoftOauth2)
	tests := []struct {
		tenant, wantTenant string
		wantIssuer         bool
	}{
		{"", "common", false},
		{"common", "common", false},
		{"organizations", "organizations", false},
		{"Consumers", "Consumers", false},
		{"contoso.onmicrosoft.com", "contoso.onmicrosoft.com", true},
		{"72f988bf-86f1-41af-91ab-2d7cd011db47", "72f988bf-86f1-41af-91ab-2d7cd011db47", true},
	}
	for _, tt := range tests {
		got, err := ms.Resolve(ResolveInput{TenantID: tt.tenant})
		if err != nil {
			t.Fatalf("tenant %q: %v", tt.tenant, err)
		}
		base := "https://login.microsoftonline.com/" + tt.wantTenant
		want := Endpoints{
			AuthorizationEndpoint: base + "/oauth2/v2.0/authorize",
			TokenEndpoint:         base + "/oauth2/v2.0/token",
			DiscoveryURL:          base + "/v2.0/.well-known/openid-configuration",
		}
		if tt.wantIssuer {
			want.Issuer = base + "/v2.0"
		}
		if got != want {
			t.Errorf("tenant %q: Resolve = %+v\nwant %+v", tt.tenant, got, want)
		}
	}
	for _, bad := range []string{"../common", "a/b", "common?x=1", "common#x", "-x", ".x", "ten ant", "c%2Fd", "ｃommon", strings.Repeat("a", 254)} {
		_, err := ms.Resolve(ResolveInput{TenantID: bad})
		wantFieldError(t, err, ErrInvalidValue, "microsoftOauth2ProviderConfig.tenantId")
	}
}

var tenantScoped = []string{OktaOauth2, OneLoginOauth2, PingOneOauth2, CyberArkOauth2, FusionAuthOauth2, Auth0Oauth2, CognitoOauth2}

func TestResolveTenantScopedNeedsInput(t *testing.T) {
	for _, name := range tenantScoped {
		v := mustLookup(t, name)
		_, err := v.Resolve(ResolveInput{})
		wantFieldError(t, err, ErrMissingField, "includedOauth2ProviderConfig.issuer")
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: message %q does not name the vendor", name, err)
		}

		_, err = v.Resolve(ResolveInput{TokenEndpoint: "https://tenant.example/oauth2/token"})
		wantFieldError(t, err, ErrMissingField, "includedOauth2ProviderConfig.authorizationEndpoint")

		_, err = v.Resolve(ResolveInput{AuthorizationEndpoint: "https://tenant.example/oauth2/authorize"})
		wantFieldError(t, err, ErrMissingField, "includedOauth2ProviderConfig.tokenEndpoint")
	}
}

func TestResolveIssuerOnlyGivesDiscoveryURL(t *testing.T) {
	tests := []struct {
		vendor, issuer, discovery string
	}{
		{OktaOauth2, "https://acme.okta.com/oauth2/default", "https://acme.okta.com/oauth2/default/.well-known/openid-configuration"},
		{OktaOauth2, "https://acme.okta.com", "https://acme.okta.com/.well-known/openid-configuration"},
		// Auth0 issuers end in "/"; OIDC Discovery §4.1 drops it.
		{Auth0Oauth2, "https://acme.us.auth0.com/", "https://acme.us.auth0.com/.well-known/openid-configuration"},
		{CognitoOauth2, "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123",
			"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123/.well-known/openid-configuration"},
		{PingOneOauth2, "https://auth.pingone.eu/f2aba07d-270c-42ba-8811-01af5f63d458/as",
			"https://auth.pingone.eu/f2aba07d-270c-42ba-8811-01af5f63d458/as/.well-known/openid-configuration"},
		{OneLoginOauth2, "https://acme.onelogin.com/oidc/2", "https://acme.onelogin.com/oidc/2/.well-known/openid-configuration"},
	}
	for _, tt := range tests {
		got, err := mustLookup(t, tt.vendor).Resolve(ResolveInput{Issuer: tt.issuer})
		if err != nil {
			t.Fatalf("%s %s: %v", tt.vendor, tt.issuer, err)
		}
		want := Endpoints{Issuer: tt.issuer, DiscoveryURL: tt.discovery}
		if got != want {
			t.Errorf("%s: Resolve = %+v, want %+v", tt.vendor, got, want)
		}
		if !got.NeedsDiscovery() {
			t.Errorf("%s: NeedsDiscovery = false with issuer only", tt.vendor)
		}
	}
}

func TestResolveExplicitEndpoints(t *testing.T) {
	for _, name := range tenantScoped {
		v := mustLookup(t, name)
		in := ResolveInput{
			AuthorizationEndpoint: "https://tenant.example/oauth2/authorize",
			TokenEndpoint:         "https://tenant.example/oauth2/token?x=1",
		}
		got, err := v.Resolve(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := Endpoints{AuthorizationEndpoint: in.AuthorizationEndpoint, TokenEndpoint: in.TokenEndpoint}
		if got != want || got.NeedsDiscovery() {
			t.Errorf("%s: Resolve = %+v, want %+v without discovery", name, got, want)
		}

		// All three, as the service itself requires: explicit endpoints win,
		// nothing is left to discover.
		in.Issuer = "https://tenant.example"
		got, err = v.Resolve(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want = Endpoints{
			Issuer:                in.Issuer,
			AuthorizationEndpoint: in.AuthorizationEndpoint,
			TokenEndpoint:         in.TokenEndpoint,
			DiscoveryURL:          "https://tenant.example/.well-known/openid-configuration",
		}
		if got != want || got.NeedsDiscovery() {
			t.Errorf("%s: Resolve = %+v, want %+v", name, got, want)
		}
	}

	// An issuer and one endpoint: discovery supplies the other.
	got, err := mustLookup(t, OktaOauth2).Resolve(ResolveInput{
		Issuer:        "https://acme.okta.com/oauth2/default",
		TokenEndpoint: "https://acme.okta.com/oauth2/default/v1/token",
	})
	if err != nil || !got.NeedsDiscovery() || got.TokenEndpoint == "" {
		t.Errorf("Okta issuer + token endpoint: %+v, %v", got, err)
	}
}

func TestResolveURLValidation(t *testing.T) {
	okta := mustLookup(t, OktaOauth2)
	good := []string{
		"https://acme.okta.com/oauth2/v1/token",
		"https://acme.okta.com:8443/oauth2/v1/token",
		"HTTPS://ACME.okta.com/oauth2/v1/token",
		"http://127.0.0.1:9011/oauth2/token",
		"http://localhost/oauth2/token",
		"http://LOCALHOST:8080/oauth2/token",
		"http://[::1]:9011/oauth2/token",
	}
	for _, u := range good {
		got, err := okta.Resolve(ResolveInput{AuthorizationEndpoint: u, TokenEndpoint: u})
		if err != nil {
			t.Errorf("%q refused: %v", u, err)
			continue
		}
		if got.TokenEndpoint != u {
			t.Errorf("%q resolved to %q", u, got.TokenEndpoint)
		}
	}
	bad := map[string]string{
		"http://acme.okta.com/oauth2/v1/token":                    "https",
		"http://127.0.0.2/token":                                  "https",
		"http://localhost.evil.example/token":                     "https",
		"http://[::2]/token":                                      "https",
		"/oauth2/v1/token":                                        "absolute",
		"acme.okta.com/oauth2/v1/token":                           "absolute",
		"//acme.okta.com/oauth2/v1/token":                         "absolute",
		"ftp://acme.okta.com/token":                               "https",
		"javascript:alert(1)":                                     "absolute",
		"https:///token":                                          "host",
		"https://:443/token":                                      "host",
		"https://user:pass@acme.okta.com/token":                   "user information",
		"https://acme.okta.com/token#frag":                        "fragment",
		"https://acme.okta.com/token#":                            "fragment",
		"https://acme okta.com/token":                             "URL",
		"https://acme.okta.com/token\n":                           "URL",
		"https://acme.okta.com/" + strings.Repeat("a", maxURLLen): "longer",
	}
	for u, reason := range bad {
		_, err := okta.Resolve(ResolveInput{
			AuthorizationEndpoint: "https://acme.okta.com/oauth2/v1/authorize",
			TokenEndpoint:         u,
		})
		wantFieldError(t, err, ErrInvalidValue, "includedOauth2ProviderConfig.tokenEndpoint")
		if !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: message %q does not say %q", u, err, reason)
		}
	}

	// An issuer must not carry a query (RFC 8414 §2).
	for _, iss := range []string{"https://acme.okta.com?tenant=1", "https://acme.okta.com/?"} {
		_, err := okta.Resolve(ResolveInput{Issuer: iss})
		wantFieldError(t, err, ErrInvalidValue, "includedOauth2ProviderConfig.issuer")
	}
	// An invalid issuer is reported as invalid, not also as missing.
	_, err := okta.Resolve(ResolveInput{Issuer: "http://acme.okta.com"})
	wantFieldError(t, err, ErrInvalidValue, "includedOauth2ProviderConfig.issuer")
}

func TestResolveReportsEveryProblem(t *testing.T) {
	_, err := mustLookup(t, OktaOauth2).Resolve(ResolveInput{
		TenantID:              "x",
		Issuer:                "http://acme.okta.com",
		AuthorizationEndpoint: "/authorize",
		TokenEndpoint:         "https://acme.okta.com/token#x",
	})
	fes := fieldErrors(t, err)
	got := map[string]error{}
	for _, fe := range fes {
		got[fe.Field] = fe.Err
		if fe.Vendor != OktaOauth2 {
			t.Errorf("FieldError.Vendor = %q", fe.Vendor)
		}
	}
	want := map[string]error{
		"includedOauth2ProviderConfig.tenantId":              ErrFieldNotAllowed,
		"includedOauth2ProviderConfig.issuer":                ErrInvalidValue,
		"includedOauth2ProviderConfig.authorizationEndpoint": ErrInvalidValue,
		"includedOauth2ProviderConfig.tokenEndpoint":         ErrInvalidValue,
	}
	if len(got) != len(want) || len(fes) != len(want) {
		t.Fatalf("errors = %v", err)
	}
	for f, sentinel := range want {
		if !errors.Is(got[f], sentinel) {
			t.Errorf("%s: %v, want %v", f, got[f], sentinel)
		}
	}

	// Invalid and missing at once.
	_, err = mustLookup(t, Auth0Oauth2).Resolve(ResolveInput{AuthorizationEndpoint: "http://acme.example/authorize"})
	if fes := fieldErrors(t, err); len(fes) != 2 || !errors.Is(err, ErrInvalidValue) || !errors.Is(err, ErrMissingField) {
		t.Errorf("want an invalid authorizationEndpoint and a missing tokenEndpoint, got %v", err)
	}
}

func TestResolveGlobalIncludedVendors(t *testing.T) {
	zoom := mustLookup(t, ZoomOauth2)
	got, err := zoom.Resolve(ResolveInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenEndpoint != "https://zoom.us/oauth/token" || got.RevocationEndpoint != "https://zoom.us/oauth/revoke" {
		t.Errorf("Zoom defaults = %+v", got)
	}

	// A token endpoint on the same host keeps the default revocation endpoint.
	got, err = zoom.Resolve(ResolveInput{TokenEndpoint: "https://zoom.us/oauth/token?v=2"})
	if err != nil || got.RevocationEndpoint != "https://zoom.us/oauth/revoke" || got.TokenEndpoint != "https://zoom.us/oauth/token?v=2" {
		t.Errorf("Zoom same-host override = %+v, %v", got, err)
	}
	// On another host it drops it: no token goes to a host that did not issue it.
	got, err = zoom.Resolve(ResolveInput{TokenEndpoint: "https://proxy.example/zoom/token"})
	if err != nil || got.RevocationEndpoint != "" || got.AuthorizationEndpoint != "https://zoom.us/oauth/authorize" {
		t.Errorf("Zoom other-host override = %+v, %v", got, err)
	}

	// A new issuer replaces the default discovery document (OIDC vendor) or
	// clears it (non-OIDC vendor).
	twitch := mustLookup(t, TwitchOauth2)
	got, err = twitch.Resolve(ResolveInput{Issuer: "https://id.example/oauth2"})
	if err != nil || got.DiscoveryURL != "https://id.example/oauth2/.well-known/openid-configuration" {
		t.Errorf("Twitch issuer override = %+v, %v", got, err)
	}
	got, err = zoom.Resolve(ResolveInput{Issuer: "https://zoom.us"})
	if err != nil || got.DiscoveryURL != "" || got.Issuer != "https://zoom.us" {
		t.Errorf("Zoom issuer = %+v, %v", got, err)
	}
}

func TestResolveCustom(t *testing.T) {
	custom := mustLookup(t, CustomOauth2)
	for _, d := range []string{
		"https://idp.example/.well-known/openid-configuration",
		"https://idp.example/realms/a/.well-known/openid-configuration",
		"https://idp.example/.well-known/oauth-authorization-server",
		"https://idp.example/.well-known/oauth-authorization-server/tenant1",
		"https://fa.example/.well-known/openid-configuration?tenantId=abc",
		"http://127.0.0.1:8080/.well-known/openid-configuration",
	} {
		got, err := custom.Resolve(ResolveInput{DiscoveryURL: d})
		if err != nil {
			t.Errorf("%q: %v", d, err)
			continue
		}
		if got != (Endpoints{DiscoveryURL: d}) || !got.NeedsDiscovery() {
			t.Errorf("%q: Resolve = %+v", d, got)
		}
	}
	for _, d := range []string{
		"https://idp.example/",
		"https://idp.example/.well-known/jwks.json",
		"https://idp.example/.well-known/openid-configurationX",
		"http://idp.example/.well-known/openid-configuration",
	} {
		_, err := custom.Resolve(ResolveInput{DiscoveryURL: d})
		wantFieldError(t, err, ErrInvalidValue, "customOauth2ProviderConfig.oauthDiscovery.discoveryUrl")
	}

	meta := ResolveInput{
		Issuer:                "https://idp.example",
		AuthorizationEndpoint: "https://idp.example/authorize",
		TokenEndpoint:         "https://idp.example/token",
	}
	got, err := custom.Resolve(meta)
	want := Endpoints{Issuer: meta.Issuer, AuthorizationEndpoint: meta.AuthorizationEndpoint, TokenEndpoint: meta.TokenEndpoint}
	if err != nil || got != want || got.NeedsDiscovery() {
		t.Errorf("metadata: Resolve = %+v, %v", got, err)
	}

	partial := meta
	partial.TokenEndpoint = ""
	_, err = custom.Resolve(partial)
	wantFieldError(t, err, ErrMissingField, "customOauth2ProviderConfig.oauthDiscovery.authorizationServerMetadata.tokenEndpoint")

	both := meta
	both.DiscoveryURL = "https://idp.example/.well-known/openid-configuration"
	_, err = custom.Resolve(both)
	wantFieldError(t, err, ErrFieldNotAllowed, "customOauth2ProviderConfig.oauthDiscovery")

	_, err = custom.Resolve(ResolveInput{})
	wantFieldError(t, err, ErrMissingField, "customOauth2ProviderConfig.oauthDiscovery")
}

func TestResolveUnknownVendor(t *testing.T) {
	_, err := Vendor{Name: "AppleOauth2"}.Resolve(ResolveInput{})
	if !errors.Is(err, ErrUnknownVendor) {
		t.Errorf("zero vendor: %v", err)
	}
}

// TestResolveEveryVendor resolves every vendor with the input its union
// member needs, and checks that what comes back is usable.
func TestResolveEveryVendor(t *testing.T) {
	for _, v := range All() {
		in := ResolveInput{}
		switch {
		case v.ConfigMember == MemberCustom:
			in.DiscoveryURL = "https://idp.example/.well-known/openid-configuration"
		case v.TenantScoped:
			in.Issuer = "https://idp.example/tenant"
		}
		got, err := v.Resolve(in)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		for _, u := range []string{got.Issuer, got.AuthorizationEndpoint, got.TokenEndpoint, got.RevocationEndpoint, got.DiscoveryURL} {
			if strings.Contains(u, TenantPlaceholder) {
				t.Errorf("%s: %q still carries %s", v.Name, u, TenantPlaceholder)
			}
		}
		if got.NeedsDiscovery() != (v.TenantScoped) {
			t.Errorf("%s: NeedsDiscovery = %v", v.Name, got.NeedsDiscovery())
		}
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("OktaOauth2", "", "https://acme.okta.com", "", "", "")
	f.Add("MicrosoftOauth2", "contoso.onmicrosoft.com", "", "", "", "")
	f.Add("CustomOauth2", "", "", "", "", "https://idp.example/.well-known/openid-configuration")
	f.Add("Auth0Oauth2", "", "", "http://[::1]:1/a", "https://x/t?q#f", "")
	f.Fuzz(func(t *testing.T, name, tenant, issuer, authz, token, discovery string) {
		v, ok := Lookup(name)
		if !ok {
			v = mustLookup(t, CustomOauth2)
		}
		got, err := v.Resolve(ResolveInput{
			TenantID: tenant, Issuer: issuer, AuthorizationEndpoint: authz, TokenEndpoint: token, DiscoveryURL: discovery,
		})
		if err != nil {
			if got != (Endpoints{}) {
				t.Errorf("error %v with non-zero endpoints %+v", err, got)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a *FieldError", err)
			}
			return
		}
		for _, u := range []string{got.Issuer, got.AuthorizationEndpoint, got.TokenEndpoint, got.RevocationEndpoint, got.DiscoveryURL} {
			if u == "" {
				continue
			}
			if p := endpointProblem(strings.ReplaceAll(u, ClientIDPlaceholder, "cid")); p != "" {
				t.Errorf("%s resolved %q, which %s", v.Name, u, p)
			}
		}
	})
}
