package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// BenchmarkToolRoute measures what a tool route adds to a call: the same
// no-op upstream called directly (the floor), through the gateway with
// the API key cached (the steady state: each call one RecordGatewayCall),
// and through a route without a cache, which fetches the key from behalf
// for every call (SQLite; every fetch and every call audited). It reports
// p50 and p99 latency, what the gateway adds to them over the floor, and
// requests per second.
//
//	go test -run '^$' -bench ToolRoute -benchtime 3s -cpu 2 ./internal/gateway
func BenchmarkToolRoute(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "" && r.Header.Get("X-Api-Key") != weatherKey {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"forecast":"sunny"}`)
	}))
	b.Cleanup(upstream.Close)
	s := behalftest.Start(b, behalftest.Backends[0], behalftest.Options{})
	ctx := b.Context()
	if _, err := s.Control().CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String(workload)}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Control().CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
		Name: aws.String("weather"), ApiKey: aws.String(weatherKey)}); err != nil {
		b.Fatal(err)
	}
	minted, err := s.Data().GetWorkloadAccessTokenForUserId(ctx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String(workload), UserId: aws.String("alice")})
	if err != nil {
		b.Fatal(err)
	}
	f := config.GatewayDefaults()
	f.Endpoint, f.Routes = s.URL, []config.GatewayRouteFile{
		{Name: "weather", Path: "/weather", Upstream: upstream.URL, Kind: "tool",
			Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key"}},
		{Name: "weather-uncached", Path: "/weather-uncached", Upstream: upstream.URL, Kind: "tool",
			Credential: config.GatewayCredentialFile{Provider: "weather", Type: "apiKey", Header: "X-Api-Key", CacheTTL: new(time.Duration(0))}},
	}
	cfg, err := f.Validate()
	if err != nil {
		b.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{Data: s.Data()})
	if err != nil {
		b.Fatal(err)
	}
	gw := httptest.NewServer(g.Handler())
	b.Cleanup(gw.Close)

	wat := map[string]string{gateway.HeaderWAT: aws.ToString(minted.WorkloadAccessToken)}
	var floor *latencies
	b.Run("direct", func(b *testing.B) { floor = measure(b, upstream.URL, nil, nil) })
	b.Run("gateway-cached", func(b *testing.B) { measure(b, gw.URL+"/weather", wat, floor) })
	b.Run("gateway-uncached", func(b *testing.B) { measure(b, gw.URL+"/weather-uncached", wat, floor) })
}

// latencies are a measurement's percentiles.
type latencies struct{ p50, p99 time.Duration }

// measure calls url from parallel clients and reports latency percentiles,
// what they add to floor's when it is measured, and throughput.
func measure(b *testing.B, url string, headers map[string]string, floor *latencies) *latencies {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var mu sync.Mutex
	var all []time.Duration
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, url, nil)
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			t0 := time.Now()
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("HTTP %d", res.StatusCode)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		all = append(all, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	if len(all) == 0 {
		return nil
	}
	slices.Sort(all)
	got := &latencies{p50: all[len(all)/2], p99: all[len(all)*99/100]}
	b.ReportMetric(float64(got.p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(got.p99.Microseconds()), "p99-µs")
	if floor != nil {
		b.ReportMetric(float64((got.p50 - floor.p50).Microseconds()), "added-p50-µs")
		b.ReportMetric(float64((got.p99 - floor.p99).Microseconds()), "added-p99-µs")
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	return got
}
