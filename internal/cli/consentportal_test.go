package cli_test

import (
	"strings"
	"testing"
)

func TestConsentPortalCommands(t *testing.T) {
	r := newRun(t)
	r.ok("", cmd("provider oauth2 create corp-idp --vendor GoogleOauth2 --client-id cid --client-secret s3cret")...)
	const role = "arn:aws:iam::123456789012:role/consent-portal"

	out := r.ok("", cmd("consent-portal create support --gateway support-gw-a1b2c3d4e5 --provider corp-idp --scope openid --scope profile --execution-role-arn "+role+" --tag team=core")...)
	if !strings.Contains(out, "ACTIVE") || !strings.Contains(out, "oauth2credentialprovider/corp-idp") || !strings.Contains(out, "/portals/support-") {
		t.Fatalf("create table:\n%s", out)
	}
	var list []map[string]any
	r.json(&list, cmd("consent-portal list")...)
	if len(list) != 1 || list[0]["name"] != "support" || list[0]["status"] != "ACTIVE" {
		t.Fatalf("list: %v", list)
	}
	id := list[0]["consentPortalId"].(string)

	var got map[string]any
	r.json(&got, cmd("consent-portal get "+list[0]["consentPortalArn"].(string))...)
	idp, _ := got["idpConfig"].(map[string]any)
	if got["consentPortalId"] != id || got["executionRoleArn"] != role || idp == nil || len(idp["scopes"].([]any)) != 2 {
		t.Fatalf("get: %v", got)
	}

	r.json(&got, cmd("consent-portal update "+id+" --description Support --provider corp-idp --scope openid --audience https://api.example.com")...)
	idp, _ = got["idpConfig"].(map[string]any)
	if got["description"] != "Support" || idp["audience"] != "https://api.example.com" || len(idp["scopes"].([]any)) != 1 || got["executionRoleArn"] != role {
		t.Fatalf("update: %v", got)
	}
	for _, c := range []string{
		"consent-portal update " + id,                     // nothing to update
		"consent-portal update " + id + " --scope openid", // an identity provider without --provider
		"consent-portal create other --gateway gw-a1b2c3d4e5 --provider ghost --scope openid --execution-role-arn " + role,
		"consent-portal create other --gateway NOT_A_GATEWAY --provider corp-idp --scope openid --execution-role-arn " + role,
		"consent-portal get nope",
	} {
		if _, errs, code := r.do("", cmd(c)...); code == 0 || errs == "" {
			t.Errorf("behalf %s: exit %d, %q", c, code, errs)
		}
	}

	r.ok("", cmd("consent-portal delete "+id)...)
	r.json(&list, cmd("consent-portal list")...)
	if len(list) != 0 {
		t.Fatalf("list after delete: %v", list)
	}
}
