// Package oauthvendor is behalf's declarative catalogue of the 25 OAuth2
// credential-provider vendors of AgentCore Identity's
// CredentialProviderVendorType (AgentCore Control API reference,
// CreateOauth2CredentialProvider).
//
// Each vendor is one row of a Go table (catalogue.go): which member of the
// oauth2ProviderConfigInput union configures it, its default endpoints, and
// the quirks that the control plane, the client-credentials (M2M) client, the
// authorization-code (3LO) flow, refresh and revocation need. Quirks are data,
// not code: a flow reads Vendor fields instead of switching on vendor
// names, so a new vendor is a new row.
//
// Lookup, All and Names read the table. Vendor.Resolve turns a vendor plus
// the tenant-specific parts of a provider's configuration (Microsoft's
// tenantId; issuer and endpoints of includedOauth2ProviderConfig; the
// discovery URL or metadata of customOauth2ProviderConfig) into concrete,
// validated Endpoints.
//
// # Vendors at a glance
//
// Token endpoints are https URLs (scheme omitted). auth is the default token
// endpoint client authentication: basic = client_secret_basic, post =
// client_secret_post (RFC 6749 §2.3.1). pkce is RFC 7636 S256 support in the
// authorization-code flow; m2m is the client_credentials grant (RFC 6749
// §4.4). revocation is rfc7009 (RFC 7009 §2.1), the vendor-specific bearer
// or github shapes (see RevocationStyle), none, or discovery when it can only
// come from the provider's discovery document. Each row's Sources field names
// the documents it was checked against. TestDocTable keeps this table in step
// with the catalogue.
//
//	vendor            token endpoint                                       auth   pkce m2m  revocation
//	GoogleOauth2      oauth2.googleapis.com/token                          post   yes  no   rfc7009
//	GithubOauth2      github.com/login/oauth/access_token                  post   yes  no   github
//	SlackOauth2       slack.com/api/oauth.v2.access                        basic  yes  no   bearer
//	SalesforceOauth2  login.salesforce.com/services/oauth2/token           post   yes  no   rfc7009
//	MicrosoftOauth2   login.microsoftonline.com/{tenant}/oauth2/v2.0/token post   yes  yes  none
//	CustomOauth2      (from configuration)                                 post   no   yes  discovery
//	AtlassianOauth2   auth.atlassian.com/oauth/token                       post   no   yes  none
//	LinkedinOauth2    www.linkedin.com/oauth/v2/accessToken                post   no   yes  rfc7009
//	XOauth2           api.x.com/2/oauth2/token                             basic  yes  no   rfc7009
//	OktaOauth2        (from configuration)                                 basic  yes  yes  discovery
//	OneLoginOauth2    (from configuration)                                 basic  yes  yes  discovery
//	PingOneOauth2     (from configuration)                                 basic  yes  yes  discovery
//	FacebookOauth2    graph.facebook.com/v22.0/oauth/access_token          post   no   yes  none
//	YandexOauth2      oauth.yandex.com/token                               post   yes  no   none
//	RedditOauth2      www.reddit.com/api/v1/access_token                   basic  no   yes  rfc7009
//	ZoomOauth2        zoom.us/oauth/token                                  basic  yes  no   rfc7009
//	TwitchOauth2      id.twitch.tv/oauth2/token                            post   no   yes  rfc7009
//	SpotifyOauth2     accounts.spotify.com/api/token                       basic  yes  yes  none
//	DropboxOauth2     api.dropboxapi.com/oauth2/token                      post   yes  no   bearer
//	NotionOauth2      api.notion.com/v1/oauth/token                        basic  no   no   rfc7009
//	HubspotOauth2     api.hubapi.com/oauth/2026-03/token                   post   yes  no   rfc7009
//	CyberArkOauth2    (from configuration)                                 basic  no   yes  discovery
//	FusionAuthOauth2  (from configuration)                                 basic  yes  yes  discovery
//	Auth0Oauth2       (from configuration)                                 post   yes  yes  discovery
//	CognitoOauth2     (from configuration)                                 basic  yes  yes  discovery
//
// The rows were checked against each vendor's own documentation where the
// search index had it, and cross-checked against two well-known catalogues:
// NangoHQ/nango packages/providers/providers.yaml (commit 2f4c0af) and
// golang.org/x/oauth2/endpoints (commit 89ff2e1). What could not be confirmed
// is stated in the row's Unconfirmed field; TestUnconfirmedIsDocumented keeps
// that list and the report in step.
//
// # Non-goals
//
// This package does no I/O: it does not fetch discovery documents, build
// authorization URLs, or send token requests. Resolve never contacts the
// network; when it returns a DiscoveryURL the caller fetches it (with a
// bounded read) and fills in the endpoints itself. The package does not
// decide which scopes a caller asks for; RefreshScopes and
// AuthorizationParams only describe what a vendor needs.
package oauthvendor
