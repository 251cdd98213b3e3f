package oauthclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Client assertions (RFC 7523 §2.2) for private_key_jwt client
// authentication.

// ClientAssertionType is client_assertion_type for a JWT (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// SigningAlgorithms are the algorithms a client assertion may be signed
// with, as AgentCore's privateKeyJwtConfig names them.
var SigningAlgorithms = []string{string(jose.RS256), string(jose.PS256), string(jose.ES256)}

// MaxClientKey bounds a PEM private key.
const MaxClientKey = 16 << 10

// assertionLifetime is how long a client assertion is valid: enough for
// one request, short so that a captured one is soon useless.
const assertionLifetime = 2 * time.Minute

// ClientKeyError says why a private key cannot sign client assertions. Its
// text never quotes the key.
type ClientKeyError struct{ Reason string }

func (e *ClientKeyError) Error() string { return e.Reason }

// ParseClientKey parses a PEM private key (PKCS #8, PKCS #1 RSA or SEC 1
// EC) for alg, which "" chooses from the key: ES256 for a P-256 key, RS256
// for an RSA key. It returns the key and the algorithm.
func ParseClientKey(pemKey []byte, alg string) (crypto.Signer, string, error) {
	key, err := parsePEMKey(pemKey)
	if err != nil {
		return nil, "", err
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, "", &ClientKeyError{Reason: "is an EC key on a curve other than P-256, which ES256 needs"}
		}
		if alg == "" {
			alg = string(jose.ES256)
		}
		if alg != string(jose.ES256) {
			return nil, "", &ClientKeyError{Reason: "is an EC P-256 key, which signs with ES256, not " + printable(alg, 16)}
		}
		return k, alg, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, "", &ClientKeyError{Reason: "is an RSA key shorter than 2048 bits"}
		}
		if alg == "" {
			alg = string(jose.RS256)
		}
		if alg != string(jose.RS256) && alg != string(jose.PS256) {
			return nil, "", &ClientKeyError{Reason: "is an RSA key, which signs with RS256 or PS256, not " + printable(alg, 16)}
		}
		return k, alg, nil
	}
	return nil, "", &ClientKeyError{Reason: "is neither an EC P-256 nor an RSA key"}
}

// parsePEMKey parses the one PEM block of a private key.
func parsePEMKey(pemKey []byte) (any, error) {
	if len(pemKey) > MaxClientKey {
		return nil, &ClientKeyError{Reason: fmt.Sprintf("is larger than %d bytes", MaxClientKey)}
	}
	block, rest := pem.Decode(pemKey)
	if block == nil {
		return nil, &ClientKeyError{Reason: "is not PEM"}
	}
	if more, _ := pem.Decode(rest); more != nil {
		return nil, &ClientKeyError{Reason: "holds more than one PEM block"}
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, &ClientKeyError{Reason: fmt.Sprintf("is a PEM %q block, not a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", printable(block.Type, 32))}
	}
	if err != nil {
		return nil, &ClientKeyError{Reason: "is not a valid " + block.Type}
	}
	return key, nil
}

// clientAssertion is a JWT that authenticates clientID to an authorization
// server (RFC 7523 §3): issuer and subject the client id, the audience,
// a fresh jti, issued now and expiring soon after. signer signs it when
// not nil; otherwise the PEM key does, with alg.
func clientAssertion(signer jose.Signer, pemKey []byte, alg, clientID, audience string, now time.Time) (string, error) {
	if signer == nil {
		key, alg, err := ParseClientKey(pemKey, alg)
		if err != nil {
			return "", &ClientKeyError{Reason: "the provider's client private key " + err.Error()}
		}
		if signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, (&jose.SignerOptions{}).WithType("JWT")); err != nil {
			return "", fmt.Errorf("client assertion: %w", err)
		}
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti) // crypto/rand.Read never fails
	claims := jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{audience}, ID: base64.RawURLEncoding.EncodeToString(jti),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(assertionLifetime)),
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}
