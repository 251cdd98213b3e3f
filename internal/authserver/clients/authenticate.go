package clients

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// Client assertions (RFC 7523 §2.2, §3).
const (
	// AssertionType is the client_assertion_type of private_key_jwt.
	AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// maxAssertionBytes bounds a client assertion before any parsing.
	maxAssertionBytes = 8 << 10
	// maxAssertionLifetime bounds how far ahead an assertion's exp may be:
	// its jti is remembered until then.
	maxAssertionLifetime = 5 * time.Minute
	// leeway is the clock skew allowed on exp, nbf and iat.
	leeway = 30 * time.Second
	// maxJWKSBytes bounds a client's JWKS.
	maxJWKSBytes = 64 << 10
)

// assertionAlgs are the signature algorithms a client assertion may use
// (RFC 8725 §3.1): asymmetric only, never none or HS*, for which a
// client's public key would be the secret.
var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256}

func assertionAlgNames() []string {
	names := make([]string, len(assertionAlgs))
	for i, a := range assertionAlgs {
		names[i] = string(a)
	}
	return names
}

// Authenticate authenticates the client of a token, revocation or
// introspection request (RFC 6749 §2.3) by the one method it presents,
// which must be the client's registered method: a public client's
// client_id, client_secret_basic (RFC 6749 §2.3.1; id and secret are
// form-urlencoded inside the header), client_secret_post, or
// private_key_jwt (RFC 7523 §2.2). A failure is invalid_client (401),
// except a request presenting no or several methods, which is
// invalid_request. form is the request's parsed body.
func (r *Registry) Authenticate(ctx context.Context, req *http.Request, form url.Values) (Client, *oauthwire.Error) {
	basicID, basicSecret, basic := req.BasicAuth()
	_, post := form["client_secret"]
	_, jwtAuth := form["client_assertion"]
	n := 0
	for _, used := range []bool{basic, post, jwtAuth} {
		if used {
			n++
		}
	}
	if n > 1 {
		return Client{}, oauthwire.Errorf("invalid_request", "the request uses more than one client authentication method")
	}
	formID := form.Get("client_id")
	switch {
	case basic:
		id, err1 := url.QueryUnescape(basicID)
		secret, err2 := url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return Client{}, oauthwire.Errorf("invalid_client", "the Authorization header's client id or secret is not form-urlencoded (RFC 6749 §2.3.1)")
		}
		if formID != "" && formID != id {
			return Client{}, oauthwire.Errorf("invalid_request", "client_id differs from the client authenticated in the Authorization header")
		}
		return r.authenticateSecret(ctx, id, secret, AuthClientSecretBasic)
	case post:
		return r.authenticateSecret(ctx, formID, form.Get("client_secret"), AuthClientSecretPost)
	case jwtAuth:
		return r.authenticateAssertion(ctx, form)
	case formID == "":
		return Client{}, oauthwire.Errorf("invalid_client", "the request names no client: send client_id, or authenticate the client")
	}
	e, oe := r.lookupClient(ctx, formID)
	if oe != nil {
		return Client{}, oe
	}
	if !e.Public() {
		return Client{}, oauthwire.Errorf("invalid_client", "the client must authenticate with %s", e.TokenEndpointAuthMethod)
	}
	return e.Client, nil
}

// lookupClient is lookup for client authentication: an unknown or invalid
// client is invalid_client whatever lookup said.
func (r *Registry) lookupClient(ctx context.Context, id string) (entry, *oauthwire.Error) {
	e, oe := r.lookup(ctx, id)
	if oe != nil && oe.Code == "invalid_request" {
		oe = oauthwire.Errorf("invalid_client", "%s", oe.Description)
	}
	return e, oe
}

// authenticateSecret checks a client secret against the SHA-256 kept of
// it, in constant time.
func (r *Registry) authenticateSecret(ctx context.Context, id, secret, method string) (Client, *oauthwire.Error) {
	e, oe := r.lookupClient(ctx, id)
	if oe != nil {
		return Client{}, oe
	}
	if e.TokenEndpointAuthMethod != method {
		return Client{}, oauthwire.Errorf("invalid_client", "the client must authenticate with %s, not %s", e.TokenEndpointAuthMethod, method)
	}
	if len(e.secretHash) == 0 || subtle.ConstantTimeCompare(oauthwire.Hash(secret), e.secretHash) != 1 {
		return Client{}, oauthwire.Errorf("invalid_client", "client authentication failed")
	}
	return e.Client, nil
}

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

// authenticateAssertion verifies a private_key_jwt client assertion: RFC
// 7523 §3 with iss = sub = client_id, aud naming the issuer or the token
// endpoint, exp within maxAssertionLifetime, and a jti used once.
func (r *Registry) authenticateAssertion(ctx context.Context, form url.Values) (Client, *oauthwire.Error) {
	if form.Get("client_assertion_type") != AssertionType {
		return Client{}, oauthwire.Errorf("invalid_client", "client_assertion_type must be %s", AssertionType)
	}
	tok, oe := parseAssertion(form.Get("client_assertion"))
	if oe != nil {
		return Client{}, oe
	}
	var unverified assertionClaims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return Client{}, oauthwire.Errorf("invalid_client", "the client assertion's claims are not a JSON object with distinct members of the right types")
	}
	id := unverified.Issuer
	if formID := form.Get("client_id"); formID != "" && formID != id {
		return Client{}, oauthwire.Errorf("invalid_client", "the client assertion's iss is not the client_id")
	}
	e, oe := r.lookupClient(ctx, id)
	if oe != nil {
		return Client{}, oe
	}
	if e.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
		return Client{}, oauthwire.Errorf("invalid_client", "the client must authenticate with %s, not private_key_jwt", e.TokenEndpointAuthMethod)
	}
	var c assertionClaims
	if oe := r.verifyAssertion(ctx, e, tok, &c); oe != nil {
		return Client{}, oe
	}
	if oe := r.checkAssertionClaims(c, id); oe != nil {
		return Client{}, oe
	}
	// RFC 7523 §3 item 7: the jti is remembered as long as the assertion
	// is accepted (until exp plus the leeway), scoped by the client that
	// made it.
	switch err := r.o.Store.UseTokenID(ctx, assertionKey(id, c.ID), c.Expiry.Time().Add(leeway)); {
	case errors.Is(err, storage.ErrAlreadyExists):
		return Client{}, oauthwire.Errorf("invalid_client", "the client assertion's jti was already used")
	case err != nil:
		r.o.Log.LogAttrs(ctx, slog.LevelError, "recording a client assertion's jti failed", logging.Err(err))
		return Client{}, oauthwire.Errorf("server_error", "the client assertion could not be recorded")
	}
	return e.Client, nil
}

// assertionKey is the one-time id of a client's assertion; the client id,
// which may be a 2000-byte URL, is hashed to keep the key short.
func assertionKey(clientID, jti string) string {
	return "client-assertion:" + base64.RawURLEncoding.EncodeToString(oauthwire.Hash(clientID)) + "#" + jti
}

// parseAssertion parses a compact JWS with an allowed algorithm, one
// signature, and no header parameter that brings its own key or demands
// an extension (RFC 8725 §3.10; RFC 7515 §4.1.11).
func parseAssertion(raw string) (*jwt.JSONWebToken, *oauthwire.Error) {
	if raw == "" || len(raw) > maxAssertionBytes {
		return nil, oauthwire.Errorf("invalid_client", "client_assertion must be a JWT of at most %d bytes", maxAssertionBytes)
	}
	tok, err := jwt.ParseSigned(raw, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, oauthwire.Errorf("invalid_client", "the client assertion is not a JWT signed with one of %s", strings.Join(assertionAlgNames(), ", "))
	}
	h := tok.Headers[0]
	_, x5c := h.Certificates(x509.VerifyOptions{})
	if h.JSONWebKey != nil || !errors.Is(x5c, jose.ErrMissingX5cHeader) || h.ExtraHeaders["jku"] != nil || h.ExtraHeaders["x5u"] != nil || h.ExtraHeaders["crit"] != nil {
		return nil, oauthwire.Errorf("invalid_client", "the client assertion's header must not carry jwk, jku, x5u, x5c or crit")
	}
	return tok, nil
}

// verifyAssertion checks tok's signature with the client's keys: its jwks,
// or those at its jwks_uri, fetched once more when no key has the
// assertion's kid (the client may have rotated).
func (r *Registry) verifyAssertion(ctx context.Context, e entry, tok *jwt.JSONWebToken, c *assertionClaims) *oauthwire.Error {
	keys := e.jwks
	if e.jwksURI != "" {
		var oe *oauthwire.Error
		if keys, oe = r.clientKeys(ctx, e.jwksURI); oe != nil {
			return oe
		}
		if !hasKey(keys, tok.Headers[0].KeyID) {
			r.keys.drop(e.jwksURI)
			if keys, oe = r.clientKeys(ctx, e.jwksURI); oe != nil {
				return oe
			}
		}
	}
	h := tok.Headers[0]
	for _, k := range keys {
		if (h.KeyID != "" && k.KeyID != h.KeyID) || (k.Algorithm != "" && k.Algorithm != h.Algorithm) {
			continue
		}
		if tok.Claims(k.Key, c) == nil {
			return nil
		}
	}
	return oauthwire.Errorf("invalid_client", "the client assertion's signature does not verify with the client's keys")
}

func hasKey(keys []jose.JSONWebKey, kid string) bool {
	return kid == "" || slices.ContainsFunc(keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid })
}

// clientKeys returns the keys at a client's jwks_uri, cached like
// metadata documents. Every client can make behalf fetch its own URL at
// most once per assertion; a document's URL is checked like a client's.
func (r *Registry) clientKeys(ctx context.Context, jwksURI string) ([]jose.JSONWebKey, *oauthwire.Error) {
	return r.keys.load(ctx, jwksURI, func(ctx context.Context) ([]jose.JSONWebKey, time.Duration, *oauthwire.Error) {
		body, ttl, err := r.fetch(ctx, jwksURI, maxJWKSBytes, telemetry.EndpointJWKS)
		if err != nil {
			return nil, 0, oauthwire.Errorf("invalid_client", "the client's jwks_uri could not be fetched: %s", err.Error())
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(body, &set); err != nil {
			return nil, 0, oauthwire.Errorf("invalid_client", "the client's jwks_uri is not a JWK set")
		}
		if err := checkKeys(set.Keys); err != nil {
			return nil, 0, oauthwire.Errorf("invalid_client", "the client's JWK set %s", err.Error())
		}
		return set.Keys, ttl, nil
	})
}

// checkAssertionClaims applies RFC 7523 §3 to verified claims.
func (r *Registry) checkAssertionClaims(c assertionClaims, id string) *oauthwire.Error {
	now := r.o.Now()
	switch {
	case c.Issuer != id || c.Subject != id:
		return oauthwire.Errorf("invalid_client", "the client assertion's iss and sub must both be the client_id")
	case !slices.ContainsFunc(c.Audience, func(a string) bool { return a == r.o.Issuer || a == r.o.TokenEndpoint }):
		return oauthwire.Errorf("invalid_client", "the client assertion's aud must name this server's issuer or token endpoint")
	case c.Expiry == nil:
		return oauthwire.Errorf("invalid_client", "the client assertion has no exp")
	case !now.Before(c.Expiry.Time().Add(leeway)):
		return oauthwire.Errorf("invalid_client", "the client assertion has expired")
	case c.Expiry.Time().After(now.Add(maxAssertionLifetime)):
		return oauthwire.Errorf("invalid_client", "the client assertion's exp is more than %s ahead", maxAssertionLifetime)
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(leeway)):
		return oauthwire.Errorf("invalid_client", "the client assertion is not valid yet (nbf)")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(leeway)):
		return oauthwire.Errorf("invalid_client", "the client assertion was issued in the future (iat)")
	case c.ID == "" || len(c.ID) > 256:
		return oauthwire.Errorf("invalid_client", "the client assertion needs a jti of at most 256 bytes")
	}
	return nil
}
