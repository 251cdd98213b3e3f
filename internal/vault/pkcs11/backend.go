// Package pkcs11 is the vault's key-management backend for PKCS#11 tokens:
// HSMs, cloud HSMs and YubiHSMs, and SoftHSM2 in tests. Key ids are RFC
// 7512 URIs, pkcs11:token=<token label>;object=<key label>.
//
// A key-encryption key is an AES-256 secret key in the token: data keys are
// wrapped with AES-GCM inside the token, the vault's associated data as
// GCM's additional data, so the key never leaves it. A signing key is the
// token's ECDSA or RSA key pair with that label.
//
// PKCS#11 is a C interface: the backend needs a cgo build. Without cgo, New
// returns an error saying so, and the rest of behalf builds and runs.
package pkcs11

import (
	"errors"
	"strings"
)

// Name implements vault.Backend.
func (b *Backend) Name() string { return "pkcs11" }

// Owns implements vault.Backend: every pkcs11: URI is this backend's,
// well formed or not, so that a bad one is reported by it.
func (b *Backend) Owns(id string) bool { return strings.HasPrefix(id, Scheme) }

// SigningKeyType is the kind of key pair CreateKeyPair generates.
type SigningKeyType int

const (
	// ECDSAP256 signs ES256.
	ECDSAP256 SigningKeyType = iota
	// RSA2048 signs RS256 and PS256.
	RSA2048
	// RSA3072 signs RS256 and PS256.
	RSA3072
)

var errNoCgo = errors.New("behalf was built without cgo; PKCS#11 support needs a cgo build")
