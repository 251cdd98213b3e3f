package authserver_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestIDJAGGrant: on SQLite and PostgreSQL, an agent trades alice's ID
// token at the organisation's IdP for an ID-JAG for behalf, which behalf
// redeems with the jwt-bearer grant (RFC 7523) for an access token of the
// same user as a login, without a refresh token; the assertion is
// single-use, and both answers are audited.
func TestIDJAGGrant(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b)
		jag := behalftest.DevIDJAG(t, w.idp, "agent", "agent-secret", "alice", w.issuer, url.Values{"resource": {w.resource}, "scope": {scopeRead}})
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {jag}, "scope": {scopeRead}}
		status, body := w.tokenRequest(t, form, jagApp, jagSecret)
		if status != http.StatusOK || body["refresh_token"] != nil || body["scope"] != scopeRead {
			t.Fatalf("jwt-bearer: %d %v", status, body)
		}
		claims := behalftest.JWTClaims(t, body["access_token"].(string))
		if claims["sub"] != "jwt:"+w.idp.Issuer()+"#alice" || claims["aud"] != w.resource || claims["client_id"] != jagApp {
			t.Errorf("claims %v", claims)
		}
		if status, body = w.tokenRequest(t, form, jagApp, jagSecret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("replayed ID-JAG: %d %v", status, body)
		}
		// A client not registered for the grant may not use it.
		if status, body = w.tokenRequest(t, form, confApp, confSecret); status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
			t.Errorf("conf-app with jwt-bearer: %d %v", status, body)
		}
		recs := w.checkAudit(t, map[string]int{"OAuthToken": 3})
		var ok, refused bool
		for _, r := range recs {
			if r.Operation == "OAuthToken" && r.Flow == "urn:ietf:params:oauth:grant-type:jwt-bearer" {
				ok = ok || r.Outcome == "success" && r.User == "jwt:"+w.idp.Issuer()+"#alice" && r.Resource == w.resource
				refused = refused || r.Outcome == "failure" && r.ErrorType == "invalid_grant:replayed"
			}
		}
		if !ok || !refused {
			t.Errorf("jwt-bearer records: granted %v, refused %v", ok, refused)
		}
	})
}

// tokenRequest posts form to behalf's token endpoint as a client
// authenticating with HTTP Basic.
func (w *world) tokenRequest(t *testing.T, form url.Values, id, secret string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, w.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	res, raw := newBrowser().do(t, req)
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("token endpoint: %d %s", res.StatusCode, raw)
	}
	return res.StatusCode, m
}
