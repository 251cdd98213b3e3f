package clients_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/storage"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// signingKey is a client's key pair.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newKey(t *testing.T, kid string, alg jose.SignatureAlgorithm) signingKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	if alg == jose.ES256 {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: alg, priv: priv}
}

func (k signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

func jwks(keys ...signingKey) jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public())
	}
	return set
}

// sign makes a JWT of claims signed with k.
func (k signingKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// assertionClaims are valid claims of an assertion by id at now.
func assertionClaims(id string, now time.Time) map[string]any {
	return map[string]any{"iss": id, "sub": id, "aud": tokenEndpoint, "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": randomID()}
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (e *env) authenticateAssertion(t *testing.T, assertion string, extra map[string]string) (clients.Client, string) {
	t.Helper()
	form := map[string]string{"client_assertion_type": assertionType, "client_assertion": assertion}
	for k, v := range extra {
		form[k] = v
	}
	r, vals := tokenRequest(form, "", "")
	c, oe := e.reg.Authenticate(t.Context(), r, vals)
	return c, code(oe)
}

func TestPrivateKeyJWT(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st storage.Storage) {
		s := newSite(t)
		es, rs := newKey(t, "es", jose.ES256), newKey(t, "rs", jose.RS256)
		jwksURL := s.serveJSON("/jwks", jwks(es, rs))
		e := newEnv(t, st, func(o *clients.Options) {
			o.Preregistered = []clients.PreregisteredClient{{
				ClientID: "agent", ClientName: "Agent", TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: jwksURL,
				GrantTypes: []string{clients.GrantJWTBearer},
			}}
		})
		now := e.clock.Now()
		for _, k := range []signingKey{es, rs} {
			c, got := e.authenticateAssertion(t, k.sign(t, assertionClaims("agent", now)), map[string]string{"client_id": "agent"})
			if got != "" || c.ID != "agent" || c.Kind != clients.Preregistered {
				t.Fatalf("%s: %+v %q", k.alg, c, got)
			}
		}
		// The issuer is an audience too, alone or in an array.
		for _, aud := range []any{issuer, []string{"https://other.example", issuer}} {
			if _, got := e.authenticateAssertion(t, es.sign(t, with(assertionClaims("agent", now), "aud", aud)), nil); got != "" {
				t.Fatalf("aud %v: %q", aud, got)
			}
		}
		if n := s.hitsOf("/jwks"); n != 1 {
			t.Fatalf("%d JWKS fetches, want 1 (cached)", n)
		}
		// A replayed jti is refused, on either store.
		replayed := es.sign(t, assertionClaims("agent", now))
		if _, got := e.authenticateAssertion(t, replayed, nil); got != "" {
			t.Fatalf("first use: %q", got)
		}
		if _, got := e.authenticateAssertion(t, replayed, nil); got != "invalid_client" {
			t.Fatalf("replay: %q", got)
		}
		// Also one accepted within the leeway after its exp.
		late := es.sign(t, with(assertionClaims("agent", now), "exp", now.Add(-10*time.Second).Unix()))
		if _, got := e.authenticateAssertion(t, late, nil); got != "" {
			t.Fatalf("within the leeway: %q", got)
		}
		if _, got := e.authenticateAssertion(t, late, nil); got != "invalid_client" {
			t.Fatalf("replay within the leeway: %q", got)
		}
	})
}

func TestPrivateKeyJWTRefusals(t *testing.T) {
	s := newSite(t)
	es, rs := newKey(t, "es", jose.ES256), newKey(t, "rs", jose.RS256)
	s.serveJSON("/jwks", jwks(es, rs))
	e := newEnv(t, sqliteStore(t), func(o *clients.Options) {
		o.Preregistered = []clients.PreregisteredClient{
			{ClientID: "agent", TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: s.URL + "/jwks", GrantTypes: []string{clients.GrantJWTBearer}},
			{ClientID: "other", TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: s.URL + "/jwks", GrantTypes: []string{clients.GrantJWTBearer}},
			{ClientID: "secret-client", Secret: []byte("s"), RedirectURIs: []string{"https://app.example/cb"}},
		}
	})
	now := e.clock.Now()
	valid := func() map[string]any { return assertionClaims("agent", now) }
	pub, _ := json.Marshal(es.public())
	hsToken := func() string {
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pub}, (&jose.SignerOptions{}).WithHeader("kid", "es"))
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := jwt.Signed(sg).Claims(valid()).Serialize()
		return tok
	}
	none := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"es"}`))
		p, _ := json.Marshal(valid())
		return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
	}
	stranger := newKey(t, "stranger", jose.ES256)
	impostor := newKey(t, "es", jose.ES256) // a known kid, another key
	for name, c := range map[string]struct {
		assertion string
		extra     map[string]string
	}{
		"wrong aud":          {es.sign(t, with(valid(), "aud", "https://other.example")), nil},
		"no aud":             {es.sign(t, without(valid(), "aud")), nil},
		"expired":            {es.sign(t, with(valid(), "exp", now.Add(-time.Minute).Unix())), nil},
		"exp too far ahead":  {es.sign(t, with(valid(), "exp", now.Add(time.Hour).Unix())), nil},
		"no exp":             {es.sign(t, without(valid(), "exp")), nil},
		"no jti":             {es.sign(t, without(valid(), "jti")), nil},
		"issued in future":   {es.sign(t, with(valid(), "iat", now.Add(time.Hour).Unix())), nil},
		"alg none":           {none(), nil},
		"HS256, public key":  {hsToken(), nil},
		"unknown kid":        {stranger.sign(t, valid()), nil},
		"known kid, bad key": {impostor.sign(t, valid()), nil},
		"sub not client":     {es.sign(t, with(valid(), "sub", "other")), nil},
		"iss not client":     {es.sign(t, with(valid(), "iss", "other")), nil},
		"iss unknown":        {es.sign(t, with(with(valid(), "iss", "nobody"), "sub", "nobody")), nil},
		"client_id differs":  {es.sign(t, valid()), map[string]string{"client_id": "other"}},
		"wrong type":         {es.sign(t, valid()), map[string]string{"client_assertion_type": "urn:x"}},
		"not a JWT":          {"abc.def", nil},
		"secret client":      {es.sign(t, with(with(valid(), "iss", "secret-client"), "sub", "secret-client")), nil},
	} {
		if _, got := e.authenticateAssertion(t, c.assertion, c.extra); got != "invalid_client" {
			t.Errorf("%s: %q, want invalid_client", name, got)
		}
	}
	// The unknown kid made one refetch; the rest were served from the cache.
	if n := s.hitsOf("/jwks"); n != 2 {
		t.Errorf("%d JWKS fetches, want 2", n)
	}
	// A private_key_jwt client may not fall back to a secret, nor a
	// secret client to an assertion.
	r, form := tokenRequest(map[string]string{"client_id": "agent", "client_secret": "x"}, "", "")
	if _, oe := e.reg.Authenticate(t.Context(), r, form); code(oe) != "invalid_client" {
		t.Errorf("secret for a private_key_jwt client: %v", oe)
	}
	// Two methods at once.
	r, form = tokenRequest(map[string]string{"client_assertion_type": assertionType, "client_assertion": es.sign(t, valid())}, "agent", "x")
	if _, oe := e.reg.Authenticate(t.Context(), r, form); code(oe) != "invalid_request" {
		t.Errorf("basic and assertion: %v", oe)
	}
}

func TestPrivateKeyJWTKeyRotation(t *testing.T) {
	s := newSite(t)
	old, next := newKey(t, "k1", jose.ES256), newKey(t, "k2", jose.ES256)
	s.serveJSON("/jwks", jwks(old))
	e := newEnv(t, sqliteStore(t), func(o *clients.Options) {
		o.Preregistered = []clients.PreregisteredClient{{ClientID: "agent", TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: s.URL + "/jwks", GrantTypes: []string{clients.GrantJWTBearer}}}
	})
	if _, got := e.authenticateAssertion(t, old.sign(t, assertionClaims("agent", e.clock.Now())), nil); got != "" {
		t.Fatal(got)
	}
	s.serveJSON("/jwks", jwks(old, next))
	if _, got := e.authenticateAssertion(t, next.sign(t, assertionClaims("agent", e.clock.Now())), nil); got != "" {
		t.Fatalf("rotated key: %q", got)
	}
}

func TestPrivateKeyJWTRegisteredAndDocumentClients(t *testing.T) {
	s := newSite(t)
	k := newKey(t, "k", jose.ES256)
	e := newEnv(t, sqliteStore(t), nil)
	set, _ := json.Marshal(jwks(k))
	status, m := e.register(t, `{"token_endpoint_auth_method":"private_key_jwt","grant_types":["urn:ietf:params:oauth:grant-type:jwt-bearer"],"response_types":[],"jwks":`+string(set)+`}`, "")
	id, _ := m["client_id"].(string)
	if status != http.StatusCreated || m["client_secret"] != nil {
		t.Fatalf("registration %d %v", status, m)
	}
	if c, got := e.authenticateAssertion(t, k.sign(t, assertionClaims(id, e.clock.Now())), nil); got != "" || !c.AllowsGrant(clients.GrantJWTBearer) {
		t.Fatalf("registered client: %+v %q", c, got)
	}
	docURL := s.URL + "/client.json"
	s.serveJSON("/client.json", with(with(doc(docURL), "token_endpoint_auth_method", "private_key_jwt"), "jwks_uri", s.serveJSON("/jwks", jwks(k))))
	if c, got := e.authenticateAssertion(t, k.sign(t, assertionClaims(docURL, e.clock.Now())), nil); got != "" || c.Kind != clients.MetadataDocument {
		t.Fatalf("document client: %+v %q", c, got)
	}
	// A metadata document client that is public names itself only.
	pubURL := s.URL + "/public.json"
	s.serveJSON("/public.json", doc(pubURL))
	r, form := tokenRequest(map[string]string{"client_id": pubURL}, "", "")
	if c, oe := e.reg.Authenticate(t.Context(), r, form); oe != nil || !c.Public() {
		t.Fatalf("public document client: %+v %v", c, oe)
	}
}
