package sigv4

import "errors"

// ErrUnknownKey is what [Verifier.Lookup] returns (or wraps) when it does not
// know an access key id. Verify turns it into an [*Error] of [KindUnknownKey];
// any other Lookup error is returned wrapped, as an internal failure.
var ErrUnknownKey = errors.New("sigv4: unknown access key id")

// Kind classifies why a request failed verification.
//
// The AgentCore wire mapping is: KindMissingAuth, KindMalformed and
// KindUnknownKey are UnauthorizedException (HTTP 401); KindWrongScope,
// KindTimeSkew, KindSignatureMismatch and KindUnsupported are
// AccessDeniedException (HTTP 403). [Error.Unauthenticated] encodes it.
type Kind uint8

const (
	// KindMissingAuth means no Authorization header.
	KindMissingAuth Kind = iota + 1
	// KindMalformed means the Authorization header, X-Amz-Date, Host, the
	// query string or the set of signed headers breaks the strict rules.
	KindMalformed
	// KindUnknownKey means the access key id is not known to Lookup.
	KindUnknownKey
	// KindWrongScope means the credential scope names another service,
	// region, terminator or date than X-Amz-Date.
	KindWrongScope
	// KindTimeSkew means X-Amz-Date is more than MaxSkew away from the
	// server clock.
	KindTimeSkew
	// KindSignatureMismatch means the signature does not match the request as
	// received (wrong secret, tampered body or header, dropped signed header).
	KindSignatureMismatch
	// KindUnsupported means the request is well-formed but uses something
	// behalf does not do: session tokens, presigned URLs, other algorithms,
	// unsigned payloads.
	KindUnsupported
)

var kindNames = [...]string{
	KindMissingAuth:       "missing authentication",
	KindMalformed:         "malformed authorization",
	KindUnknownKey:        "unknown access key",
	KindWrongScope:        "wrong credential scope",
	KindTimeSkew:          "request time too skewed",
	KindSignatureMismatch: "signature mismatch",
	KindUnsupported:       "unsupported authentication",
}

// String returns a short lowercase label, suitable for logs and metrics.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown kind"
}

// Error is a verification failure. Message is safe to send to the client: it
// never contains the secret, the expected signature or the canonical request.
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string { return "sigv4: " + e.Kind.String() + ": " + e.Message }

// Unauthenticated reports whether the signer could not be identified at all
// (missing or malformed authentication, unknown key): AWS answers those with
// UnauthorizedException (401), and all other kinds with
// AccessDeniedException (403).
func (e *Error) Unauthenticated() bool {
	switch e.Kind {
	case KindMissingAuth, KindMalformed, KindUnknownKey:
		return true
	}
	return false
}

func newError(k Kind, msg string) *Error { return &Error{Kind: k, Message: msg} }
