package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// AuthorizationServerFile makes behalf an OAuth 2.1 authorization server
// for MCP clients (docs/authorization-server.md), mounted on the main
// listener with the public URL as its issuer.
type AuthorizationServerFile struct {
	// Login is where users sign in: an OpenID provider behalf is a client
	// of.
	Login AuthServerLoginFile `yaml:"login"`
	// Resources are the protected resources (MCP servers) it issues
	// tokens for, each with the scopes it offers.
	Resources []AuthServerResourceFile `yaml:"resources"`
	// Clients are the pre-registered clients.
	Clients []AuthServerClientFile `yaml:"clients"`
	// ClientIDMetadataDocuments accepts clients whose client_id is the
	// https URL of their metadata document; default true.
	ClientIDMetadataDocuments *bool `yaml:"clientIdMetadataDocuments"`
	// DynamicRegistration turns on RFC 7591 registration.
	DynamicRegistration AuthServerRegistrationFile `yaml:"dynamicRegistration"`
	// IDJag trusts enterprise identity providers' ID-JAGs, redeemed with
	// the jwt-bearer grant.
	IDJag              AuthServerIDJagFile `yaml:"idJag"`
	AccessTokenTTL     time.Duration       `yaml:"accessTokenTtl"`
	RefreshTokenTTL    time.Duration       `yaml:"refreshTokenTtl"`
	CodeTTL            time.Duration       `yaml:"codeTtl"`
	SigningKeyRotation time.Duration       `yaml:"signingKeyRotation"`
}

// AuthServerLoginFile names the OpenID provider users sign in at.
type AuthServerLoginFile struct {
	// Authorizer names an inboundAuthorizers entry: its discoveryUrl is
	// the provider, its rules verify the ID token.
	Authorizer string `yaml:"authorizer"`
	// ClientID is behalf's client at the provider.
	ClientID string `yaml:"clientId"`
	// ClientSecretFile holds the client secret; unset means a public
	// client (PKCE only).
	ClientSecretFile string   `yaml:"clientSecretFile"`
	Scopes           []string `yaml:"scopes"`
}

// AuthServerResourceFile is one protected resource.
type AuthServerResourceFile struct {
	// Resource is the canonical resource URI (RFC 8707), as an mcp
	// route's resource.
	Resource string   `yaml:"resource"`
	Scopes   []string `yaml:"scopes"`
}

// AuthServerClientFile is a pre-registered client.
type AuthServerClientFile struct {
	ClientID     string   `yaml:"clientId"`
	ClientName   string   `yaml:"clientName"`
	RedirectURIs []string `yaml:"redirectUris"`
	// ClientSecretFile holds the secret of a client_secret_basic or
	// client_secret_post client.
	ClientSecretFile string `yaml:"clientSecretFile"`
	// JWKSURI is the key set of a private_key_jwt client.
	JWKSURI string `yaml:"jwksUri"`
	// TokenEndpointAuthMethod is none (the default without a secret or
	// key set), client_secret_basic (the default with a secret),
	// client_secret_post or private_key_jwt (the default with jwksUri).
	TokenEndpointAuthMethod string `yaml:"tokenEndpointAuthMethod"`
	// GrantTypes default to authorization_code and refresh_token.
	GrantTypes []string `yaml:"grantTypes"`
}

// AuthServerRegistrationFile configures dynamic client registration.
type AuthServerRegistrationFile struct {
	Enabled bool `yaml:"enabled"`
	// PerMinute bounds registrations per client IP; default 10.
	PerMinute int `yaml:"perMinute"`
}

// AuthServerIDJagFile lists the trusted issuers of ID-JAGs.
type AuthServerIDJagFile struct {
	Issuers []AuthServerIDJagIssuerFile `yaml:"issuers"`
}

// AuthServerIDJagIssuerFile is one trusted enterprise IdP.
type AuthServerIDJagIssuerFile struct {
	Issuer string `yaml:"issuer"`
	// JWKSURI is its key set; unset means found through its discovery
	// document.
	JWKSURI string `yaml:"jwksUri"`
}

// AuthorizationServer is the validated authorization server.
type AuthorizationServer struct {
	// Issuer is the server's public URL (RFC 8414 §2).
	Issuer                    string
	Login                     AuthServerLoginFile
	Resources                 []AuthServerResourceFile
	Clients                   []AuthServerClientFile
	ClientIDMetadataDocuments bool
	DynamicRegistration       bool
	RegistrationsPerMinute    int
	IDJagIssuers              []AuthServerIDJagIssuerFile
	AccessTokenTTL            time.Duration
	RefreshTokenTTL           time.Duration
	CodeTTL                   time.Duration
	SigningKeyRotation        time.Duration
}

// Resource returns the configured resource of that URI.
func (a AuthorizationServer) Resource(uri string) (AuthServerResourceFile, bool) {
	i := slices.IndexFunc(a.Resources, func(r AuthServerResourceFile) bool { return r.Resource == uri })
	if i < 0 {
		return AuthServerResourceFile{}, false
	}
	return a.Resources[i], true
}

// Grant types and client authentication methods of the authorization
// server.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantJWTBearer         = oauthwire.GrantJWTBearer
	AuthMethodNone         = "none"
	AuthMethodSecretBasic  = "client_secret_basic"
	AuthMethodSecretPost   = "client_secret_post"
	AuthMethodPrivateKey   = "private_key_jwt"
)

// AuthorizationServerAuthorizer names the authorization server among the
// inbound authorizers: a workload identity that lists it in its
// allowedInboundAuthorizers accepts the server's access tokens.
const AuthorizationServerAuthorizer = "authorizationServer"

// Bounds of the authorization server's configuration.
const (
	maxASResources    = 64
	maxASClients      = 256
	maxRedirectURIs   = 16
	maxIDJagIssuers   = 16
	maxClientIDLength = 255
)

// validateAuthorizationServer checks the authorizationServer section.
func (f File) validateAuthorizationServer(c *Config, probs *Problems) {
	a := f.AuthorizationServer
	if a == nil {
		return
	}
	const at = "authorizationServer"
	if f.PublicURL == "" {
		probs.add("publicUrl", "is required with authorizationServer: it is the authorization server's issuer (RFC 8414 §2)")
	}
	out := AuthorizationServer{Issuer: c.PublicURL, Login: a.Login, Resources: a.Resources, Clients: a.Clients,
		ClientIDMetadataDocuments: a.ClientIDMetadataDocuments == nil || *a.ClientIDMetadataDocuments,
		DynamicRegistration:       a.DynamicRegistration.Enabled, RegistrationsPerMinute: a.DynamicRegistration.PerMinute,
		IDJagIssuers: a.IDJag.Issuers}
	for i, ia := range f.InboundAuthorizers {
		if ia.Name == AuthorizationServerAuthorizer {
			probs.add(fmt.Sprintf("inboundAuthorizers[%d].name", i), "%q names the authorization server's own tokens: choose another name", ia.Name)
		}
	}
	a.Login.validate(f, at+".login", probs)
	if len(out.Login.Scopes) == 0 {
		out.Login.Scopes = []string{"openid"}
	}
	validateASResources(a.Resources, at+".resources", probs)
	out.Clients = validateASClients(a.Clients, at+".clients", probs)
	if out.RegistrationsPerMinute == 0 {
		out.RegistrationsPerMinute = 10
	}
	if out.RegistrationsPerMinute < 0 || out.RegistrationsPerMinute > 10000 {
		probs.add(at+".dynamicRegistration.perMinute", "must be between 1 and 10000")
	}
	validateIDJagIssuers(a.IDJag.Issuers, at+".idJag.issuers", probs)
	out.AccessTokenTTL = durationIn(a.AccessTokenTTL, 5*time.Minute, time.Minute, 24*time.Hour, at+".accessTokenTtl", probs)
	out.RefreshTokenTTL = durationIn(a.RefreshTokenTTL, 720*time.Hour, time.Hour, 8760*time.Hour, at+".refreshTokenTtl", probs)
	out.CodeTTL = durationIn(a.CodeTTL, time.Minute, 10*time.Second, 10*time.Minute, at+".codeTtl", probs)
	out.SigningKeyRotation = durationIn(a.SigningKeyRotation, 720*time.Hour, time.Hour, 8760*time.Hour, at+".signingKeyRotation", probs)
	c.AuthorizationServer = &out
}

func validateASClients(list []AuthServerClientFile, at string, probs *Problems) []AuthServerClientFile {
	if len(list) > maxASClients {
		probs.add(at, "has %d clients; at most %d", len(list), maxASClients)
	}
	out := make([]AuthServerClientFile, len(list))
	for i, cl := range list {
		p := fmt.Sprintf("%s[%d]", at, i)
		if slices.ContainsFunc(list[:i], func(o AuthServerClientFile) bool { return o.ClientID == cl.ClientID }) {
			probs.add(p+".clientId", "%q is named twice", cl.ClientID)
		}
		out[i] = cl.validate(p, probs)
	}
	return out
}

func validateIDJagIssuers(list []AuthServerIDJagIssuerFile, at string, probs *Problems) {
	if len(list) > maxIDJagIssuers {
		probs.add(at, "names at most %d issuers", maxIDJagIssuers)
	}
	for i, iss := range list {
		p := fmt.Sprintf("%s[%d]", at, i)
		if !secureURL(iss.Issuer) || slices.ContainsFunc(list[:i], func(o AuthServerIDJagIssuerFile) bool { return o.Issuer == iss.Issuer }) {
			probs.add(p+".issuer", "%q must be an https (or loopback http) issuer URL without query or fragment, named once", iss.Issuer)
		}
		if iss.JWKSURI != "" && !secureURL(iss.JWKSURI) {
			probs.add(p+".jwksUri", "must be an https (or loopback http) URL without query or fragment")
		}
	}
}

// durationIn is v, or def when v is zero, if it lies within [lo, hi].
func durationIn(v, def, lo, hi time.Duration, at string, probs *Problems) time.Duration {
	if v == 0 {
		return def
	}
	if v < lo || v > hi {
		probs.add(at, "must be between %s and %s", lo, hi)
	}
	return v
}

func (l AuthServerLoginFile) validate(f File, at string, probs *Problems) {
	if !slices.ContainsFunc(f.InboundAuthorizers, func(a InboundAuthorizerFile) bool { return a.Name == l.Authorizer }) {
		probs.add(at+".authorizer", "%q names no inboundAuthorizers entry: the login identity provider is one of them", l.Authorizer)
	}
	if l.ClientID == "" || len(l.ClientID) > maxClientIDLength {
		probs.add(at+".clientId", "names behalf's client at the login identity provider")
	}
	if len(l.Scopes) > 0 {
		checkScopes(l.Scopes, at+".scopes", probs)
		if !slices.Contains(l.Scopes, "openid") {
			probs.add(at+".scopes", "must include openid: the login needs an ID token")
		}
	}
}

func validateASResources(resources []AuthServerResourceFile, at string, probs *Problems) {
	if len(resources) == 0 || len(resources) > maxASResources {
		probs.add(at, "names 1 to %d resources", maxASResources)
	}
	for i, r := range resources {
		p := fmt.Sprintf("%s[%d]", at, i)
		if u, ok := httpURL(r.Resource); !ok || !secureURL(r.Resource) {
			probs.add(p+".resource", "%q must be an https (or loopback http) URL without query or fragment", r.Resource)
		} else if msg := checkResource(r.Resource, u.Path); msg != "" {
			probs.add(p+".resource", "%s", msg)
		}
		if slices.ContainsFunc(resources[:i], func(o AuthServerResourceFile) bool { return o.Resource == r.Resource }) {
			probs.add(p+".resource", "%q is named twice", r.Resource)
		}
		checkScopes(r.Scopes, p+".scopes", probs)
	}
}

var clientGrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken, GrantJWTBearer}

func (cl AuthServerClientFile) validate(at string, probs *Problems) AuthServerClientFile {
	if cl.ClientID == "" || len(cl.ClientID) > maxClientIDLength || strings.HasPrefix(cl.ClientID, "https://") || strings.ContainsFunc(cl.ClientID, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		probs.add(at+".clientId", "must be 1 to %d printable characters, not an https URL (those name metadata documents)", maxClientIDLength)
	}
	if len(cl.ClientName) > 200 {
		probs.add(at+".clientName", "must be at most 200 characters")
	}
	cl.TokenEndpointAuthMethod = cl.authMethod(at, probs)
	cl.GrantTypes = cl.grants(at, probs)
	return cl
}

// authMethod checks the client's authentication method, defaulting it
// from its credentials.
func (cl AuthServerClientFile) authMethod(at string, probs *Problems) string {
	if cl.TokenEndpointAuthMethod == "" {
		switch {
		case cl.ClientSecretFile != "":
			cl.TokenEndpointAuthMethod = AuthMethodSecretBasic
		case cl.JWKSURI != "":
			cl.TokenEndpointAuthMethod = AuthMethodPrivateKey
		default:
			cl.TokenEndpointAuthMethod = AuthMethodNone
		}
	}
	switch cl.TokenEndpointAuthMethod {
	case AuthMethodNone:
		if cl.ClientSecretFile != "" || cl.JWKSURI != "" {
			probs.add(at, "a public client (tokenEndpointAuthMethod none) has neither clientSecretFile nor jwksUri")
		}
	case AuthMethodSecretBasic, AuthMethodSecretPost:
		if cl.ClientSecretFile == "" || cl.JWKSURI != "" {
			probs.add(at+".clientSecretFile", "is required with %s, and jwksUri is not", cl.TokenEndpointAuthMethod)
		}
	case AuthMethodPrivateKey:
		if !secureURL(cl.JWKSURI) || cl.ClientSecretFile != "" {
			probs.add(at+".jwksUri", "must be an https (or loopback http) URL with private_key_jwt, and clientSecretFile unset")
		}
	default:
		probs.add(at+".tokenEndpointAuthMethod", "must be none, client_secret_basic, client_secret_post or private_key_jwt")
	}
	return cl.TokenEndpointAuthMethod
}

// grants checks the grant types, defaulting them, and the redirect URIs
// the authorization code grant needs.
func (cl AuthServerClientFile) grants(at string, probs *Problems) []string {
	if len(cl.GrantTypes) == 0 {
		cl.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	for i, g := range cl.GrantTypes {
		if !slices.Contains(clientGrantTypes, g) || slices.Contains(cl.GrantTypes[:i], g) {
			probs.add(fmt.Sprintf("%s.grantTypes[%d]", at, i), "%q must be authorization_code, refresh_token or %s, named once", g, GrantJWTBearer)
		}
	}
	needsRedirect := slices.Contains(cl.GrantTypes, GrantAuthorizationCode)
	if needsRedirect && len(cl.RedirectURIs) == 0 || len(cl.RedirectURIs) > maxRedirectURIs {
		probs.add(at+".redirectUris", "names 1 to %d redirect URIs for the authorization code grant", maxRedirectURIs)
	}
	for i, r := range cl.RedirectURIs {
		if !ValidRedirectURI(r) {
			probs.add(fmt.Sprintf("%s.redirectUris[%d]", at, i), "%q must be an absolute https URL, a loopback http URL or a private-use scheme URI, without a fragment", r)
		}
	}
	return cl.GrantTypes
}

// ValidRedirectURI reports whether s may be registered as a redirect URI
// (OAuth 2.1 §2.3.1, RFC 8252 §7): absolute, without a fragment; https,
// http on a loopback host, or a private-use scheme (a native app's).
func ValidRedirectURI(s string) bool {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || strings.Contains(s, "#") || u.User != nil || len(s) > 2000 {
		return false
	}
	switch u.Scheme {
	case "https":
		return u.Host != ""
	case "http":
		return u.Host != "" && isLoopbackHost(u.Hostname())
	case "javascript", "data", "file", "vbscript":
		return false
	}
	return strings.Contains(u.Scheme, ".") // RFC 8252 §7.1: reverse domain name
}

// checkGatewayAgainstAuthorizationServer: a mounted gateway's mcp route
// that trusts this server's issuer must be one of its resources, or its
// clients could never get a token for it.
func (f File) checkGatewayAgainstAuthorizationServer(c *Config, probs *Problems) {
	if c.AuthorizationServer == nil || c.Gateway == nil {
		return
	}
	for i, r := range c.Gateway.Routes {
		if r.Kind != KindMCP || !slices.Contains(r.AuthorizationServers, c.AuthorizationServer.Issuer) {
			continue
		}
		if _, ok := c.AuthorizationServer.Resource(r.Resource); !ok {
			probs.add(fmt.Sprintf("gateway.routes[%d].resource", i), "%q trusts this server's authorization server (%s) but is not one of authorizationServer.resources: add it there with the route's scopes",
				r.Resource, c.AuthorizationServer.Issuer)
		}
	}
}
