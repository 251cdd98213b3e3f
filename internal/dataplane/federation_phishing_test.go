package dataplane_test

// Consent phishing (issue 8, item 7; docs/user-federation.md, "Session
// rules"): a session whose completion names someone other than the user it
// was started for ends, and the tokens the consenting person granted reach
// no one.

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"

	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestFederationConsentPhishing: Mallory, a user of the agent's
// application, starts a session as herself and gets Alice to open its
// authorization URL. Alice consents at the provider (the dev IdP, which
// offers RFC 7009 revocation) and lands on the application's return URL,
// which completes the session for the person signed in: Alice. That
// completion is refused and ends the session: FAILED, its tokens gone
// from storage and revoked at the provider. Mallory's own completion then
// fails, and her agent never receives a token.
func TestFederationConsentPhishing(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		const provider = "devidp"
		fw := newFedWorld(t, b, fedOptions{extraProviders: []string{provider}})
		d := startDevIDP(t)
		providerID, devInput := fw.addDevIDP(t, d, provider)
		mallory := mintForUser(t, fw.rt, workloadW1, "mallory")
		poll := func(t *testing.T, token, uri string) *bedrockagentcore.GetResourceOauth2TokenOutput {
			t.Helper()
			out, err := fw.data.GetResourceOauth2Token(ctx(t), devInput(token, withSession(uri)))
			if err != nil {
				t.Fatalf("poll %s: %v", uri, err)
			}
			return out
		}

		s := fw.start(t, devInput(mallory))
		p := fedBrowse(t, d.consent(t, s.authURL, "alice").String())
		if p.status != http.StatusFound {
			t.Fatalf("callback: %d %s", p.status, p.body)
		}
		aliceRefresh := d.lastRefreshToken()
		if aliceRefresh == "" || len(d.issuedAccessTokens()) != 1 {
			t.Fatalf("the dev IdP issued no tokens to Alice's consent")
		}
		if got := p.location(t).Query().Get("session_id"); got != s.uri {
			t.Fatalf("session_id %q", got)
		}

		// The application completes for the person signed in: Alice.
		wantAccessDenied(t, fw.complete(t, s.uri, asUserID("alice")), "different user")

		out := poll(t, mallory, s.uri)
		if out.SessionStatus != types.SessionStatusFailed || out.AccessToken != nil || out.AuthorizationUrl != nil {
			t.Fatalf("Mallory's poll after the wrong-user completion: status %q, token %v, URL %v",
				out.SessionStatus, out.AccessToken != nil, out.AuthorizationUrl != nil)
		}
		sess := fw.storedSession(t, s.uri)
		if sess.Status != storage.SessionFailed || !sess.Secrets.IsZero() {
			t.Errorf("stored session: status %s, secrets kept %v", sess.Status, !sess.Secrets.IsZero())
		}
		db, ph := rawDB(t, fw.s)
		var keyID, secrets any
		if err := db.QueryRowContext(ctx(t), "SELECT secrets_key_id, secrets FROM oauth_sessions WHERE id = "+ph(1),
			strings.TrimPrefix(s.uri, "urn:ietf:params:oauth:request_uri:")).Scan(&keyID, &secrets); err != nil {
			t.Fatal(err)
		}
		if keyID != nil || secrets != nil {
			t.Errorf("the session row still holds sealed secrets (key %v, %d bytes)", keyID, len(asBytes(secrets)))
		}

		// The tokens were revoked at the provider.
		revs := d.revocations()
		if len(revs) == 0 || slices.ContainsFunc(revs, func(ev devidp.Event) bool { return ev.Error != "" }) {
			t.Errorf("revocations at the dev IdP: %+v", revs)
		}
		if status, code := d.refreshAt(t, aliceRefresh); status != http.StatusBadRequest || code != "invalid_grant" {
			t.Errorf("Alice's refresh token at the dev IdP after the session ended: %d %s", status, code)
		}

		// Mallory completes as herself: the session is over.
		wantAccessDenied(t, fw.complete(t, s.uri, asUserID("mallory")), "failed")
		if _, err := fw.s.Server.Store().GetConnection(ctx(t), storage.ConnectionKey{ProviderID: providerID, Workload: workloadW1, User: "id:mallory"}); err == nil {
			t.Fatal("Mallory has a connection")
		}
		// Her agent asks again, with and without the session: no token.
		if out := poll(t, mallory, s.uri); out.AccessToken != nil || out.SessionStatus != types.SessionStatusFailed {
			t.Errorf("Mallory's agent, polling: token %v, status %q", out.AccessToken != nil, out.SessionStatus)
		}
		fw.start(t, devInput(mallory))
		for _, at := range d.issuedAccessTokens() {
			if fw.rec.Contains(at) {
				t.Fatal("Mallory's agent received the access token Alice's consent produced")
			}
		}
	})
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}
