package inboundtest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"math/big"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/inbound"
)

// Case is one token that must be rejected with Kind.
type Case struct {
	Name  string
	Token string
	Kind  inbound.Kind
}

// Forged returns tokens an attacker or a broken IdP could present, built
// from valid, a claim set that idp.Config accepts (such as
// idp.ValidClaims(now)). valid's iat is taken as the verifier's current
// time. The expected kinds assume a verifier configured with idp.Config,
// the default Options (16 KiB, 60 s leeway) and a clock at iat.
func Forged(idp *IDP, valid map[string]any) []Case {
	idp.t.Helper()
	now := timeOf(valid["iat"])
	good := idp.Sign(valid)
	gh, gp, gs := split(good)
	attacker := idp.newKey(idp.keyTyp)
	attacker.kid = idp.KeyID()

	with := func(mod func(map[string]any)) map[string]any {
		c := maps.Clone(valid)
		mod(c)
		return c
	}
	sign := func(mod func(map[string]any), opts ...SignOption) string {
		return idp.Sign(with(mod), opts...)
	}
	signPayload := func(payload string) string {
		idp.mu.Lock()
		k := idp.keys[len(idp.keys)-1]
		idp.mu.Unlock()
		return idp.signRaw(k, idp.header(k, k.alg), []byte(payload))
	}
	unsigned := func(header map[string]any, sig string) string {
		h, _ := json.Marshal(header)
		return enc(h) + "." + gp + "." + sig
	}
	hs256 := func(secret []byte) string {
		h, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "JWT", "kid": idp.KeyID()})
		input := enc(h) + "." + gp
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		return input + "." + enc(m.Sum(nil))
	}

	idp.mu.Lock()
	pub := idp.keys[len(idp.keys)-1].priv.Public()
	idp.mu.Unlock()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		idp.t.Fatalf("inboundtest: %v", err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	// The same signature bytes under a header that names another allowed
	// algorithm (a different hash or family from the JWK's alg).
	otherAlg := map[string]string{"RS256": "PS256", "ES256": "ES384", "EdDSA": "ES256"}[idp.Alg()]
	mislabeled := *attacker
	mislabeled.priv = idp.currentKey().priv
	mislabeled.alg = idp.Alg()
	if otherAlg == "PS256" {
		mislabeled.alg = "PS256" // a real PSS signature by the issuer's key
	}

	encKey := *idp.enc
	encKey.alg = "RS256"

	tamperedSig := []byte(gs)
	mid := len(tamperedSig) / 2
	tamperedSig[mid] = map[bool]byte{true: 'B', false: 'A'}[tamperedSig[mid] == 'A']

	attackerJWK := jwk(attacker, "sig")
	cert := selfSigned(idp, attacker)
	pad := strings.Repeat("x", 20<<10)

	c := func(name string, kind inbound.Kind, token string) Case {
		return Case{Name: name, Token: token, Kind: kind}
	}
	const (
		invalid  = inbound.KindInvalidToken
		badSig   = inbound.KindBadSignature
		mismatch = inbound.KindClaimMismatch
	)
	return []Case{
		c("alg none", invalid, unsigned(map[string]any{"alg": "none", "typ": "JWT"}, "")),
		c("alg none with the valid signature kept", invalid, unsigned(map[string]any{"alg": "none", "kid": idp.KeyID()}, gs)),
		c("alg None (case variant)", invalid, unsigned(map[string]any{"alg": "None"}, gs)),
		c("HS256 keyed with the issuer's public key (PEM)", invalid, hs256(pemKey)),
		c("HS256 keyed with the issuer's public key (DER)", invalid, hs256(der)),
		c("unknown kid", badSig, idp.signWith(attacker, attacker.alg, valid, WithKID(unknownKeyID))),
		c("issuer's kid, key not in the JWKS", badSig, idp.signWith(attacker, attacker.alg, valid)),
		c("key published for encryption (use enc)", badSig, idp.signWith(&encKey, "RS256", valid)),
		c("alg differs from the JWK's alg", badSig, idp.signRaw(&mislabeled, idp.header(&mislabeled, otherAlg), []byte(decode(gp)))),
		c("wrong iss", inbound.KindUntrustedIssuer, sign(func(m map[string]any) { m["iss"] = "https://evil.example.com" })),
		c("iss with an extra trailing slash", inbound.KindUntrustedIssuer, sign(func(m map[string]any) { m["iss"] = idp.Issuer + "/" })),
		c("wrong aud", mismatch, sign(func(m map[string]any) { m["aud"] = []string{"other-api", "another-api"} })),
		c("no aud", mismatch, sign(func(m map[string]any) { delete(m, "aud") })),
		c("wrong client_id", mismatch, sign(func(m map[string]any) { m["client_id"] = "evil-client" })),
		c("wrong azp and no client_id", mismatch, sign(func(m map[string]any) { delete(m, "client_id"); m["azp"] = "evil-client" })),
		c("neither client_id nor azp", mismatch, sign(func(m map[string]any) { delete(m, "client_id") })),
		c("expired", inbound.KindExpired, sign(func(m map[string]any) {
			m["iat"], m["nbf"], m["exp"] = now.Add(-3*time.Hour).Unix(), now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
		})),
		c("nbf in the future", inbound.KindNotYetValid, sign(func(m map[string]any) { m["nbf"] = now.Add(time.Hour).Unix() })),
		c("iat in the future", inbound.KindNotYetValid, sign(func(m map[string]any) { m["iat"] = now.Add(time.Hour).Unix() })),
		c("missing sub", invalid, sign(func(m map[string]any) { delete(m, "sub") })),
		c("empty sub", invalid, sign(func(m map[string]any) { m["sub"] = "" })),
		c("missing exp", invalid, sign(func(m map[string]any) { delete(m, "exp") })),
		c("exp as a string", invalid, sign(func(m map[string]any) { m["exp"] = "2099-01-01" })),
		c("missing iss", invalid, sign(func(m map[string]any) { delete(m, "iss") })),
		c("iss as a number", invalid, sign(func(m map[string]any) { m["iss"] = 42 })),
		c("aud as a number", invalid, sign(func(m map[string]any) { m["aud"] = 42 })),
		c("duplicate sub member", invalid, signPayload(`{"iss":"`+idp.Issuer+`","sub":"attacker","sub":"`+Subject+`","exp":`+itoa(now.Add(time.Hour).Unix())+`}`)),
		c("payload is an array", invalid, signPayload(`[1,2,3]`)),
		c("payload followed by trailing data", invalid, signPayload(string(mustJSON(valid))+`{}`)),
		c("tampered payload", badSig, gh+"."+enc(mustJSON(with(func(m map[string]any) { m["sub"] = "admin" })))+"."+gs),
		c("tampered signature", badSig, gh+"."+gp+"."+string(tamperedSig)),
		c("signature stripped", invalid, gh+"."+gp+"."),
		c("oversized (valid signature)", invalid, sign(func(m map[string]any) { m["pad"] = pad })),
		c("jwk header (attacker key embedded)", invalid, idp.signWith(attacker, attacker.alg, valid, WithHeader("jwk", attackerJWK))),
		c("jku header", invalid, idp.signWith(attacker, attacker.alg, valid, WithHeader("jku", "https://evil.example.com/jwks"))),
		c("x5u header", invalid, idp.signWith(attacker, attacker.alg, valid, WithHeader("x5u", "https://evil.example.com/cert.pem"))),
		c("x5c header (attacker certificate)", invalid, idp.signWith(attacker, attacker.alg, valid, WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(cert)}))),
		c("unknown crit", invalid, sign(func(map[string]any) {}, WithHeader("crit", []string{"urn:example:must-understand"}), WithHeader("urn:example:must-understand", true))),
		c("crit b64 (RFC 7797)", invalid, sign(func(map[string]any) {}, WithHeader("crit", []string{"b64"}), WithHeader("b64", true))),
		c("cty JWT (nested token)", invalid, sign(func(map[string]any) {}, WithHeader("cty", "JWT"))),
		c("typ dpop+jwt", invalid, sign(func(map[string]any) {}, WithHeader("typ", "dpop+jwt"))),
		c("typ oauth-id-jag+jwt", invalid, sign(func(map[string]any) {}, WithHeader("typ", "oauth-id-jag+jwt"))),
		c("kid not a string", invalid, sign(func(map[string]any) {}, WithHeader("kid", 7))),
		c("JWE (5 segments)", invalid, jwe(idp, good)),
		c("two signatures (JSON serialization)", invalid, jsonSerialization(idp, gp, attacker)),
		c("flattened JSON serialization", invalid, `{"protected":"`+gh+`","payload":"`+gp+`","signature":"`+gs+`"}`),
		c("empty string", invalid, ""),
		c("garbage segments", invalid, "not.a.jwt"),
		c("non-base64url characters", invalid, "e30!.e30$.c2ln"),
		c("header not JSON", invalid, enc([]byte("hello"))+"."+gp+"."+gs),
		c("two segments", invalid, gh+"."+gp),
		c("four segments", invalid, good+".e30"),
		c("padded base64", invalid, gh+"=."+gp+"."+gs),
		c("newline inside a segment", invalid, gh[:4]+"\n"+gh[4:]+"."+gp+"."+gs),
		c("leading space", invalid, " "+good),
		c("scope not allowed", inbound.KindInsufficientScope, sign(func(m map[string]any) { m["scope"] = "openid profile" })),
		c("no scope", inbound.KindInsufficientScope, sign(func(m map[string]any) { delete(m, "scope") })),
		c("custom claim EQUALS mismatch", mismatch, sign(func(m map[string]any) { m[DeptClaim] = "sales" })),
		c("custom claim EQUALS with an array", mismatch, sign(func(m map[string]any) { m[DeptClaim] = []string{DeptValue} })),
		c("custom claim CONTAINS mismatch", mismatch, sign(func(m map[string]any) { m[GroupsClaim] = []string{"users"} })),
		c("custom claim CONTAINS with a string", mismatch, sign(func(m map[string]any) { m[GroupsClaim] = GroupsValue })),
		c("custom claim CONTAINS_ANY mismatch", mismatch, sign(func(m map[string]any) { m[RolesClaim] = []string{"reader", "viewer"} })),
		c("custom claim missing", mismatch, sign(func(m map[string]any) { delete(m, RolesClaim) })),
	}
}

func (p *IDP) currentKey() *signingKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[len(p.keys)-1]
}

func split(tok string) (string, string, string) {
	parts := strings.SplitN(tok, ".", 3)
	return parts[0], parts[1], parts[2]
}

func decode(s string) string {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	return string(b)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func itoa(n int64) string { return big.NewInt(n).String() }

func timeOf(v any) time.Time {
	switch n := v.(type) {
	case int64:
		return time.Unix(n, 0)
	case int:
		return time.Unix(int64(n), 0)
	case float64:
		return time.Unix(int64(n), 0)
	case json.Number:
		i, _ := n.Int64()
		return time.Unix(i, 0)
	case time.Time:
		return n
	}
	return time.Now()
}

// jwe encrypts a valid token (direct AES-256-GCM), as an IdP configured
// for encrypted access tokens would.
func jwe(idp *IDP, inner string) string {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	e, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key},
		(&jose.EncrypterOptions{}).WithContentType("JWT"))
	if err != nil {
		idp.t.Fatalf("inboundtest: %v", err)
	}
	obj, err := e.Encrypt([]byte(inner))
	if err != nil {
		idp.t.Fatalf("inboundtest: %v", err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		idp.t.Fatalf("inboundtest: %v", err)
	}
	return s
}

// jsonSerialization signs the payload twice (RFC 7515 §7.2.1): once by the
// issuer, once by an attacker.
func jsonSerialization(idp *IDP, payload string, attacker *signingKey) string {
	sig := func(k *signingKey) map[string]string {
		tok := idp.signRaw(k, idp.header(k, k.alg), []byte(decode(payload)))
		h, _, s := split(tok)
		return map[string]string{"protected": h, "signature": s}
	}
	return string(mustJSON(map[string]any{
		"payload":    payload,
		"signatures": []map[string]string{sig(idp.currentKey()), sig(attacker)},
	}))
}

func selfSigned(idp *IDP, k *signingKey) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "evil"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.priv.Public(), k.priv)
	if err != nil {
		idp.t.Fatalf("inboundtest: %v", err)
	}
	return der
}
