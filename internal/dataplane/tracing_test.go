package dataplane_test

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// The caller's W3C trace context (W3C Trace Context §3.2), sampled.
const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + callerTraceID + "-" + callerSpanID + "-01"

	badProvider     = "dex-bad-secret"
	badClientSecret = "wrong-secret-TEST-fedcba9876543210"
	tracedUser      = "user-TEST-traced-0123456789"
)

// tracedClient is the official data-plane client of principal p, sending
// the caller's traceparent with every request, as an instrumented agent
// does.
func tracedClient(s *behalftest.Server, p principal) *bedrockagentcore.Client {
	return bedrockagentcore.NewFromConfig(behalftest.AWSConfig(p.ID, p.Secret), func(o *bedrockagentcore.Options) {
		o.BaseEndpoint, o.HTTPSignerV4 = aws.String(s.URL), s.Signer()
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("traceparent", traceparent))
	})
}

// TestTracesFollowACallToTheProvider: with traces on, an agent's
// GetResourceOauth2Token call continues the agent's trace in a server
// span named after the operation, whose descendant is the CLIENT span of
// the call to Dex's token endpoint; a provider's refusal marks both spans;
// the calls are counted; the log lines of the call carry its trace and
// span ids; and nothing exported holds a secret, a token or a user id.
func TestTracesFollowACallToTheProvider(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		recv := otlptest.New(t)
		var logs logBuffer
		w := newWorld(t, b, worldOptions{log: logs.debugLogger(), edit: func(f *config.File) {
			f.Telemetry.OTLP.Endpoint = recv.URL
			f.Telemetry.Traces.Enabled = true
			f.Telemetry.Metrics.OTLP = true
		}, w1Policy: map[string]any{
			"allowedInboundAuthorizers":  []string{dexAuthorizer},
			"allowedCredentialProviders": grants(apiKeyProvider, m2mProvider, badProvider),
		}})
		_, err := w.s.Control().CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String(badProvider), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: dexProviderConfig(w.dex, badClientSecret),
		})
		if err != nil {
			t.Fatal(err)
		}
		agent := tracedClient(w.s, w.runtime)
		token := mintPlain(t, agent, workloadW1)
		got, err := getM2M(ctx(t), agent, token, m2mProvider)
		if err != nil {
			t.Fatal(err)
		}
		okID := requestIDOf(got.ResultMetadata, nil)
		_, err = getM2M(ctx(t), agent, token, badProvider)
		wantAPIError[*types.AccessDeniedException](t, err)
		userToken := mintForUser(t, agent, workloadW1, tracedUser)
		key, err := getAPIKey(ctx(t), agent, userToken, apiKeyProvider)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.s.Server.Telemetry().ForceFlush(ctx(t)); err != nil {
			t.Fatal(err)
		}
		spans := recv.Spans()

		ok := serverSpan(t, spans, "GetResourceOauth2Token", func(s *tracepb.Span) bool { return otlptest.Attr(s, "behalf.provider") == m2mProvider })
		wantAttrs(t, ok, map[string]string{
			"behalf.operation": "GetResourceOauth2Token", "behalf.outcome": "success", "behalf.principal": w.runtime.ID,
			"behalf.workload": workloadW1, "behalf.flow": "M2M", "error.type": "",
		})
		tokenCall := clientSpanUnder(t, spans, ok, m2mProvider)
		wantAttrs(t, tokenCall, map[string]string{
			"behalf.endpoint": "token", "http.response.status_code": "200", "http.request.method": "POST",
			"server.address": "127.0.0.1", "oauth.error": "",
		})

		bad := serverSpan(t, spans, "GetResourceOauth2Token", func(s *tracepb.Span) bool { return otlptest.Attr(s, "behalf.provider") == badProvider })
		wantAttrs(t, bad, map[string]string{"behalf.outcome": "access_denied", "error.type": "AccessDeniedException"})
		refused := clientSpanUnder(t, spans, bad, badProvider)
		wantAttrs(t, refused, map[string]string{
			"behalf.endpoint": "token", "oauth.error": "invalid_client", "error.type": "invalid_client", "http.response.status_code": "401",
		})
		if refused.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("refused token call has status %v, want error", refused.Status)
		}

		forUser := serverSpan(t, spans, "GetResourceApiKey", func(*tracepb.Span) bool { return true })
		if h := otlptest.Attr(forUser, "behalf.user.hash"); len(h) != 32 || strings.Contains(h, tracedUser) {
			t.Errorf("user hash %q, want 32 hex digits of a keyed hash", h)
		}

		// Every line the successful call logged carries its trace and span.
		lines := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "request_id="+okID) {
				lines++
				if !strings.Contains(l, "trace_id="+callerTraceID) || !strings.Contains(l, "span_id=") {
					t.Errorf("log line of a traced call without its trace: %s", l)
				}
			}
		}
		if lines == 0 {
			t.Errorf("no log line of request %s; log:\n%s", okID, logs.String())
		}

		wantCount(t, recv.Metrics(), "behalf.requests", map[string]string{"behalf.operation": "GetResourceOauth2Token", "behalf.outcome": "success"})
		wantCount(t, recv.Metrics(), "behalf.requests", map[string]string{"behalf.operation": "GetResourceOauth2Token", "behalf.outcome": "access_denied", "error.type": "AccessDeniedException"})
		wantCount(t, recv.Metrics(), "behalf.outbound.requests", map[string]string{"behalf.provider": m2mProvider, "behalf.endpoint": "token", "behalf.outcome": "success"})
		wantCount(t, recv.Metrics(), "behalf.outbound.requests", map[string]string{"behalf.provider": badProvider, "behalf.endpoint": "token", "behalf.outcome": "oauth_error", "oauth.error": "invalid_client"})

		for _, body := range recv.Bodies() {
			for _, secret := range []string{m2mClientSecret, badClientSecret, aws.ToString(got.AccessToken), apiKeyValue, aws.ToString(key.ApiKey),
				tracedUser, token, userToken, w.runtime.Secret, behalftest.AdminSecret} {
				if secret != "" && bytes.Contains(body, []byte(secret)) {
					t.Fatalf("an OTLP export holds a secret, token or user id: %.12s…", secret)
				}
			}
		}
	})
}

// TestNoTracesWhenTracingIsOff: with tracing off, a call that brings a
// traceparent gets no span (its log lines name no trace) and nothing is
// exported, though a collector is configured.
func TestNoTracesWhenTracingIsOff(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		recv := otlptest.New(t)
		var logs logBuffer
		w := newWorld(t, b, worldOptions{log: logs.debugLogger(), edit: func(f *config.File) {
			f.Telemetry.OTLP.Endpoint = recv.URL
		}})
		agent := tracedClient(w.s, w.runtime)
		if _, err := getM2M(ctx(t), agent, mintPlain(t, agent, workloadW1), m2mProvider); err != nil {
			t.Fatal(err)
		}
		if err := w.s.Server.Telemetry().ForceFlush(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if n := len(recv.Bodies()); n != 0 {
			t.Errorf("%d exports with telemetry off", n)
		}
		if !strings.Contains(logs.String(), "request_id=") {
			t.Fatalf("no request logged:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), "trace_id=") || strings.Contains(logs.String(), callerTraceID) {
			t.Errorf("a call was traced with tracing off:\n%s", logs.String())
		}
	})
}

// serverSpan returns the one SERVER span named name in the caller's trace,
// a child of the caller's span, that match accepts.
func serverSpan(t *testing.T, spans []*tracepb.Span, name string, match func(*tracepb.Span) bool) *tracepb.Span {
	t.Helper()
	var found []*tracepb.Span
	for _, s := range spans {
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER && s.Name == name && match(s) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d server spans %s, want 1; spans: %s", len(found), name, spanNames(spans))
	}
	s := found[0]
	if hex.EncodeToString(s.TraceId) != callerTraceID || hex.EncodeToString(s.ParentSpanId) != callerSpanID {
		t.Errorf("server span %s in trace %x under %x, want the caller's %s under %s", name, s.TraceId, s.ParentSpanId, callerTraceID, callerSpanID)
	}
	return s
}

// clientSpanUnder returns the one CLIENT span to provider descending from
// parent.
func clientSpanUnder(t *testing.T, spans []*tracepb.Span, parent *tracepb.Span, provider string) *tracepb.Span {
	t.Helper()
	byID := map[string]*tracepb.Span{}
	for _, s := range spans {
		byID[string(s.SpanId)] = s
	}
	descends := func(s *tracepb.Span) bool {
		for p := byID[string(s.ParentSpanId)]; p != nil; p = byID[string(p.ParentSpanId)] {
			if bytes.Equal(p.SpanId, parent.SpanId) {
				return true
			}
		}
		return false
	}
	var found []*tracepb.Span
	for _, s := range spans {
		if s.Kind == tracepb.Span_SPAN_KIND_CLIENT && otlptest.Attr(s, "behalf.provider") == provider && descends(s) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d client spans to %s under %s, want 1; spans: %s", len(found), provider, parent.Name, spanNames(spans))
	}
	return found[0]
}

func spanNames(spans []*tracepb.Span) string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Kind.String()+" "+s.Name)
	}
	return strings.Join(names, ", ")
}

// wantAttrs checks span's attributes; "" wants the attribute absent.
func wantAttrs(t *testing.T, span *tracepb.Span, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := otlptest.Attr(span, k); got != v {
			t.Errorf("span %s: %s = %q, want %q", span.Name, k, got, v)
		}
	}
}

// wantCount checks that counter name has a positive data point with attrs.
func wantCount(t *testing.T, metrics []*metricspb.Metric, name string, attrs map[string]string) {
	t.Helper()
	for _, m := range metrics {
		if m.Name != name {
			continue
		}
		for _, dp := range m.GetSum().GetDataPoints() {
			have := map[string]string{}
			for _, kv := range dp.Attributes {
				have[kv.Key] = kv.Value.GetStringValue()
			}
			matches := dp.GetAsInt() > 0
			for k, v := range attrs {
				matches = matches && have[k] == v
			}
			if matches {
				return
			}
		}
	}
	t.Errorf("no %s counted with %v", name, attrs)
}

// TestRefreshSpansUnderTheServerSpan: a call whose token must be refreshed
// shows, in the caller's trace and under the call's server span, a lease
// span with its events and, when this server held the lease, a refresh
// span over the storage transaction releasing it, the vault opening the
// old tokens and the CLIENT span of the token request; each call counts
// one refresh result. Three calls: the lease is free (acquired); another
// replica holds it and the token is still usable (waited); another
// replica's lease runs out while this server waits (waited, taken over,
// acquired). The server's clock runs five times fast during waits.
func TestRefreshSpansUnderTheServerSpan(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		recv, export := exportMetrics(t)
		fw := newFedWorld(t, b, fedOptions{now: clock.Now, dex: dextest.Options{RotateRefreshTokens: true}, edit: func(f *config.File) {
			export(f)
			f.Telemetry.Traces.Enabled = true
		}})
		m := meter{fw.s, recv}
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		fw.connect(t, alice, asUserID("alice"))
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
		agent := tracedClient(fw.s, fw.runtime)
		refreshes := m.counts(t, "behalf.token.refreshes", string(telemetry.Result))
		// call asks for alice's token and returns the spans it exported.
		call := func() []*tracepb.Span {
			t.Helper()
			seen := len(recv.Spans())
			alice = mintForUser(t, fw.rt, workloadW1, "alice")
			stop := fastForward(clock, 5)
			out, err := agent.GetResourceOauth2Token(ctx(t), fedInput(alice))
			stop()
			if err != nil || out.AccessToken == nil {
				t.Fatalf("GetResourceOauth2Token: %+v, %v", out, err)
			}
			if err := fw.s.Server.Telemetry().ForceFlush(ctx(t)); err != nil {
				t.Fatal(err)
			}
			return recv.Spans()[seen:]
		}
		for _, tc := range []struct {
			name    string
			stage   func()
			events  []string
			refresh bool
			result  string
		}{
			{"lease free", func() { setExpiry(clock.Now().Add(-time.Second)) },
				[]string{"lease.acquired"}, true, telemetry.RefreshRefreshed},
			{"lease held elsewhere, token still usable", func() {
				setExpiry(clock.Now().Add(30 * time.Second)) // due: inside its last minute
				if _, err := st.AcquireRefreshLease(ctx(t), k, "other-replica", clock.Now().Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			}, []string{"lease.waited"}, false, telemetry.RefreshLeaseWaited},
			{"lease run out while waiting", func() {
				setExpiry(clock.Now().Add(-time.Second))
				lease, err := fw.connection(t, "id:alice")
				if err != nil {
					t.Fatal(err)
				}
				if err := st.RenewRefreshLease(ctx(t), k, "other-replica", lease.LeaseToken, clock.Now().Add(3*time.Second)); err != nil {
					t.Fatal(err)
				}
			}, []string{"lease.waited", "lease.taken_over", "lease.acquired"}, true, telemetry.RefreshRefreshed},
		} {
			tc.stage()
			spans := call()
			server := serverSpan(t, spans, "GetResourceOauth2Token", func(*tracepb.Span) bool { return true })
			lease := descendantNamed(t, spans, server, "federation.refresh_lease")
			if got := eventNames(lease); !slices.Equal(got, tc.events) {
				t.Errorf("%s: lease events %v, want %v", tc.name, got, tc.events)
			}
			if countDescendants(spans, lease, "storage.tx") == 0 { // an attempt per acquired or waited event
				t.Errorf("%s: no storage transaction under the lease", tc.name)
			}
			got := m.counts(t, "behalf.token.refreshes", string(telemetry.Result))
			wantCounts(t, tc.name+": refreshes", since(refreshes, got), map[string]int64{tc.result: 1})
			refreshes = got
			if !tc.refresh {
				if n := countNamed(spans, "federation.refresh"); n != 0 {
					t.Errorf("%s: %d refresh spans from a caller that did not hold the lease", tc.name, n)
				}
				continue
			}
			refresh := descendantNamed(t, spans, server, "federation.refresh")
			descendantNamed(t, spans, refresh, "vault.seal") // the new tokens
			wantAttrs(t, clientSpanUnder(t, spans, refresh, fedProvider), map[string]string{"behalf.endpoint": "token", "http.response.status_code": "200"})
			for _, name := range []string{"vault.open", "storage.tx"} { // the old tokens; the lease released
				if countDescendants(spans, refresh, name) == 0 {
					t.Errorf("%s: no %s under the refresh", tc.name, name)
				}
			}
		}
	})
}

// descendantNamed returns the one span named name descending from parent,
// in parent's trace.
func descendantNamed(t *testing.T, spans []*tracepb.Span, parent *tracepb.Span, name string) *tracepb.Span {
	t.Helper()
	var found []*tracepb.Span
	for _, s := range spans {
		if s.Name == name && descends(spans, s, parent) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans %s under %s, want 1; spans: %s", len(found), name, parent.Name, spanNames(spans))
	}
	if !bytes.Equal(found[0].TraceId, parent.TraceId) {
		t.Errorf("span %s in trace %x, not its parent's %x", name, found[0].TraceId, parent.TraceId)
	}
	return found[0]
}

func countDescendants(spans []*tracepb.Span, parent *tracepb.Span, name string) int {
	n := 0
	for _, s := range spans {
		if s.Name == name && descends(spans, s, parent) {
			n++
		}
	}
	return n
}

func countNamed(spans []*tracepb.Span, name string) int {
	n := 0
	for _, s := range spans {
		if s.Name == name {
			n++
		}
	}
	return n
}

// descends reports whether s is a descendant of parent.
func descends(spans []*tracepb.Span, s, parent *tracepb.Span) bool {
	byID := map[string]*tracepb.Span{}
	for _, sp := range spans {
		byID[string(sp.SpanId)] = sp
	}
	for p := byID[string(s.ParentSpanId)]; p != nil; p = byID[string(p.ParentSpanId)] {
		if bytes.Equal(p.SpanId, parent.SpanId) {
			return true
		}
	}
	return false
}

func eventNames(s *tracepb.Span) []string {
	var names []string
	for _, e := range s.Events {
		names = append(names, e.Name)
	}
	return names
}
