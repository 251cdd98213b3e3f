package oauthwire

import (
	"crypto/x509"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Client assertions (RFC 7523 §2.2, §3): how behalf's authorization
// servers verify a private_key_jwt client.
const (
	// ClientAssertionType is the client_assertion_type of private_key_jwt.
	ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// maxAssertionBytes bounds a client assertion before any parsing.
	maxAssertionBytes = 8 << 10
	// MaxAssertionLifetime bounds how far ahead an assertion's exp may be:
	// a verifier remembers its jti until then.
	MaxAssertionLifetime = 5 * time.Minute
	// AssertionLeeway is the clock skew allowed on exp, nbf and iat; a jti
	// must be remembered until exp plus it.
	AssertionLeeway = 30 * time.Second
)

// ClientAssertionAlgs are the signature algorithms a client assertion may
// use (RFC 8725 §3.1): asymmetric only, never none or HS*, for which a
// client's public key would be the secret.
var ClientAssertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256}

// ClientAssertion is a parsed, not yet verified, client assertion.
type ClientAssertion struct {
	tok *jwt.JSONWebToken
	// ClientID is its iss, which names the client whose keys verify it.
	ClientID string
}

// KeyID is the kid of its header, "" when it names none.
func (a *ClientAssertion) KeyID() string { return a.tok.Headers[0].KeyID }

// assertionClaims are the claims of a client assertion (RFC 7523 §3).
type assertionClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
}

// ParseClientAssertion reads the client assertion of a request's form: of
// type ClientAssertionType, a compact JWS with an allowed algorithm, one
// signature, and no header parameter that brings its own key or demands an
// extension (RFC 8725 §3.10; RFC 7515 §4.1.11), whose iss is client_id
// when the form names one. Every failure is invalid_client.
func ParseClientAssertion(form url.Values) (*ClientAssertion, *Error) {
	if form.Get("client_assertion_type") != ClientAssertionType {
		return nil, Errorf("invalid_client", "client_assertion_type must be %s", ClientAssertionType)
	}
	raw := form.Get("client_assertion")
	if raw == "" || len(raw) > maxAssertionBytes {
		return nil, Errorf("invalid_client", "client_assertion must be a JWT of at most %d bytes", maxAssertionBytes)
	}
	tok, err := jwt.ParseSigned(raw, ClientAssertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, Errorf("invalid_client", "the client assertion is not a JWT signed with one of %s", strings.Join(ClientAssertionAlgNames(), ", "))
	}
	h := tok.Headers[0]
	_, x5c := h.Certificates(x509.VerifyOptions{})
	if h.JSONWebKey != nil || !errors.Is(x5c, jose.ErrMissingX5cHeader) || h.ExtraHeaders["jku"] != nil || h.ExtraHeaders["x5u"] != nil || h.ExtraHeaders["crit"] != nil {
		return nil, Errorf("invalid_client", "the client assertion's header must not carry jwk, jku, x5u, x5c or crit")
	}
	var unverified assertionClaims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, Errorf("invalid_client", "the client assertion's claims are not a JSON object with distinct members of the right types")
	}
	if formID := form.Get("client_id"); formID != "" && formID != unverified.Issuer {
		return nil, Errorf("invalid_client", "the client assertion's iss is not the client_id")
	}
	return &ClientAssertion{tok: tok, ClientID: unverified.Issuer}, nil
}

// Verify checks the assertion's signature with one of the client's keys
// (of its kid, and of its alg when the key names one) and its claims (RFC
// 7523 §3) at now: iss = sub = the client, aud naming one of audiences
// (the server's issuer or token endpoint), exp within
// MaxAssertionLifetime, and a jti. It returns the jti and the time until
// which the caller must remember it to refuse a replay (RFC 7523 §3 item
// 7). Every failure is invalid_client.
func (a *ClientAssertion) Verify(keys []jose.JSONWebKey, audiences []string, now time.Time) (jti string, until time.Time, oe *Error) {
	c, oe := a.verifySignature(keys)
	if oe != nil {
		return "", time.Time{}, oe
	}
	if oe := a.checkClaims(c, audiences, now); oe != nil {
		return "", time.Time{}, oe
	}
	return c.ID, c.Expiry.Time().Add(AssertionLeeway), nil
}

// verifySignature returns the claims of an assertion one of keys signed.
func (a *ClientAssertion) verifySignature(keys []jose.JSONWebKey) (assertionClaims, *Error) {
	h := a.tok.Headers[0]
	for _, k := range keys {
		if (h.KeyID != "" && k.KeyID != h.KeyID) || (k.Algorithm != "" && k.Algorithm != h.Algorithm) {
			continue
		}
		var c assertionClaims
		if a.tok.Claims(k.Key, &c) == nil {
			return c, nil
		}
	}
	return assertionClaims{}, Errorf("invalid_client", "the client assertion's signature does not verify with the client's keys")
}

// checkClaims applies RFC 7523 §3 to verified claims.
func (a *ClientAssertion) checkClaims(c assertionClaims, audiences []string, now time.Time) *Error {
	switch {
	case c.Issuer != a.ClientID || c.Subject != a.ClientID:
		return Errorf("invalid_client", "the client assertion's iss and sub must both be the client_id")
	case !slices.ContainsFunc(c.Audience, func(aud string) bool { return slices.Contains(audiences, aud) }):
		return Errorf("invalid_client", "the client assertion's aud must name this server's issuer or token endpoint")
	case c.Expiry == nil:
		return Errorf("invalid_client", "the client assertion has no exp")
	case !now.Before(c.Expiry.Time().Add(AssertionLeeway)):
		return Errorf("invalid_client", "the client assertion has expired")
	case c.Expiry.Time().After(now.Add(MaxAssertionLifetime)):
		return Errorf("invalid_client", "the client assertion's exp is more than %s ahead", MaxAssertionLifetime)
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(AssertionLeeway)):
		return Errorf("invalid_client", "the client assertion is not valid yet (nbf)")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(AssertionLeeway)):
		return Errorf("invalid_client", "the client assertion was issued in the future (iat)")
	case c.ID == "" || len(c.ID) > 256:
		return Errorf("invalid_client", "the client assertion needs a jti of at most 256 bytes")
	}
	return nil
}

// HasKeyFor reports whether keys hold one the assertion's kid names (any
// key, when it names none): a verifier that caches a client's JWK set
// fetches it again when not, since the client may have rotated.
func (a *ClientAssertion) HasKeyFor(keys []jose.JSONWebKey) bool {
	kid := a.KeyID()
	return kid == "" || slices.ContainsFunc(keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid })
}

// ClientAssertionAlgNames names ClientAssertionAlgs, for metadata.
func ClientAssertionAlgNames() []string {
	names := make([]string, len(ClientAssertionAlgs))
	for i, a := range ClientAssertionAlgs {
		names[i] = string(a)
	}
	return names
}
