package inbound

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies a verification failure. The values are stable strings,
// usable as metric labels and in audit records.
type Kind string

const (
	// KindInvalidToken means the token is not a well-formed, acceptable JWS
	// JWT (size, segments, encoding, algorithm, header parameters, required
	// claims and their types).
	KindInvalidToken Kind = "invalid_token"
	// KindBadSignature means no key of the issuer verifies the signature.
	KindBadSignature Kind = "bad_signature"
	// KindExpired means exp is in the past (beyond the leeway).
	KindExpired Kind = "expired"
	// KindNotYetValid means nbf or iat is in the future (beyond the leeway).
	KindNotYetValid Kind = "not_yet_valid"
	// KindUntrustedIssuer means iss names no allowed authorizer.
	KindUntrustedIssuer Kind = "untrusted_issuer"
	// KindClaimMismatch means aud, client_id/azp or a custom claim does not
	// satisfy the authorizer.
	KindClaimMismatch Kind = "claim_mismatch"
	// KindInsufficientScope means none of the token's scopes is allowed.
	// Kept apart from KindClaimMismatch so that HTTP callers can answer
	// with RFC 6750 §3.1 insufficient_scope rather than invalid_token.
	KindInsufficientScope Kind = "insufficient_scope"
	// KindUnavailable means the identity provider's discovery document or
	// JWKS could not be obtained and no cached keys decide the question.
	KindUnavailable Kind = "idp_unavailable"
)

// Sentinels, one per Kind, for errors.Is.
var (
	ErrInvalidToken      = errors.New("inbound: invalid token")
	ErrBadSignature      = errors.New("inbound: bad signature")
	ErrExpired           = errors.New("inbound: token expired")
	ErrNotYetValid       = errors.New("inbound: token not yet valid")
	ErrUntrustedIssuer   = errors.New("inbound: untrusted issuer")
	ErrClaimMismatch     = errors.New("inbound: claim mismatch")
	ErrInsufficientScope = errors.New("inbound: insufficient scope")
	ErrUnavailable       = errors.New("inbound: identity provider unavailable")
)

// Sentinel returns the errors.Is sentinel of k, or nil for an unknown kind.
func (k Kind) Sentinel() error {
	switch k {
	case KindInvalidToken:
		return ErrInvalidToken
	case KindBadSignature:
		return ErrBadSignature
	case KindExpired:
		return ErrExpired
	case KindNotYetValid:
		return ErrNotYetValid
	case KindUntrustedIssuer:
		return ErrUntrustedIssuer
	case KindClaimMismatch:
		return ErrClaimMismatch
	case KindInsufficientScope:
		return ErrInsufficientScope
	case KindUnavailable:
		return ErrUnavailable
	}
	return nil
}

// Error is the error Verify returns for a token it does not accept.
//
// Message is written for the API caller: it says what is wrong and never
// contains the token or key material. Cause, when set, carries private
// detail (a network error, an IdP's malformed document) for logs only; it is
// reachable through errors.Unwrap/As but is not part of Error().
type Error struct {
	Kind    Kind
	Message string
	Cause   error
}

func (e *Error) Error() string { return "inbound: " + e.Message }

// Unwrap exposes the kind's sentinel (so errors.Is(err, ErrExpired) works)
// and the private cause.
func (e *Error) Unwrap() []error {
	errs := []error{e.Kind.Sentinel()}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// KindOf returns the Kind of err, or "" when err is not (or does not wrap)
// an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

func newError(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// quote renders an attacker-controlled string for an error message: quoted
// (so control characters are escaped) and cut short.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return fmt.Sprintf("%q…", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

// quoteList renders at most a few attacker-controlled strings.
func quoteList(ss []string) string {
	const limit = 5
	parts := make([]string, 0, min(len(ss), limit)+1)
	for i, s := range ss {
		if i == limit {
			parts = append(parts, fmt.Sprintf("… (%d more)", len(ss)-limit))
			break
		}
		parts = append(parts, quote(s))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
