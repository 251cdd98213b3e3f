package oauthvendor

import (
	"maps"
	"slices"
	"strings"
)

// Vendor names: the values of AgentCore's CredentialProviderVendorType, in
// the order the API model lists them.
const (
	GoogleOauth2     = "GoogleOauth2"
	GithubOauth2     = "GithubOauth2"
	SlackOauth2      = "SlackOauth2"
	SalesforceOauth2 = "SalesforceOauth2"
	MicrosoftOauth2  = "MicrosoftOauth2"
	CustomOauth2     = "CustomOauth2"
	AtlassianOauth2  = "AtlassianOauth2"
	LinkedinOauth2   = "LinkedinOauth2"
	XOauth2          = "XOauth2"
	OktaOauth2       = "OktaOauth2"
	OneLoginOauth2   = "OneLoginOauth2"
	PingOneOauth2    = "PingOneOauth2"
	FacebookOauth2   = "FacebookOauth2"
	YandexOauth2     = "YandexOauth2"
	RedditOauth2     = "RedditOauth2"
	ZoomOauth2       = "ZoomOauth2"
	TwitchOauth2     = "TwitchOauth2"
	SpotifyOauth2    = "SpotifyOauth2"
	DropboxOauth2    = "DropboxOauth2"
	NotionOauth2     = "NotionOauth2"
	HubspotOauth2    = "HubspotOauth2"
	CyberArkOauth2   = "CyberArkOauth2"
	FusionAuthOauth2 = "FusionAuthOauth2"
	Auth0Oauth2      = "Auth0Oauth2"
	CognitoOauth2    = "CognitoOauth2"
)

// Members of the Oauth2ProviderConfigInput union (AgentCore Control API
// reference, CreateOauth2CredentialProvider).
// Each vendor is configured through exactly one of them.
const (
	MemberCustom     = "customOauth2ProviderConfig"
	MemberGoogle     = "googleOauth2ProviderConfig"
	MemberGithub     = "githubOauth2ProviderConfig"
	MemberSlack      = "slackOauth2ProviderConfig"
	MemberSalesforce = "salesforceOauth2ProviderConfig"
	MemberMicrosoft  = "microsoftOauth2ProviderConfig"
	MemberAtlassian  = "atlassianOauth2ProviderConfig"
	MemberLinkedin   = "linkedinOauth2ProviderConfig"
	MemberIncluded   = "includedOauth2ProviderConfig"
)

// AuthMethod is how a client authenticates at the token endpoint, named as
// in the token_endpoint_auth_method registry (RFC 7591 §2).
type AuthMethod string

const (
	// ClientSecretBasic sends client_id and client_secret in an HTTP Basic
	// Authorization header (RFC 6749 §2.3.1).
	ClientSecretBasic AuthMethod = "client_secret_basic"
	// ClientSecretPost sends client_id and client_secret as body parameters
	// (RFC 6749 §2.3.1).
	ClientSecretPost AuthMethod = "client_secret_post"
	// PrivateKeyJWT sends client_id and a client assertion signed with the
	// client's private key (RFC 7523 §2.2, OpenID Connect Core §9).
	PrivateKeyJWT AuthMethod = "private_key_jwt"
	// NoClient sends neither client_id nor credentials, for a server that
	// trusts the grant alone: AgentCore's onBehalfOfAuthenticationConfig
	// NO_CLIENT, not a registered method (RFC 7591 §2's none still sends
	// client_id).
	NoClient AuthMethod = "no_client"
)

// BodyFormat is how parameters are encoded in token and revocation request
// bodies.
type BodyFormat string

const (
	// BodyForm is application/x-www-form-urlencoded (RFC 6749 §4.1.3), the
	// standard encoding.
	BodyForm BodyFormat = "form"
	// BodyJSON is application/json with the same parameter names (Notion).
	BodyJSON BodyFormat = "json"
)

// RevocationStyle is the shape of a vendor's token-revocation request.
type RevocationStyle string

const (
	// RevocationNone means the vendor offers no programmatic revocation of a
	// single token, or none is known.
	RevocationNone RevocationStyle = ""
	// RevocationRFC7009 means: POST token (and optionally token_type_hint) to
	// RevocationEndpoint, encoded per TokenBodyFormat and client-authenticated
	// per TokenAuthMethod (RFC 7009 §2.1).
	RevocationRFC7009 RevocationStyle = "rfc7009"
	// RevocationBearer means: POST to RevocationEndpoint with the access token
	// itself as "Authorization: Bearer"; no client authentication. It revokes
	// the presented token (Slack auth.revoke, Dropbox /2/auth/token/revoke).
	RevocationBearer RevocationStyle = "bearer"
	// RevocationGitHub means: DELETE RevocationEndpoint after replacing {client_id},
	// with HTTP Basic client authentication and the JSON body
	// {"access_token": "..."} (GitHub "Delete an app token").
	RevocationGitHub RevocationStyle = "github"
)

// TenantPlaceholder appears in the endpoint templates of a vendor that has a
// DefaultTenant (Microsoft); Resolve replaces it with the tenant.
const TenantPlaceholder = "{tenant}"

// ClientIDPlaceholder appears in a RevocationGitHub endpoint; the revoking
// client replaces it with its client_id.
const ClientIDPlaceholder = "{client_id}"

// Vendor is one credential-provider vendor. The zero value is not a vendor;
// obtain vendors from Lookup or All, which return copies that callers may
// modify freely.
type Vendor struct {
	// Name is the CredentialProviderVendorType value, e.g. "GithubOauth2".
	Name string
	// ConfigMember is the oauth2ProviderConfigInput union member that
	// configures this vendor, e.g. "githubOauth2ProviderConfig".
	ConfigMember string
	// DisplayName is a human-readable name.
	DisplayName string

	// Issuer, AuthorizationEndpoint, TokenEndpoint, RevocationEndpoint and
	// DiscoveryURL are the vendor's defaults. They are empty where the
	// vendor is tenant-scoped or publishes no such endpoint. They may carry
	// TenantPlaceholder; use Resolve to obtain usable values.
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	RevocationEndpoint    string
	DiscoveryURL          string

	// RevocationStyle says how to call RevocationEndpoint.
	RevocationStyle RevocationStyle

	// TenantScoped vendors have no usable default endpoints: every provider
	// must supply an issuer and/or endpoints (includedOauth2ProviderConfig)
	// or discovery (customOauth2ProviderConfig).
	TenantScoped bool
	// DefaultTenant is the tenant Resolve uses when the configuration names
	// none; non-empty only for vendors whose endpoints carry
	// TenantPlaceholder (Microsoft: "common").
	DefaultTenant string
	// OIDC reports that the vendor publishes OpenID Connect Discovery at
	// issuer + "/.well-known/openid-configuration", so an issuer is enough
	// to find the endpoints.
	OIDC bool

	// TokenAuthMethod is what the token endpoint expects by default. For
	// tenant-scoped vendors it is the IdP's default for new confidential
	// clients; the IdP may be configured otherwise, and a discovery
	// document's token_endpoint_auth_methods_supported takes precedence.
	TokenAuthMethod AuthMethod
	// TokenBodyFormat encodes token and RFC 7009 revocation request bodies.
	TokenBodyFormat BodyFormat
	// TokenRequestHeaders are extra headers for token (and revocation)
	// requests, e.g. GitHub's "Accept: application/json".
	TokenRequestHeaders map[string]string
	// TokenErrorsWithStatusOK: the token endpoint may answer HTTP 200 with an
	// error body (GitHub {"error": ...}, Slack {"ok": false, ...}); a client
	// must inspect the body, not only the status.
	TokenErrorsWithStatusOK bool
	// RequiresUserAgent: the vendor throttles or rejects generic User-Agent
	// strings; send a unique, descriptive one (Reddit).
	RequiresUserAgent bool

	// PKCE reports support for RFC 7636 PKCE with S256 in the
	// authorization-code flow.
	PKCE bool
	// SupportsClientCredentials reports that the token endpoint above
	// accepts grant_type=client_credentials (RFC 6749 §4.4) for this kind of
	// client; Notes qualifies partial support.
	SupportsClientCredentials bool

	// ScopeSeparator joins scopes in the scope parameter: " " (RFC 6749
	// §3.3) unless the vendor needs something else.
	ScopeSeparator string
	// AuthorizationParams are extra authorization-request parameters the
	// vendor needs, mostly to obtain a refresh token (Google
	// access_type=offline, Dropbox token_access_type=offline, ...). Caller
	// parameters must not override the standard ones (customParameters of
	// GetResourceOauth2Token; docs/user-federation.md).
	AuthorizationParams map[string]string
	// RefreshScopes are scopes that must be requested for the vendor to
	// issue a refresh token (offline_access, X's offline.access, ...).
	RefreshScopes []string
	// UserScopeParam names a second authorization parameter for user-token
	// scopes (Slack "user_scope"); UserTokenField names the token-response
	// object that then holds the user token (Slack "authed_user").
	UserScopeParam string
	UserTokenField string

	// Notes records quirks that are not (yet) machine-readable.
	Notes string
	// Sources are the documents the row was checked against.
	Sources []string
	// Unconfirmed lists what in this row could not be confirmed from a
	// source; empty when everything was.
	Unconfirmed string
}

// clone returns a deep copy, so that no caller can modify the catalogue.
func (v Vendor) clone() Vendor {
	v.TokenRequestHeaders = maps.Clone(v.TokenRequestHeaders)
	v.AuthorizationParams = maps.Clone(v.AuthorizationParams)
	v.RefreshScopes = slices.Clone(v.RefreshScopes)
	v.Sources = slices.Clone(v.Sources)
	return v
}

// JoinScopes joins scopes with the vendor's ScopeSeparator.
func (v Vendor) JoinScopes(scopes []string) string {
	sep := v.ScopeSeparator
	if sep == "" {
		sep = " "
	}
	return strings.Join(scopes, sep)
}

// Lookup returns the vendor with the given CredentialProviderVendorType
// value. Names are case-sensitive, as in the API.
func Lookup(name string) (Vendor, bool) {
	i, ok := index[name]
	if !ok {
		return Vendor{}, false
	}
	return catalogue[i].clone(), true
}

// All returns every vendor, in the order of the API model's enumeration.
func All() []Vendor {
	out := make([]Vendor, len(catalogue))
	for i, v := range catalogue {
		out[i] = v.clone()
	}
	return out
}

// Names returns every vendor name, in the order of All.
func Names() []string {
	out := make([]string, len(catalogue))
	for i, v := range catalogue {
		out[i] = v.Name
	}
	return out
}

// index maps a vendor name to its row in catalogue.
var index = func() map[string]int {
	m := make(map[string]int, len(catalogue))
	for i, v := range catalogue {
		m[v.Name] = i
	}
	return m
}()
