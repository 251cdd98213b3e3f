package dataplane_test

// Storage exhaustion (issue 8, item 7; docs/user-federation.md, "Session
// storage"): asking again for a token that needs consent answers the open
// session instead of storing another, custom parameters are stored once,
// new sessions are limited per user and per caller, and ended sessions
// are purged after one session lifetime.

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// maxSizeParameters are customParameters as large as validation allows:
// ten entries, 4 KiB of keys and values together.
func maxSizeParameters(seed string) map[string]string {
	params := map[string]string{}
	for i := range 10 {
		k := fmt.Sprintf("x-%d", i)
		params[k] = strings.Repeat(seed[:1], 4096/10-len(k))
	}
	return params
}

// noRetry keeps the SDK from retrying a ThrottlingException, so that each
// call is one request.
func noRetry(o *bedrockagentcore.Options) { o.RetryMaxAttempts = 1 }

// sessionStorage reports the rows of oauth_sessions and the bytes their
// request and sealed secrets take.
func sessionStorage(t *testing.T, s *behalftest.Server) (rows, bytes int64) {
	t.Helper()
	db, _ := rawDB(t, s)
	if err := db.QueryRowContext(ctx(t),
		"SELECT COUNT(*), COALESCE(SUM(COALESCE(LENGTH(request), 0) + COALESCE(LENGTH(secrets), 0)), 0) FROM oauth_sessions").Scan(&rows, &bytes); err != nil {
		t.Fatal(err)
	}
	return rows, bytes
}

// databaseSize is the size of the SQLite database (its pages, the
// write-ahead log's included), or PostgreSQL's size of oauth_sessions with
// its indexes and TOAST.
func databaseSize(t *testing.T, s *behalftest.Server) int64 {
	t.Helper()
	db, _ := rawDB(t, s)
	q := "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
	if strings.HasPrefix(s.Config.Storage, "postgres") {
		// Concurrent INSERT … ON CONFLICT DO NOTHING inserts speculatively,
		// and a start that loses to another leaves a dead row version (its
		// TOASTed request and secrets too) until autovacuum reclaims it.
		// What a call leaves behind is what survives a rewrite.
		if _, err := db.ExecContext(ctx(t), "VACUUM FULL oauth_sessions"); err != nil {
			t.Fatal(err)
		}
		q = "SELECT pg_total_relation_size('oauth_sessions')"
	}
	var n int64
	if err := db.QueryRowContext(ctx(t), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFederationSessionStorageBounded: N concurrent USER_FEDERATION calls
// for one user and request store one session and all answer it; asking
// again stores nothing; the database grows by a bounded amount per call.
func TestFederationSessionStorageBounded(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		in := fedInput(alice, func(in *oauth2Input) {
			in.CustomParameters = maxSizeParameters("p")
			in.CustomState = aws.String(strings.Repeat("s", 4096))
		})
		rows0, bytes0 := sessionStorage(t, fw.s)
		size0 := databaseSize(t, fw.s)

		const n = 24
		uris := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				out, err := fw.data.GetResourceOauth2Token(ctx(t), in, noRetry)
				if err != nil {
					t.Errorf("call %d: %v", i, err)
					return
				}
				uris[i] = aws.ToString(out.SessionUri)
			})
		}
		wg.Wait()
		for range n { // and as many again, one after another
			if _, err := fw.data.GetResourceOauth2Token(ctx(t), in, noRetry); err != nil {
				t.Fatal(err)
			}
		}
		rows, bytes := sessionStorage(t, fw.s)
		size := databaseSize(t, fw.s)
		calls := int64(2 * n)
		t.Logf("%s: %d calls stored %d session rows, %d bytes of session data (%d a call); the database grew %d bytes (%d a call)",
			b.Name, calls, rows-rows0, bytes-bytes0, (bytes-bytes0)/calls, size-size0, (size-size0)/calls)
		if rows-rows0 != 1 {
			t.Errorf("%d calls for one user and request stored %d sessions, want 1", calls, rows-rows0)
		}
		for i, u := range uris {
			if u != uris[0] {
				t.Errorf("call %d answered session %q, call 0 %q", i, u, uris[0])
			}
		}
		// One session of the largest request holds its custom parameters
		// once: well under 32 KiB.
		if perSession := bytes - bytes0; perSession > 32<<10 {
			t.Errorf("one session stores %d bytes", perSession)
		}
		if grew := size - size0; grew > 1<<20 {
			t.Errorf("the database grew %d bytes for %d calls", grew, calls)
		}
	})
}

// TestFederationNewSessionLimits: new consent sessions are limited per
// user of a workload and per caller, with ThrottlingException; asking
// again for an open session is not a new one.
func TestFederationNewSessionLimits(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		const perUser, perPrincipal = 5, 12
		fw := newFedWorld(t, b, fedOptions{edit: func(f *config.File) {
			f.UserFederation.NewSessionsPerUserPerMinute = perUser
			f.UserFederation.NewSessionsPerPrincipalPerMinute = perPrincipal
		}})
		call := func(token string, state string) error {
			t.Helper()
			_, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(token, func(in *oauth2Input) { in.CustomState = aws.String(state) }), noRetry)
			return err
		}
		wantThrottled := func(err error, what string) {
			t.Helper()
			if err == nil {
				t.Fatalf("%s: no ThrottlingException", what)
			}
			wantAPIError[*types.ThrottlingException](t, err)
		}
		bob := mintForUser(t, fw.rt, workloadW1, "bob")
		rows0, _ := sessionStorage(t, fw.s)
		// One user, distinct requests: perUser sessions, then throttled.
		for i := range perUser {
			if err := call(bob, fmt.Sprintf("request-%d", i)); err != nil {
				t.Fatalf("new session %d of %d: %v", i+1, perUser, err)
			}
		}
		wantThrottled(call(bob, "one-too-many"), "a new session past the per-user limit")
		// The open sessions are still answered.
		for i := range perUser {
			if err := call(bob, fmt.Sprintf("request-%d", i)); err != nil {
				t.Errorf("asking again for open session %d: %v", i, err)
			}
		}
		// Distinct users: the caller's limit.
		admitted, throttled := perUser, 0
		for i := range 2 * perPrincipal {
			if err := call(mintForUser(t, fw.rt, workloadW1, fmt.Sprintf("user-%d", i)), "x"); err != nil {
				wantAPIError[*types.ThrottlingException](t, err)
				throttled++
			} else {
				admitted++
			}
		}
		// A token or two may have come back while the test ran.
		if throttled == 0 || admitted > perPrincipal+2 {
			t.Errorf("%d distinct users: %d sessions admitted, %d throttled; want at most about %d admitted", 2*perPrincipal, admitted, throttled, perPrincipal)
		}
		if rows, _ := sessionStorage(t, fw.s); rows-rows0 != int64(admitted) {
			t.Errorf("%d sessions stored, %d admitted", rows-rows0, admitted)
		}
	})
}

// TestFederationEndedSessionsPurged: the periodic maintenance removes a
// failed session, and an expired one, one session lifetime after they
// ended, and keeps them until then so that a poll hears FAILED.
func TestFederationEndedSessionsPurged(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		db, ph := rawDB(t, fw.s)
		idOf := func(s fedSession) string { return strings.TrimPrefix(s.uri, "urn:ietf:params:oauth:request_uri:") }
		ttl := fw.s.Config.SessionTTL

		failed := fw.start(t, fedInput(alice, withScopes("openid")))
		fw.consentOK(t, failed)
		wantAccessDenied(t, fw.complete(t, failed.uri, asUserID("mallory")), "different user")
		expired := fw.start(t, fedInput(alice, withScopes("openid", "email")))
		recent := fw.start(t, fedInput(alice, withScopes("openid", "profile")))
		fw.complete(t, recent.uri, asUserID("mallory")) // failed just now

		fw.s.Server.Maintain(ctx(t))
		if out := fw.poll(t, alice, failed.uri); out.SessionStatus != types.SessionStatusFailed {
			t.Fatalf("a session that just failed: %q", out.SessionStatus)
		}
		// One lifetime later (moved back in the database rather than
		// waited for).
		past := time.Now().Add(-ttl - time.Minute).UnixMicro()
		execOne(t, db, "UPDATE oauth_sessions SET updated_at = "+ph(1)+" WHERE id = "+ph(2), past, idOf(failed))
		execOne(t, db, "UPDATE oauth_sessions SET expires_at = "+ph(1)+" WHERE id = "+ph(2), past, idOf(expired))
		fw.s.Server.Maintain(ctx(t))
		for name, s := range map[string]fedSession{"failed": failed, "expired": expired} {
			if _, err := fw.s.Server.Store().GetOAuthSession(ctx(t), idOf(s)); err == nil {
				t.Errorf("the %s session was kept past one session lifetime", name)
			}
		}
		if out := fw.poll(t, alice, recent.uri); out.SessionStatus != types.SessionStatusFailed {
			t.Errorf("the session that failed recently: %q", out.SessionStatus)
		}
	})
}
