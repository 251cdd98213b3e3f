// Package idjag redeems Identity Assertion JWT Authorization Grants
// (draft-ietf-oauth-identity-assertion-authz-grant) presented with the
// jwt-bearer grant (RFC 7523).
package idjag

import "time"

// Grant is what a verified ID-JAG grants: the user (Issuer, Subject) at
// the enterprise identity provider, the client it was issued to, and the
// resource and scopes the authorization server grants.
type Grant struct {
	Issuer, Subject, ClientID, Resource string
	Scopes                              []string
	Expiry                              time.Time
}
