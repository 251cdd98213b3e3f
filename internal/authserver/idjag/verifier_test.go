package idjag_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/authserver/idjag"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

const (
	asIssuer    = "https://as.example"
	mcpResource = "https://mcp.example/mcp"
	testIssuer  = "https://idp.test"
)

// agent is the client redeeming ID-JAGs, as the token endpoint
// authenticated it.
var agent = clients.Client{ID: "mcp-agent", Kind: clients.Preregistered, GrantTypes: []string{idjag.GrantType}, TokenEndpointAuthMethod: "private_key_jwt"}

// offered are the resources this server offers and their scopes.
var offered = map[string][]string{mcpResource: {"tools.read", "tools.call"}, "https://other.example/mcp": {"x"}}

func loopbackHTTP() *http.Client {
	return egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}})
}

// openStore opens a store of backend b.
func openStore(t *testing.T, b behalftest.Backend) storage.Storage {
	st, err := sqlstore.Open(t.Context(), b.DSN(t, t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newVerifier(t *testing.T, st storage.Storage, clock *testclock.Clock, trusted ...idjag.TrustedIssuer) *idjag.Verifier {
	t.Helper()
	v, err := idjag.New(idjag.Options{Issuer: asIssuer, Trusted: trusted, HTTP: loopbackHTTP(), Store: st, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// devIDJAG signs alice in at the dev IdP as its client agent and trades
// her ID token for an ID-JAG for asIssuer, with extra parameters.
func devIDJAG(t *testing.T, idp *devidp.Server, extra url.Values) string {
	t.Helper()
	return behalftest.DevIDJAG(t, idp, "agent", "agent-secret", "alice", asIssuer, extra)
}

func startDevIDP(t *testing.T, clock *testclock.Clock) *devidp.Server {
	return behalftest.DevIDP(t, devidp.Options{Now: clock.Now, Clients: []devidp.Client{{
		ID: "agent", Secret: "agent-secret",
		IDJAG: []devidp.IDJAGGrant{{Audience: asIssuer, ClientID: agent.ID, Scopes: []string{"tools.read", "tools.call", "admin"}}},
	}}})
}

func TestRedeemDevIDPIDJAG(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.New(time.Now().Truncate(time.Second))
		idp := startDevIDP(t, clock)
		// The keys are found through the IdP's discovery document.
		v := newVerifier(t, openStore(t, b), clock, idjag.TrustedIssuer{Issuer: idp.Issuer()})
		jag := devIDJAG(t, idp, url.Values{"resource": {mcpResource}, "scope": {"tools.read tools.call admin"}})
		g, oe := v.Redeem(t.Context(), jag, agent, nil, offered)
		if oe != nil {
			t.Fatal(oe)
		}
		want := idjag.Grant{Issuer: idp.Issuer(), Subject: "alice", ClientID: agent.ID, Resource: mcpResource,
			Scopes: []string{"tools.read", "tools.call"}, Expiry: clock.Now().Add(5 * time.Minute)}
		if g.Issuer != want.Issuer || g.Subject != want.Subject || g.ClientID != want.ClientID || g.Resource != want.Resource ||
			!slices.Equal(g.Scopes, want.Scopes) || !g.Expiry.Equal(want.Expiry) {
			t.Fatalf("grant %+v, want %+v", g, want)
		}
		// Its jti is used.
		_, oe = v.Redeem(t.Context(), jag, agent, nil, offered)
		wantCode(t, "replay", oe, "invalid_grant")
		// The request narrows the scopes.
		jag = devIDJAG(t, idp, url.Values{"resource": {mcpResource}, "scope": {"tools.read tools.call"}})
		if g, oe := v.Redeem(t.Context(), jag, agent, []string{"tools.call", "admin"}, offered); oe != nil || !slices.Equal(g.Scopes, []string{"tools.call"}) {
			t.Fatalf("narrowed: %+v %v", g, oe)
		}
		// Refusals of real ID-JAGs.
		for name, c := range map[string]struct {
			extra     url.Values
			client    clients.Client
			requested []string
			want      string
		}{
			"resource not offered": {url.Values{"resource": {"https://elsewhere.example/mcp"}}, agent, nil, "invalid_target"},
			"two resources":        {url.Values{"resource": {mcpResource, "https://other.example/mcp"}}, agent, nil, "invalid_target"},
			"no resource":          {nil, agent, nil, "invalid_target"},
			"no common scope":      {url.Values{"resource": {mcpResource}, "scope": {"admin"}}, agent, nil, "invalid_scope"},
			"requested outside":    {url.Values{"resource": {mcpResource}, "scope": {"tools.read"}}, agent, []string{"tools.call"}, "invalid_scope"},
			"another client":       {url.Values{"resource": {mcpResource}}, clients.Client{ID: "other", GrantTypes: []string{idjag.GrantType}, TokenEndpointAuthMethod: "client_secret_basic"}, nil, "invalid_grant"},
			"public client":        {url.Values{"resource": {mcpResource}}, clients.Client{ID: agent.ID, GrantTypes: []string{idjag.GrantType}, TokenEndpointAuthMethod: "none"}, nil, "unauthorized_client"},
			"grant not allowed":    {url.Values{"resource": {mcpResource}}, clients.Client{ID: agent.ID, GrantTypes: []string{"authorization_code"}, TokenEndpointAuthMethod: "private_key_jwt"}, nil, "unauthorized_client"},
		} {
			_, oe := v.Redeem(t.Context(), devIDJAG(t, idp, c.extra), c.client, c.requested, offered)
			wantCode(t, name, oe, c.want)
		}
		// Expired: the dev IdP's ID-JAGs live 5 minutes.
		jag = devIDJAG(t, idp, url.Values{"resource": {mcpResource}})
		clock.Advance(6 * time.Minute)
		_, oe = v.Redeem(t.Context(), jag, agent, nil, offered)
		wantCode(t, "expired", oe, "invalid_grant")
	})
}

func TestRedeemRefusals(t *testing.T) {
	clock := testclock.New(time.Now().Truncate(time.Second))
	key := newKey(t)
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	}))
	t.Cleanup(keys.Close)
	st, err := sqlstore.Open(t.Context(), t.TempDir()+"/behalf.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	v := newVerifier(t, st, clock, idjag.TrustedIssuer{Issuer: testIssuer, JWKSURI: keys.URL})
	now := clock.Now()
	valid := func() map[string]any {
		return map[string]any{"iss": testIssuer, "sub": "alice", "aud": asIssuer, "client_id": agent.ID, "jti": randomID(),
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "resource": mcpResource, "scope": "tools.read tools.call"}
	}
	sign := func(k *ecdsa.PrivateKey, kid, typ string, claims map[string]any) string {
		opts := (&jose.SignerOptions{}).WithHeader("kid", kid)
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := func(claims map[string]any) string { return sign(key, "k1", idjag.Type, claims) }
	signRaw := func(payload string) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType(idjag.Type).WithHeader("kid", "k1"))
		obj, err := s.Sign([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := obj.CompactSerialize()
		return tok
	}
	g, oe := v.Redeem(t.Context(), good(valid()), agent, []string{"tools.read"}, offered)
	if oe != nil || g.Issuer != testIssuer || !slices.Equal(g.Scopes, []string{"tools.read"}) {
		t.Fatalf("test key: %+v %v", g, oe)
	}
	none := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"oauth-id-jag+jwt"}`))
		p, _ := json.Marshal(valid())
		return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
	}
	hs256 := func() string {
		pub, _ := json.Marshal(jose.JSONWebKey{Key: key.Public(), KeyID: "k1"})
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pub}, (&jose.SignerOptions{}).WithType(idjag.Type).WithHeader("kid", "k1"))
		tok, _ := jwt.Signed(s).Claims(valid()).Serialize()
		return tok
	}
	untrusted := valid()
	untrusted["iss"] = "https://evil.example"
	replayed := good(valid())
	if _, oe := v.Redeem(t.Context(), replayed, agent, nil, offered); oe != nil {
		t.Fatal(oe)
	}
	for name, c := range map[string]struct{ assertion, want string }{
		"replayed jti":         {replayed, "invalid_grant"},
		"wrong aud":            {good(with(valid(), "aud", "https://other-as.example")), "invalid_grant"},
		"aud with two":         {good(with(valid(), "aud", []string{asIssuer, "https://other-as.example"})), "invalid_grant"},
		"aud as one-array":     {good(with(valid(), "aud", []string{asIssuer})), ""},
		"wrong client_id":      {good(with(valid(), "client_id", "someone-else")), "invalid_grant"},
		"no client_id":         {good(without(valid(), "client_id")), "invalid_grant"},
		"expired":              {good(with(with(valid(), "exp", now.Add(-time.Minute).Unix()), "iat", now.Add(-6*time.Minute).Unix())), "invalid_grant"},
		"issued in the future": {good(with(valid(), "iat", now.Add(time.Hour).Unix())), "invalid_grant"},
		"lives too long":       {good(with(valid(), "exp", now.Add(time.Hour).Unix())), "invalid_grant"},
		"no iat":               {good(without(valid(), "iat")), "invalid_grant"},
		"no sub":               {good(without(valid(), "sub")), "invalid_grant"},
		"no jti":               {good(without(valid(), "jti")), "invalid_grant"},
		"untrusted issuer":     {good(untrusted), "invalid_grant"},
		"typ JWT":              {sign(key, "k1", "JWT", valid()), "invalid_grant"},
		"no typ":               {sign(key, "k1", "", valid()), "invalid_grant"},
		"typ case":             {sign(key, "k1", "OAUTH-ID-JAG+JWT", valid()), "invalid_grant"},
		"bad signature":        {sign(newKey(t), "k1", idjag.Type, valid()), "invalid_grant"},
		"unknown kid":          {sign(newKey(t), "k9", idjag.Type, valid()), "invalid_grant"},
		"alg none":             {none(), "invalid_grant"},
		"HS256 with the key":   {hs256(), "invalid_grant"},
		"resource not offered": {good(with(valid(), "resource", "https://elsewhere.example/mcp")), "invalid_target"},
		"resource array of 1":  {good(with(valid(), "resource", []string{mcpResource})), ""},
		"no scope":             {good(without(valid(), "scope")), "invalid_scope"},
		"scope outside":        {good(with(valid(), "scope", "admin")), "invalid_scope"},
		"not a JWT":            {"a.b", "invalid_grant"},
		"empty":                {"", "invalid_grant"},
		"duplicate claim":      {signRaw(`{"iss":"` + testIssuer + `","sub":"alice","aud":"https://other-as.example","aud":"` + asIssuer + `"}`), "invalid_grant"},
	} {
		_, oe := v.Redeem(t.Context(), c.assertion, agent, nil, offered)
		wantCode(t, name, oe, c.want)
		if oe != nil && (strings.Contains(oe.Description, testIssuer) || c.assertion != "" && strings.Contains(oe.Description, c.assertion)) {
			t.Errorf("%s: the description %q reveals the trusted issuer or the assertion", name, oe.Description)
		}
	}
}

func TestVerifierMetadataAndOptions(t *testing.T) {
	clock := testclock.New(time.Now())
	st, err := sqlstore.Open(t.Context(), t.TempDir()+"/behalf.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	m := map[string]any{}
	newVerifier(t, st, clock).Metadata(m)
	if len(m) != 0 {
		t.Fatalf("metadata without trusted issuers: %v", m)
	}
	v := newVerifier(t, st, clock, idjag.TrustedIssuer{Issuer: testIssuer})
	v.Metadata(m)
	if !slices.Equal(m["authorization_grant_profiles_supported"].([]string), []string{idjag.Profile}) {
		t.Fatalf("metadata %v", m)
	}
	if _, oe := newVerifier(t, st, clock).Redeem(context.Background(), "x", agent, nil, offered); code(oe) != "unsupported_grant_type" {
		t.Fatalf("no trusted issuer: %v", oe)
	}
	for name, o := range map[string]idjag.Options{
		"no issuer":       {Store: st, HTTP: loopbackHTTP()},
		"twice":           {Issuer: asIssuer, Store: st, HTTP: loopbackHTTP(), Trusted: []idjag.TrustedIssuer{{Issuer: testIssuer}, {Issuer: testIssuer}}},
		"itself":          {Issuer: asIssuer, Store: st, HTTP: loopbackHTTP(), Trusted: []idjag.TrustedIssuer{{Issuer: asIssuer}}},
		"negative expiry": {Issuer: asIssuer, Store: st, HTTP: loopbackHTTP(), MaxLifetime: -1},
	} {
		if _, err := idjag.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func with(m map[string]any, k string, v any) map[string]any {
	m[k] = v
	return m
}

func without(m map[string]any, k string) map[string]any {
	delete(m, k)
	return m
}

func code(e *oauthwire.Error) string {
	if e == nil {
		return ""
	}
	return e.Code
}

func wantCode(t *testing.T, what string, e *oauthwire.Error, want string) {
	t.Helper()
	if code(e) != want {
		t.Errorf("%s: got %v, want %q", what, e, want)
	}
}
