package oauthwire

// Registered URNs of grant and token types: names, not credentials.
const (
	// GrantTokenExchange is RFC 8693 §2.1's grant type.
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange" //nolint:gosec // G101: a URN
	// GrantJWTBearer is RFC 7523 §2.1's grant type.
	GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer" //nolint:gosec // G101: a URN
	// TokenTypeAccessToken and TokenTypeIDToken are RFC 8693 §3's.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token" //nolint:gosec // G101: a URN
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"     //nolint:gosec // G101: a URN
	// TokenTypeJWT is RFC 8693 §3's type of a JWT of no more specific kind.
	TokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt" //nolint:gosec // G101: a URN
	// TokenTypeIDJAG is the Identity Assertion JWT Authorization Grant's
	// (draft-ietf-oauth-identity-assertion-authz-grant, "Token Exchange").
	TokenTypeIDJAG = "urn:ietf:params:oauth:token-type:id-jag" //nolint:gosec // G101: a URN
)
