package dataplane_test

// Refresh, functionally (issue 4, item 4): a user's token near its expiry
// is renewed with the refresh token on demand, the rotated refresh token
// is kept, a refused refresh token sends the user back to consent, and an
// upstream failure is a typed error that leaves the connection usable.
// (Concurrency and crashes are another suite's.)

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// expire moves the access token expiry of a user's connection for
// workload W1 into the past, through storage, and drops the server's
// cached copy, so that the next call must refresh it.
func (fw *fedWorld) expire(t *testing.T, user string) {
	t.Helper()
	_, err := fw.s.Server.Store().UpdateConnection(ctx(t), storage.ConnectionKey{ProviderID: fw.providerID, Workload: workloadW1, User: user},
		func(c storage.Connection) (storage.Connection, error) {
			c.ExpiresAt = time.Now().Add(-time.Second)
			return c, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	fw.s.Server.ForgetConnections()
}

// listedConnections calls /behalf/ListConnections as admin.
func listedConnections(t *testing.T, s *behalftest.Server, filter map[string]any) []fedConnection {
	t.Helper()
	res := do(t, s, "/behalf/ListConnections", filter, http.StatusOK)
	var out struct {
		Connections []fedConnection `json:"connections"`
		NextToken   *string         `json:"nextToken"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatalf("ListConnections: %v: %s", err, res.Body)
	}
	return out.Connections
}

type fedConnection struct {
	Provider     string   `json:"provider"`
	Workload     string   `json:"workload"`
	User         string   `json:"user"`
	Status       string   `json:"status"`
	Scopes       []string `json:"scopes"`
	ExpiresAt    *float64 `json:"accessTokenExpiresAt"`
	CreatedTime  float64  `json:"createdTime"`
	LastUsedTime float64  `json:"lastUsedTime"`
}

// TestFederationRefresh: Dex's tokens live 10 minutes here and it rotates
// refresh tokens, invalidating the one presented. behalf refreshes in a
// token's last tenth or last minute, whichever is shorter
// (tokenflow.RefreshMargin), so with the server's clock advanced to 2
// minutes before expiry a call is served from the vault and at 30s before
// it refreshes; three refreshes in a row succeed, each presenting the
// refresh token the previous one returned.
func TestFederationRefresh(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		fw := newFedWorld(t, b, fedOptions{now: clock.Now, dex: dextest.Options{RotateRefreshTokens: true, IDTokensValidFor: 10 * time.Minute}})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		prev := fw.connect(t, alice, asUserID("alice"))
		conn, err := fw.connection(t, "id:alice")
		if err != nil || conn.ExpiresAt.IsZero() {
			t.Fatalf("connection %+v %v", conn, err)
		}

		clock.AdvanceTo(conn.ExpiresAt.Add(-2 * time.Minute))
		if fw.token(t, fedInput(alice)) != prev || len(fw.tokens.grant("refresh_token")) != 0 {
			t.Fatal("a token outside its last minute was refreshed")
		}

		var presented []string
		for cycle := range 3 {
			conn, _ := fw.connection(t, "id:alice")
			when := conn.ExpiresAt.Add(time.Second) // expired
			if cycle == 0 {
				when = conn.ExpiresAt.Add(-30 * time.Second) // near expiry
			}
			clock.AdvanceTo(when)
			alice = mintForUser(t, fw.rt, workloadW1, "alice") // the last one has expired too
			before := len(fw.tokens.grant("refresh_token"))
			tok := fw.token(t, fedInput(alice))
			refreshes := fw.tokens.grant("refresh_token")[before:]
			if len(refreshes) != 1 {
				t.Fatalf("cycle %d: %d refresh requests, want 1", cycle, len(refreshes))
			}
			if tok == prev {
				t.Fatalf("cycle %d: the old token came back", cycle)
			}
			if sub := verifyAccessToken(t, fw.dex, fedClientID, tok)["sub"]; sub != dextest.CallbackSubject {
				t.Errorf("cycle %d: refreshed token sub %v", cycle, sub)
			}
			presented = append(presented, refreshes[0].Get("refresh_token"))
			if cycle > 0 && presented[cycle] == presented[cycle-1] {
				t.Errorf("cycle %d presented the refresh token Dex had rotated out", cycle)
			}
			if again := fw.token(t, fedInput(alice)); again != tok || len(fw.tokens.grant("refresh_token")) != before+1 {
				t.Errorf("cycle %d: the refreshed token was not stored", cycle)
			}
			after, _ := fw.connection(t, "id:alice")
			if after.Status != storage.ConnectionActive || !after.ExpiresAt.After(conn.ExpiresAt) {
				t.Errorf("cycle %d: connection %s, expiry %v after %v", cycle, after.Status, after.ExpiresAt, conn.ExpiresAt)
			}
			prev = tok
		}
	})
}

// TestFederationRefreshNeedsConsent: a provider that refuses the refresh
// token (invalid_grant) turns the connection to NEEDS_CONSENT, and the
// call starts a new authorization instead of failing; so do later calls,
// without asking the provider again; a new consent makes it ACTIVE.
func TestFederationRefreshNeedsConsent(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{dex: dextest.Options{RotateRefreshTokens: true}})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		fw.connect(t, alice, asUserID("alice"))
		fw.expire(t, "id:alice")
		fw.tokens.setFault(tokenFault("refresh_token", 400, "application/json",
			`{"error":"invalid_grant","error_description":"the refresh token was revoked"}`))

		s := fw.start(t, fedInput(alice))
		if n := len(fw.tokens.grant("refresh_token")); n != 1 {
			t.Errorf("%d refresh requests, want 1", n)
		}
		conns := listedConnections(t, fw.s, map[string]any{"user": "id:alice"})
		if len(conns) != 1 || conns[0].Status != "NEEDS_CONSENT" {
			t.Fatalf("ListConnections: %+v", conns)
		}
		recs, _ := listAudit(t, fw.s, map[string]any{"operation": "RefreshOAuth2Token"})
		if len(recs) != 1 || recs[0].Outcome != "failure" || recs[0].ErrorType != "ConsentRequired" || recs[0].User != "id:alice" {
			t.Errorf("refresh audit records %+v, want one failure ConsentRequired", recs)
		}
		// Asking again answers the open session, without asking the
		// provider; forceAuthentication starts another.
		if same := fw.start(t, fedInput(alice)); same.uri != s.uri || same.authURL != s.authURL {
			t.Error("asking again started another session instead of answering the open one")
		}
		again := fw.start(t, fedInput(alice, forceAuthentication))
		if again.uri == s.uri || len(fw.tokens.grant("refresh_token")) != 1 {
			t.Error("a connection that needs consent asked the provider again")
		}
		// Without a return URL the agent is told what to send, not that
		// something broke.
		_, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(alice, withoutReturnURL))
		wantAPIError[*types.ValidationException](t, err)

		fw.tokens.setFault(nil)
		fw.consentOK(t, again)
		if err := fw.complete(t, again.uri, asUserID("alice")); err != nil {
			t.Fatal(err)
		}
		fw.token(t, fedInput(alice))
		if conns := listedConnections(t, fw.s, map[string]any{"user": "id:alice"}); len(conns) != 1 || conns[0].Status != "ACTIVE" {
			t.Errorf("after new consent: %+v", conns)
		}
		// The earlier session, consented now too, still binds (it is the
		// user's, and unexpired), replacing the connection.
		fw.consentOK(t, s)
		if err := fw.complete(t, s.uri, asUserID("alice")); err != nil {
			t.Errorf("the first session: %v", err)
		}
	})
}

// TestFederationRefreshUpstreamErrors: a refresh the provider fails is a
// typed error quoting the provider; the connection stays ACTIVE with its
// refresh token, and works once the provider recovers.
func TestFederationRefreshUpstreamErrors(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{dex: dextest.Options{RotateRefreshTokens: true}})
		for i, tc := range []struct {
			name       string
			fault      func(http.ResponseWriter, url.Values) bool
			wantStatus int
			check      func(t *testing.T, err error) string
			quotes     []string
		}{
			{"503", tokenFault("refresh_token", 503, "text/html", "<h1>down for maintenance</h1>"), http.StatusBadGateway,
				func(t *testing.T, err error) string {
					return aws.ToString(wantAPIError[*types.InternalServerException](t, err).Message)
				}, []string{fedProvider, "HTTP 503"}},
			{"malformed JSON", tokenFault("refresh_token", 200, "application/json", `{"access_token": "x", `), http.StatusBadGateway,
				func(t *testing.T, err error) string {
					return aws.ToString(wantAPIError[*types.InternalServerException](t, err).Message)
				}, []string{fedProvider, "not valid JSON"}},
			{"temporarily_unavailable", tokenFault("refresh_token", 400, "application/json",
				`{"error":"temporarily_unavailable","error_description":"try again in a minute"}`), http.StatusTooManyRequests,
				func(t *testing.T, err error) string {
					return aws.ToString(wantAPIError[*types.ThrottlingException](t, err).Message)
				}, []string{fedProvider, "temporarily_unavailable", "try again in a minute"}},
			// A provider that echoes the refresh token it was sent must not
			// make behalf hand it to the agent: the refresh token is the
			// long-lived credential the agent never otherwise sees.
			{"description echoing the refresh token", func(w http.ResponseWriter, form url.Values) bool {
				if form.Get("grant_type") != "refresh_token" {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(400)
				w.Write([]byte(`{"error":"invalid_scope","error_description":"scope not allowed for refresh_token ` + form.Get("refresh_token") + `"}`))
				return true
			}, http.StatusBadRequest,
				func(t *testing.T, err error) string {
					return aws.ToString(wantAPIError[*types.ValidationException](t, err).Message)
				}, []string{fedProvider, "invalid_scope", "scope not allowed for refresh_token"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				user := []string{"alice", "bob", "carol", "dave"}[i]
				token := mintForUser(t, fw.rt, workloadW1, user)
				fw.connect(t, token, asUserID(user))
				fw.expire(t, "id:"+user)
				before := len(fw.tokens.grant("refresh_token"))
				fw.tokens.setFault(tc.fault)
				defer fw.tokens.setFault(nil)

				out, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(token))
				if out != nil {
					t.Fatalf("a failed refresh answered %+v", out)
				}
				msg := tc.check(t, err)
				if got := httpStatus(err); got != tc.wantStatus {
					t.Errorf("status %d, want %d", got, tc.wantStatus)
				}
				for _, q := range tc.quotes {
					if !strings.Contains(msg, q) {
						t.Errorf("message %q does not quote %q", msg, q)
					}
				}
				sent := fw.tokens.grant("refresh_token")[before:]
				if len(sent) != 1 {
					t.Fatalf("%d refresh requests, want 1", len(sent))
				}
				var secrets secretSet
				secrets.add("refresh token", sent[0].Get("refresh_token"))
				secrets.add("client secret", fedClientSecret)
				secrets.checkRecorder(t, "a data-plane response", fw.rec)

				if conn, _ := fw.connection(t, "id:"+user); conn.Status != storage.ConnectionActive {
					t.Errorf("connection %s after a provider failure", conn.Status)
				}
				fw.tokens.setFault(nil)
				fw.token(t, fedInput(token))
				if conn, _ := fw.connection(t, "id:"+user); !conn.ExpiresAt.After(time.Now()) {
					t.Errorf("connection expiry %v after the refresh", conn.ExpiresAt)
				}
				if got := fw.tokens.grant("refresh_token")[before:]; len(got) != 2 || got[1].Get("refresh_token") != sent[0].Get("refresh_token") {
					t.Errorf("recovery: %d refresh requests, same refresh token %v", len(got), len(got) == 2 && got[1].Get("refresh_token") == sent[0].Get("refresh_token"))
				}
			})
		}
	})
}

// TestFederationUnstatedLifetime: a provider that omits expires_in (it is
// only RECOMMENDED, RFC 6749 §5.1) but issues a refresh token gets its
// token refreshed after an assumed hour; one without a refresh token is
// kept until the provider refuses it. The token endpoint here is a fake
// answering for Dex, which always states a lifetime.
func TestFederationUnstatedLifetime(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		for _, tc := range []struct {
			user, body string
			wantExpiry bool
		}{
			{"alice", `{"access_token":"at-alice","token_type":"Bearer","refresh_token":"rt-alice"}`, true},
			{"bob", `{"access_token":"at-bob","token_type":"Bearer"}`, false},
		} {
			fw.tokens.setFault(tokenFault("authorization_code", 200, "application/json", tc.body))
			token := mintForUser(t, fw.rt, workloadW1, tc.user)
			if got := fw.connect(t, token, asUserID(tc.user)); got != "at-"+tc.user {
				t.Fatalf("%s: token %q", tc.user, got)
			}
			conn, err := fw.connection(t, "id:"+tc.user)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantExpiry {
				if !conn.ExpiresAt.IsZero() {
					t.Errorf("%s: a token that cannot be refreshed expires at %v", tc.user, conn.ExpiresAt)
				}
				continue
			}
			if d := time.Until(conn.ExpiresAt); d < 59*time.Minute || d > time.Hour {
				t.Errorf("%s: expires in %v, want an assumed hour", tc.user, d)
			}
		}
		fw.tokens.setFault(nil)
	})
}

// TestFederationRefreshTokenRotatedOut: a connection restored to a refresh
// token Dex has since rotated out (a database restored from backup) is
// refused by the real Dex — with invalid_request, not invalid_grant — and
// becomes NEEDS_CONSENT rather than an error the agent cannot act on.
func TestFederationRefreshTokenRotatedOut(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{dex: dextest.Options{RotateRefreshTokens: true}})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		fw.connect(t, alice, asUserID("alice"))
		backup, err := fw.connection(t, "id:alice")
		if err != nil {
			t.Fatal(err)
		}
		fw.expire(t, "id:alice")
		fw.token(t, fedInput(alice)) // Dex rotates the refresh token
		_, err = fw.s.Server.Store().UpdateConnection(ctx(t), backup.ConnectionKey, func(c storage.Connection) (storage.Connection, error) {
			c.Tokens, c.ExpiresAt = backup.Tokens, time.Now().Add(-time.Second)
			return c, nil
		})
		fw.s.Server.ForgetConnections()
		if err != nil {
			t.Fatal(err)
		}
		s := fw.start(t, fedInput(alice))
		if s.authURL == "" {
			t.Fatal("no new authorization started")
		}
		if n := len(fw.tokens.grant("refresh_token")); n != 2 {
			t.Errorf("%d refresh requests, want 2", n)
		}
		if conn, _ := fw.connection(t, "id:alice"); conn.Status != storage.ConnectionNeedsConsent {
			t.Errorf("connection %s, want NEEDS_CONSENT", conn.Status)
		}
	})
}

// TestFederationRefreshLeaseHeldElsewhere: another replica holds the
// refresh lease (here a lease taken in storage by an owner that never
// finishes, as a dead replica leaves it). A caller whose token is due but
// still has some life gets it after a short wait, without a refresh; one
// whose token has expired waits for the lease to run out, takes it over
// and refreshes once. The server's clock runs five times fast during the
// waits, which the server measures by it.
func TestFederationRefreshLeaseHeldElsewhere(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		fw := newFedWorld(t, b, fedOptions{now: clock.Now, dex: dextest.Options{RotateRefreshTokens: true}})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		first := fw.connect(t, alice, asUserID("alice"))
		k := storage.ConnectionKey{ProviderID: fw.providerID, Workload: workloadW1, User: "id:alice"}
		st := fw.s.Server.Store()
		setExpiry := func(at time.Time) {
			t.Helper()
			if _, err := st.UpdateConnection(ctx(t), k, func(c storage.Connection) (storage.Connection, error) {
				c.ExpiresAt = at
				return c, nil
			}); err != nil {
				t.Fatal(err)
			}
			fw.s.Server.ForgetConnections()
		}

		setExpiry(clock.Now().Add(30 * time.Second)) // due: inside the last minute
		if _, err := st.AcquireRefreshLease(ctx(t), k, "dead-replica", clock.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		start := clock.Now()
		stop := fastForward(clock, 5)
		got := fw.token(t, fedInput(alice))
		stop()
		if got != first {
			t.Error("a caller waiting on another's lease did not get the current, still valid token")
		}
		if waited := clock.Now().Sub(start); waited < 2*time.Second || waited > 15*time.Second {
			t.Errorf("waited %v for the current token, want about 2s", waited)
		}
		if n := len(fw.tokens.grant("refresh_token")); n != 0 {
			t.Errorf("%d refresh requests while another held the lease", n)
		}

		setExpiry(clock.Now().Add(-time.Second))
		lease, err := fw.connection(t, "id:alice")
		if err != nil {
			t.Fatal(err)
		}
		// The dead replica's lease runs out in 3s.
		if err := st.RenewRefreshLease(ctx(t), k, "dead-replica", lease.LeaseToken, clock.Now().Add(3*time.Second)); err != nil {
			t.Fatal(err)
		}
		start = clock.Now()
		stop = fastForward(clock, 5)
		got = fw.token(t, fedInput(alice))
		stop()
		if waited := clock.Now().Sub(start); waited < 3*time.Second || waited > 15*time.Second {
			t.Errorf("took the expired lease over after %v, want about 3s", waited)
		}
		if got == first || len(fw.tokens.grant("refresh_token")) != 1 {
			t.Errorf("after taking the lease over: new token %v, %d refresh requests (want 1)", got != first, len(fw.tokens.grant("refresh_token")))
		}
		if conn, _ := fw.connection(t, "id:alice"); conn.LeaseOwner != "" || conn.LeaseToken != lease.LeaseToken+1 {
			t.Errorf("lease after the take-over: owner %q token %d, want released, token %d", conn.LeaseOwner, conn.LeaseToken, lease.LeaseToken+1)
		}
	})
}

// TestFederationRefreshProviderTooSlow: a provider that does not answer a
// refresh within outbound.timeout (1s here) fails the call with a typed
// error naming it, in about that time; the connection stays ACTIVE with
// its refresh token, and the next call, the provider answering again,
// refreshes.
func TestFederationRefreshProviderTooSlow(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{dex: dextest.Options{RotateRefreshTokens: true}})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		first := fw.connect(t, alice, asUserID("alice"))
		fw.expire(t, "id:alice")
		release := make(chan struct{})
		defer close(release)
		fw.tokens.setFault(func(_ http.ResponseWriter, form url.Values) bool {
			if form.Get("grant_type") != "refresh_token" {
				return false
			}
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
			return true
		})

		start := time.Now()
		_, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(alice))
		elapsed := time.Since(start)
		ise := wantAPIError[*types.InternalServerException](t, err)
		if msg := aws.ToString(ise.Message); !strings.Contains(msg, fedProvider) || !strings.Contains(msg, "could not reach") {
			t.Errorf("message %q does not say which provider was too slow", msg)
		}
		if elapsed < 900*time.Millisecond || elapsed > 4*time.Second {
			t.Errorf("failed after %v; outbound.timeout is 1s", elapsed)
		}
		if conn, _ := fw.connection(t, "id:alice"); conn.Status != storage.ConnectionActive || conn.LeaseOwner != "" {
			t.Errorf("connection %s, lease owner %q after a slow provider", conn.Status, conn.LeaseOwner)
		}

		fw.tokens.setFault(nil)
		if got := fw.token(t, fedInput(alice)); got == first {
			t.Error("the recovered refresh returned the old token")
		}
		if n := len(fw.tokens.grant("refresh_token")); n != 2 {
			t.Errorf("%d refresh requests, want 2", n)
		}
	})
}

// fastForward makes clock run speedup times as fast as real time until
// stop is called, for a call that waits, polling, by the server's clock.
func fastForward(clock *testclock.Clock, speedup time.Duration) (stop func()) {
	const tick = 10 * time.Millisecond
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				clock.Advance((speedup - 1) * tick)
			}
		}
	}()
	return func() { close(done); <-stopped }
}
