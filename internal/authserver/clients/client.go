package clients

import "slices"

// Kind says where a client's registration comes from.
type Kind int

const (
	// KindPreregistered clients are listed in behalf's configuration.
	KindPreregistered Kind = iota
	// KindMetadataDocument clients are named by the https URL of their
	// Client ID Metadata Document.
	KindMetadataDocument
	// KindDynamic clients registered themselves (RFC 7591).
	KindDynamic
)

// Client is an OAuth client as the authorization server sees it.
type Client struct {
	ID, Name, URI            string // client_id, client_name (shown on consent), client_uri
	Kind                     Kind
	RedirectURIs, GrantTypes []string
	ApplicationType          string // "native" | "web"
	TokenEndpointAuthMethod  string // "none" | "client_secret_basic" | "client_secret_post" | "private_key_jwt"
}

// Public reports whether the client has no credentials (OAuth 2.1 §2.1).
func (c Client) Public() bool { return c.TokenEndpointAuthMethod == "none" }

// AllowsRedirect reports whether uri is one of the client's redirect URIs,
// compared as exact strings (OAuth 2.1 §4.1.1).
func (c Client) AllowsRedirect(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

// AllowsGrant reports whether the client may use grantType.
func (c Client) AllowsGrant(grantType string) bool { return slices.Contains(c.GrantTypes, grantType) }
