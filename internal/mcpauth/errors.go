package mcpauth

import (
	"errors"
	"fmt"
)

// Step names the part of discovery that failed.
type Step string

// The steps of Discover, in order.
const (
	StepInput                 Step = "input"
	StepProbe                 Step = "probe"
	StepResourceMetadata      Step = "protected-resource-metadata"
	StepAuthorizationMetadata Step = "authorization-server-metadata"
)

// The reasons discovery refuses a server. Test for them with errors.Is; a
// *DiscoveryError wraps exactly one.
var (
	// ErrInvalidURL: the server URL, or a URL a document names, is not an
	// absolute https URL (http only on a loopback host) without user
	// information.
	ErrInvalidURL = errors.New("invalid URL")
	// ErrNotProtected: the server did not answer the unauthenticated
	// probe with 401 and a Bearer challenge, so it is not an MCP server
	// that uses OAuth authorization.
	ErrNotProtected = errors.New("not an OAuth-protected MCP server")
	// ErrChallenge: the 401's WWW-Authenticate header is malformed.
	ErrChallenge = errors.New("malformed WWW-Authenticate challenge")
	// ErrResourceMetadata: no protected resource metadata (RFC 9728) was
	// found, or the document is not valid.
	ErrResourceMetadata = errors.New("protected resource metadata missing or invalid")
	// errNoResourceMetadata is ErrResourceMetadata when none of the URIs
	// served the metadata.
	errNoResourceMetadata = fmt.Errorf("%w", ErrResourceMetadata)
	// errResourceMetadataNotFound is errNoResourceMetadata when every
	// well-known URI answered 404 and the challenge named none: the
	// server offers no metadata at all.
	errResourceMetadataNotFound = fmt.Errorf("%w", errNoResourceMetadata)
	// ErrResourceMismatch: the metadata's resource is not the server
	// (RFC 9728 §3.3): it may be another resource's.
	ErrResourceMismatch = errors.New("protected resource metadata is for another resource")
	// ErrNoAuthorizationServer: the metadata names no authorization
	// server.
	ErrNoAuthorizationServer = errors.New("no authorization server")
	// ErrAuthorizationMetadata: no authorization server metadata (RFC
	// 8414, OpenID Connect Discovery) was found, or it is not valid.
	ErrAuthorizationMetadata = errors.New("authorization server metadata missing or invalid")
	// ErrIssuerMismatch: the metadata's issuer is not the issuer it was
	// fetched for (RFC 8414 §3.3): it must not be used.
	ErrIssuerMismatch = errors.New("authorization server metadata is for another issuer")
	// ErrNoPKCE: the authorization server does not advertise PKCE with
	// S256, and an MCP client must not proceed (MCP authorization,
	// "Authorization Code Protection").
	ErrNoPKCE = errors.New("authorization server does not support PKCE S256")
	// ErrUnreachable: a URL could not be fetched. Behalf's egress policy
	// refusing the address is one cause; egress answers every failure to
	// connect alike, so that discovery cannot map a network, and logs
	// the cause.
	ErrUnreachable = errors.New("unreachable or denied by the egress policy")
	// ErrTooLarge: a response body exceeds MaxDocument.
	ErrTooLarge = errors.New("response too large")
	// ErrTimeout: discovery ran out of time.
	ErrTimeout = errors.New("timed out")
)

// DiscoveryError is a failed discovery: the step, the sentinel error it
// wraps, and a reason that is safe to show to an administrator (it names
// URLs and statuses, never a response body).
type DiscoveryError struct {
	Step Step
	// URL is the URL fetched when the step failed, if any.
	URL    string
	Reason string
	Err    error
}

func (e *DiscoveryError) Error() string {
	s := "mcpauth: " + string(e.Step) + ": " + e.Err.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.URL != "" {
		s += " (" + e.URL + ")"
	}
	return s
}

func (e *DiscoveryError) Unwrap() error { return e.Err }
