package inbound_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/inbound/inboundtest"
)

func TestVerifySignature(t *testing.T) {
	for _, kt := range inboundtest.KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			idp := inboundtest.NewIDP(t, inboundtest.WithKeyType(kt))
			s := newSet(t, nil, inbound.Options{})
			valid := idp.ValidClaims(t0)
			token := idp.Sign(valid)
			want, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
			// Through the issuer's discovery document, and at a JWKS URL.
			for _, jwksURL := range []string{"", idp.URL + "/jwks"} {
				payload, e := s.VerifySignature(t.Context(), token, idp.Issuer, jwksURL, "test")
				if e != nil || !bytes.Equal(payload, want) {
					t.Fatalf("jwks %q: %s %v", jwksURL, payload, e)
				}
			}
			if idp.DiscoveryFetches() != 1 || idp.JWKSFetches() != 1 {
				t.Fatalf("%d discovery and %d JWKS fetches, want 1 each", idp.DiscoveryFetches(), idp.JWKSFetches())
			}
			if _, e := s.VerifySignature(t.Context(), token, idp.Issuer+"/other", "", "test"); e == nil || e.Kind != inbound.KindUntrustedIssuer {
				t.Fatalf("another issuer: %v", e)
			}
			// Forgeries are refused as Verify refuses them, but for the
			// claims and the type VerifySignature leaves to its caller.
			for _, c := range inboundtest.Forged(idp, valid) {
				if strings.HasPrefix(c.Name, "typ ") {
					continue
				}
				switch c.Kind {
				case inbound.KindInvalidToken, inbound.KindBadSignature, inbound.KindUntrustedIssuer:
				default:
					continue
				}
				if _, e := s.VerifySignature(t.Context(), c.Token, idp.Issuer, "", "test"); e == nil || e.Kind != c.Kind {
					t.Errorf("%s: %v, want %s", c.Name, e, c.Kind)
				}
			}
		})
	}
}

func TestVerifySignatureUnavailable(t *testing.T) {
	idp := inboundtest.NewIDP(t)
	s := newSet(t, nil, inbound.Options{})
	idp.SetDown(true)
	if _, e := s.VerifySignature(t.Context(), idp.Sign(idp.ValidClaims(t0)), idp.Issuer, "", "test"); e == nil || e.Kind != inbound.KindUnavailable {
		t.Fatalf("down: %v", e)
	}
	if _, e := s.VerifySignature(t.Context(), idp.Sign(idp.ValidClaims(t0)), idp.Issuer, "http://idp.example/jwks", "test"); e == nil || e.Kind != inbound.KindUnavailable {
		t.Fatalf("http JWKS URL off loopback: %v", e)
	}
}
