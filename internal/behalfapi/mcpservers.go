package behalfapi

import "encoding/json"

// DiscoverMcpServerInput names an MCP server, for DiscoverMcpServer.
type DiscoverMcpServerInput struct {
	ServerURL string `json:"serverUrl"`
}

// DiscoverMcpServerOutput is how an MCP server is authorized: its
// protected resource metadata (RFC 9728), the scopes a client would ask
// for, and its authorization server's metadata (RFC 8414).
type DiscoverMcpServerOutput struct {
	// ServerURL is the server's canonical URI.
	ServerURL string `json:"serverUrl"`
	// Resource is the RFC 8707 resource of the server's tokens: the
	// canonical URI of the resource its metadata names, or the server's
	// when it serves none.
	Resource     string `json:"resource"`
	ResourceName string `json:"resourceName,omitempty"`
	// ResourceMetadataSource is challenge, path, root, or none: the
	// server serves no protected resource metadata, and
	// AuthorizationServerSource is origin-metadata or default-endpoints
	// (MCP authorization 2025-03-26) instead of resource-metadata.
	ResourceMetadataURL       string   `json:"resourceMetadataUrl"`
	ResourceMetadataSource    string   `json:"resourceMetadataSource"`
	AuthorizationServerSource string   `json:"authorizationServerSource"`
	ResourceScopes            []string `json:"resourceScopes"`
	ChallengeScopes           []string `json:"challengeScopes"`
	// Scopes and ScopeSource are what a client asks for and why.
	Scopes               []string               `json:"scopes"`
	ScopeSource          string                 `json:"scopeSource,omitempty"`
	AuthorizationServers []string               `json:"authorizationServers"`
	AuthorizationServer  McpAuthorizationServer `json:"authorizationServer"`
}

// McpAuthorizationServer is the metadata of the authorization server an
// MCP client uses.
type McpAuthorizationServer struct {
	Issuer                                     string   `json:"issuer"`
	MetadataURL                                string   `json:"metadataUrl"`
	AuthorizationEndpoint                      string   `json:"authorizationEndpoint,omitempty"`
	TokenEndpoint                              string   `json:"tokenEndpoint"`
	RegistrationEndpoint                       string   `json:"registrationEndpoint,omitempty"`
	RevocationEndpoint                         string   `json:"revocationEndpoint,omitempty"`
	ScopesSupported                            []string `json:"scopesSupported"`
	GrantTypesSupported                        []string `json:"grantTypesSupported"`
	TokenEndpointAuthMethodsSupported          []string `json:"tokenEndpointAuthMethodsSupported"`
	CodeChallengeMethodsSupported              []string `json:"codeChallengeMethodsSupported"`
	ClientIDMetadataDocumentSupported          bool     `json:"clientIdMetadataDocumentSupported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorizationResponseIssParameterSupported"`
	AuthorizationGrantProfilesSupported        []string `json:"authorizationGrantProfilesSupported"`
}

// CreateMcpServerCredentialProviderInput makes a remote MCP server an
// OAuth2 credential provider: behalf discovers its authorization and
// registers a client there, unless ClientID names one registered already.
type CreateMcpServerCredentialProviderInput struct {
	Name      string `json:"name"`
	ServerURL string `json:"serverUrl"`
	// Scopes agents are expected to ask for; by default those discovery
	// selects.
	Scopes       []string `json:"scopes,omitempty"`
	ClientID     *string  `json:"clientId,omitempty"`
	ClientSecret *string  `json:"clientSecret,omitempty"`
	// ClientPrivateKey is the client's PEM private key, instead of a
	// secret: behalf authenticates with private_key_jwt (RFC 7523 §2.2),
	// signing with SigningAlgorithm (RS256, PS256 or ES256; by default
	// ES256 for an EC key, RS256 for an RSA key).
	ClientPrivateKey *string `json:"clientPrivateKey,omitempty"`
	SigningAlgorithm *string `json:"signingAlgorithm,omitempty"`
	// TokenEndpointAuthMethod is how the pre-registered client sends its
	// secret: client_secret_basic or client_secret_post (by default basic,
	// unless the authorization server offers only post).
	TokenEndpointAuthMethod *string `json:"tokenEndpointAuthMethod,omitempty"`
	// ClientMetadataDocumentURL, instead of a client id, is where the
	// administrator serves behalf's Client ID Metadata Document, for an
	// authorization server that cannot reach behalf's public URL: the
	// output's ClientMetadataDocument is the document to serve there.
	ClientMetadataDocumentURL *string `json:"clientMetadataDocumentUrl,omitempty"`
	// IdentityProvider names the OAuth2 credential provider of the
	// enterprise IdP that issues ID-JAGs for the server's authorization
	// server (enterprise-managed authorization): tokens are then obtained
	// with the user's ID token, with no consent page.
	IdentityProvider *string           `json:"identityProvider,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
}

// UpdateMcpServerCredentialProviderInput discovers the server's
// authorization again; a client id (and secret) given replaces the
// registered client.
type UpdateMcpServerCredentialProviderInput struct {
	Name                    string  `json:"name"`
	ClientID                *string `json:"clientId,omitempty"`
	ClientSecret            *string `json:"clientSecret,omitempty"`
	ClientPrivateKey        *string `json:"clientPrivateKey,omitempty"`
	SigningAlgorithm        *string `json:"signingAlgorithm,omitempty"`
	TokenEndpointAuthMethod *string `json:"tokenEndpointAuthMethod,omitempty"`
	// IdentityProvider, when given, replaces the enterprise IdP; "" turns
	// enterprise-managed authorization off.
	IdentityProvider *string `json:"identityProvider,omitempty"`
}

// McpServerCredentialProviderOutput is an MCP server provider: an OAuth2
// credential provider (GetOauth2CredentialProvider, ListOauth2CredentialProviders
// and DeleteOauth2CredentialProvider serve it too) with what behalf
// learned of the server and how its client is registered.
type McpServerCredentialProviderOutput struct {
	Name                  string `json:"name"`
	CredentialProviderArn string `json:"credentialProviderArn"`
	CallbackURL           string `json:"callbackUrl"`
	McpServer
	ClientID string `json:"clientId"`
	// Reregistered: the update found another issuer, registered a client
	// there and ended the provider's sessions and connections.
	Reregistered bool `json:"reregistered,omitempty"`
	// ClientMetadataDocument is the document to serve at
	// clientMetadataDocumentUrl when the administrator hosts it.
	ClientMetadataDocument json.RawMessage `json:"clientMetadataDocument,omitempty"`
}

// McpServer is an MCP server provider's server and registration.
type McpServer struct {
	ServerURL string `json:"serverUrl"`
	// Resource is the server's canonical URI, the RFC 8707 resource of
	// every token request.
	Resource string `json:"resource"`
	Issuer   string `json:"issuer"`
	// AuthorizationServerSource is how discovery found the issuer:
	// resource-metadata, origin-metadata or default-endpoints (the last
	// two for a server of MCP authorization 2025-03-26).
	AuthorizationServerSource string   `json:"authorizationServerSource"`
	Scopes                    []string `json:"scopes"`
	// Registration is PREREGISTERED, CLIENT_ID_METADATA_DOCUMENT or
	// DYNAMIC.
	Registration string `json:"registration"`
	// TokenEndpointAuthMethod is how behalf authenticates its client:
	// none, client_secret_basic, client_secret_post or private_key_jwt.
	TokenEndpointAuthMethod string `json:"tokenEndpointAuthMethod,omitempty"`
	SigningAlgorithm        string `json:"signingAlgorithm,omitempty"`
	// ClientMetadataDocumentURL is where behalf (or the administrator)
	// serves the client's
	// metadata document (CLIENT_ID_METADATA_DOCUMENT): the client id.
	ClientMetadataDocumentURL string `json:"clientMetadataDocumentUrl,omitempty"`
	RegisteredTime            Time   `json:"registeredTime"`
	// IdentityProvider is the enterprise IdP's provider, if the server's
	// tokens are obtained with ID-JAGs.
	IdentityProvider string `json:"identityProvider,omitempty"`
}
