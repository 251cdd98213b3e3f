package cli_test

import (
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestOAuthConsentCommands: a user's consents are listed, in tables and
// JSON, and one is deleted; deleting it again is refused.
func TestOAuthConsentCommands(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	const user = "jwt:https://idp.example#alice"
	for _, c := range []storage.OAuthConsent{
		{User: user, ClientID: "app-a", Resource: "https://mcp.example/a", Scopes: []string{"read"}},
		{User: user, ClientID: "app-b", Resource: "https://mcp.example/b", Scopes: []string{"read", "write"}},
	} {
		if err := s.Server.Store().PutConsent(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	if out := r.ok("", "oauth-consent", "list", "--user", user); !strings.Contains(out, "app-a") || !strings.Contains(out, "read,write") && !strings.Contains(out, "read write") {
		t.Errorf("list:\n%s", out)
	}
	r.ok("", "oauth-consent", "delete", "--user", user, "--client-id", "app-a", "--resource", "https://mcp.example/a")
	var left []behalfapi.OAuthConsent
	r.json(&left, "oauth-consent", "list", "--user", user)
	if len(left) != 1 || left[0].ClientID != "app-b" || len(left[0].Scopes) != 2 {
		t.Errorf("after delete: %+v", left)
	}
	if _, errs, code := r.do("", "oauth-consent", "delete", "--user", user, "--client-id", "app-a", "--resource", "https://mcp.example/a"); code == 0 ||
		!strings.Contains(errs, "no consent") {
		t.Errorf("second delete: exit %d %s", code, errs)
	}
	if _, _, code := r.do("", "oauth-consent", "list"); code == 0 {
		t.Error("list without --user succeeded")
	}
}
