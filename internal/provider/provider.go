// Package provider holds the stored, non-secret configuration of an OAuth2
// credential provider: what the administrator configured (echoed back by
// the control plane) and the endpoints resolved from it at creation (used
// by the data plane), plus discovery of authorization-server metadata.
package provider

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/behalf-dev/behalf/internal/oauthvendor"
)

// OAuth2 is an OAuth2 credential provider's configuration.
type OAuth2 struct {
	Vendor   string `json:"vendor"`
	Member   string `json:"member"`
	ClientID string `json:"clientId,omitempty"`

	// As configured.
	TenantID                   string              `json:"tenantId,omitempty"`
	Issuer                     string              `json:"issuer,omitempty"`
	AuthorizationEndpoint      string              `json:"authorizationEndpoint,omitempty"`
	TokenEndpoint              string              `json:"tokenEndpoint,omitempty"`
	DiscoveryURL               string              `json:"discoveryUrl,omitempty"`
	Metadata                   *ConfiguredMetadata `json:"metadata,omitempty"`
	ClientAuthenticationMethod string              `json:"clientAuthenticationMethod,omitempty"`
	// PrivateKeyJWT is the key and claims of the client's assertions with
	// ClientAuthenticationMethod PRIVATE_KEY_JWT.
	PrivateKeyJWT *PrivateKeyJWT      `json:"privateKeyJwt,omitempty"`
	OnBehalfOf    *OnBehalfOfExchange `json:"onBehalfOf,omitempty"`
	// MCP is set on a provider created from a remote MCP server's URL
	// (CreateMcpServerCredentialProvider).
	MCP *MCPServer `json:"mcp,omitempty"`

	// Resolved is what the data plane uses.
	Resolved Metadata `json:"resolved"`
}

// ConfiguredMetadata is AgentCore's authorizationServerMetadata input.
type ConfiguredMetadata struct {
	Issuer                   string   `json:"issuer"`
	AuthorizationEndpoint    string   `json:"authorizationEndpoint"`
	TokenEndpoint            string   `json:"tokenEndpoint"`
	ResponseTypes            []string `json:"responseTypes,omitempty"`
	TokenEndpointAuthMethods []string `json:"tokenEndpointAuthMethods,omitempty"`
}

// Client authentication methods (AgentCore's
// ClientAuthenticationMethodType).
const (
	ClientSecretBasic = "CLIENT_SECRET_BASIC"
	ClientSecretPost  = "CLIENT_SECRET_POST"
	PrivateKeyJWTAuth = "PRIVATE_KEY_JWT"
	AWSIAMIDTokenJWT  = "AWS_IAM_ID_TOKEN_JWT" //nolint:gosec // G101: an enum value
)

// PrivateKeyJWT configures private_key_jwt client authentication (RFC
// 7523 §2.2) with a key that a key-management backend holds (AgentCore's
// privateKeyJwtConfig). None of it is secret.
type PrivateKeyJWT struct {
	// KeyID names the key in its backend (vault.Keys): an AWS KMS key ARN
	// (kmsKeyArn) or a PKCS#11 URI.
	KeyID            string `json:"keyId"`
	SigningAlgorithm string `json:"signingAlgorithm"`
	// HeaderClaims and PayloadClaims are added to each assertion
	// (oauthclient.AssertionSigner, oauthclient.Request.AssertionClaims).
	HeaderClaims  map[string]string `json:"headerClaims,omitempty"`
	PayloadClaims map[string]string `json:"payloadClaims,omitempty"`
}

// OnBehalfOfExchange configures ON_BEHALF_OF_TOKEN_EXCHANGE.
type OnBehalfOfExchange struct {
	GrantType         string   `json:"grantType"`
	ActorTokenContent string   `json:"actorTokenContent,omitempty"`
	ActorTokenScopes  []string `json:"actorTokenScopes,omitempty"`
	// ClientAuthenticationMethod is onBehalfOfAuthenticationConfig's:
	// OnBehalfOfNoClient, or "" to authenticate the client as for the
	// provider's other token requests.
	ClientAuthenticationMethod string `json:"clientAuthenticationMethod,omitempty"`
}

// On-behalf-of grant types (AgentCore's OnBehalfOfTokenExchangeGrantType)
// and actor token contents (ActorTokenContentType).
const (
	GrantTokenExchange    = "TOKEN_EXCHANGE"          // RFC 8693
	GrantJWTAuthorization = "JWT_AUTHORIZATION_GRANT" // RFC 7523 §2.1
	ActorNone             = "NONE"
	ActorM2M              = "M2M"
	ActorAWSIAMIDToken    = "AWS_IAM_ID_TOKEN_JWT" //nolint:gosec // G101: an enum value
	// OnBehalfOfNoClient (OnBehalfOfClientAuthenticationMethod) sends the
	// on-behalf-of request without the client's id or credentials.
	OnBehalfOfNoClient = "NO_CLIENT"
)

// Metadata is authorization-server metadata (RFC 8414 §2), the subset
// behalf uses.
type Metadata struct {
	Issuer                            string   `json:"issuer,omitempty"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                     string   `json:"token_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	// AuthorizationResponseIssParameterSupported: the server sends iss
	// with its authorization responses (RFC 9207 §3), so a callback
	// without it, or with another, is refused.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// ScopesSupported is the server's scopes_supported, recorded for MCP
	// server providers (RefreshScopes reads offline_access from it).
	ScopesSupported []string `json:"scopes_supported,omitempty"`
}

// Client registration kinds of an MCP server provider, in the MCP
// specification's order of preference ("Client Registration Approaches").
const (
	RegistrationPreregistered    = "PREREGISTERED"
	RegistrationMetadataDocument = "CLIENT_ID_METADATA_DOCUMENT"
	RegistrationDynamic          = "DYNAMIC"
)

// MCPServer is what behalf learned of a remote MCP server and how it is
// registered at its authorization server. The client (OAuth2.ClientID and
// the sealed secret) belongs to Issuer: when discovery finds another
// issuer, the client is registered again.
type MCPServer struct {
	// ServerURL is the URL the administrator gave; Resource the server's
	// canonical URI, sent as RFC 8707 resource on every request.
	ServerURL string `json:"serverUrl"`
	Resource  string `json:"resource"`
	Issuer    string `json:"issuer"`
	// AuthorizationServerSource is how discovery found the issuer
	// (mcpauth.Discovery); "" in configurations stored before it was
	// recorded, when it was always the resource metadata.
	AuthorizationServerSource string `json:"authorizationServerSource,omitempty"`
	// Registration is one of the Registration constants.
	Registration string   `json:"registration"`
	RegisteredAt int64    `json:"registeredAt"`
	Scopes       []string `json:"scopes,omitempty"`
	// TokenEndpointAuthMethod is how the client authenticates (RFC 7591
	// §2): none (a public client), client_secret_basic,
	// client_secret_post or private_key_jwt, whose key is sealed where a
	// client secret would be and signs with SigningAlgorithm — or, for a
	// Client ID Metadata Document's client, is behalf's own MCP client key
	// (SignsWithOwnKey).
	TokenEndpointAuthMethod string `json:"tokenEndpointAuthMethod"`
	SigningAlgorithm        string `json:"signingAlgorithm,omitempty"`
	// IdentityProvider, when set, names the OAuth2 credential provider of
	// the enterprise IdP whose ID-JAGs this server's authorization server
	// accepts (enterprise-managed authorization): USER_FEDERATION trades
	// the user's ID token there for an ID-JAG and redeems it, with no
	// consent page.
	IdentityProvider string `json:"identityProvider,omitempty"`
}

// Decode parses a stored configuration.
func Decode(raw []byte) (OAuth2, error) {
	var c OAuth2
	if err := json.Unmarshal(raw, &c); err != nil {
		return OAuth2{}, fmt.Errorf("provider: stored configuration is corrupt: %w", err)
	}
	return c, nil
}

// Encode serializes the configuration for storage.
func (c OAuth2) Encode() []byte {
	raw, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain strings and slices always marshal
	}
	return raw
}

// VendorInfo returns the vendor's catalogue entry.
func (c OAuth2) VendorInfo() oauthvendor.Vendor {
	v, _ := oauthvendor.Lookup(c.Vendor)
	return v
}

// AuthMethod is how behalf authenticates to the token endpoint: the
// configured method if any, else one the server advertises (preferring
// client_secret_basic, which RFC 6749 §2.3.1 requires servers to support),
// else the vendor's default.
func (c OAuth2) AuthMethod() oauthvendor.AuthMethod {
	if c.MCP != nil {
		// A public client (none) sends its client_id in the form, as
		// client_secret_post does, without a secret (RFC 6749 §3.2.1).
		switch m := oauthvendor.AuthMethod(c.MCP.TokenEndpointAuthMethod); m {
		case oauthvendor.ClientSecretBasic, oauthvendor.PrivateKeyJWT:
			return m
		}
		return oauthvendor.ClientSecretPost
	}
	switch c.ClientAuthenticationMethod {
	case ClientSecretBasic:
		return oauthvendor.ClientSecretBasic
	case ClientSecretPost:
		return oauthvendor.ClientSecretPost
	case PrivateKeyJWTAuth:
		return oauthvendor.PrivateKeyJWT
	}
	if m := c.Resolved.TokenEndpointAuthMethodsSupported; len(m) > 0 {
		if slices.Contains(m, string(oauthvendor.ClientSecretBasic)) {
			return oauthvendor.ClientSecretBasic
		}
		if slices.Contains(m, string(oauthvendor.ClientSecretPost)) {
			return oauthvendor.ClientSecretPost
		}
	}
	if v := c.VendorInfo(); v.TokenAuthMethod != "" {
		return v.TokenAuthMethod
	}
	return oauthvendor.ClientSecretBasic
}

// SignsWithOwnKey reports whether the client authenticates with
// private_key_jwt signed by behalf's own MCP client key (held in the
// vault, its public half published; a Client ID Metadata Document's
// client), rather than a key in the client secret slot.
func (c OAuth2) SignsWithOwnKey() bool {
	return c.MCP != nil && c.MCP.Registration == RegistrationMetadataDocument &&
		c.MCP.TokenEndpointAuthMethod == string(oauthvendor.PrivateKeyJWT)
}

// UpdateOperation names the operation that sets the provider's client
// credential: MCP server providers have their own.
func (c OAuth2) UpdateOperation() string {
	if c.MCP != nil {
		return "UpdateMcpServerCredentialProvider"
	}
	return "UpdateOauth2CredentialProvider"
}

// SigningAlgorithm is the algorithm of private_key_jwt client assertions.
func (c OAuth2) SigningAlgorithm() string {
	switch {
	case c.PrivateKeyJWT != nil:
		return c.PrivateKeyJWT.SigningAlgorithm
	case c.MCP != nil:
		return c.MCP.SigningAlgorithm
	}
	return ""
}

// AssertionClaims are the additional payload claims of the client's
// assertions.
func (c OAuth2) AssertionClaims() map[string]string {
	if c.PrivateKeyJWT == nil {
		return nil
	}
	return c.PrivateKeyJWT.PayloadClaims
}

// PKCE reports whether to use PKCE with S256 (RFC 7636): always, unless
// the vendor is known not to support it or the server's metadata says it
// supports other methods only.
func (c OAuth2) PKCE() bool {
	if c.MCP != nil {
		return true // MCP authorization requires S256; creation checked it
	}
	if m := c.Resolved.CodeChallengeMethodsSupported; len(m) > 0 {
		return slices.Contains(m, "S256")
	}
	if c.Vendor == "CustomOauth2" {
		return true
	}
	return c.VendorInfo().PKCE
}

// Scopes are the scopes a request asks for: those requested or, when
// none are, an MCP server provider's selection made at discovery (MCP
// authorization 2025-11-25, "Scope Selection Strategy": the challenge's
// scope, else the protected resource's scopes_supported, else none).
func (c OAuth2) Scopes(requested []string) []string {
	if c.MCP == nil || len(requested) > 0 {
		return requested
	}
	return slices.Clone(c.MCP.Scopes)
}

// OfflineAccess is the scope that asks for a refresh token (OpenID
// Connect Core §11). It grants the access token nothing, so a grant
// answers a request whether it has it or not.
const OfflineAccess = "offline_access"

// RefreshScopes are scopes an authorization request adds so that the
// provider issues a refresh token: the vendor's, or for an MCP server
// provider offline_access when its authorization server advertises it in
// scopes_supported, and never otherwise (MCP SEP-2207).
func (c OAuth2) RefreshScopes() []string {
	if c.MCP != nil {
		if slices.Contains(c.Resolved.ScopesSupported, OfflineAccess) {
			return []string{OfflineAccess}
		}
		return nil
	}
	return c.VendorInfo().RefreshScopes
}

// Resources are the RFC 8707 resource parameters of a request for the
// resources requested: an MCP server provider's tokens are always for its
// server (MCP authorization, "Resource Parameter Implementation").
func (c OAuth2) Resources(requested []string) []string {
	if c.MCP == nil || slices.Contains(requested, c.MCP.Resource) {
		return requested
	}
	return append(slices.Clone(requested), c.MCP.Resource)
}
