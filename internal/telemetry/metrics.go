package telemetry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics is every instrument behalf records; docs/observability.md
// describes each. Attributes are bounded by design: operations, outcomes,
// error types and endpoint kinds are fixed sets, provider names are
// bounded by the providers an administrator creates (and by the SDK's
// cardinality limit), and no user, workload or token value is ever an
// attribute. A nil *Metrics records nothing.
type Metrics struct {
	requests        metric.Int64Counter
	requestDuration metric.Float64Histogram
	outbound        metric.Int64Counter
	outboundTime    metric.Float64Histogram
	refreshes       metric.Int64Counter
	sessions        metric.Int64Counter
	watMinted       metric.Int64Counter
	vaultOps        metric.Int64Counter
	rewrapped       metric.Int64Counter
	auditBatch      metric.Int64Histogram
	auditCommit     metric.Float64Histogram
	// cacheLookups counts lookups in plain atomics, read at collection:
	// four or five lookups on every vend would otherwise cost an SDK
	// measurement each.
	cacheLookups [len(caches)][2]atomic.Int64
	rateLimited  metric.Int64Counter
	dropped      metric.Int64Counter
	gatewayCalls metric.Int64Counter
	gatewayTime  metric.Float64Histogram
	keyCalls     metric.Int64Counter
	keyCallTime  metric.Float64Histogram

	meter metric.Meter

	requestSets sets[[3]string]
	gatewaySets sets[[4]string]
	vaultSets   sets[[2]string]
	keySets     sets[[3]string]
	oneSets     sets[[2]string] // single-attribute sets: key and value
}

// sets remembers the attribute set of each key, so that recording on the
// hot path builds none. Keys come from bounded sets; past maxSets a set is
// built each time rather than remembered.
type sets[K comparable] struct {
	mu sync.RWMutex
	m  map[K]metric.MeasurementOption
}

const maxSets = 4096

func (s *sets[K]) get(k K, build func() attribute.Set) metric.MeasurementOption {
	s.mu.RLock()
	o, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		return o
	}
	o = metric.WithAttributeSet(build())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[K]metric.MeasurementOption{}
	}
	if len(s.m) < maxSets {
		s.m[k] = o
	}
	return o
}

// one is the remembered set {key: value}.
func (m *Metrics) one(key attribute.Key, value string) metric.MeasurementOption {
	return m.oneSets.get([2]string{string(key), value}, func() attribute.Set { return attribute.NewSet(key.String(value)) })
}

// Buckets of the latency histograms, in seconds: 0.1 ms to 10 s.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewMetrics creates the instruments on mp.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	m := &Metrics{meter: mp.Meter(ScopeName)}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	seconds := func(name, desc string) metric.Float64Histogram {
		h, err := m.meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(latencyBuckets...))
		errs = append(errs, err)
		return h
	}
	m.requests = counter("behalf.requests", "{request}", "API calls, by operation and outcome.")
	m.requestDuration = seconds("behalf.request.duration", "Time to answer an API call, by operation and outcome.")
	m.outbound = counter("behalf.outbound.requests", "{request}", "Calls to credential and identity providers, by provider, endpoint and outcome.")
	m.outboundTime = seconds("behalf.outbound.duration", "Time of calls to providers, by provider and endpoint.")
	m.refreshes = counter("behalf.token.refreshes", "{refresh}", "USER_FEDERATION token refreshes, by result.")
	m.sessions = counter("behalf.consent.sessions", "{session}", "Consent session events: started, completed, failed, expired, wrong_user.")
	m.watMinted = counter("behalf.workload_access_tokens.minted", "{token}", "Workload access tokens minted, by kind.")
	m.vaultOps = counter("behalf.vault.operations", "{operation}", "Vault seal and open operations, by operation and outcome.")
	m.rewrapped = counter("behalf.vault.rewrap.records", "{record}", "Secrets re-wrapped under the current key, or skipped, since start.")
	var err error
	m.auditBatch, err = m.meter.Int64Histogram("behalf.audit.batch.size", metric.WithUnit("{record}"),
		metric.WithDescription("Audit records appended per transaction."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
	errs = append(errs, err)
	m.auditCommit = seconds("behalf.audit.commit.duration", "Time to append and commit one batch of audit records.")
	_, err = m.meter.Int64ObservableCounter("behalf.cache.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Cache lookups, by cache and result (hit or miss)."), metric.WithInt64Callback(m.observeCacheLookups))
	errs = append(errs, err)
	m.rateLimited = counter("behalf.ratelimit.rejections", "{request}", "Calls refused by a rate limit, by limit.")
	m.dropped = counter("behalf.telemetry.dropped", "{item}", "Telemetry items dropped because the collector was down, slow or the queue full, by signal.")
	m.gatewayCalls = counter("behalf.gateway.calls", "{call}", "Calls through behalf gateway, by route, kind and outcome.")
	m.gatewayTime = seconds("behalf.gateway.call.duration", "Time to answer a call through behalf gateway, upstream included, by route, kind and outcome.")
	m.keyCalls = counter("behalf.key_backend.calls", "{call}", "Calls to key-management backends (AWS KMS, PKCS#11, the local keyring), by backend, operation and outcome.")
	m.keyCallTime = seconds("behalf.key_backend.call.duration", "Time of calls to key-management backends, retries included, by backend, operation and outcome.")
	return m, errors.Join(errs...)
}

// Gauge registers an observable gauge read at each collection, such as the
// audit queue's depth.
func (m *Metrics) Gauge(name, unit, desc string, read func() int64) error {
	if m == nil {
		return nil
	}
	_, err := m.meter.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(read())
			return nil
		}))
	return err
}

// Request counts an API call and its latency. outcome is one of the
// Outcome constants; errType the API error type, "" on success.
func (m *Metrics) Request(ctx context.Context, operation, outcome, errType string, took time.Duration) {
	if m == nil {
		return
	}
	set := m.requestSets.get([3]string{operation, outcome, errType}, func() attribute.Set {
		return attribute.NewSet(Operation.String(operation), Outcome.String(outcome), ErrorType.String(errType))
	})
	m.requests.Add(ctx, 1, set)
	m.requestDuration.Record(ctx, took.Seconds(), set)
}

// Outbound counts a call to a provider's endpoint (discovery, jwks, token,
// revocation, token_exchange) and its latency. outcome is "success",
// "oauth_error" (with the OAuth error code), "http_error" or
// "network_error".
func (m *Metrics) Outbound(ctx context.Context, provider, endpoint, outcome, oauthError string, took time.Duration) {
	if m == nil {
		return
	}
	m.outbound.Add(ctx, 1, metric.WithAttributes(Provider.String(provider), Endpoint.String(endpoint), Outcome.String(outcome), OAuthError.String(oauthError)))
	m.outboundTime.Record(ctx, took.Seconds(), metric.WithAttributes(Provider.String(provider), Endpoint.String(endpoint)))
}

// Refresh results.
const (
	RefreshRefreshed    = "refreshed"
	RefreshShared       = "shared"
	RefreshLeaseWaited  = "lease_waited"
	RefreshInvalidGrant = "invalid_grant"
	RefreshFailed       = "failed"
)

// Refresh counts a token refresh outcome.
func (m *Metrics) Refresh(ctx context.Context, result string) {
	if m != nil {
		m.refreshes.Add(ctx, 1, m.one(Result, result))
	}
}

// Consent session events.
const (
	SessionStarted   = "started"
	SessionCompleted = "completed"
	SessionFailed    = "failed"
	SessionExpired   = "expired"
	SessionWrongUser = "wrong_user"
)

// Session counts a consent session event.
func (m *Metrics) Session(ctx context.Context, event string) {
	if m != nil {
		m.sessions.Add(ctx, 1, m.one(Event, event))
	}
}

// Kinds of workload access token, by the operation that minted it.
const (
	WATWorkload = "workload"
	WATJWT      = "jwt"
	WATUserID   = "user_id"
	// WATChain is a token minted for an agent called by another through
	// an identity chain (GetWorkloadAccessTokenForChain).
	WATChain = "chain"
)

// WATMinted counts a workload access token minted; kind is one of the WAT
// constants.
func (m *Metrics) WATMinted(ctx context.Context, kind string) {
	if m != nil {
		m.watMinted.Add(ctx, 1, m.one(Kind, kind))
	}
}

// Vault counts a seal or open and whether it worked.
func (m *Metrics) Vault(ctx context.Context, op string, err error) {
	if m != nil {
		outcome := outcomeOf(err)
		m.vaultOps.Add(ctx, 1, m.vaultSets.get([2]string{op, outcome}, func() attribute.Set {
			return attribute.NewSet(VaultOp.String(op), Outcome.String(outcome))
		}))
	}
}

// Vault operations and re-wrap results.
const (
	VaultSeal     = "seal"
	VaultOpen     = "open"
	RewrapDone    = "rewrapped"
	RewrapSkipped = "skipped"
)

// Outcomes of a call to a key-management backend, as KeyBackendCall
// counts them.
const (
	KeyOutcomeSuccess = OutcomeSuccess
	// KeyOutcomeUnavailable is a key that cannot be used now: disabled,
	// pending deletion, or its backend unreachable or refusing access.
	KeyOutcomeUnavailable = "key_unavailable"
	// KeyOutcomeGone is a key that no longer exists.
	KeyOutcomeGone = "key_gone"
	// KeyOutcomeFailure is any other failure, such as a ciphertext that
	// does not authenticate.
	KeyOutcomeFailure = "failure"
)

// KeyBackendCall counts a call to a key-management backend and its
// latency: backend is its name ("aws-kms", "pkcs11", "local"), operation
// the backend's operation (for AWS KMS the API operation, e.g.
// "Decrypt"), outcome a KeyOutcome constant. All three are bounded sets.
func (m *Metrics) KeyBackendCall(ctx context.Context, backend, operation, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	set := m.keySets.get([3]string{backend, operation, outcome}, func() attribute.Set {
		return attribute.NewSet(KeyBackend.String(backend), Operation.String(operation), Outcome.String(outcome))
	})
	m.keyCalls.Add(ctx, 1, set)
	m.keyCallTime.Record(ctx, took.Seconds(), set)
}

// Rewrapped counts re-wrap progress: n records with result RewrapDone or
// RewrapSkipped.
func (m *Metrics) Rewrapped(ctx context.Context, result string, n int64) {
	if m != nil && n > 0 {
		m.rewrapped.Add(ctx, n, metric.WithAttributes(Result.String(result)))
	}
}

// AuditBatch records one audit transaction's size and commit latency.
func (m *Metrics) AuditBatch(ctx context.Context, size int, took time.Duration, err error) {
	if m == nil {
		return
	}
	set := metric.WithAttributes(Outcome.String(outcomeOf(err)))
	m.auditBatch.Record(ctx, int64(size), set)
	m.auditCommit.Record(ctx, took.Seconds(), set)
}

// Caches whose lookups are counted.
const (
	CachePrincipal        = "principal"
	CacheUserJWT          = "user_jwt"
	CacheWorkloadToken    = "workload_access_token"
	CacheConnection       = "connection"
	CacheWorkloadIdentity = "workload_identity"
	CacheAPIKeyProvider   = "api_key_provider"
	CacheOAuth2Provider   = "oauth2_provider"
	CacheM2MToken         = "m2m_token"
	// CacheGatewayCredential is a gateway tool route's credential,
	// reused for one caller's workload access token.
	CacheGatewayCredential = "gateway_credential"
	// CacheExternalSecret is a provider's secret read from outside
	// behalf (secretsource), kept in memory only.
	CacheExternalSecret = "external_secret"
)

// caches lists the Cache constants; a lookup's counters are found by its
// index here.
var caches = [...]string{CachePrincipal, CacheUserJWT, CacheWorkloadToken, CacheConnection,
	CacheWorkloadIdentity, CacheAPIKeyProvider, CacheOAuth2Provider, CacheM2MToken, CacheGatewayCredential, CacheExternalSecret}

var cacheIndex = func() map[string]int {
	m := make(map[string]int, len(caches))
	for i, c := range caches {
		m[c] = i
	}
	return m
}()

// cacheResults are the results of a lookup, indexed by hit (1) or miss (0).
var cacheResults = [2]string{"miss", "hit"}

// observeCacheLookups reports every cache's counts that have moved.
func (m *Metrics) observeCacheLookups(_ context.Context, o metric.Int64Observer) error {
	for i, cache := range caches {
		for hit, result := range cacheResults {
			if n := m.cacheLookups[i][hit].Load(); n > 0 {
				o.Observe(n, metric.WithAttributes(Cache.String(cache), Result.String(result)))
			}
		}
	}
	return nil
}

// CacheLookup counts a lookup in cache (one of the Cache constants): a
// hit or a miss.
func (m *Metrics) CacheLookup(_ context.Context, cache string, hit bool) {
	i, ok := cacheIndex[cache]
	if m == nil || !ok {
		return
	}
	r := 0
	if hit {
		r = 1
	}
	m.cacheLookups[i][r].Add(1)
}

// Rate limits whose rejections are counted.
const (
	LimitPrincipal            = "requests_per_principal"
	LimitSessionsPerUser      = "sessions_per_user"
	LimitSessionsPerPrincipal = "sessions_per_principal"
)

// RateLimited counts a call refused by limit, one of the Limit constants.
func (m *Metrics) RateLimited(ctx context.Context, limit string) {
	if m != nil {
		m.rateLimited.Add(ctx, 1, m.one(Limit, limit))
	}
}

// Dropped counts n telemetry items of signal (traces, metrics, logs)
// that were not delivered.
func (m *Metrics) Dropped(ctx context.Context, signal string, n int64) {
	if m != nil && n > 0 {
		m.dropped.Add(ctx, n, metric.WithAttributes(Signal.String(signal)))
	}
}

func outcomeOf(err error) string {
	if err != nil {
		return "failure"
	}
	return OutcomeSuccess
}

// GatewayCall counts a call through the gateway on a route (an agent or a
// tool route) and its latency. outcome is one of the Outcome constants;
// errType the gateway's error type, or upstream_<status> for an
// upstream's error passed through, "" on success. Routes are bounded by
// the gateway's configuration.
func (m *Metrics) GatewayCall(ctx context.Context, route, kind, outcome, errType string, took time.Duration) {
	if m == nil {
		return
	}
	set := m.gatewaySets.get([4]string{route, kind, outcome, errType}, func() attribute.Set {
		return attribute.NewSet(Route.String(route), Kind.String(kind), Outcome.String(outcome), ErrorType.String(errType))
	})
	m.gatewayCalls.Add(ctx, 1, set)
	m.gatewayTime.Record(ctx, took.Seconds(), set)
}
