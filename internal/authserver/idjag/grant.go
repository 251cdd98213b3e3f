package idjag

import "time"

// Grant is what an accepted ID-JAG grants: the user (Subject at Issuer)
// the client acts for, at Resource, with Scopes, until Expiry.
type Grant struct {
	Issuer, Subject, ClientID, Resource string
	Scopes                              []string
	Expiry                              time.Time
}
