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
	"io"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Client assertions (RFC 7523 §2.2) for private_key_jwt client
// authentication.

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
// EC) for alg, which "" chooses from the key (KeyAlgorithm). It returns
// the key and the algorithm.
func ParseClientKey(pemKey []byte, alg string) (crypto.Signer, string, error) {
	key, err := parsePEMKey(pemKey)
	if err != nil {
		return nil, "", err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, "", &ClientKeyError{Reason: "is neither an EC P-256 nor an RSA key"}
	}
	alg, err = KeyAlgorithm(signer.Public(), alg)
	if err != nil {
		return nil, "", err
	}
	return signer, alg, nil
}

// KeyAlgorithm checks that the key whose public half is pub can sign
// client assertions with alg (RFC 7518 §3.1: ES256 with an EC P-256 key;
// RS256 or PS256 with an RSA key of at least 2048 bits, §3.3) and returns
// it; "" chooses ES256 for an EC key, RS256 for an RSA key.
func KeyAlgorithm(pub crypto.PublicKey, alg string) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", &ClientKeyError{Reason: "is an EC key on a curve other than P-256, which ES256 needs"}
		}
		if alg == "" {
			alg = string(jose.ES256)
		}
		if alg != string(jose.ES256) {
			return "", &ClientKeyError{Reason: "is an EC P-256 key, which signs with ES256, not " + printable(alg, 16)}
		}
		return alg, nil
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", &ClientKeyError{Reason: "is an RSA key shorter than 2048 bits"}
		}
		if alg == "" {
			alg = string(jose.RS256)
		}
		if alg != string(jose.RS256) && alg != string(jose.PS256) {
			return "", &ClientKeyError{Reason: "is an RSA key, which signs with RS256 or PS256, not " + printable(alg, 16)}
		}
		return alg, nil
	}
	return "", &ClientKeyError{Reason: "is neither an EC P-256 nor an RSA key"}
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

// Reserved claims of client assertions, which a provider's
// privateKeyJwtConfig may not add (AgentCore names alg and typ, and iss,
// sub, jti and exp).
var (
	// ReservedHeaderClaims: behalf sets alg and typ; crit and b64 would
	// change how the JWS is processed (RFC 7515 §4.1.11, RFC 7797), and
	// jwk and x5c are not strings. kid may be set: it then replaces the
	// key's thumbprint in the assertions and the published JWK.
	ReservedHeaderClaims = []string{"alg", "typ", "crit", "b64", "jwk", "x5c"}
	// ReservedPayloadClaims: behalf sets RFC 7523 §3's claims, and iat
	// and nbf, so that an assertion is always short-lived. aud may be
	// set: behalf's default, the server's issuer (draft-ietf-oauth-
	// rfc7523bis), is refused by servers that want their token endpoint.
	ReservedPayloadClaims = []string{"iss", "sub", "jti", "exp", "iat", "nbf"}
)

// AssertionKeyID is the kid of a held key's assertions and JWK: the kid
// the administrator set among the header claims, else the key's RFC 7638
// thumbprint (SHA-256).
func AssertionKeyID(pub crypto.PublicKey, headers map[string]string) (string, error) {
	if kid := headers["kid"]; kid != "" {
		return kid, nil
	}
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("client key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// PublicJWK is the JWK (RFC 7517) that verifies a held key's assertions.
func PublicJWK(pub crypto.PublicKey, alg, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}
}

// AssertionSigner signs client assertions with key, which only ever signs
// a digest (go-jose's OpaqueSigner), so that a key a key-management
// backend holds never leaves it; alg must suit the key (KeyAlgorithm).
// The header names kid ("" for none), typ JWT and the additional header
// claims but the reserved ones.
func AssertionSigner(key crypto.Signer, alg, kid string, headers map[string]string) (jose.Signer, error) {
	if _, err := KeyAlgorithm(key.Public(), alg); err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for k, v := range headers {
		if k != "kid" && !slices.Contains(ReservedHeaderClaims, k) {
			opts = opts.WithHeader(jose.HeaderKey(k), v)
		}
	}
	opaque := heldKey{OpaqueSigner: cryptosigner.Opaque(pssSalt{key}), public: jose.JSONWebKey{Key: key.Public(), KeyID: kid, Algorithm: alg}}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: opaque}, opts)
	if err != nil {
		return nil, fmt.Errorf("client assertion signer: %w", err)
	}
	return signer, nil
}

// heldKey names the key's kid in the assertions' header.
type heldKey struct {
	jose.OpaqueSigner
	public jose.JSONWebKey
}

func (k heldKey) Public() *jose.JSONWebKey { return &k.public }

// pssSalt makes PS256 salts as long as the hash (RFC 7518 §3.5), which
// cryptosigner leaves to the signer's longest.
type pssSalt struct{ crypto.Signer }

func (s pssSalt) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if o, ok := opts.(*rsa.PSSOptions); ok {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: o.Hash}
	}
	return s.Signer.Sign(r, digest, opts)
}

// clientAssertion is a JWT that authenticates clientID to an authorization
// server (RFC 7523 §3): issuer and subject the client id, the audience,
// a fresh jti, issued now and expiring soon after, and the additional
// claims but the reserved ones (an additional aud replaces audience). signer signs it when not nil; otherwise
// the PEM key does, with alg.
func clientAssertion(signer jose.Signer, pemKey []byte, alg, clientID, audience string, extra map[string]string, now time.Time) (string, error) {
	if signer == nil {
		key, alg, err := ParseClientKey(pemKey, alg)
		if err != nil {
			return "", &ClientKeyError{Reason: "the provider's client private key " + err.Error()}
		}
		if signer, err = AssertionSigner(key, alg, "", nil); err != nil {
			return "", err
		}
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti) // crypto/rand.Read never fails
	claims := map[string]any{
		"iss": clientID, "sub": clientID, "aud": audience, "jti": base64.RawURLEncoding.EncodeToString(jti),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	}
	for k, v := range extra {
		if !slices.Contains(ReservedPayloadClaims, k) {
			claims[k] = v
		}
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", &SigningError{Err: err}
	}
	return tok, nil
}

// SigningError is a client assertion its key did not sign: the
// key-management backend that holds it unreachable, say, or the key
// disabled. No request was sent.
type SigningError struct{ Err error }

func (e *SigningError) Error() string {
	return "the client assertion could not be signed: " + e.Err.Error()
}

func (e *SigningError) Unwrap() error { return e.Err }
