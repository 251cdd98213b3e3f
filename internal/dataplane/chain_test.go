package dataplane_test

// Identity chains: GetWorkloadAccessTokenForChain mints the callee's
// token for the user of the calling agent's token, naming the chain, which
// the callee's own data-plane calls carry into their audit records and
// spans; every refusal is recorded and mints nothing.

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/wat"
)

const workloadW3 = "agent-w3"

// chainWorld is the standard world with W2 and W3 (allowed the API-key
// provider), a gateway principal granted W1, W2 and W3, and W2's own
// principal, as its agent signs.
type chainWorld struct {
	*world
	gateway, w2 principal
}

func newChainWorld(t *testing.T, b behalftest.Backend, o worldOptions) *chainWorld {
	t.Helper()
	w := newWorld(t, b, o)
	createWorkload(t, w.s, workloadW2, map[string]any{"allowedCredentialProviders": grants(apiKeyProvider)})
	createWorkload(t, w.s, workloadW3, map[string]any{"allowedCredentialProviders": grants(apiKeyProvider)})
	return &chainWorld{world: w, gateway: createPrincipal(t, w.s, workloadW1, workloadW2, workloadW3), w2: createPrincipal(t, w.s, workloadW2)}
}

// chain calls GetWorkloadAccessTokenForChain as p and decodes a success.
func chain(t *testing.T, s *behalftest.Server, p principal, callee, callerToken string, allowed ...string) (behalftest.Response, behalfapi.GetWorkloadAccessTokenForChainOutput) {
	t.Helper()
	raw, err := json.Marshal(behalfapi.GetWorkloadAccessTokenForChainInput{WorkloadName: callee, CallerToken: callerToken, AllowedCallers: allowed})
	if err != nil {
		t.Fatal(err)
	}
	res := s.Do(t, behalftest.Raw{Path: "/behalf/GetWorkloadAccessTokenForChain", Body: raw, KeyID: p.ID, Secret: p.Secret})
	var out behalfapi.GetWorkloadAccessTokenForChainOutput
	if res.Status == http.StatusOK {
		if err := json.Unmarshal(res.Body, &out); err != nil {
			t.Fatal(err)
		}
	}
	return res, out
}

func mustChain(t *testing.T, s *behalftest.Server, p principal, callee, callerToken string, allowed ...string) behalfapi.GetWorkloadAccessTokenForChainOutput {
	t.Helper()
	res, out := chain(t, s, p, callee, callerToken, allowed...)
	if res.Status != http.StatusOK || out.WorkloadAccessToken == "" {
		t.Fatalf("GetWorkloadAccessTokenForChain %s: %d %s", callee, res.Status, res.Body)
	}
	return out
}

// TestIdentityChain: user → W1 → W2 → W3. W2's token is for W1's user,
// with W1's user JWT, names [W1], and expires with W1's token; W2's
// agent vends with it and its record and span name the chain; W3's
// token names [W1, W2]. Each minting is recorded and counted.
func TestIdentityChain(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		recv := otlptest.New(t)
		w := newChainWorld(t, b, worldOptions{now: clock.Now, edit: func(f *config.File) {
			f.Telemetry.OTLP.Endpoint = recv.URL
			f.Telemetry.Traces.Enabled = true
			f.Telemetry.Metrics.OTLP = true
		}})
		m := meter{w.s, recv}
		minted := m.counts(t, "behalf.workload_access_tokens.minted", string(telemetry.Kind))
		jwt := w.dex.PasswordLogin(t, userClientID, userClientSecret).IDToken
		user := wat.UserFromJWT(w.dex.Issuer, dextest.PasswordSubject)
		callerToken := mintForJWT(t, w.rt, jwt)
		caller := openWAT(t, w.s, callerToken)

		clock.Advance(10 * time.Minute) // the callee's token may not outlive the caller's
		out := mustChain(t, w.s, w.gateway, workloadW2, callerToken, "agent-other", workloadW1)
		if !slices.Equal(out.Actors, []string{workloadW1}) || out.User != user {
			t.Errorf("output: actors %v, user %q", out.Actors, out.User)
		}
		callee := openWAT(t, w.s, out.WorkloadAccessToken)
		if callee.Workload != workloadW2 || callee.User != user || callee.UserToken != jwt || !slices.Equal(callee.Actors, []string{workloadW1}) ||
			callee.Principal != w.gateway.ID || callee.Expiry != caller.Expiry {
			t.Errorf("callee's token binds %+v; the caller's expires at %d", callee, caller.Expiry)
		}
		chainRec := auditByRequest(t, w.s, lastRequestID(t, w.s, "GetWorkloadAccessTokenForChain"))
		if chainRec.Principal != w.gateway.ID || chainRec.Workload != workloadW2 || chainRec.User != user ||
			!slices.Equal(chainRec.Actors, []string{workloadW1}) || chainRec.Outcome != "success" {
			t.Errorf("the chain's record: %+v", chainRec)
		}

		// W2's agent vends with the chained token: its record and span
		// name the chain and the user.
		agent := tracedClient(w.s, w.w2)
		key, err := getAPIKey(ctx(t), agent, out.WorkloadAccessToken, apiKeyProvider)
		if err != nil || aws.ToString(key.ApiKey) != apiKeyValue {
			t.Fatalf("W2 vending with its chained token: %v", err)
		}
		rec := auditByRequest(t, w.s, requestIDOf(key.ResultMetadata, nil))
		if rec.Principal != w.w2.ID || rec.Workload != workloadW2 || rec.User != user || !slices.Equal(rec.Actors, []string{workloadW1}) {
			t.Errorf("W2's vend record: %+v", rec)
		}

		// W2 calls W3: the chain grows.
		out3 := mustChain(t, w.s, w.gateway, workloadW3, out.WorkloadAccessToken, workloadW2)
		if c := openWAT(t, w.s, out3.WorkloadAccessToken); !slices.Equal(c.Actors, []string{workloadW1, workloadW2}) || c.User != user ||
			!slices.Equal(out3.Actors, c.Actors) {
			t.Errorf("W3's token binds %+v, output %v", c, out3.Actors)
		}

		wantCounts(t, "tokens minted", since(minted, m.counts(t, "behalf.workload_access_tokens.minted", string(telemetry.Kind))),
			map[string]int64{telemetry.WATJWT: 1, telemetry.WATChain: 2})
		if err := w.s.Server.Telemetry().ForceFlush(ctx(t)); err != nil {
			t.Fatal(err)
		}
		span := serverSpan(t, recv.Spans(), "GetResourceApiKey", func(*tracepb.Span) bool { return true })
		wantAttrs(t, span, map[string]string{"behalf.workload": workloadW2, "behalf.actors": workloadW1})
		for _, body := range recv.Bodies() {
			for _, secret := range []string{jwt, callerToken, out.WorkloadAccessToken, apiKeyValue} {
				if strings.Contains(string(body), secret) {
					t.Fatalf("an OTLP export holds a token: %.12s…", secret)
				}
			}
		}
		_, bodies := listAudit(t, w.s, nil)
		for _, body := range bodies {
			for _, secret := range []string{jwt, callerToken, out.WorkloadAccessToken, out3.WorkloadAccessToken} {
				if strings.Contains(string(body), secret) {
					t.Fatalf("the audit log holds a token: %.12s…", secret)
				}
			}
		}
	})
}

// lastRequestID is the request id of the newest record of operation.
func lastRequestID(t *testing.T, s *behalftest.Server, operation string) string {
	t.Helper()
	recs, _ := listAudit(t, s, map[string]any{"operation": operation, "newestFirst": true, "maxResults": 1})
	if len(recs) == 0 {
		t.Fatalf("no record of %s", operation)
	}
	return recs[0].RequestID
}

// TestIdentityChainRefusals: each refusal answers with its typed error,
// mints nothing, and is recorded with the callee and, once the caller's
// token opened, the user and the chain asked for.
func TestIdentityChainRefusals(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newChainWorld(t, b, worldOptions{})
		callerToken := mintForUser(t, w.rt, workloadW1, "alice")
		onlyW2 := createPrincipal(t, w.s, workloadW2)
		tampered := []byte(callerToken)
		tampered[len(tampered)/2] ^= 1
		expired := expiredWAT(t, w)
		for _, c := range []struct {
			name      string
			as        principal
			callee    string
			token     string
			allowed   []string
			status    int
			errType   string
			withChain bool // the record names the user and the chain
		}{
			{"caller not among the route's callers", w.gateway, workloadW2, callerToken, []string{workloadW3}, 403, "AccessDeniedException", true},
			{"principal not granted the callee", w.runtime, workloadW2, callerToken, []string{workloadW1}, 403, "AccessDeniedException", false},
			{"principal not granted the caller's workload", onlyW2, workloadW2, callerToken, []string{workloadW1}, 403, "AccessDeniedException", true},
			{"forged caller token", w.gateway, workloadW2, "not-a-workload-access-token", []string{workloadW1}, 401, "UnauthorizedException", false},
			{"tampered caller token", w.gateway, workloadW2, string(tampered), []string{workloadW1}, 401, "UnauthorizedException", false},
			{"expired caller token", w.gateway, workloadW2, expired, []string{workloadW1}, 401, "UnauthorizedException", false},
			{"no allowed callers", w.gateway, workloadW2, callerToken, []string{}, 400, "ValidationException", false},
			{"a caller that is no workload name", w.gateway, workloadW2, callerToken, []string{"agent w1"}, 400, "ValidationException", false},
			{"too many allowed callers", w.gateway, workloadW2, callerToken, manyNames(65), 400, "ValidationException", false},
			{"no such callee", w.gateway, "agent-nowhere", callerToken, []string{workloadW1}, 403, "AccessDeniedException", false},
		} {
			t.Run(c.name, func(t *testing.T) {
				res, out := chain(t, w.s, c.as, c.callee, c.token, c.allowed...)
				if res.Status != c.status || res.ErrType != c.errType || out.WorkloadAccessToken != "" || strings.Contains(string(res.Body), "workloadAccessToken") {
					t.Fatalf("%d %s %s, want %d %s", res.Status, res.ErrType, res.Body, c.status, c.errType)
				}
				rec := auditByRequest(t, w.s, res.Header.Get("X-Amzn-RequestId"))
				if rec.Operation != "GetWorkloadAccessTokenForChain" || rec.Outcome != "failure" || rec.ErrorType != c.errType || rec.Principal != c.as.ID {
					t.Errorf("record %+v", rec)
				}
				if c.status == 403 && rec.Workload != c.callee {
					t.Errorf("the refusal's record names workload %q, want the callee %s", rec.Workload, c.callee)
				}
				if got := rec.User == "id:alice" && slices.Equal(rec.Actors, []string{workloadW1}); got != c.withChain {
					t.Errorf("the record names user %q and chain %v; want them named: %v", rec.User, rec.Actors, c.withChain)
				}
			})
		}
	})
}

// expiredWAT is a token for W1, minted by the server's own keys on a clock
// two hours behind, so that it expired long ago.
func expiredWAT(t *testing.T, w *chainWorld) string {
	t.Helper()
	back := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	token, _, err := watIssuer(t, w.s, back).Mint(wat.Claims{Workload: workloadW1, User: wat.UserFromID("alice"), Principal: w.runtime.ID}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func manyNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "agent-" + strconv.Itoa(i)
	}
	return names
}

// TestIdentityChainDepth: a token names at most wat.MaxActors workloads
// before its own; the next hop is refused, recorded, and mints nothing.
func TestIdentityChainDepth(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		names := manyNames(wat.MaxActors + 2)
		for _, n := range names {
			createWorkload(t, w.s, n, nil)
		}
		gw := createPrincipal(t, w.s, "*")
		token := mintForUser(t, gw.data(w.s), names[0], "alice")
		for hop := 1; hop <= wat.MaxActors; hop++ {
			out := mustChain(t, w.s, gw, names[hop], token, names[hop-1])
			if !slices.Equal(out.Actors, names[:hop]) {
				t.Fatalf("hop %d names %v", hop, out.Actors)
			}
			token = out.WorkloadAccessToken
		}
		res, _ := chain(t, w.s, gw, names[wat.MaxActors+1], token, names[wat.MaxActors])
		if res.Status != http.StatusForbidden || res.ErrType != "AccessDeniedException" || !strings.Contains(string(res.Body), "at most "+strconv.Itoa(wat.MaxActors)) {
			t.Fatalf("hop %d: %d %s", wat.MaxActors+1, res.Status, res.Body)
		}
		rec := auditByRequest(t, w.s, res.Header.Get("X-Amzn-RequestId"))
		if rec.Outcome != "failure" || len(rec.Actors) != wat.MaxActors+1 || rec.Workload != names[wat.MaxActors+1] {
			t.Errorf("the refused hop's record: %+v", rec)
		}
		if c := openWAT(t, w.s, token); !slices.Equal(c.Actors, names[:wat.MaxActors]) || c.User != "id:alice" {
			t.Errorf("the longest chain's token binds %+v", c)
		}
	})
}
