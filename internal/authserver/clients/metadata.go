package clients

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// Grant types, authentication methods and application types behalf knows.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	// GrantJWTBearer is RFC 7523 §2.1's grant, which redeems an ID-JAG.
	GrantJWTBearer = oauthwire.GrantJWTBearer

	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"

	ApplicationWeb    = "web"
	ApplicationNative = "native"
)

// Bounds of client metadata.
const (
	maxRedirectURIs = 20
	maxURIBytes     = 2000
	maxNameBytes    = 200
	maxJWKSKeys     = 10
)

// metadata is the client metadata behalf reads: RFC 7591 §2, and OpenID
// Connect Dynamic Client Registration 1.0 §2's application_type. Members
// it does not know are ignored (RFC 7591 §2), except those a client must
// not set itself (forbiddenMembers).
type metadata struct {
	ClientID                string              `json:"client_id,omitempty"`
	ClientName              string              `json:"client_name,omitempty"`
	ClientURI               string              `json:"client_uri,omitempty"`
	RedirectURIs            []string            `json:"redirect_uris,omitempty"`
	GrantTypes              []string            `json:"grant_types,omitempty"`
	ResponseTypes           []string            `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string              `json:"token_endpoint_auth_method,omitempty"`
	ApplicationType         string              `json:"application_type,omitempty"`
	JWKSURI                 string              `json:"jwks_uri,omitempty"`
	JWKS                    *jose.JSONWebKeySet `json:"jwks,omitempty"`
}

// secretMembers are what only the authorization server may set (RFC 7591
// §3.2.1); a client that sends them is confused or hostile.
var secretMembers = []string{"client_secret", "client_secret_expires_at", "registration_access_token", "registration_client_uri"}

// decodeMetadata decodes a JSON object of client metadata, refusing
// anything but one object, repeated members (go-jose's JSON refuses them:
// RFC 8725 §3.12's ambiguity) and members of the wrong type. It returns
// the members present too.
func decodeMetadata(body []byte) (metadata, map[string]json.RawMessage, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return metadata{}, nil, errors.New("is not a JSON object with distinct members")
	}
	var md metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return metadata{}, nil, errors.New("has a member of the wrong type")
	}
	return md, members, nil
}

// complete validates md as the metadata of a client of kind and fills in
// the defaults: RFC 7591 §2's for dynamic clients (client_secret_basic,
// authorization_code, and code with the authorization_code grant), none for a metadata document's client (the
// draft forbids shared secrets), and OpenID Connect Registration's web
// application type. The error codes are RFC 7591 §3.2.2's.
func complete(md *metadata, kind Kind) *oauthwire.Error {
	if md.ApplicationType == "" {
		md.ApplicationType = ApplicationWeb
	}
	if md.TokenEndpointAuthMethod == "" {
		md.TokenEndpointAuthMethod = AuthClientSecretBasic
		if kind == MetadataDocument {
			md.TokenEndpointAuthMethod = AuthNone
		}
	}
	if md.GrantTypes == nil {
		md.GrantTypes = []string{GrantAuthorizationCode}
	}
	if md.ResponseTypes == nil && slices.Contains(md.GrantTypes, GrantAuthorizationCode) {
		md.ResponseTypes = []string{"code"}
	}
	if e := checkDescriptive(md); e != nil {
		return e
	}
	if e := checkAuthMethod(md, kind); e != nil {
		return e
	}
	if e := checkGrants(md); e != nil {
		return e
	}
	return checkRedirectURIs(md.RedirectURIs, md.ApplicationType, slices.Contains(md.GrantTypes, GrantAuthorizationCode))
}

func invalidMetadata(format string, args ...any) *oauthwire.Error {
	return oauthwire.Errorf("invalid_client_metadata", format, args...)
}

// checkDescriptive checks what the consent page shows and the application
// type.
func checkDescriptive(md *metadata) *oauthwire.Error {
	if len(md.ClientName) > maxNameBytes || !utf8.ValidString(md.ClientName) || strings.ContainsFunc(md.ClientName, unicode.IsControl) {
		return invalidMetadata("client_name must be at most %d bytes of UTF-8 text without control characters", maxNameBytes)
	}
	if md.ClientURI != "" && !fetchableURL(md.ClientURI) {
		return invalidMetadata("client_uri must be an https URL without user information or fragment")
	}
	if md.ApplicationType != ApplicationWeb && md.ApplicationType != ApplicationNative {
		return invalidMetadata("application_type must be web or native")
	}
	return nil
}

// checkAuthMethod checks the token endpoint authentication method and the
// keys private_key_jwt needs (RFC 7591 §2: jwks_uri and jwks are
// exclusive).
func checkAuthMethod(md *metadata, kind Kind) *oauthwire.Error {
	switch m := md.TokenEndpointAuthMethod; {
	case m == AuthNone || m == AuthPrivateKeyJWT:
	case (m == AuthClientSecretBasic || m == AuthClientSecretPost) && kind == MetadataDocument:
		return invalidMetadata("token_endpoint_auth_method %s needs a shared secret, which a client metadata document cannot have: use none or private_key_jwt", m)
	case m == AuthClientSecretBasic || m == AuthClientSecretPost:
	default:
		return invalidMetadata("token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt")
	}
	return checkKeyMetadata(md)
}

// checkKeyMetadata checks jwks_uri and jwks, which are exclusive (RFC 7591
// §2) and only for private_key_jwt.
func checkKeyMetadata(md *metadata) *oauthwire.Error {
	hasKeys := md.JWKSURI != "" || md.JWKS != nil
	switch {
	case md.JWKSURI != "" && md.JWKS != nil:
		return invalidMetadata("jwks_uri and jwks must not both be present (RFC 7591 §2)")
	case md.TokenEndpointAuthMethod == AuthPrivateKeyJWT && !hasKeys:
		return invalidMetadata("private_key_jwt needs jwks_uri or jwks")
	case md.TokenEndpointAuthMethod != AuthPrivateKeyJWT && hasKeys:
		return invalidMetadata("jwks_uri and jwks are only for private_key_jwt")
	case md.JWKSURI != "" && !fetchableURL(md.JWKSURI):
		return invalidMetadata("jwks_uri must be an https URL without user information or fragment")
	case md.JWKS != nil:
		if e := checkKeys(md.JWKS.Keys); e != nil {
			return invalidMetadata("jwks %s", e.Error())
		}
	}
	return nil
}

// checkKeys accepts from 1 to maxJWKSKeys public keys able to verify one
// of oauthwire.ClientAssertionAlgs.
func checkKeys(keys []jose.JSONWebKey) error {
	if len(keys) == 0 || len(keys) > maxJWKSKeys {
		return errors.New("must hold from 1 to 10 keys")
	}
	for _, k := range keys {
		switch key := k.Key.(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < 2048 { // RFC 7518 §3.3
				return errors.New("has an RSA key under 2048 bits")
			}
		case *ecdsa.PublicKey:
			if key.Curve != elliptic.P256() {
				return errors.New("has an EC key not on P-256")
			}
		default:
			return errors.New("must hold only public RSA or P-256 EC keys")
		}
	}
	return nil
}

// checkGrants: authorization_code and refresh_token for any client, RFC
// 7523's jwt-bearer (ID-JAG) only for one that authenticates; the code
// response type only (OAuth 2.1 has no implicit grant).
func checkGrants(md *metadata) *oauthwire.Error {
	for _, g := range md.GrantTypes {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken:
		case GrantJWTBearer:
			if md.TokenEndpointAuthMethod == AuthNone {
				return invalidMetadata("grant type %s is only for clients that authenticate", GrantJWTBearer)
			}
		default:
			return invalidMetadata("grant_types may hold only authorization_code, refresh_token and %s", GrantJWTBearer)
		}
	}
	if len(md.GrantTypes) == 0 || len(md.GrantTypes) > 3 || hasRepeats(md.GrantTypes) {
		return invalidMetadata("grant_types must name each grant type at most once")
	}
	if slices.Contains(md.GrantTypes, GrantRefreshToken) && !slices.Contains(md.GrantTypes, GrantAuthorizationCode) {
		return invalidMetadata("refresh_token comes only with authorization_code: no other grant issues refresh tokens")
	}
	for _, r := range md.ResponseTypes {
		if r != "code" {
			return invalidMetadata("response_types may hold only code")
		}
	}
	code := len(md.ResponseTypes) > 0
	if len(md.ResponseTypes) > 1 || code != slices.Contains(md.GrantTypes, GrantAuthorizationCode) {
		return invalidMetadata("response_types must be [\"code\"] with the authorization_code grant, and [] without it (RFC 7591 §2.1)")
	}
	return nil
}

func hasRepeats(list []string) bool {
	for i, s := range list {
		if slices.Contains(list[:i], s) {
			return true
		}
	}
	return false
}

// checkRedirectURIs applies OAuth 2.1 §2.3.1 and RFC 8252 §7 to redirect
// URIs: absolute, no fragment, no user information, at most
// maxURIBytes; https for any client, http only on a loopback host (RFC
// 8252 §7.3; for a web client that is development only), and a private-use
// scheme, which RFC 8252 §7.1 wants in reverse domain name form (so with a
// "."), only for a native client.
func checkRedirectURIs(uris []string, appType string, required bool) *oauthwire.Error {
	if required && len(uris) == 0 {
		return oauthwire.Errorf("invalid_redirect_uri", "redirect_uris is required with the authorization_code grant")
	}
	if len(uris) > maxRedirectURIs || hasRepeats(uris) {
		return oauthwire.Errorf("invalid_redirect_uri", "redirect_uris must hold at most %d distinct URIs", maxRedirectURIs)
	}
	for _, raw := range uris {
		if msg := checkRedirectURI(raw, appType); msg != "" {
			return oauthwire.Errorf("invalid_redirect_uri", "redirect URI %.100q %s", raw, msg)
		}
	}
	return nil
}

func checkRedirectURI(raw, appType string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || len(raw) > maxURIBytes || strings.ContainsFunc(raw, unicode.IsSpace):
		return "is not a URI of at most 2000 bytes"
	case u.Scheme == "" || !u.IsAbs():
		return "is not absolute"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "has a fragment"
	case u.User != nil:
		return "has user information"
	}
	switch {
	case u.Scheme == "https":
		if u.Host == "" {
			return "has no host"
		}
	case u.Scheme == "http":
		if !IsLoopbackHost(u.Hostname()) {
			return "uses http on a host that is not loopback; use https"
		}
	case appType != ApplicationNative:
		return "uses a private-use scheme, which only native clients may (application_type native)"
	case !strings.Contains(u.Scheme, "."):
		return "uses a private-use scheme not in reverse domain name form (RFC 8252 §7.1)"
	}
	return ""
}

// fetchableURL reports whether raw is an https URL (http on a loopback
// host, for development) without user information or fragment, at most
// maxURIBytes long.
func fetchableURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || len(raw) > maxURIBytes || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return false
	}
	return u.Scheme == "https" || u.Scheme == "http" && IsLoopbackHost(u.Hostname())
}

// IsLoopbackHost reports whether host is localhost or a loopback IP
// literal.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
