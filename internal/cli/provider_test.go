package cli_test

import (
	"slices"
	"strings"
	"testing"
)

// TestProviderOnBehalfOfFlags: the on-behalf-of flags of provider oauth2
// create and update become onBehalfOfTokenExchangeConfig, which get shows
// in both outputs; an update without them removes it, and the flags that
// need another are refused before any call.
func TestProviderOnBehalfOfFlags(t *testing.T) {
	r := newRun(t)
	custom := []string{"--vendor", "CustomOauth2", "--client-id", "agent", "--issuer", "https://idp.example.com",
		"--authorization-endpoint", "https://idp.example.com/authorize", "--token-endpoint", "https://idp.example.com/token"}
	args := func(verb string, extra ...string) []string {
		return append(append([]string{"provider", "oauth2", verb, "corp-obo"}, custom...), extra...)
	}
	out := r.ok("agent-secret", append(args("create", "--client-secret", "-"),
		"--on-behalf-of", "TOKEN_EXCHANGE", "--actor-token", "M2M", "--actor-token-scope", "agents,read", "--actor-token-scope", "write")...)
	if !strings.Contains(out, "on behalf of  TOKEN_EXCHANGE, actor token M2M (scopes agents read write)\n") {
		t.Errorf("create table:\n%s", out)
	}
	var got struct {
		OnBehalfOf *struct {
			GrantType        string   `json:"grantType"`
			ActorToken       string   `json:"actorToken"`
			ActorTokenScopes []string `json:"actorTokenScopes"`
			NoClient         bool     `json:"noClient"`
		} `json:"onBehalfOf"`
	}
	r.json(&got, "provider", "oauth2", "get", "corp-obo")
	if o := got.OnBehalfOf; o == nil || o.GrantType != "TOKEN_EXCHANGE" || o.ActorToken != "M2M" || !slices.Equal(o.ActorTokenScopes, []string{"agents", "read", "write"}) || o.NoClient {
		t.Fatalf("get: %+v", o)
	}

	out = r.ok("", args("update", "--on-behalf-of", "JWT_AUTHORIZATION_GRANT", "--on-behalf-of-no-client")...)
	if !strings.Contains(out, "on behalf of  JWT_AUTHORIZATION_GRANT, no client\n") {
		t.Errorf("update table:\n%s", out)
	}
	got.OnBehalfOf = nil
	r.json(&got, "provider", "oauth2", "get", "corp-obo")
	if o := got.OnBehalfOf; o == nil || o.GrantType != "JWT_AUTHORIZATION_GRANT" || o.ActorToken != "" || !o.NoClient {
		t.Fatalf("get after update: %+v", o)
	}
	if out := r.ok("", "provider", "oauth2", "get", "corp-obo"); !strings.Contains(out, "on behalf of  JWT_AUTHORIZATION_GRANT, no client\n") {
		t.Errorf("get table:\n%s", out)
	}
	r.ok("", args("update")...)
	if out := r.ok("", "provider", "oauth2", "get", "corp-obo"); strings.Contains(out, "on behalf of") {
		t.Errorf("an update without --on-behalf-of kept it:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{args("update", "--actor-token", "M2M"), "need --on-behalf-of"},
		{args("update", "--on-behalf-of-no-client"), "need --on-behalf-of"},
		{args("update", "--on-behalf-of", "TOKEN_EXCHANGE", "--actor-token-scope", "a"), "--actor-token-scope needs --actor-token M2M"},
		{[]string{"provider", "oauth2", "update", "gh", "--vendor", "GithubOauth2", "--client-id", "x", "--on-behalf-of", "TOKEN_EXCHANGE"}, "for --vendor CustomOauth2"},
		{args("update", "--on-behalf-of", "IMPERSONATE"), "ValidationException"},
		{args("update", "--on-behalf-of", "TOKEN_EXCHANGE", "--actor-token", "NONE", "--actor-token-scope", "a"), "only with actorTokenContent M2M"},
	} {
		if _, errs, code := r.do("", tc.args...); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args[4:], code, errs, tc.want)
		}
	}
}
