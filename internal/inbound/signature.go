package inbound

import (
	"bytes"
	"context"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// VerifySignature verifies the signature of token, a JWT from issuer, for
// a caller that checks its claims itself (the authorization server's
// ID-JAGs). It applies the checks of Verify that need no authorizer: the
// token's size, its compact form, its header parameters and algorithm
// (the allow-list of Verify, which the caller may narrow) but not its typ,
// its claims' JSON and types with iss, sub and exp present. It requires iss to be
// exactly issuer and verifies with the keys at jwksURL or, when jwksURL is
// empty, at the jwks_uri of issuer's OpenID Connect discovery document,
// cached, refreshed and refetched on an unknown kid as Verify's are. name
// labels the fetches in telemetry. Each issuer and JWKS URL is kept, with
// a background refresh, for the life of the Set: they must come from
// configuration, never from a token.
//
// It does NOT check typ, exp, nbf, iat, aud or any claim other than iss:
// it returns the verified claims set for the caller to check.
func (s *Set) VerifySignature(ctx context.Context, token, issuer, jwksURL, name string) ([]byte, *Error) {
	rt, e := preparse(token, s.maxBytes)
	if e != nil {
		return nil, e
	}
	if rt.claims.iss != issuer { // RFC 7519 §4.1.1: exact string comparison
		return nil, newError(KindUntrustedIssuer, "token issuer is not the expected issuer")
	}
	ks, e := s.issuerKeys(ctx, issuer, jwksURL, name)
	if e != nil {
		return nil, e
	}
	jws, err := jose.ParseSignedCompact(token, allowedAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, &Error{Kind: KindInvalidToken, Message: "token is not a valid JWS", Cause: err}
	}
	payload, _, e := ks.verify(ctx, jws, rt.header)
	if e != nil {
		return nil, e
	}
	if !bytes.Equal(payload, rt.payload) {
		return nil, newError(KindInvalidToken, "token payload changed during verification")
	}
	return payload, nil
}

// issuerKeys returns the key set at jwksURL, or the one issuer's discovery
// document names.
func (s *Set) issuerKeys(ctx context.Context, issuer, jwksURL, name string) (*keySet, *Error) {
	if jwksURL != "" {
		u, err := url.Parse(jwksURL)
		if err != nil || u.Host == "" {
			return nil, newError(KindUnavailable, "the issuer's JWKS URL is not an absolute URL")
		}
		if msg := checkFetchURL(u); msg != "" {
			return nil, newError(KindUnavailable, "the issuer's JWKS URL %s", msg)
		}
		ks, err := s.keySetFor(jwksURL, name)
		if err != nil {
			return nil, &Error{Kind: KindUnavailable, Message: "identity provider unavailable", Cause: err}
		}
		return ks, nil
	}
	p, e := s.issuerProvider(issuer, name)
	if e != nil {
		return nil, e
	}
	ks, docIssuer, e := p.resolve(ctx)
	if e != nil {
		return nil, e
	}
	if docIssuer != issuer {
		return nil, newError(KindUntrustedIssuer, "the discovery document names another issuer")
	}
	return ks, nil
}

// issuerProvider returns the provider discovering issuer, creating it on
// first use.
func (s *Set) issuerProvider(issuer, name string) (*provider, *Error) {
	trimmed := strings.TrimSuffix(issuer, "/")
	u, err := url.Parse(trimmed)
	if err != nil || u.Host == "" || u.RawQuery != "" {
		return nil, newError(KindUnavailable, "the issuer is not an absolute URL without a query")
	}
	if msg := checkFetchURL(u); msg != "" {
		return nil, newError(KindUnavailable, "the issuer URL %s", msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.issuers[issuer]
	if p == nil {
		p = &provider{set: s, name: name, discoveryURL: trimmed + wellKnownOIDC, issuer: trimmed, limiter: s.newLimiter()}
		s.issuers[issuer] = p
	}
	return p, nil
}
