package inbound

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestGoJoseCrit records what go-jose does with crit, and why preparse
// rejects every crit itself: go-jose rejects an unknown critical extension
// only at Verify, and accepts crit ["b64"] (RFC 7797), which a JWT must
// not use (the payload of a JWT is always base64url, RFC 7519 §7.2).
func TestGoJoseCrit(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(opts *jose.SignerOptions) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := s.Sign([]byte(`{"iss":"https://i","sub":"s","exp":1}`))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	joseVerify := func(tok string) error {
		jws, err := jose.ParseSignedCompact(tok, allowedAlgs)
		if err != nil {
			return err
		}
		_, err = jws.Verify(&key.PublicKey)
		return err
	}

	b64 := sign((&jose.SignerOptions{}).WithCritical("b64").WithHeader("b64", true))
	if err := joseVerify(b64); err != nil {
		t.Errorf("go-jose now rejects crit [b64] (%v); the explicit check may be redundant", err)
	}
	if _, e := preparse(b64, 1<<14); e == nil || e.Kind != KindInvalidToken {
		t.Errorf("preparse(crit b64) = %v; want invalid token", e)
	}

	unknown := sign((&jose.SignerOptions{}).WithCritical("urn:example:x").WithHeader("urn:example:x", 1))
	if err := joseVerify(unknown); !errors.Is(err, jose.ErrUnsupportedCriticalHeader) {
		t.Errorf("go-jose Verify(unknown crit) = %v; want ErrUnsupportedCriticalHeader", err)
	}
	if _, e := preparse(unknown, 1<<14); e == nil || e.Kind != KindInvalidToken {
		t.Errorf("preparse(unknown crit) = %v; want invalid token", e)
	}
}
