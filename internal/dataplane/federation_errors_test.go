package dataplane_test

// Errors the USER_FEDERATION paths must not drop (issue 8, item 6): a
// connection's details that do not decode, and a connection's last use
// that cannot be written.

import (
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestFederationCorruptConnectionDetails: a connection whose details (what
// its token was granted for, when to refresh it) do not decode is not
// served as if it had none: the corruption is logged and the user is
// asked to consent again, whose completion replaces the connection — both
// when the token is fresh and when it is due for a refresh, which then
// never reaches the provider.
func TestFederationCorruptConnectionDetails(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		var logs logBuffer
		fw := newFedWorld(t, b, fedOptions{log: logs.debugLogger()})
		db, ph := rawDB(t, fw.s)
		corrupt := func(user string) {
			t.Helper()
			execOne(t, db, "UPDATE connections SET details = "+ph(1)+" WHERE workload = "+ph(2)+" AND user_key = "+ph(3),
				[]byte("{not json"), workloadW1, user)
			fw.s.Server.ForgetConnections()
		}
		for _, tc := range []struct {
			user string
			due  bool
		}{{"alice", false}, {"bob", true}} {
			token := mintForUser(t, fw.rt, workloadW1, tc.user)
			fw.connect(t, token, asUserID(tc.user))
			if tc.due {
				fw.expire(t, "id:"+tc.user)
			}
			corrupt("id:" + tc.user)
			refreshes := len(fw.tokens.grant("refresh_token"))

			s := fw.start(t, fedInput(token)) // a session, not the token
			if n := len(fw.tokens.grant("refresh_token")); n != refreshes {
				t.Errorf("%s: a connection with corrupt details was refreshed at the provider", tc.user)
			}
			if !strings.Contains(logs.String(), "corrupt connection") {
				t.Errorf("%s: the corruption was not logged:\n%s", tc.user, logs.String())
			}
			fw.consentOK(t, s)
			if err := fw.complete(t, s.uri, asUserID(tc.user)); err != nil {
				t.Fatal(err)
			}
			fw.token(t, fedInput(token)) // the new consent replaced it
		}
	})
}

// TestFederationTouchFailureLogged: when a connection's last use cannot
// be recorded, the call still gets its token, and the failure is logged
// rather than dropped.
func TestFederationTouchFailureLogged(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		var logs logBuffer
		fw := newFedWorld(t, b, fedOptions{log: logs.debugLogger()})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		fw.connect(t, alice, asUserID("alice"))
		db, ph := rawDB(t, fw.s)
		execOne(t, db, "UPDATE connections SET last_used_at = "+ph(1)+" WHERE user_key = "+ph(2),
			time.Now().Add(-2*time.Hour).UnixMicro(), "id:alice")
		fw.s.Server.ForgetConnections()
		refuse := []string{`CREATE TRIGGER refuse_touch BEFORE UPDATE ON connections BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`}
		if strings.HasPrefix(fw.s.Config.Storage, "postgres") {
			refuse = []string{
				`CREATE FUNCTION refuse_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`,
				`CREATE TRIGGER refuse_touch BEFORE UPDATE ON connections FOR EACH ROW EXECUTE FUNCTION refuse_touch()`,
			}
		}
		for _, q := range refuse {
			if _, err := db.ExecContext(ctx(t), q); err != nil {
				t.Fatal(err)
			}
		}
		fw.token(t, fedInput(alice))
		if !strings.Contains(logs.String(), "last use was not recorded") {
			t.Errorf("the failed write of the connection's last use was not logged:\n%s", logs.String())
		}
	})
}
