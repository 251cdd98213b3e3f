package dataplane_test

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// meter is a server's metrics as its OTLP exports show them.
type meter struct {
	s    *behalftest.Server
	recv *otlptest.Receiver
}

// exportMetrics sends the server's metrics to a new in-process collector.
func exportMetrics(t *testing.T) (*otlptest.Receiver, func(*config.File)) {
	recv := otlptest.New(t)
	return recv, func(f *config.File) {
		f.Telemetry.OTLP.Endpoint = recv.URL
		f.Telemetry.Metrics.OTLP = true
	}
}

// counts flushes the server's metrics and returns counter name's
// cumulative totals by the values of keys (joined with "/"), as the latest
// export holds them.
func (m meter) counts(t *testing.T, name string, keys ...string) map[string]int64 {
	t.Helper()
	if err := m.s.Server.Telemetry().ForceFlush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, metric := range m.recv.Metrics() {
		if metric.Name != name {
			continue
		}
		out = map[string]int64{} // each export holds every total so far
		for _, dp := range metric.GetSum().GetDataPoints() {
			have := map[string]string{}
			for _, kv := range dp.Attributes {
				have[kv.Key] = kv.Value.GetStringValue()
			}
			var vals []string
			for _, k := range keys {
				vals = append(vals, have[k])
			}
			out[strings.Join(vals, "/")] += dp.GetAsInt()
		}
	}
	return out
}

// since returns what counts added to before, without the zeros.
func since(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func wantCounts(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

const sessionsMetric = "behalf.consent.sessions"

// TestConsentSessionMetrics: each step of a USER_FEDERATION flow is
// counted once, as exported over OTLP: a session started and completed; one
// completed for another user (wrong_user, not also failed); one the
// provider refused (failed); one whose user came back after it expired.
func TestConsentSessionMetrics(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.New(time.Now())
		recv, export := exportMetrics(t)
		fw := newFedWorld(t, b, fedOptions{now: clock.Now, edit: export})
		m := meter{fw.s, recv}
		before := m.counts(t, sessionsMetric, string(telemetry.Event))

		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		fw.connect(t, alice, asUserID("alice"))
		wantCounts(t, "after a completed flow", since(before, m.counts(t, sessionsMetric, string(telemetry.Event))),
			map[string]int64{telemetry.SessionStarted: 1, telemetry.SessionCompleted: 1})

		bob := mintForUser(t, fw.rt, workloadW1, "bob")
		s := fw.start(t, fedInput(bob))
		fw.consentOK(t, s)
		wantAPIError[*types.AccessDeniedException](t, fw.complete(t, s.uri, asUserID("mallory")))

		carol := mintForUser(t, fw.rt, workloadW1, "carol")
		s = fw.start(t, fedInput(carol))
		refused := fedBrowse(t, fw.callbackURL+"?"+url.Values{"state": {s.state}, "error": {"access_denied"}}.Encode())
		if refused.status == http.StatusInternalServerError || fw.storedSession(t, s.uri).Status != "FAILED" {
			t.Fatalf("a provider's refusal: %d, session %s", refused.status, fw.storedSession(t, s.uri).Status)
		}

		dave := mintForUser(t, fw.rt, workloadW1, "dave")
		s = fw.start(t, fedInput(dave))
		clock.Advance(fw.s.Config.SessionTTL + time.Second)
		if late := fw.consent(t, s); late.status != http.StatusGone {
			t.Fatalf("callback of an expired session: %d %s", late.status, late.body)
		}

		wantCounts(t, "sessions", since(before, m.counts(t, sessionsMetric, string(telemetry.Event))), map[string]int64{
			telemetry.SessionStarted: 4, telemetry.SessionCompleted: 1, telemetry.SessionWrongUser: 1,
			telemetry.SessionFailed: 1, telemetry.SessionExpired: 1,
		})
	})
}

// TestMintAndCacheMetrics: workload access tokens are counted by the
// operation that minted them, and a repeated vend is counted lookup by
// lookup in each cache it reads: the first of a kind misses, the repeat
// hits. A signed call looks its principal up twice (once to check the
// signature, once for its grants), both hits once the principal is known.
func TestMintAndCacheMetrics(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.New(time.Now())
		recv, export := exportMetrics(t)
		w := newWorld(t, b, worldOptions{now: clock.Now, edit: export})
		m := meter{w.s, recv}
		jwt := w.dex.PasswordLogin(t, userClientID, userClientSecret).IDToken
		mintBefore := m.counts(t, "behalf.workload_access_tokens.minted", string(telemetry.Kind))

		plain := mintPlain(t, w.rt, workloadW1)
		mintPlain(t, w.rt, workloadW1)
		mintForUser(t, w.rt, workloadW1, "alice")
		cacheBefore := m.counts(t, "behalf.cache.lookups", string(telemetry.Cache), string(telemetry.Result))
		mintForJWT(t, w.rt, jwt)
		mintForJWT(t, w.rt, jwt)
		wantCounts(t, "tokens minted", since(mintBefore, m.counts(t, "behalf.workload_access_tokens.minted", string(telemetry.Kind))),
			map[string]int64{telemetry.WATWorkload: 2, telemetry.WATUserID: 1, telemetry.WATJWT: 2})
		wantCounts(t, "lookups minting for a JWT twice", since(cacheBefore, m.counts(t, "behalf.cache.lookups", string(telemetry.Cache), string(telemetry.Result))),
			map[string]int64{"principal/hit": 4, "workload_identity/hit": 2, "user_jwt/miss": 1, "user_jwt/hit": 1})

		for _, vend := range []struct {
			name string
			call func() error
			want map[string]int64
		}{
			{"API key", func() error { _, err := getAPIKey(ctx(t), w.rt, plain, apiKeyProvider); return err },
				map[string]int64{"principal/hit": 4, "workload_access_token/miss": 1, "workload_access_token/hit": 1,
					"workload_identity/hit": 2, "api_key_provider/miss": 1, "api_key_provider/hit": 1}},
			{"M2M token", func() error { _, err := getM2M(ctx(t), w.rt, plain, m2mProvider); return err },
				map[string]int64{"principal/hit": 4, "workload_access_token/hit": 2, "workload_identity/hit": 2,
					"oauth2_provider/miss": 1, "oauth2_provider/hit": 1, "m2m_token/miss": 1, "m2m_token/hit": 1}},
		} {
			before := m.counts(t, "behalf.cache.lookups", string(telemetry.Cache), string(telemetry.Result))
			for range 2 {
				if err := vend.call(); err != nil {
					t.Fatalf("%s: %v", vend.name, err)
				}
			}
			wantCounts(t, vend.name+" twice", since(before, m.counts(t, "behalf.cache.lookups", string(telemetry.Cache), string(telemetry.Result))), vend.want)
		}
	})
}

// TestRateLimitMetrics: each call refused by a rate limit is counted under
// its limit, and nothing else is: with two new sessions a minute per user,
// three per principal and twelve calls in a burst per principal, on a
// clock that does not move.
func TestRateLimitMetrics(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.New(time.Now())
		recv, export := exportMetrics(t)
		fw := newFedWorld(t, b, fedOptions{now: clock.Now, edit: func(f *config.File) {
			export(f)
			f.UserFederation.NewSessionsPerUserPerMinute, f.UserFederation.NewSessionsPerPrincipalPerMinute = 2, 3
			f.Limits.RequestsPerSecond, f.Limits.Burst = 0.001, 12
		}})
		m := meter{fw.s, recv}
		before := m.counts(t, "behalf.ratelimit.rejections", string(telemetry.Limit))
		agent := createPrincipal(t, fw.s, workloadW1).data(fw.s) // a full bucket

		throttled := func(user string) {
			t.Helper()
			_, err := agent.GetResourceOauth2Token(ctx(t), fedInput(mintForUser(t, agent, workloadW1, user), forceAuthentication))
			wantAPIError[*types.ThrottlingException](t, err)
		}
		started := func(user string) {
			t.Helper()
			out, err := agent.GetResourceOauth2Token(ctx(t), fedInput(mintForUser(t, agent, workloadW1, user), forceAuthentication))
			if err != nil {
				t.Fatal(err)
			}
			wantSession(t, out)
		}
		started("alice")
		started("alice")
		throttled("alice") // her third session in the minute
		started("bob")
		throttled("bob")   // the principal's fourth
		throttled("carol") // and fifth
		// Twelve calls so far: the thirteenth and fourteenth are refused.
		for range 2 {
			_, err := agent.GetWorkloadAccessToken(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String(workloadW1)})
			wantAPIError[*types.ThrottlingException](t, err)
		}
		wantCounts(t, "rejections", since(before, m.counts(t, "behalf.ratelimit.rejections", string(telemetry.Limit))), map[string]int64{
			telemetry.LimitSessionsPerUser: 1, telemetry.LimitSessionsPerPrincipal: 2, telemetry.LimitPrincipal: 2,
		})
	})
}

// TestRefreshMetrics: a refresh is counted by its result: refreshed when
// the provider issued new tokens, invalid_grant when it refused the
// refresh token, failed when it failed.
func TestRefreshMetrics(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		recv, export := exportMetrics(t)
		fw := newFedWorld(t, b, fedOptions{edit: export, dex: dextest.Options{RotateRefreshTokens: true}})
		m := meter{fw.s, recv}
		before := m.counts(t, "behalf.token.refreshes", string(telemetry.Result))
		// Each user connects just before the refresh: Dex keeps one refresh
		// token per person and client.
		due := func(user string) string {
			t.Helper()
			token := mintForUser(t, fw.rt, workloadW1, user)
			fw.connect(t, token, asUserID(user))
			fw.expire(t, "id:"+user)
			return token
		}
		fw.token(t, fedInput(due("alice")))
		bob := due("bob")
		fw.tokens.setFault(tokenFault("refresh_token", 400, "application/json", `{"error":"invalid_grant"}`))
		fw.start(t, fedInput(bob))
		fw.tokens.setFault(nil)
		carol := due("carol")
		fw.tokens.setFault(tokenFault("refresh_token", 503, "text/html", "<h1>down</h1>"))
		_, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(carol))
		wantAPIError[*types.InternalServerException](t, err)

		wantCounts(t, "refreshes", since(before, m.counts(t, "behalf.token.refreshes", string(telemetry.Result))), map[string]int64{
			telemetry.RefreshRefreshed: 1, telemetry.RefreshInvalidGrant: 1, telemetry.RefreshFailed: 1,
		})
	})
}
