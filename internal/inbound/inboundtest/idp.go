// Package inboundtest provides a test identity provider and a corpus of
// forged tokens for tests of code that verifies users' JWTs with package
// inbound.
//
// The IdP runs on httptest, serves a discovery document and a JWKS, counts
// fetches, rotates keys and can be taken down. Tokens are signed with the
// standard library's crypto, not with the JOSE library under test.
package inboundtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/inbound"
)

// KeyType is the kind of signing key an IdP uses.
type KeyType string

// The key types an IDP signs with, each named with the JWS algorithm
// (RFC 7518 section 3.1, RFC 8037 section 3.1) it signs under.
const (
	RSA     KeyType = "RSA-2048"     // RS256
	ECDSA   KeyType = "ECDSA-P256"   // ES256
	Ed25519 KeyType = "Ed25519"      // EdDSA
	keyEnc  KeyType = "RSA-2048-enc" // published with use "enc"
)

// KeyTypes lists every signing key type, for table tests.
func KeyTypes() []KeyType { return []KeyType{RSA, ECDSA, Ed25519} }

// The values IDP.Config requires and IDP.ValidClaims provides.
const (
	Audience     = "behalf-api"
	ClientID     = "agent-client"
	Scope        = "agents:invoke"
	Subject      = "user-1234"
	DeptClaim    = "dept" // STRING, EQUALS DeptValue
	DeptValue    = "engineering"
	GroupsClaim  = "groups" // STRING_ARRAY, CONTAINS GroupsValue
	GroupsValue  = "admins"
	RolesClaim   = "roles" // STRING_ARRAY, CONTAINS_ANY RolesValues
	RolesValue   = "writer"
	RolesValue2  = "editor"
	EncKeyID     = "enc-key"
	unknownKeyID = "kid-unknown"
)

// IDP is an OpenID provider on httptest.
type IDP struct {
	URL          string // the server's base URL
	Issuer       string // the issuer its discovery document names
	DiscoveryURL string // Issuer + /.well-known/openid-configuration

	t      testing.TB
	keyTyp KeyType

	mu           sync.Mutex
	keys         []*signingKey // published; the last one signs
	enc          *signingKey   // published with use "enc"
	down         bool
	cacheControl string
	docIssuer    string
	jwksFetches  int
	discFetches  int
	generation   int
}

type signingKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

// Option configures NewIDP.
type Option func(*IDP)

// WithKeyType sets the signing key type; the default is RSA.
func WithKeyType(kt KeyType) Option { return func(p *IDP) { p.keyTyp = kt } }

// NewIDP starts an IdP that is closed when the test ends.
func NewIDP(t testing.TB, opts ...Option) *IDP {
	t.Helper()
	p := &IDP{t: t, keyTyp: RSA}
	for _, o := range opts {
		o(p)
	}
	p.keys = []*signingKey{p.newKey(p.keyTyp)}
	p.enc = p.newKey(keyEnc)
	p.enc.kid = EncKeyID
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.serveDiscovery)
	mux.HandleFunc("GET /jwks", p.serveJWKS)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	p.Issuer = srv.URL
	p.DiscoveryURL = srv.URL + "/.well-known/openid-configuration"
	p.docIssuer = p.Issuer
	return p
}

func (p *IDP) newKey(kt KeyType) *signingKey {
	p.t.Helper()
	p.generation++
	k := &signingKey{kid: fmt.Sprintf("key-%d", p.generation)}
	var err error
	switch kt {
	case RSA, keyEnc:
		k.alg = "RS256"
		k.priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case ECDSA:
		k.alg = "ES256"
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		k.alg = "EdDSA"
		_, k.priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		p.t.Fatalf("inboundtest: unknown key type %q", kt)
	}
	if err != nil {
		p.t.Fatalf("inboundtest: generating %s key: %v", kt, err)
	}
	return k
}

// KeyID returns the kid of the current signing key.
func (p *IDP) KeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[len(p.keys)-1].kid
}

// Alg returns the JWS algorithm of the current signing key.
func (p *IDP) Alg() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[len(p.keys)-1].alg
}

// RotateKeys publishes a new signing key with a new kid and signs with it
// from now on; the previous keys stay published.
func (p *IDP) RotateKeys() {
	k := p.newKey(p.keyTyp)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append(p.keys, k)
}

// RetireOldKeys stops publishing every key but the current one.
func (p *IDP) RetireOldKeys() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = p.keys[len(p.keys)-1:]
}

// SetDown makes every endpoint answer 503 (true) or work again (false).
func (p *IDP) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// SetCacheControl sets the Cache-Control header of JWKS responses.
func (p *IDP) SetCacheControl(v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cacheControl = v
}

// SetDiscoveryIssuer makes the discovery document name iss as its issuer,
// to test issuer mismatches.
func (p *IDP) SetDiscoveryIssuer(iss string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.docIssuer = iss
}

// JWKSFetches counts JWKS requests served (including 503s).
func (p *IDP) JWKSFetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jwksFetches
}

// DiscoveryFetches counts discovery requests served (including 503s).
func (p *IDP) DiscoveryFetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.discFetches
}

// Config returns an authorizer that uses every kind of check: audience,
// client, scope and one custom claim per operator. ValidClaims satisfies it.
func (p *IDP) Config(name string) inbound.Config {
	return inbound.Config{
		Name:            name,
		DiscoveryURL:    p.DiscoveryURL,
		AllowedAudience: []string{Audience},
		AllowedClients:  []string{ClientID},
		AllowedScopes:   []string{Scope},
		CustomClaims: []inbound.CustomClaim{
			{Name: DeptClaim, ValueType: inbound.ValueString, Operator: inbound.OpEquals, Value: DeptValue},
			{Name: GroupsClaim, ValueType: inbound.ValueStringArray, Operator: inbound.OpContains, Value: GroupsValue},
			{Name: RolesClaim, ValueType: inbound.ValueStringArray, Operator: inbound.OpContainsAny, Values: []string{RolesValue, RolesValue2}},
		},
	}
}

// ValidClaims returns claims, issued at now and valid for an hour, that
// Config accepts.
func (p *IDP) ValidClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":       p.Issuer,
		"sub":       Subject,
		"aud":       Audience,
		"client_id": ClientID,
		"scope":     "openid " + Scope,
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
		"jti":       "jti-1",
		DeptClaim:   DeptValue,
		GroupsClaim: []string{"users", GroupsValue},
		RolesClaim:  []string{"reader", RolesValue},
	}
}

// SignOption changes the header of one Sign call.
type SignOption func(map[string]any)

// WithKID sets the kid header.
func WithKID(kid string) SignOption { return func(h map[string]any) { h["kid"] = kid } }

// WithoutKID removes the kid header.
func WithoutKID() SignOption { return func(h map[string]any) { delete(h, "kid") } }

// WithHeader sets any header parameter.
func WithHeader(name string, value any) SignOption {
	return func(h map[string]any) { h[name] = value }
}

// Sign returns a compact JWS of claims signed with the current key.
func (p *IDP) Sign(claims map[string]any, opts ...SignOption) string {
	p.t.Helper()
	p.mu.Lock()
	k := p.keys[len(p.keys)-1]
	p.mu.Unlock()
	return p.signWith(k, k.alg, claims, opts...)
}

func (p *IDP) signWith(k *signingKey, alg string, claims map[string]any, opts ...SignOption) string {
	p.t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		p.t.Fatalf("inboundtest: marshal claims: %v", err)
	}
	return p.signRaw(k, p.header(k, alg, opts...), payload)
}

func (p *IDP) header(k *signingKey, alg string, opts ...SignOption) []byte {
	h := map[string]any{"alg": alg, "kid": k.kid, "typ": "JWT"}
	for _, o := range opts {
		o(h)
	}
	b, err := json.Marshal(h)
	if err != nil {
		p.t.Fatalf("inboundtest: marshal header: %v", err)
	}
	return b
}

// signRaw signs header and payload bytes as they are, with k's own
// algorithm whatever the header says.
func (p *IDP) signRaw(k *signingKey, header, payload []byte) string {
	p.t.Helper()
	input := enc(header) + "." + enc(payload)
	sig, err := signInput(k, []byte(input))
	if err != nil {
		p.t.Fatalf("inboundtest: sign: %v", err)
	}
	return input + "." + enc(sig)
}

func signInput(k *signingKey, input []byte) ([]byte, error) {
	switch priv := k.priv.(type) {
	case *rsa.PrivateKey:
		d := sha256.Sum256(input)
		if k.alg == "PS256" {
			return rsa.SignPSS(rand.Reader, priv, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, d[:])
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, priv, d[:])
		if err != nil {
			return nil, err
		}
		// RFC 7518 §3.4: R and S as 32-byte big-endian, concatenated.
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out, nil
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, input), nil
	}
	return nil, fmt.Errorf("unsupported key %T", k.priv)
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (p *IDP) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	p.discFetches++
	down, iss := p.down, p.docIssuer
	p.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              p.URL + "/jwks",
		"authorization_endpoint":                p.URL + "/authorize",
		"token_endpoint":                        p.URL + "/token",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
	})
}

func (p *IDP) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	p.jwksFetches++
	down, cc := p.down, p.cacheControl
	keys := append([]*signingKey(nil), p.keys...)
	p.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var out []map[string]any
	for _, k := range keys {
		out = append(out, jwk(k, "sig"))
	}
	out = append(out, jwk(p.enc, "enc"))
	// A key type from the future must not hide the others.
	out = append(out, map[string]any{"kty": "AKP", "kid": "pq-1", "alg": "ML-DSA-44", "pub": "AAAA"})
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	writeJSON(w, map[string]any{"keys": out})
}

// jwk renders k's public key per RFC 7517/7518.
func jwk(k *signingKey, use string) map[string]any {
	m := map[string]any{"kid": k.kid, "use": use}
	if use == "sig" {
		m["alg"] = k.alg
	}
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = enc(pub.N.Bytes())
		m["e"] = enc(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		ecdh, _ := pub.ECDH()
		raw := ecdh.Bytes() // 0x04 || X || Y
		m["kty"], m["crv"] = "EC", "P-256"
		m["x"], m["y"] = enc(raw[1:33]), enc(raw[33:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", enc(pub)
	}
	return m
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
