package dataplane_test

// Key rotation with three-legged OAuth in flight (issue 4; the token
// vault, SetTokenVaultCMK in the AWS API reference): after SetTokenVaultCMK and a re-wrap,
// every connection and session is sealed under the new key and still
// works — a stored token, its refresh token, a session the user has not
// consented to yet, one whose code is on its way back, and one consented
// but not bound.

import (
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/vault"
)

func TestFederationKeyRotation(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{dex: dextest.Options{RotateRefreshTokens: true}})
		st := fw.s.Server.Store()
		tokens := map[string]string{}
		for _, u := range []string{"alice", "bob", "carol", "dave"} {
			tokens[u] = mintForUser(t, fw.rt, workloadW1, u)
		}
		stored := fw.connect(t, tokens["alice"], asUserID("alice"))
		// The others ask for no refresh token: Dex keeps one per user and
		// client, and a new one would revoke Alice's (they are all the
		// same Dex user).
		online := withScopes("openid", "email")
		pending := fw.start(t, fedInput(tokens["bob"], online))     // not consented yet
		returning := fw.start(t, fedInput(tokens["carol"], online)) // consented; the browser is on its way back
		toCallback := fw.dex.Authorize(t, returning.authURL)
		authorized := fw.start(t, fedInput(tokens["dave"], online)) // consented, not bound
		fw.consentOK(t, authorized)
		before, _ := st.GetTokenVault(ctx(t), "default")

		res := fw.s.Do(t, behalftest.Raw{Path: "/behalf/CreateVaultKey", Body: []byte(`{}`)})
		if res.Status != http.StatusCreated {
			t.Fatalf("CreateVaultKey: %d %s", res.Status, res.Body)
		}
		if _, err := fw.s.Control().SetTokenVaultCMK(ctx(t), &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &ctltypes.KmsConfiguration{
			KeyType: ctltypes.KeyTypeCustomerManagedKey, KmsKeyArn: aws.String(res.JSON(t)["kmsKeyArn"].(string))}}); err != nil {
			t.Fatal(err)
		}
		if _, err := fw.s.Server.Rewrap(ctx(t)); err != nil {
			t.Fatal(err)
		}
		after, _ := st.GetTokenVault(ctx(t), "default")
		if after.KeyID == before.KeyID {
			t.Fatal("the key did not change")
		}
		stale, err := st.ListStaleSecrets(ctx(t), vault.Targets(before.KeyID, after.KeyID), 100)
		if err != nil || len(stale) != 0 {
			t.Fatalf("%d secrets left under the old key: %v", len(stale), err)
		}
		for _, s := range []fedSession{pending, returning, authorized} {
			if k := fw.storedSession(t, s.uri).Secrets.KeyID; k != after.KeyID {
				t.Errorf("session sealed under %s", k)
			}
		}
		if conn, _ := fw.connection(t, "id:alice"); conn.Tokens.KeyID != after.KeyID {
			t.Errorf("connection sealed under %s", conn.Tokens.KeyID)
		}

		// The stored token, then its refresh token.
		if got := fw.token(t, fedInput(tokens["alice"])); got != stored {
			t.Error("the stored token changed")
		}
		fw.expire(t, "id:alice")
		fw.token(t, fedInput(tokens["alice"]))
		if conn, _ := fw.connection(t, "id:alice"); len(fw.tokens.grant("refresh_token")) != 1 || !conn.ExpiresAt.After(time.Now()) {
			t.Error("no refresh with the re-wrapped refresh token")
		}
		// The session not consented yet: same URL, then the whole flow
		// (the PKCE verifier was re-wrapped).
		if out, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(tokens["bob"], online, withSession(pending.uri))); err != nil || aws.ToString(out.AuthorizationUrl) != pending.authURL {
			t.Error("the pending session's URL changed")
		}
		fw.consentOK(t, pending)
		// The browser coming back.
		if p := fedBrowse(t, toCallback.String()); p.status != http.StatusFound {
			t.Fatalf("callback after rotation: %d %s", p.status, p.body)
		}
		for user, s := range map[string]fedSession{"bob": pending, "carol": returning, "dave": authorized} {
			if err := fw.complete(t, s.uri, asUserID(user)); err != nil {
				t.Fatalf("%s: %v", user, err)
			}
			fw.token(t, fedInput(tokens[user], online, withSession(s.uri)))
			if conn, _ := fw.connection(t, "id:"+user); conn.Tokens.KeyID != after.KeyID || conn.Status != storage.ConnectionActive {
				t.Errorf("%s's connection: %s under %s", user, conn.Status, conn.Tokens.KeyID)
			}
		}
	})
}
