package behalfapi

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
	// Resource is the resource its metadata names.
	Resource               string   `json:"resource"`
	ResourceName           string   `json:"resourceName,omitempty"`
	ResourceMetadataURL    string   `json:"resourceMetadataUrl"`
	ResourceMetadataSource string   `json:"resourceMetadataSource"`
	ResourceScopes         []string `json:"resourceScopes"`
	ChallengeScopes        []string `json:"challengeScopes"`
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
