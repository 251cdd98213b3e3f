package gateway_test

import (
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"

	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/metrictest"
)

// wat mints a workload access token for user, as an agent's runtime
// would.
func (w *world) wat(t *testing.T, user string) string {
	t.Helper()
	out, err := w.s.Data().GetWorkloadAccessTokenForUserId(t.Context(), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String(workload), UserId: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.WorkloadAccessToken)
}

// fetches counts the gateway principal's calls of operation (its
// credential fetches), from their audit records.
func (w *world) fetches(t *testing.T, operation string) int {
	t.Helper()
	recs, _ := w.records(t, operation)
	n := 0
	for _, r := range recs {
		if r.Principal == gatewayKeyID {
			n++
		}
	}
	return n
}

// TestToolRouteCredentialCache: a tool route reuses the credential it
// fetched for one caller's workload access token for the route's
// cacheTtl — every call still recorded — and fetches anew for another
// token, once the entry has expired, and when the upstream refuses the
// cached credential (a rotated key); concurrent first calls share one
// fetch; refusals and consents to give are not cached; a route with
// cacheTtl 0 fetches for every call. Hits and misses are counted.
func TestToolRouteCredentialCache(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, false)
		m := metrictest.New(t)
		w.gateway = w.standalone(t, gateway.Options{Metrics: m.Metrics, Now: w.clock.Now})
		alice := w.wat(t, "alice")
		weather := func(wat string) int {
			return w.call(t, "GET", "/weather", ``, map[string]string{gateway.HeaderWAT: wat}).StatusCode
		}
		expectFetches := func(step string, want int) {
			t.Helper()
			if got := w.fetches(t, "GetResourceApiKey"); got != want {
				t.Errorf("%s: %d GetResourceApiKey calls, want %d", step, got, want)
			}
		}

		for range 2 {
			if code := weather(alice); code != 200 {
				t.Fatalf("weather: %d", code)
			}
		}
		expectFetches("two calls with one token", 1)
		if recs, _ := w.gatewayRecords(t); len(recs) != 2 {
			t.Errorf("%d gateway records for two calls", len(recs))
		}
		if weather(w.wat(t, "bob")) != 200 {
			t.Fatal("bob's call failed")
		}
		expectFetches("another token", 2)
		if got := m.Counts(t, "behalf.cache.lookups", telemetry.Result); !maps.Equal(got, map[string]int64{"hit": 1, "miss": 2}) {
			t.Errorf("cache lookups %v after three calls, one of them a hit", got)
		}

		carol := w.wat(t, "carol")
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if code := weather(carol); code != 200 {
					t.Errorf("a concurrent call: %d", code)
				}
			})
		}
		wg.Wait()
		expectFetches("eight concurrent first calls", 3)

		w.clock.Advance(61 * time.Second)
		if weather(alice) != 200 {
			t.Fatal("a call after the entry expired failed")
		}
		expectFetches("after the cache TTL", 4)

		// The key is rotated: the tool refuses the cached one, and the
		// gateway fetches the new key and calls again, once.
		const rotated = "weather-api-key-rotated"
		if _, err := w.s.Control().UpdateApiKeyCredentialProvider(t.Context(), &bedrockagentcorecontrol.UpdateApiKeyCredentialProviderInput{
			Name: aws.String("weather"), ApiKey: aws.String(rotated)}); err != nil {
			t.Fatal(err)
		}
		w.tool.accept(rotated)
		if code := weather(alice); code != 200 || w.tool.last().Header.Get("X-Api-Key") != rotated {
			t.Fatalf("after the key was rotated: %d", code)
		}
		expectFetches("after a 401 to the cached key", 5)
		if weather(alice) != 200 {
			t.Fatal("a call with the new key cached failed")
		}
		expectFetches("the new key cached", 5)

		for range 2 {
			if code := weather("forged-token"); code < 400 || code >= 500 {
				t.Errorf("a forged token: %d", code)
			}
			if res := w.call(t, "GET", "/weather-q", ``, map[string]string{gateway.HeaderWAT: alice}); res.StatusCode != 200 {
				t.Errorf("weather-q: %d", res.StatusCode)
			}
		}
		expectFetches("two refusals and two calls of a route without a cache", 9)

		for range 2 {
			if out := decode(t, w.call(t, "GET", "/me", ``, map[string]string{gateway.HeaderWAT: alice})); out["__type"] != "ConsentRequiredException" {
				t.Fatalf("before consent: %v", out)
			}
		}
		if got := w.fetches(t, "GetResourceOauth2Token"); got != 2 {
			t.Errorf("a consent to give was cached: %d GetResourceOauth2Token calls for two", got)
		}

		// Concurrent first calls that miss share the fetch, so how many of
		// them hit varies; every lookup is counted all the same.
		got := m.Counts(t, "behalf.cache.lookups", telemetry.Result)
		if got["hit"]+got["miss"] != 18 || got["hit"] < 3 || got["miss"] < 7 {
			t.Errorf("cache lookups %v, want 18, 3 hits and 7 misses at least", got)
		}
	})
}

// The mounted gateway caches too, on the server's clock.
func TestMountedGatewayCachesCredentials(t *testing.T) {
	w := newWorld(t, behalftest.Backends[0], true)
	wat := w.wat(t, "alice")
	for range 3 {
		if res := w.call(t, "GET", "/weather", ``, map[string]string{gateway.HeaderWAT: wat}); res.StatusCode != http.StatusOK {
			t.Fatalf("weather: %d", res.StatusCode)
		}
	}
	if n := w.fetches(t, "GetResourceApiKey"); n != 1 {
		t.Errorf("%d GetResourceApiKey calls for three calls with one token", n)
	}
}
