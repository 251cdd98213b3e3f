package dataplane_test

// The audit trail of three-legged OAuth (issue 4; docs/audit.md):
// the browser callback, the binding and the call that refreshed a
// token each leave a record naming workload, user, provider and outcome;
// and no code, state, verifier or token appears in the audit list, on a
// page, or in any data-plane response beyond the access token handed out.

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
)

func TestFederationAudit(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{dex: dextest.Options{RotateRefreshTokens: true}})
		const customState = "csrf-TEST-audit-9d2e41"
		var (
			never    secretSet // in no response at all
			notShown secretSet // in no audit record and on no page
			pages    [][]byte
		)
		never.add("client secret", fedClientSecret, userClientSecret)
		never.add("ID token", fw.aliceJWT)

		// Alice (a JWT user): the whole flow, then a refresh.
		alice := mintForJWT(t, fw.rt, fw.aliceJWT)
		notShown.add("workload access token", alice)
		s := fw.start(t, fedInput(alice, func(in *oauth2Input) { in.CustomState = aws.String(customState) }))
		toCallback := fw.dex.Authorize(t, s.authURL)
		cb := fedBrowse(t, toCallback.String())
		if cb.status != http.StatusFound {
			t.Fatalf("callback: %d %s", cb.status, cb.body)
		}
		pages = append(pages, []byte(cb.body), []byte(cb.header.Get("Location")))
		atRest := [][]byte{dumpTable(t, fw.s, "oauth_sessions")} // the tokens are in the session now
		if err := fw.complete(t, s.uri, asUserToken(fw.aliceJWT)); err != nil {
			t.Fatal(err)
		}
		first := fw.token(t, fedInput(alice, withSession(s.uri)))
		fw.expire(t, fw.aliceJWTUser)
		out, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(alice))
		if err != nil || out.AccessToken == nil {
			t.Fatalf("refresh: %v", err)
		}
		refreshID := requestIDOf(out.ResultMetadata, nil)
		if n := len(fw.tokens.grant("refresh_token")); n != 1 {
			t.Fatalf("%d refreshes", n)
		}
		atRest = append(atRest, dumpTable(t, fw.s, "oauth_sessions"), dumpTable(t, fw.s, "connections"))
		never.add("authorization code", toCallback.Query().Get("code"))
		never.add("PKCE verifier", fw.tokens.values("code_verifier")...)
		never.add("refresh token", fw.tokens.values("refresh_token")...)
		notShown.add("state", s.state)
		notShown.add("access token", first, *out.AccessToken)

		// Bob declines at the provider.
		bob := mintForUser(t, fw.rt, workloadW1, "bob")
		sb := fw.start(t, fedInput(bob))
		notShown.add("state", sb.state)
		denied := fedBrowse(t, fw.callbackURL+"?"+url.Values{"error": {"access_denied"}, "state": {sb.state}}.Encode())
		pages = append(pages, []byte(denied.body))

		// Mallory tries Bob's session.
		_, err = fw.data.CompleteResourceTokenAuth(ctx(t), &bedrockagentcore.CompleteResourceTokenAuthInput{
			SessionUri: aws.String(sb.uri), UserIdentifier: asUserID("mallory")})
		malloryID := requestIDOf(middleware.Metadata{}, err)

		recs, bodies := listAudit(t, fw.s, nil)
		find := func(op, user, outcome string) []auditRecord {
			var out []auditRecord
			for _, r := range recs {
				if r.Operation == op && r.User == user && r.Outcome == outcome {
					out = append(out, r)
				}
			}
			return out
		}
		callbacks := find("OAuth2Callback", fw.aliceJWTUser, "success")
		if len(callbacks) != 1 {
			t.Fatalf("%d successful callback records for Alice", len(callbacks))
		}
		cr := callbacks[0]
		if diff := cmp.Diff(auditRecord{RequestID: cr.RequestID, Principal: "browser", Operation: "OAuth2Callback",
			Workload: workloadW1, User: fw.aliceJWTUser, Provider: fedProvider, Outcome: "success"}, cr, ignoreChainFields); diff != "" || !strings.HasPrefix(cr.RequestID, "browser-") {
			t.Errorf("callback record %s (-want +got):\n%s", cr.RequestID, diff)
		}
		completions := find("CompleteResourceTokenAuth", fw.aliceJWTUser, "success")
		if len(completions) != 1 {
			t.Fatalf("%d completion records for Alice", len(completions))
		}
		if diff := cmp.Diff(auditRecord{RequestID: completions[0].RequestID, Principal: fw.runtime.ID, Operation: "CompleteResourceTokenAuth",
			Workload: workloadW1, User: fw.aliceJWTUser, Provider: fedProvider, Outcome: "success"}, completions[0], ignoreChainFields); diff != "" {
			t.Errorf("completion record (-want +got):\n%s", diff)
		}
		i := slices.IndexFunc(recs, func(r auditRecord) bool { return r.RequestID == refreshID })
		if i < 0 {
			t.Fatal("no record of the call that refreshed")
		}
		if diff := cmp.Diff(auditRecord{RequestID: refreshID, Principal: fw.runtime.ID, Operation: "GetResourceOauth2Token",
			Workload: workloadW1, User: fw.aliceJWTUser, Provider: fedProvider, Scopes: fedScopes, Flow: "USER_FEDERATION", Outcome: "success"},
			recs[i], ignoreChainFields); diff != "" {
			t.Errorf("record of the refreshing call (-want +got):\n%s", diff)
		}
		// behalf's own use of the refresh token is a record of its own.
		refreshes := find("RefreshOAuth2Token", fw.aliceJWTUser, "success")
		if len(refreshes) != 1 {
			t.Fatalf("%d refresh records for Alice, want 1", len(refreshes))
		}
		if diff := cmp.Diff(auditRecord{RequestID: refreshes[0].RequestID, Principal: "behalf", Operation: "RefreshOAuth2Token",
			Workload: workloadW1, User: fw.aliceJWTUser, Provider: fedProvider, Flow: "USER_FEDERATION", Outcome: "success"},
			refreshes[0], ignoreChainFields); diff != "" || !strings.HasPrefix(refreshes[0].RequestID, "refresh-") {
			t.Errorf("refresh record %s (-want +got):\n%s", refreshes[0].RequestID, diff)
		}
		if d := find("OAuth2Callback", "id:bob", "failure"); len(d) != 1 || d[0].ErrorType != "AccessDeniedException" || d[0].Provider != fedProvider || d[0].Workload != workloadW1 {
			t.Errorf("denial records %+v", d)
		}
		j := slices.IndexFunc(recs, func(r auditRecord) bool { return r.RequestID == malloryID })
		if j < 0 || recs[j].User != "id:mallory" || recs[j].Outcome != "failure" || recs[j].Workload != workloadW1 || recs[j].Provider != fedProvider {
			t.Errorf("Mallory's attempt: %+v", recs[max(j, 0)])
		}
		if v := verifyAudit(t, fw.s); !v.OK {
			t.Errorf("audit chain: %+v", v.Problems)
		}

		never.checkAbsent(t, "the audit list", bodies...)
		notShown.checkAbsent(t, "the audit list", bodies...)
		never.checkAbsent(t, "a callback page", pages...)
		notShown.checkAbsent(t, "a callback page", pages...)
		never.checkRecorder(t, "a data-plane response", fw.rec)
		for _, d := range atRest {
			if !strings.Contains(string(d), workloadW1) {
				t.Fatal("the table dump is not readable") // the checks would be vacuous
			}
		}
		never.checkAbsent(t, "the database", atRest...)
		notShown.checkAbsent(t, "the database", atRest...)
		if !fw.rec.Contains(first) || fw.rec.Count() == 0 {
			t.Error("the recorder missed the responses") // the check above would be vacuous
		}
	})
}
