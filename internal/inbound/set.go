package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
	"golang.org/x/time/rate"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// Defaults and limits of Options.
const (
	DefaultLeeway              = 60 * time.Second
	MaxLeeway                  = 60 * time.Second
	DefaultMaxTokenBytes       = 16 << 10
	DefaultRefreshInterval     = 15 * time.Minute
	DefaultMissRefetchInterval = 10 * time.Second
)

// Options tune a Set. The zero value is ready to use.
type Options struct {
	// HTTPClient fetches discovery documents and JWKS; it should come from
	// egress.NewClient. nil means egress's client with its default policy
	// (no loopback or private addresses) and timeout. Redirects are not
	// followed. Each fetch is also bounded to 30 s.
	HTTPClient *http.Client
	// Now is the clock for exp, nbf and iat and for the refetch limiters;
	// nil means time.Now. Background refresh timers use real time.
	Now func() time.Time
	// Metrics counts the lookups in the cache of verified tokens; nil
	// counts nothing.
	Metrics *telemetry.Metrics
	// Leeway is the clock-skew allowance for exp, nbf and iat. 0 means
	// DefaultLeeway; more than MaxLeeway is an error.
	Leeway time.Duration
	// MaxTokenBytes bounds the token before any parsing; 0 means
	// DefaultMaxTokenBytes.
	MaxTokenBytes int
	// RefreshInterval is the background JWKS refresh period when the JWKS
	// response has no Cache-Control max-age (which is honoured, clamped to
	// [5m, 24h]); 0 means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// MissRefetchInterval: a token with an unknown kid triggers at most one
	// JWKS refetch per interval per JWKS, and a failed discovery is retried
	// at most once per interval; 0 means DefaultMissRefetchInterval.
	MissRefetchInterval time.Duration
}

// Identity is the verified user behind a token.
type Identity struct {
	Authorizer string    // name of the authorizer that accepted the token
	Issuer     string    // iss
	Subject    string    // sub
	ClientID   string    // client_id, else azp; may be empty
	Audience   []string  // aud; empty when absent
	Scopes     []string  // from scope and scp
	Expiry     time.Time // exp
	IssuedAt   time.Time // iat; zero when absent
	// User is the user's key when the verifier names the user itself:
	// behalf's own authorization server, whose subjects are the user keys
	// of the identity providers its users signed in at. Empty for every
	// other token, whose user is named by (Issuer, Subject).
	User string
}

// Set verifies tokens against a list of inbound JWT authorizers.
//
// Verify implements RFC 7519 §7.2 for JWS-signed JWTs with the RFC 8725
// checks noted where they are made. It does NOT accept encrypted (JWE) or
// nested tokens, does NOT check nonce, at_hash or jti (no replay detection:
// these are bearer tokens, checked like AgentCore does), and does NOT
// rediscover an issuer after its first successful discovery; build a new
// Set to pick up a changed discovery document.
//
// go-jose is used directly rather than through go-oidc's IDTokenVerifier:
// that verifier checks ID-token rules (aud equals one client ID) that
// access tokens do not follow and would have to be switched off, its
// discovery reads bodies without a bound and takes the HTTP client from a
// context value, and its key set refetches on every unknown kid.
type Set struct {
	authorizers []*authorizer
	byName      map[string]*authorizer

	client      *http.Client
	now         func() time.Time
	leeway      time.Duration
	maxBytes    int
	refresh     time.Duration
	missRefetch time.Duration
	metrics     *telemetry.Metrics

	base   context.Context // cancelled by Close; bounds every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	keySets map[string]*keySet   // by JWKS URL, shared between providers
	issuers map[string]*provider // of VerifySignature, by issuer

	verified verifiedCache
}

var errClosed = errors.New("inbound: Set is closed")

type authorizer struct {
	cfg      Config
	provider *provider
}

// NewSet validates cfgs and opts and returns a Set. It does no I/O: each
// issuer is discovered on first use. Call Close to stop background refresh.
func NewSet(cfgs []Config, opts Options) (*Set, error) {
	if probs := ValidateConfigs(cfgs); len(probs) > 0 {
		return nil, fmt.Errorf("inbound: invalid configuration: %s", strings.Join(probs, "; "))
	}
	s := &Set{
		byName:      map[string]*authorizer{},
		client:      opts.HTTPClient,
		now:         opts.Now,
		leeway:      opts.Leeway,
		maxBytes:    opts.MaxTokenBytes,
		refresh:     opts.RefreshInterval,
		missRefetch: opts.MissRefetchInterval,
		metrics:     opts.Metrics,
		keySets:     map[string]*keySet{},
		issuers:     map[string]*provider{},
	}
	switch {
	case s.leeway < 0 || s.leeway > MaxLeeway:
		return nil, fmt.Errorf("inbound: Leeway must be between 0 and %s", MaxLeeway)
	case s.maxBytes < 0 || s.refresh < 0 || s.missRefetch < 0:
		return nil, errors.New("inbound: MaxTokenBytes, RefreshInterval and MissRefetchInterval must not be negative")
	}
	if s.client == nil {
		s.client = egress.NewClient(egress.Options{})
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.leeway == 0 {
		s.leeway = DefaultLeeway
	}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxTokenBytes
	}
	if s.refresh == 0 {
		s.refresh = DefaultRefreshInterval
	}
	if s.missRefetch == 0 {
		s.missRefetch = DefaultMissRefetchInterval
	}
	providers := map[string]*provider{}
	for _, c := range cfgs {
		p := providers[c.DiscoveryURL]
		if p == nil {
			iss, _ := issuerFromDiscoveryURL(c.DiscoveryURL)
			p = &provider{set: s, name: c.Name, discoveryURL: c.DiscoveryURL, issuer: iss, limiter: s.newLimiter()}
			providers[c.DiscoveryURL] = p
		}
		c = cloneConfig(c)
		a := &authorizer{cfg: c, provider: p}
		s.authorizers = append(s.authorizers, a)
		s.byName[c.Name] = a
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func cloneConfig(c Config) Config {
	c.AllowedAudience = slices.Clone(c.AllowedAudience)
	c.AllowedClients = slices.Clone(c.AllowedClients)
	c.AllowedScopes = slices.Clone(c.AllowedScopes)
	c.CustomClaims = slices.Clone(c.CustomClaims)
	for i := range c.CustomClaims {
		c.CustomClaims[i].Values = slices.Clone(c.CustomClaims[i].Values)
	}
	return c
}

func (s *Set) newLimiter() *rate.Limiter {
	return rate.NewLimiter(rate.Every(s.missRefetch), 1)
}

// Close stops background refresh and waits for it. Verify keeps working
// with what is cached; fetches it would need fail with KindUnavailable.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// keySetFor returns the key set of a JWKS URL, creating it and its
// background refresh on first use; name labels its fetches.
func (s *Set) keySetFor(jwksURL, name string) (*keySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ks := s.keySets[jwksURL]; ks != nil {
		return ks, nil
	}
	if s.closed {
		return nil, errClosed
	}
	ks := &keySet{
		url: jwksURL, name: name, client: s.client, now: s.now, base: s.base,
		interval: s.refresh, limiter: s.newLimiter(),
	}
	s.keySets[jwksURL] = ks
	s.wg.Go(func() { ks.run(s.base) })
	return ks, nil
}

// Has reports whether an authorizer of that name is configured.
func (s *Set) Has(name string) bool { return s.byName[name] != nil }

// Verify validates token with the authorizers named in allowed (nil means
// all; an empty, non-nil list allows none). It picks the authorizers whose
// issuer equals the token's iss, verifies the signature with that issuer's
// JWKS, checks exp, nbf and iat, then each authorizer's audience, client,
// scope and custom-claim rules. The first authorizer whose rules all pass,
// in the order of allowed (configuration order when allowed is nil), is
// named in the Identity.
//
// A rejected token yields an *Error. A name in allowed that is not
// configured yields a plain error: that is the caller's bug, not the
// token's.
func (s *Set) Verify(ctx context.Context, token string, allowed []string) (*Identity, error) {
	cands, err := s.candidates(allowed)
	if err != nil {
		return nil, err
	}
	key := verifiedKey(token, allowed)
	id, e, ok := s.verified.get(key, s.now(), s.leeway)
	s.metrics.CacheLookup(ctx, telemetry.CacheUserJWT, ok)
	if ok {
		if e != nil {
			return nil, e
		}
		return id, nil
	}
	rt, e := preparse(token, s.maxBytes)
	if e == nil {
		e = checkBearerType(rt.header.Typ)
	}
	if e != nil {
		return nil, e
	}
	// The iss is unverified here; it only chooses which keys to try.
	var matched []*authorizer
	for _, a := range cands {
		if a.provider.issuer == strings.TrimSuffix(rt.claims.iss, "/") && !slices.Contains(matched, a) {
			matched = append(matched, a)
		}
	}
	if len(matched) == 0 {
		return nil, newError(KindUntrustedIssuer, "token issuer %s matches no allowed inbound authorizer", quote(rt.claims.iss))
	}
	var errs []*Error
	var done []*provider
	for _, a := range matched {
		p := a.provider
		if slices.Contains(done, p) {
			continue
		}
		done = append(done, p)
		id, ks, generation, e := s.verifyWith(ctx, token, rt, p, matched)
		if e == nil {
			s.verified.put(key, id, rt.claims, ks, generation)
			return id, nil
		}
		if e.Kind == KindExpired || e.Kind == KindNotYetValid {
			return nil, e // a fact about the token, whichever authorizer looks
		}
		errs = append(errs, e)
	}
	return nil, combine(errs)
}

// candidates returns the authorizers named in allowed, in its order, or
// every authorizer when allowed is nil.
func (s *Set) candidates(allowed []string) ([]*authorizer, error) {
	if allowed == nil {
		return s.authorizers, nil
	}
	cands := make([]*authorizer, 0, len(allowed))
	for _, name := range allowed {
		a := s.byName[name]
		if a == nil {
			return nil, fmt.Errorf("inbound: no inbound authorizer is named %q", name)
		}
		cands = append(cands, a)
	}
	return cands, nil
}

// verifyWith verifies rt with provider p and checks the rules of the
// authorizers in matched that use p. On success it also returns the key set
// and the generation of its keys that verified the signature.
func (s *Set) verifyWith(ctx context.Context, token string, rt *rawToken, p *provider, matched []*authorizer) (*Identity, *keySet, uint64, *Error) {
	ks, iss, e := p.resolve(ctx)
	if e != nil {
		return nil, nil, 0, e
	}
	if rt.claims.iss != iss { // RFC 7519 §4.1.1: exact string comparison
		return nil, nil, 0, newError(KindUntrustedIssuer, "token issuer %s is not exactly the issuer %s of the identity provider", quote(rt.claims.iss), quote(iss))
	}
	jws, err := jose.ParseSignedCompact(token, allowedAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, nil, 0, &Error{Kind: KindInvalidToken, Message: "token is not a valid JWS", Cause: err}
	}
	payload, generation, e := ks.verify(ctx, jws, rt.header)
	if e != nil {
		return nil, nil, 0, e
	}
	if !bytes.Equal(payload, rt.payload) {
		return nil, nil, 0, newError(KindInvalidToken, "token payload changed during verification")
	}
	c := rt.claims
	if e := checkTimes(c, s.now(), s.leeway); e != nil {
		return nil, nil, 0, e
	}
	var errs []*Error
	for _, a := range matched {
		if a.provider != p {
			continue
		}
		if e := a.check(c); e != nil {
			errs = append(errs, e)
			continue
		}
		clientID := c.clientID
		if clientID == "" {
			clientID = c.azp
		}
		return &Identity{
			Authorizer: a.cfg.Name, Issuer: c.iss, Subject: c.sub, ClientID: clientID,
			Audience: c.aud, Scopes: c.scopes, Expiry: c.exp, IssuedAt: c.iat,
		}, ks, generation, nil
	}
	return nil, nil, 0, combine(errs)
}

// checkTimes applies RFC 7519 §4.1.4 (exp: reject on or after, so at
// exactly exp+leeway), §4.1.5 (nbf) and §4.1.6 (iat, which RFC 7519 leaves
// unchecked; a token issued in the future means a skewed or forged issuer).
func checkTimes(c claims, now time.Time, leeway time.Duration) *Error {
	const layout = time.RFC3339
	if !now.Before(c.exp.Add(leeway)) {
		return newError(KindExpired, "token expired at %s", c.exp.Format(layout))
	}
	if !c.nbf.IsZero() && now.Add(leeway).Before(c.nbf) {
		return newError(KindNotYetValid, "token is not valid before %s", c.nbf.Format(layout))
	}
	if !c.iat.IsZero() && c.iat.After(now.Add(leeway)) {
		return newError(KindNotYetValid, "token was issued in the future (iat %s)", c.iat.Format(layout))
	}
	return nil
}

// check applies the authorizer's rules; AgentCore requires all configured
// ones to pass.
func (a *authorizer) check(c claims) *Error {
	name := a.cfg.Name
	if len(a.cfg.AllowedAudience) > 0 {
		if !c.hasAud {
			return newError(KindClaimMismatch, "token has no aud claim, and authorizer %s requires one of its allowed audiences", name)
		}
		if !anyIn(c.aud, a.cfg.AllowedAudience) {
			return newError(KindClaimMismatch, "token audience %s is not one of the allowed audiences of authorizer %s", quoteList(c.aud), name)
		}
	}
	if len(a.cfg.AllowedClients) > 0 {
		claim, id := "client_id", c.clientID
		if id == "" {
			claim, id = "azp", c.azp
		}
		if id == "" {
			return newError(KindClaimMismatch, "token has no client_id or azp claim, and authorizer %s requires one of its allowed clients", name)
		}
		if !slices.Contains(a.cfg.AllowedClients, id) {
			return newError(KindClaimMismatch, "token %s %s is not one of the allowed clients of authorizer %s", claim, quote(id), name)
		}
	}
	if len(a.cfg.AllowedScopes) > 0 && !anyIn(c.scopes, a.cfg.AllowedScopes) {
		if len(c.scopes) == 0 {
			return newError(KindInsufficientScope, "token has no scope, and authorizer %s requires one of its allowed scopes", name)
		}
		return newError(KindInsufficientScope, "token scopes %s include none of the allowed scopes of authorizer %s", quoteList(c.scopes), name)
	}
	for _, cc := range a.cfg.CustomClaims {
		if e := matchCustomClaim(c, cc, name); e != nil {
			return e
		}
	}
	return nil
}

func matchCustomClaim(c claims, cc CustomClaim, authz string) *Error {
	v, ok := c.raw[cc.Name]
	if !ok {
		return newError(KindClaimMismatch, "token has no %s claim, which authorizer %s requires", quote(cc.Name), authz)
	}
	if cc.ValueType == ValueString {
		var s string
		if isNull(v) || json.Unmarshal(v, &s) != nil {
			return newError(KindClaimMismatch, "token claim %s must be a string for authorizer %s", quote(cc.Name), authz)
		}
		if s != cc.Value { // OpEquals, the only operator for STRING
			return newError(KindClaimMismatch, "token claim %s is %s, not the value authorizer %s requires", quote(cc.Name), quote(s), authz)
		}
		return nil
	}
	list, ok := stringArray(v)
	if !ok {
		return newError(KindClaimMismatch, "token claim %s must be an array of strings for authorizer %s", quote(cc.Name), authz)
	}
	want := cc.Values
	if cc.Operator == OpContains {
		want = []string{cc.Value}
	}
	if !anyIn(list, want) {
		return newError(KindClaimMismatch, "token claim %s %s does not contain the value authorizer %s requires", quote(cc.Name), quoteList(list), authz)
	}
	return nil
}

func anyIn(have, allowed []string) bool {
	for _, h := range have {
		if slices.Contains(allowed, h) {
			return true
		}
	}
	return false
}

// combine folds the errors of several authorizers or issuers into one,
// keeping the first one's kind.
func combine(errs []*Error) *Error {
	switch len(errs) {
	case 0:
		return newError(KindUntrustedIssuer, "no inbound authorizer accepted the token")
	case 1:
		return errs[0]
	}
	msgs := make([]string, len(errs))
	causes := make([]error, 0, len(errs))
	for i, e := range errs {
		msgs[i] = e.Message
		if e.Cause != nil {
			causes = append(causes, e.Cause)
		}
	}
	return &Error{Kind: errs[0].Kind, Message: strings.Join(msgs, "; "), Cause: errors.Join(causes...)}
}
