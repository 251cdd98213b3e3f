package oauthclient

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/behalf-dev/behalf/internal/oauthvendor"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

func pemOf(t testing.TB, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PRIVATE KEY", der)
}

func TestPrivateKeyJWTAssertion(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, alg, want string
		pem             []byte
		public          crypto.PublicKey
	}{
		{"ES256 PKCS#8", "ES256", "ES256", pkcs8(t, ec), &ec.PublicKey},
		{"ES256 SEC 1, algorithm from the key", "", "ES256", pemOf(t, "EC PRIVATE KEY", sec1), &ec.PublicKey},
		{"RS256 PKCS#1", "RS256", "RS256", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), &rk.PublicKey},
		{"PS256 PKCS#8", "PS256", "PS256", pkcs8(t, rk), &rk.PublicKey},
	}
	now := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	c := &Client{HTTP: testHTTP, Now: testclock.New(now).Now}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, jsonAnswer(200, `{"access_token":"at","token_type":"Bearer"}`))
			endpoint := f.URL + "/token"
			var jtis []string
			// The issuer when it is known, else the endpoint (RFC 7523 §3).
			for _, aud := range []string{"https://as.example.com", ""} {
				_, err := c.Do(context.Background(), Request{Endpoint: endpoint, AuthMethod: oauthvendor.PrivateKeyJWT, ClientID: "agent-1",
					ClientSecret: string(tc.pem), SigningAlgorithm: tc.alg, Audience: aud, Form: url.Values{"grant_type": {"client_credentials"}}})
				if err != nil {
					t.Fatal(err)
				}
				if f.got.Header.Get("Authorization") != "" {
					t.Fatalf("Authorization header with private_key_jwt: %q", f.got.Header.Get("Authorization"))
				}
				form, _ := url.ParseQuery(f.body)
				if form.Has("client_secret") || form.Get("client_id") != "agent-1" || form.Get("client_assertion_type") != oauthwire.ClientAssertionType {
					t.Fatalf("form %v", form)
				}
				tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.want)})
				if err != nil {
					t.Fatal(err)
				}
				if h := tok.Headers[0]; h.Algorithm != tc.want || h.ExtraHeaders[jose.HeaderType] != "JWT" {
					t.Fatalf("header %+v", h)
				}
				var claims jwt.Claims
				if err := tok.Claims(tc.public, &claims); err != nil {
					t.Fatalf("verify with the public key: %v", err)
				}
				wantAud := cmp.Or(aud, endpoint)
				if len(claims.Audience) != 1 {
					t.Fatalf("aud %v", claims.Audience)
				}
				if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: "agent-1", Subject: "agent-1", AnyAudience: jwt.Audience{wantAud}, Time: now}, 0); err != nil {
					t.Fatal(err)
				}
				if life := claims.Expiry.Time().Sub(claims.IssuedAt.Time()); !claims.IssuedAt.Time().Equal(now) || life <= 0 || life > 5*time.Minute {
					t.Fatalf("iat %v exp %v", claims.IssuedAt.Time(), claims.Expiry.Time())
				}
				if len(claims.ID) < 16 {
					t.Fatalf("jti %q", claims.ID)
				}
				jtis = append(jtis, claims.ID)
			}
			if jtis[0] == jtis[1] {
				t.Fatal("the jti was reused")
			}
		})
	}
}

// TestPrivateKeyJWTHeldKey: with a Signer (a key behalf holds), the
// assertion is signed by it, names its kid, and no secret is needed.
func TestPrivateKeyJWTHeldKey(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: ec, KeyID: "k1", Algorithm: "ES256"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(t, jsonAnswer(200, `{"access_token":"at","token_type":"Bearer"}`))
	c := &Client{HTTP: testHTTP}
	if _, err := c.Do(context.Background(), Request{Endpoint: f.URL, AuthMethod: oauthvendor.PrivateKeyJWT, ClientID: "https://behalf.example/mcp-clients/p",
		Signer: signer, Audience: "https://as.example", Form: url.Values{"grant_type": {"refresh_token"}}}); err != nil {
		t.Fatal(err)
	}
	form, _ := url.ParseQuery(f.body)
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || tok.Headers[0].KeyID != "k1" {
		t.Fatalf("assertion %v: %v", tok, err)
	}
	var claims jwt.Claims
	if err := tok.Claims(&ec.PublicKey, &claims); err != nil || claims.Issuer != "https://behalf.example/mcp-clients/p" || claims.Audience[0] != "https://as.example" {
		t.Fatalf("claims %+v: %v", claims, err)
	}
}

func TestPrivateKeyJWTAssertionRedacted(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var f *fakeProvider
	f = newFake(t, func(w http.ResponseWriter) {
		form, _ := url.ParseQuery(f.body)
		jsonAnswer(401, `{"error":"invalid_client","error_description":"bad assertion `+form.Get("client_assertion")+`"}`)(w)
	})
	c := &Client{HTTP: testHTTP}
	_, err = c.Do(context.Background(), Request{Endpoint: f.URL, AuthMethod: oauthvendor.PrivateKeyJWT, ClientID: "agent-1",
		ClientSecret: string(pkcs8(t, ec)), Form: url.Values{"grant_type": {"client_credentials"}}})
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Code != "invalid_client" || strings.Contains(pe.Description, "eyJ") || !strings.Contains(pe.Description, "[redacted]") {
		t.Fatalf("%v", err)
	}
}

func TestParseClientKeyRefuses(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // a key too short, to be refused
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, alg, want string
		pem             []byte
	}{
		{"not PEM", "", "is not PEM", []byte("secret-value")},
		{"a public key", "", `PEM "PUBLIC KEY" block`, pemOf(t, "PUBLIC KEY", pub)},
		{"two blocks", "", "more than one", append(pkcs8(t, ec), pkcs8(t, ec)...)},
		{"EC with RS256", "RS256", "not RS256", pkcs8(t, ec)},
		{"EC with an unknown algorithm", "HS256", "not HS256", pkcs8(t, ec)},
		{"P-384", "", "P-256", pkcs8(t, p384)},
		{"short RSA", "", "2048", pkcs8(t, small)},
		{"corrupt", "", "not a valid PRIVATE KEY", pemOf(t, "PRIVATE KEY", []byte("garbage"))},
		{"too large", "", "larger than", append(pkcs8(t, ec), make([]byte, MaxClientKey)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseClientKey(tc.pem, tc.alg)
			var ke *ClientKeyError
			if !errors.As(err, &ke) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), "secret-value") {
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
}

func FuzzParseClientKey(f *testing.F) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pkcs8(f, ec), "ES256")
	f.Add(pkcs8(f, ec), "")
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"), "RS256")
	f.Add([]byte("not a key"), "PS256")
	f.Fuzz(func(t *testing.T, key []byte, alg string) {
		k, got, err := ParseClientKey(key, alg)
		if err == nil && (k == nil || (alg != "" && got != alg)) {
			t.Fatalf("key %v alg %q for %q", k, got, alg)
		}
	})
}

// signOnly is a crypto.Signer that is not a private key go-jose knows: as
// with a key-management backend's key, only its Sign can be used. It
// counts the digests it signed.
type signOnly struct {
	crypto.Signer
	signed *int
}

func (s signOnly) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	*s.signed++
	return s.Signer.Sign(r, digest, opts)
}

// TestAssertionSignerHeldKey: a key that only signs digests signs ES256,
// RS256 and PS256 assertions (PS256 with a salt as long as the hash, RFC
// 7518 §3.5) that verify with its public key; the header names its RFC
// 7638 thumbprint (or the kid given), typ JWT and the additional header
// claims but the reserved ones; the payload has the additional claims but
// never in place of behalf's own, except aud.
func TestAssertionSignerHeldKey(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	c := &Client{HTTP: testHTTP, Now: testclock.New(now).Now}
	headers := map[string]string{"x5t#S256": "thumb", "alg": "none", "typ": "at+jwt", "crit": "b64", "b64": "false"}
	payload := map[string]string{"tenant": "t-1", "iss": "mallory", "sub": "mallory", "jti": "fixed", "exp": "9999999999", "iat": "1", "nbf": "1"}
	for _, tc := range []struct {
		alg string
		key crypto.Signer
	}{{"ES256", ec}, {"RS256", rk}, {"PS256", rk}} {
		t.Run(tc.alg, func(t *testing.T) {
			signed := 0
			kid, err := AssertionKeyID(tc.key.Public(), nil)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := AssertionSigner(signOnly{tc.key, &signed}, tc.alg, kid, headers)
			if err != nil {
				t.Fatal(err)
			}
			for _, aud := range []string{"", "https://as.example.com/oauth2/token"} {
				extra := maps.Clone(payload)
				if aud != "" {
					extra["aud"] = aud
				}
				f := newFake(t, jsonAnswer(200, `{"access_token":"at","token_type":"Bearer"}`))
				if _, err := c.Do(context.Background(), Request{Endpoint: f.URL, AuthMethod: oauthvendor.PrivateKeyJWT, ClientID: "agent-1", Signer: signer,
					AssertionClaims: extra, Audience: "https://as.example.com", Form: url.Values{"grant_type": {"client_credentials"}}}); err != nil {
					t.Fatal(err)
				}
				form, _ := url.ParseQuery(f.body)
				raw := form.Get("client_assertion")
				tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.alg)})
				if err != nil {
					t.Fatal(err)
				}
				h := tok.Headers[0]
				if h.KeyID != kid || h.Algorithm != tc.alg || h.ExtraHeaders[jose.HeaderType] != "JWT" || h.ExtraHeaders["x5t#S256"] != "thumb" ||
					h.ExtraHeaders["crit"] != nil || h.ExtraHeaders["b64"] != nil {
					t.Fatalf("header %+v", h)
				}
				var claims map[string]any
				if err := tok.Claims(PublicJWK(tc.key.Public(), tc.alg, kid).Key, &claims); err != nil {
					t.Fatalf("verify with the public key: %v", err)
				}
				wantAud := cmp.Or(aud, "https://as.example.com")
				if claims["iss"] != "agent-1" || claims["sub"] != "agent-1" || claims["aud"] != wantAud || claims["tenant"] != "t-1" ||
					claims["jti"] == "fixed" || claims["exp"] != float64(now.Add(assertionLifetime).Unix()) || claims["iat"] != float64(now.Unix()) {
					t.Fatalf("claims %v", claims)
				}
				if tc.alg == "PS256" {
					parts := strings.Split(raw, ".")
					sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
					digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
					if err := rsa.VerifyPSS(&rk.PublicKey, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
						t.Fatalf("PS256 salt is not the hash's length: %v", err)
					}
				}
			}
			if signed != 2 {
				t.Fatalf("the key signed %d digests, want 2", signed)
			}
		})
	}
	// The kid given replaces the thumbprint; a key that does not suit the
	// algorithm is refused.
	if kid, err := AssertionKeyID(ec.Public(), map[string]string{"kid": "idp-assigned"}); err != nil || kid != "idp-assigned" {
		t.Errorf("kid %q %v", kid, err)
	}
	for _, tc := range []struct {
		alg string
		key crypto.Signer
	}{{"RS256", ec}, {"ES256", rk}, {"HS256", ec}} {
		var ke *ClientKeyError
		if _, err := AssertionSigner(tc.key, tc.alg, "k", nil); !errors.As(err, &ke) {
			t.Errorf("%s with %T: %v", tc.alg, tc.key, err)
		}
	}
}

// TestAssertionKeyIDIsRFC7638: the kid of a held key is RFC 7638 §3.1's
// example thumbprint for its example key.
func TestAssertionKeyIDIsRFC7638(t *testing.T) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON([]byte(`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}`)); err != nil {
		t.Fatal(err)
	}
	if kid, err := AssertionKeyID(jwk.Key, nil); err != nil || kid != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("kid %q %v", kid, err)
	}
}

// refusing is a key whose backend refuses to sign.
type refusing struct{ crypto.Signer }

func (refusing) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("the key is disabled")
}

// TestAssertionSigningRefused: a key that does not sign fails token and
// revocation requests with a SigningError that says so, and sends nothing.
func TestAssertionSigningRefused(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := AssertionSigner(refusing{ec}, "ES256", "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(t, jsonAnswer(200, `{"access_token":"at","token_type":"Bearer"}`))
	c := &Client{HTTP: testHTTP}
	_, err = c.Do(context.Background(), Request{Endpoint: f.URL, AuthMethod: oauthvendor.PrivateKeyJWT, ClientID: "agent-1", Signer: signer,
		Form: url.Values{"grant_type": {"client_credentials"}}})
	var se *SigningError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "could not be signed: ") || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("token request: %v", err)
	}
	err = c.Revoke(context.Background(), Revocation{Endpoint: f.URL, AuthMethod: oauthvendor.PrivateKeyJWT, ClientID: "agent-1", Signer: signer, Token: "rt"})
	if !errors.As(err, &se) {
		t.Fatalf("revocation: %v", err)
	}
	if f.got != nil {
		t.Fatal("a request was sent without its client assertion")
	}
}
