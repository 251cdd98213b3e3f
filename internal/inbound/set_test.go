package inbound_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/inbound/inboundtest"
)

var t0 = time.Unix(1_900_000_000, 0).UTC()

// clock is an injectable, advanceable time source.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) {
	c.ns.Add(int64(d))
}

// loopbackClient reaches the test identity providers, which listen on
// 127.0.0.1.
var loopbackClient = egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}})

func newSet(t *testing.T, cfgs []inbound.Config, opts inbound.Options) *inbound.Set {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = loopbackClient
	}
	s, err := inbound.NewSet(cfgs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func wantKind(t *testing.T, err error, kind inbound.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded; want %s", kind)
	}
	if got := inbound.KindOf(err); got != kind {
		t.Fatalf("kind = %q (%v); want %q", got, err, kind)
	}
	if !errors.Is(err, kind.Sentinel()) {
		t.Fatalf("errors.Is(%v, %v) = false", err, kind.Sentinel())
	}
}

func TestVerifyValid(t *testing.T) {
	for _, kt := range inboundtest.KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			idp := inboundtest.NewIDP(t, inboundtest.WithKeyType(kt))
			s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
			id, err := s.Verify(context.Background(), idp.Sign(idp.ValidClaims(t0)), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := &inbound.Identity{
				Authorizer: "corp", Issuer: idp.Issuer, Subject: inboundtest.Subject, ClientID: inboundtest.ClientID,
				Audience: []string{inboundtest.Audience}, Scopes: []string{"openid", inboundtest.Scope},
				Expiry: t0.Add(time.Hour), IssuedAt: t0,
			}
			if d := cmp.Diff(want, id); d != "" {
				t.Errorf("identity (-want +got):\n%s", d)
			}
		})
	}
}

// requiredCases are the attacks docs/security.md names; the corpus may grow
// but must not lose them.
var requiredCases = []string{
	"alg none", "HS256 keyed with the issuer's public key (PEM)", "HS256 keyed with the issuer's public key (DER)",
	"unknown kid", "issuer's kid, key not in the JWKS", "wrong iss", "wrong aud", "wrong client_id",
	"wrong azp and no client_id", "expired", "nbf in the future", "iat in the future", "missing sub", "missing exp",
	"missing iss", "tampered payload", "tampered signature", "oversized (valid signature)",
	"jwk header (attacker key embedded)", "jku header", "x5u header", "unknown crit", "JWE (5 segments)",
	"two signatures (JSON serialization)", "empty string", "garbage segments", "scope not allowed",
	"custom claim EQUALS mismatch", "custom claim CONTAINS mismatch", "custom claim CONTAINS_ANY mismatch",
}

func TestForgedCorpus(t *testing.T) {
	for _, kt := range inboundtest.KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			idp := inboundtest.NewIDP(t, inboundtest.WithKeyType(kt))
			s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
			valid := idp.ValidClaims(t0)
			cases := inboundtest.Forged(idp, valid)

			names := map[string]bool{}
			for _, c := range cases {
				if names[c.Name] {
					t.Errorf("duplicate case name %q", c.Name)
				}
				names[c.Name] = true
			}
			for _, n := range requiredCases {
				if !names[n] {
					t.Errorf("corpus lacks %q", n)
				}
			}

			if _, err := s.Verify(context.Background(), idp.Sign(valid), nil); err != nil {
				t.Fatalf("valid token: %v", err)
			}
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					id, err := s.Verify(context.Background(), c.Token, nil)
					if err == nil {
						t.Fatalf("accepted, identity %+v", id)
					}
					wantKind(t, err, c.Kind)
					msg := err.Error()
					for _, seg := range strings.Split(c.Token, ".") {
						if len(seg) >= 16 && strings.Contains(msg, seg) {
							t.Errorf("message %q contains part of the token", msg)
						}
					}
					if len(msg) > 400 {
						t.Errorf("message is %d bytes long", len(msg))
					}
				})
			}
			// A valid token still passes after the corpus (no poisoned cache).
			if _, err := s.Verify(context.Background(), idp.Sign(valid), nil); err != nil {
				t.Fatalf("valid token after corpus: %v", err)
			}
			if n := idp.JWKSFetches(); n > 2 {
				t.Errorf("corpus caused %d JWKS fetches; want at most 2", n)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	for _, kt := range inboundtest.KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			idp := inboundtest.NewIDP(t, inboundtest.WithKeyType(kt))
			s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
			ctx := context.Background()
			old := idp.Sign(idp.ValidClaims(t0))
			if _, err := s.Verify(ctx, old, nil); err != nil {
				t.Fatal(err)
			}
			idp.RotateKeys()
			if _, err := s.Verify(ctx, idp.Sign(idp.ValidClaims(t0)), nil); err != nil {
				t.Fatalf("token with rotated key: %v", err)
			}
			if _, err := s.Verify(ctx, old, nil); err != nil {
				t.Fatalf("token with previous, still published key: %v", err)
			}
			if got := idp.JWKSFetches(); got != 2 {
				t.Errorf("JWKS fetches = %d; want 2 (initial + one refetch on the new kid)", got)
			}
		})
	}
}

func TestRetiredKeyIsDropped(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	clk := newClock(t0)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{Now: clk.Now})
	ctx := context.Background()
	old := idp.Sign(idp.ValidClaims(t0))
	if _, err := s.Verify(ctx, old, nil); err != nil {
		t.Fatal(err)
	}
	idp.RotateKeys()
	idp.RetireOldKeys()
	if _, err := s.Verify(ctx, idp.Sign(idp.ValidClaims(t0)), nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.Verify(ctx, old, nil)
	wantKind(t, err, inbound.KindBadSignature)
}

func TestRandomKIDsRefetchAtMostOncePerInterval(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	clk := newClock(t0)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{Now: clk.Now})
	ctx := context.Background()
	valid := idp.ValidClaims(t0)
	if _, err := s.Verify(ctx, idp.Sign(valid), nil); err != nil {
		t.Fatal(err)
	}
	before := idp.JWKSFetches()

	forge := func(n int) {
		var wg sync.WaitGroup
		for i := range n {
			tok := idp.Sign(valid, inboundtest.WithKID(fmt.Sprintf("random-%d-%d", n, i)))
			wg.Go(func() {
				_, err := s.Verify(ctx, tok, nil)
				if k := inbound.KindOf(err); k != inbound.KindBadSignature {
					t.Errorf("random kid: kind %q (%v)", k, err)
				}
			})
		}
		wg.Wait()
	}
	forge(200)
	if extra := idp.JWKSFetches() - before; extra > 1 {
		t.Fatalf("200 random kids caused %d extra JWKS fetches; want at most 1", extra)
	}
	// Valid tokens keep working meanwhile, from the cache.
	if _, err := s.Verify(ctx, idp.Sign(valid), nil); err != nil {
		t.Fatal(err)
	}
	// One interval later, one more refetch is allowed, and only one.
	clk.Advance(inbound.DefaultMissRefetchInterval)
	before = idp.JWKSFetches()
	forge(200)
	if extra := idp.JWKSFetches() - before; extra != 1 {
		t.Fatalf("after one interval: %d extra JWKS fetches; want 1", extra)
	}
}

func TestIDPDownAfterFirstUse(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	clk := newClock(t0)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{Now: clk.Now})
	ctx := context.Background()
	if _, err := s.Verify(ctx, idp.Sign(idp.ValidClaims(t0)), nil); err != nil {
		t.Fatal(err)
	}
	idp.SetDown(true)
	for i := range 20 {
		claims := idp.ValidClaims(t0)
		claims["sub"] = fmt.Sprintf("user-%d", i)
		if _, err := s.Verify(ctx, idp.Sign(claims), nil); err != nil {
			t.Fatalf("cached keys stopped working: %v", err)
		}
	}
	// A kid that might be new cannot be decided while the IdP is down.
	_, err := s.Verify(ctx, idp.Sign(idp.ValidClaims(t0), inboundtest.WithKID("new-kid")), nil)
	wantKind(t, err, inbound.KindUnavailable)
	// Within the interval no further fetch is tried: the kid is just unknown.
	_, err = s.Verify(ctx, idp.Sign(idp.ValidClaims(t0), inboundtest.WithKID("new-kid")), nil)
	wantKind(t, err, inbound.KindBadSignature)
	// Back up, a rotated key verifies after the interval.
	idp.SetDown(false)
	idp.RotateKeys()
	clk.Advance(inbound.DefaultMissRefetchInterval)
	if _, err := s.Verify(ctx, idp.Sign(idp.ValidClaims(clk.Now())), nil); err != nil {
		t.Fatal(err)
	}
}

func TestIDPDownFromStart(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	idp.SetDown(true)
	clk := newClock(t0)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{Now: clk.Now})
	ctx := context.Background()
	tok := idp.Sign(idp.ValidClaims(t0))
	for range 5 {
		_, err := s.Verify(ctx, tok, nil)
		wantKind(t, err, inbound.KindUnavailable)
		if !strings.Contains(err.Error(), "identity provider unavailable") {
			t.Errorf("message %q does not say the identity provider is unavailable", err)
		}
	}
	if n := idp.DiscoveryFetches(); n != 1 {
		t.Errorf("discovery fetched %d times within one interval; want 1", n)
	}
	idp.SetDown(false)
	clk.Advance(inbound.DefaultMissRefetchInterval)
	if _, err := s.Verify(ctx, tok, nil); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestJWKSDownFromStart(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
	ctx := context.Background()
	// An iss that differs only by a trailing slash gets as far as discovery
	// and no further.
	claims := idp.ValidClaims(t0)
	claims["iss"] = idp.Issuer + "/"
	_, err := s.Verify(ctx, idp.Sign(claims), nil)
	wantKind(t, err, inbound.KindUntrustedIssuer)
	if d, j := idp.DiscoveryFetches(), idp.JWKSFetches(); d != 1 || j != 0 {
		t.Fatalf("fetches: discovery %d, JWKS %d; want 1, 0", d, j)
	}
	idp.SetDown(true)
	_, err = s.Verify(ctx, idp.Sign(idp.ValidClaims(t0)), nil)
	wantKind(t, err, inbound.KindUnavailable)
	if !strings.Contains(err.Error(), "signing keys") {
		t.Errorf("message %q does not mention the keys", err)
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	idp.SetDiscoveryIssuer("https://elsewhere.example.com")
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
	_, err := s.Verify(context.Background(), idp.Sign(idp.ValidClaims(t0)), nil)
	wantKind(t, err, inbound.KindUnavailable)
	var e *inbound.Error
	if !errors.As(err, &e) || e.Cause == nil || !strings.Contains(e.Cause.Error(), "does not match its URL") {
		t.Errorf("cause = %v; want the issuer mismatch", e.Cause)
	}
	if strings.Contains(err.Error(), "elsewhere") {
		t.Errorf("public message %q carries private detail", err)
	}
}

func TestDiscoveryIssuerTrailingSlash(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	idp.SetDiscoveryIssuer(idp.Issuer + "/") // as Auth0 does
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
	claims := idp.ValidClaims(t0)
	claims["iss"] = idp.Issuer + "/"
	id, err := s.Verify(context.Background(), idp.Sign(claims), nil)
	if err != nil {
		t.Fatal(err)
	}
	if id.Issuer != idp.Issuer+"/" {
		t.Errorf("issuer = %q", id.Issuer)
	}
	// Exact match: without the slash it is another issuer.
	_, err = s.Verify(context.Background(), idp.Sign(idp.ValidClaims(t0)), nil)
	wantKind(t, err, inbound.KindUntrustedIssuer)
}

func TestLeeway(t *testing.T) {
	idp := inboundtest.NewIDP(t, inboundtest.WithKeyType(inboundtest.Ed25519))
	sec := time.Second
	tests := []struct {
		name   string
		leeway time.Duration // 0: default 60 s
		claims func(map[string]any)
		want   inbound.Kind // "" = accepted
	}{
		{"exp one second before leeway ends", 0, func(m map[string]any) { m["exp"] = t0.Add(-60*sec + sec).Unix() }, ""},
		{"exp exactly at leeway end", 0, func(m map[string]any) { m["exp"] = t0.Add(-60 * sec).Unix() }, inbound.KindExpired},
		{"exp long past", 0, func(m map[string]any) { m["exp"] = t0.Add(-time.Hour).Unix() }, inbound.KindExpired},
		{"exp fractional just inside", 0, func(m map[string]any) { m["exp"] = float64(t0.Add(-60*sec).Unix()) + 0.5 }, ""},
		{"nbf exactly leeway ahead", 0, func(m map[string]any) { m["nbf"] = t0.Add(60 * sec).Unix() }, ""},
		{"nbf one second beyond leeway", 0, func(m map[string]any) { m["nbf"] = t0.Add(61 * sec).Unix() }, inbound.KindNotYetValid},
		{"iat exactly leeway ahead", 0, func(m map[string]any) { m["iat"] = t0.Add(60 * sec).Unix() }, ""},
		{"iat one second beyond leeway", 0, func(m map[string]any) { m["iat"] = t0.Add(61 * sec).Unix() }, inbound.KindNotYetValid},
		{"no nbf or iat", 0, func(m map[string]any) { delete(m, "nbf"); delete(m, "iat") }, ""},
		{"custom leeway: exp 9 s ago", 10 * sec, func(m map[string]any) { m["exp"] = t0.Add(-9 * sec).Unix() }, ""},
		{"custom leeway: exp 10 s ago", 10 * sec, func(m map[string]any) { m["exp"] = t0.Add(-10 * sec).Unix() }, inbound.KindExpired},
		{"custom leeway: nbf 11 s ahead", 10 * sec, func(m map[string]any) { m["nbf"] = t0.Add(11 * sec).Unix() }, inbound.KindNotYetValid},
		{"exp after year 9999", 0, func(m map[string]any) { m["exp"] = 1e15 }, inbound.KindInvalidToken},
		{"negative exp", 0, func(m map[string]any) { m["exp"] = -1 }, inbound.KindInvalidToken},
	}
	sets := map[time.Duration]*inbound.Set{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sets[tt.leeway]
			if s == nil {
				s = newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{Leeway: tt.leeway})
				sets[tt.leeway] = s
			}
			claims := idp.ValidClaims(t0.Add(-30 * time.Minute))
			claims["iat"], claims["nbf"], claims["exp"] = t0.Unix(), t0.Unix(), t0.Add(time.Hour).Unix()
			tt.claims(claims)
			_, err := s.Verify(context.Background(), idp.Sign(claims), nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantKind(t, err, tt.want)
		})
	}
}

func TestCustomClaimOperators(t *testing.T) {
	idp := inboundtest.NewIDP(t, inboundtest.WithKeyType(inboundtest.ECDSA))
	str := func(v string) inbound.CustomClaim {
		return inbound.CustomClaim{Name: "cognito:groups", ValueType: inbound.ValueString, Operator: inbound.OpEquals, Value: v}
	}
	contains := func(v string) inbound.CustomClaim {
		return inbound.CustomClaim{Name: "cognito:groups", ValueType: inbound.ValueStringArray, Operator: inbound.OpContains, Value: v}
	}
	anyOf := func(v ...string) inbound.CustomClaim {
		return inbound.CustomClaim{Name: "cognito:groups", ValueType: inbound.ValueStringArray, Operator: inbound.OpContainsAny, Values: v}
	}
	const absent = "<absent>"
	tests := []struct {
		name  string
		rule  inbound.CustomClaim
		claim any
		ok    bool
	}{
		{"EQUALS same", str("admins"), "admins", true},
		{"EQUALS differs", str("admins"), "users", false},
		{"EQUALS is case-sensitive", str("admins"), "Admins", false},
		{"EQUALS no prefix match", str("admins"), "admins2", false},
		{"EQUALS against an array", str("admins"), []string{"admins"}, false},
		{"EQUALS against a number", str("7"), 7, false},
		{"EQUALS against null", str("admins"), nil, false},
		{"EQUALS claim absent", str("admins"), absent, false},
		{"CONTAINS claim absent", contains("admins"), absent, false},
		{"CONTAINS present", contains("admins"), []string{"users", "admins"}, true},
		{"CONTAINS absent", contains("admins"), []string{"users"}, false},
		{"CONTAINS empty array", contains("admins"), []string{}, false},
		{"CONTAINS against a string", contains("admins"), "admins", false},
		{"CONTAINS against mixed array", contains("admins"), []any{"admins", 1}, false},
		{"CONTAINS_ANY one of two", anyOf("admins", "ops"), []string{"ops"}, true},
		{"CONTAINS_ANY several", anyOf("admins", "ops"), []string{"admins", "ops"}, true},
		{"CONTAINS_ANY none", anyOf("admins", "ops"), []string{"users", "guests"}, false},
		{"CONTAINS_ANY against a string", anyOf("admins"), "admins", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(t, []inbound.Config{{Name: "c", DiscoveryURL: idp.DiscoveryURL, CustomClaims: []inbound.CustomClaim{tt.rule}}}, inbound.Options{})
			claims := idp.ValidClaims(t0)
			if tt.claim != absent {
				claims["cognito:groups"] = tt.claim
			}
			_, err := s.Verify(context.Background(), idp.Sign(claims), nil)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantKind(t, err, inbound.KindClaimMismatch)
		})
	}
}

func TestClaimForms(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	cfg := func(mod func(*inbound.Config)) []inbound.Config {
		c := inbound.Config{Name: "c", DiscoveryURL: idp.DiscoveryURL}
		mod(&c)
		return []inbound.Config{c}
	}
	base := func(mod func(map[string]any)) map[string]any {
		m := map[string]any{"iss": idp.Issuer, "sub": "u", "exp": t0.Add(time.Hour).Unix()}
		mod(m)
		return m
	}
	tests := []struct {
		name   string
		cfg    []inbound.Config
		claims map[string]any
		want   inbound.Kind
		check  func(*testing.T, *inbound.Identity)
	}{
		{
			name: "Cognito access token: client_id, no aud",
			cfg:  cfg(func(c *inbound.Config) { c.AllowedClients = []string{"app"}; c.AllowedScopes = []string{"api/read"} }),
			claims: base(func(m map[string]any) {
				m["client_id"] = "app"
				m["scope"] = "api/read api/write"
				m["token_use"] = "access"
			}),
			check: func(t *testing.T, id *inbound.Identity) {
				if id.ClientID != "app" || len(id.Audience) != 0 || !cmp.Equal(id.Scopes, []string{"api/read", "api/write"}) {
					t.Errorf("identity %+v", id)
				}
			},
		},
		{
			name:   "azp used when there is no client_id",
			cfg:    cfg(func(c *inbound.Config) { c.AllowedClients = []string{"app"} }),
			claims: base(func(m map[string]any) { m["azp"] = "app" }),
			check: func(t *testing.T, id *inbound.Identity) {
				if id.ClientID != "app" {
					t.Errorf("ClientID = %q", id.ClientID)
				}
			},
		},
		{
			name:   "client_id wins over azp",
			cfg:    cfg(func(c *inbound.Config) { c.AllowedClients = []string{"app"} }),
			claims: base(func(m map[string]any) { m["azp"] = "app"; m["client_id"] = "other" }),
			want:   inbound.KindClaimMismatch,
		},
		{
			name:   "aud array, one allowed",
			cfg:    cfg(func(c *inbound.Config) { c.AllowedAudience = []string{"b"} }),
			claims: base(func(m map[string]any) { m["aud"] = []string{"a", "b"} }),
		},
		{
			name:   "aud empty array",
			cfg:    cfg(func(c *inbound.Config) { c.AllowedAudience = []string{"b"} }),
			claims: base(func(m map[string]any) { m["aud"] = []string{} }),
			want:   inbound.KindClaimMismatch,
		},
		{
			name:   "scp string (Entra)",
			cfg:    cfg(func(c *inbound.Config) { c.AllowedScopes = []string{"Files.Read"} }),
			claims: base(func(m map[string]any) { m["scp"] = "User.Read Files.Read" }),
		},
		{
			name:   "scp array (Okta)",
			cfg:    cfg(func(c *inbound.Config) { c.AllowedScopes = []string{"read"} }),
			claims: base(func(m map[string]any) { m["scp"] = []string{"openid", "read"} }),
		},
		{
			name:   "scope is not substring-matched",
			cfg:    cfg(func(c *inbound.Config) { c.AllowedScopes = []string{"read"} }),
			claims: base(func(m map[string]any) { m["scope"] = "readwrite reader" }),
			want:   inbound.KindInsufficientScope,
		},
		{
			name:   "scope as an array is malformed",
			cfg:    cfg(func(c *inbound.Config) { c.AllowedScopes = []string{"read"} }),
			claims: base(func(m map[string]any) { m["scope"] = []string{"read"} }),
			want:   inbound.KindInvalidToken,
		},
		{
			name: "all configured checks must pass",
			cfg: cfg(func(c *inbound.Config) {
				c.AllowedAudience = []string{"api"}
				c.AllowedClients = []string{"app"}
			}),
			claims: base(func(m map[string]any) { m["aud"] = "api"; m["client_id"] = "intruder" }),
			want:   inbound.KindClaimMismatch,
		},
		{
			name:   "unknown claims and header parameters are ignored",
			cfg:    cfg(func(c *inbound.Config) { c.AllowedAudience = []string{"api"} }),
			claims: base(func(m map[string]any) { m["aud"] = "api"; m["nested"] = map[string]any{"a": []any{1, "b", nil}} }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(t, tt.cfg, inbound.Options{})
			id, err := s.Verify(context.Background(), idp.Sign(tt.claims, inboundtest.WithHeader("x5t", "abc"), inboundtest.WithHeader("typ", "at+jwt")), nil)
			if tt.want != "" {
				wantKind(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, id)
			}
		})
	}
}

func TestAllowedAuthorizers(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	other := inboundtest.NewIDP(t)
	corp := inbound.Config{Name: "corp", DiscoveryURL: idp.DiscoveryURL, AllowedAudience: []string{"corp-api"}}
	partner := inbound.Config{Name: "partner", DiscoveryURL: idp.DiscoveryURL, AllowedAudience: []string{"partner-api"}}
	elsewhere := inbound.Config{Name: "elsewhere", DiscoveryURL: other.DiscoveryURL, AllowedAudience: []string{"partner-api"}}
	s := newSet(t, []inbound.Config{corp, partner, elsewhere}, inbound.Options{})
	ctx := context.Background()
	claims := idp.ValidClaims(t0)
	claims["aud"] = "partner-api"
	tok := idp.Sign(claims)

	id, err := s.Verify(ctx, tok, nil)
	if err != nil || id.Authorizer != "partner" {
		t.Fatalf("Verify = %+v, %v; want authorizer partner", id, err)
	}
	_, err = s.Verify(ctx, tok, []string{"corp"})
	wantKind(t, err, inbound.KindClaimMismatch)
	if !strings.Contains(err.Error(), "authorizer corp") {
		t.Errorf("message %q does not name the authorizer", err)
	}
	_, err = s.Verify(ctx, tok, []string{"elsewhere"})
	wantKind(t, err, inbound.KindUntrustedIssuer)
	_, err = s.Verify(ctx, tok, []string{})
	wantKind(t, err, inbound.KindUntrustedIssuer)
	_, err = s.Verify(ctx, tok, []string{"nope"})
	if err == nil || inbound.KindOf(err) != "" {
		t.Errorf("unknown authorizer name: err = %v; want a plain error", err)
	}
	// The unrelated IdP was never contacted.
	if n := other.DiscoveryFetches() + other.JWKSFetches(); n != 0 {
		t.Errorf("unrelated IdP got %d requests", n)
	}
}

func TestNoKID(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
	ctx := context.Background()
	if _, err := s.Verify(ctx, idp.Sign(idp.ValidClaims(t0), inboundtest.WithoutKID()), nil); err != nil {
		t.Fatalf("no kid, one key: %v", err)
	}
	idp.RotateKeys()
	// Fetch the second key.
	if _, err := s.Verify(ctx, idp.Sign(idp.ValidClaims(t0)), nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.Verify(ctx, idp.Sign(idp.ValidClaims(t0), inboundtest.WithoutKID()), nil)
	wantKind(t, err, inbound.KindInvalidToken)
}

func TestBackgroundRefresh(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	s, err := inbound.NewSet([]inbound.Config{idp.Config("corp")}, inbound.Options{
		Now: func() time.Time { return t0 }, RefreshInterval: 20 * time.Millisecond, HTTPClient: loopbackClient,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Verify(context.Background(), idp.Sign(idp.ValidClaims(t0)), nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for idp.JWKSFetches() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("background refresh: %d fetches after 5 s", idp.JWKSFetches())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()
	n := idp.JWKSFetches()
	time.Sleep(100 * time.Millisecond)
	if got := idp.JWKSFetches(); got != n {
		t.Errorf("fetches went on after Close: %d → %d", n, got)
	}
	// Closed: cached keys still verify.
	if _, err := s.Verify(context.Background(), idp.Sign(idp.ValidClaims(t0)), nil); err != nil {
		t.Errorf("after Close: %v", err)
	}
}

func TestCacheControlMaxAgeHonoured(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	idp.SetCacheControl("public, max-age=3600")
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{RefreshInterval: 10 * time.Millisecond})
	if _, err := s.Verify(context.Background(), idp.Sign(idp.ValidClaims(t0)), nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if n := idp.JWKSFetches(); n != 1 {
		t.Errorf("JWKS fetched %d times; max-age=3600 should hold off the 10 ms refresh", n)
	}
}

func TestVerifyAfterCloseCold(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
	s.Close()
	_, err := s.Verify(context.Background(), idp.Sign(idp.ValidClaims(t0)), nil)
	wantKind(t, err, inbound.KindUnavailable)
}

func TestCancelledContext(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Verify(ctx, idp.Sign(idp.ValidClaims(t0)), nil)
	wantKind(t, err, inbound.KindUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cause is not context.Canceled: %v", err)
	}
}

func TestConcurrentColdStart(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
	tok := idp.Sign(idp.ValidClaims(t0))
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := s.Verify(context.Background(), tok, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d, j := idp.DiscoveryFetches(), idp.JWKSFetches(); d != 1 || j != 1 {
		t.Errorf("50 concurrent first tokens: %d discovery and %d JWKS fetches; want 1 and 1", d, j)
	}
}

func TestMaxTokenBytes(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{MaxTokenBytes: 64 << 10})
	claims := idp.ValidClaims(t0)
	claims["pad"] = strings.Repeat("x", 20<<10)
	if _, err := s.Verify(context.Background(), idp.Sign(claims), nil); err != nil {
		t.Fatalf("20 KiB token under a 64 KiB limit: %v", err)
	}
}

func TestNewSetRejects(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	good := []inbound.Config{idp.Config("corp")}
	for name, tt := range map[string]struct {
		cfgs []inbound.Config
		opts inbound.Options
	}{
		"leeway over 60 s":   {good, inbound.Options{Leeway: 61 * time.Second}},
		"negative leeway":    {good, inbound.Options{Leeway: -time.Second}},
		"negative max bytes": {good, inbound.Options{MaxTokenBytes: -1}},
		"invalid config":     {[]inbound.Config{{Name: "x", DiscoveryURL: idp.DiscoveryURL}}, inbound.Options{}},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := inbound.NewSet(tt.cfgs, tt.opts); err == nil {
				s.Close()
				t.Fatal("NewSet succeeded")
			}
		})
	}
}

func TestIdentityIsACopy(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	cfg := idp.Config("corp")
	s := newSet(t, []inbound.Config{cfg}, inbound.Options{})
	cfg.AllowedAudience[0] = "changed-after-NewSet"
	if _, err := s.Verify(context.Background(), idp.Sign(idp.ValidClaims(t0)), nil); err != nil {
		t.Fatalf("Set shares the caller's slices: %v", err)
	}
}

func TestConcurrentRotation(t *testing.T) {
	idp := inboundtest.NewIDP(t, inboundtest.WithKeyType(inboundtest.ECDSA))
	s := newSet(t, []inbound.Config{idp.Config("corp")}, inbound.Options{})
	if _, err := s.Verify(context.Background(), idp.Sign(idp.ValidClaims(t0)), nil); err != nil {
		t.Fatal(err)
	}
	idp.RotateKeys()
	var wg sync.WaitGroup
	for i := range 50 {
		claims := idp.ValidClaims(t0)
		claims["sub"] = fmt.Sprintf("user-%d", i)
		tok := idp.Sign(claims)
		wg.Go(func() {
			if _, err := s.Verify(context.Background(), tok, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := idp.JWKSFetches(); n != 2 {
		t.Errorf("JWKS fetches = %d; want 2", n)
	}
}
