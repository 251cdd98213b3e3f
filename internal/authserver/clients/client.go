// Package clients resolves and authenticates the authorization server's
// OAuth clients: pre-registered ones, clients named by a Client ID
// Metadata Document, and clients registered dynamically (RFC 7591).
package clients

import "slices"

// Kind says where a client comes from.
type Kind int

// The kinds of clients.
const (
	// Preregistered clients are in the configuration.
	Preregistered Kind = iota + 1
	// MetadataDocument clients are named by the https URL of their
	// metadata document (Client ID Metadata Documents).
	MetadataDocument
	// Dynamic clients registered themselves (RFC 7591).
	Dynamic
)

// Client is a resolved client.
type Client struct {
	// ID is the client_id, Name the client_name shown on the consent
	// page, URI the client_uri.
	ID, Name, URI string
	Kind          Kind
	RedirectURIs  []string
	GrantTypes    []string
	// ApplicationType is "native" or "web".
	ApplicationType string
	// TokenEndpointAuthMethod is "none", "client_secret_basic",
	// "client_secret_post" or "private_key_jwt".
	TokenEndpointAuthMethod string
}

// Public reports whether the client has no credentials (RFC 6749 §2.1).
func (c Client) Public() bool { return c.TokenEndpointAuthMethod == "none" }

// AllowsRedirect reports whether uri is one of the client's redirect URIs,
// compared exactly (OAuth 2.1 §4.1.1).
func (c Client) AllowsRedirect(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

// AllowsGrant reports whether the client may use the grant type.
func (c Client) AllowsGrant(grantType string) bool { return slices.Contains(c.GrantTypes, grantType) }
