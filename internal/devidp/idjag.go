package devidp

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// Identity Assertion JWT Authorization Grant (ID-JAG),
// draft-ietf-oauth-identity-assertion-authz-grant: a client trades a user's
// ID token for a short-lived JWT grant naming another authorization server
// as its audience, and redeems it there with RFC 7523's jwt-bearer grant.
const (
	tokenTypeIDJAG = oauthwire.TokenTypeIDJAG
	// typIDJAG is the JWT typ header the draft's "Identity Assertion JWT
	// Authorization Grant" section requires (RFC 8725 §3.11).
	typIDJAG = "oauth-id-jag+jwt"
	// maxIDJAGGrants bounds each client's list of target servers.
	maxIDJAGGrants = 32
	maxIDJAGField  = 255
)

// IDJAGGrant allows a client to request ID-JAGs for one target
// authorization server: the policy the draft's "Token Exchange / Processing
// Rules" section leaves to the IdP's administrator.
type IDJAGGrant struct {
	// Audience is the target server's issuer identifier (RFC 8414 §2), the
	// ID-JAG's aud: an https URL, or http on a loopback host, with no
	// query or fragment. The request's audience must equal it exactly.
	Audience string
	// ClientID is the client's id at the target server, the ID-JAG's
	// client_id (the draft's "Cross-Domain Client ID Handling"); default
	// the client's id here.
	ClientID string
	// Scopes, if set, bound the scope of the ID-JAG: requested scopes
	// outside them are dropped, and a request without scope gets all of
	// them. Unset, the requested scope is granted as it is.
	Scopes []string
	// Resources, if set, are the only RFC 8707 resources the client may
	// name for this audience. Unset, any resource is accepted.
	Resources []string
}

// checkIDJAGGrants validates a client's ID-JAG grants and fills in the
// default client_id at each target.
func checkIDJAGGrants(c *Client) error {
	if len(c.IDJAG) > maxIDJAGGrants {
		return fmt.Errorf("devidp: client %q: at most %d ID-JAG audiences", c.ID, maxIDJAGGrants)
	}
	grants := make([]IDJAGGrant, len(c.IDJAG))
	for i, g := range c.IDJAG {
		if !validIssuerURL(g.Audience) {
			return fmt.Errorf("devidp: client %q: ID-JAG audience %q must be an issuer URL: https, or http on a loopback host, with no query or fragment", c.ID, g.Audience)
		}
		if slices.ContainsFunc(grants[:i], func(p IDJAGGrant) bool { return p.Audience == g.Audience }) {
			return fmt.Errorf("devidp: client %q: ID-JAG audience %q is listed twice", c.ID, g.Audience)
		}
		if g.ClientID == "" {
			g.ClientID = c.ID
		}
		if len(g.ClientID) > maxIDJAGField || strings.ContainsFunc(g.ClientID, unicode.IsControl) {
			return fmt.Errorf("devidp: client %q: the client_id at %q must be at most %d characters, none a control character", c.ID, g.Audience, maxIDJAGField)
		}
		for _, sc := range g.Scopes {
			if !oauthwire.ValidScopeToken(sc) {
				return fmt.Errorf("devidp: client %q: ID-JAG scope %q at %q is not an RFC 6749 §3.3 scope token", c.ID, sc, g.Audience)
			}
		}
		if _, e := parseResources(g.Resources); e != nil {
			return fmt.Errorf("devidp: client %q: an ID-JAG resource at %q is not an absolute URI without a fragment", c.ID, g.Audience)
		}
		g.Scopes, g.Resources = slices.Clone(g.Scopes), slices.Clone(g.Resources)
		grants[i] = g
	}
	c.IDJAG = grants
	return nil
}

// validIssuerURL is RFC 8414 §2's issuer, relaxed to allow http on
// loopback for targets on the same machine.
func validIssuerURL(s string) bool {
	return validRedirect(s) && !strings.Contains(s, "?") && len(s) <= 2048
}

// idJAGClaims are the claims the draft's "Identity Assertion JWT
// Authorization Grant" section lists: iss, sub, aud, client_id, jti, exp,
// iat, and the optional resource and scope; email is the implementation
// note's way to let the target match existing accounts.
type idJAGClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Resource any    `json:"resource,omitempty"` // one URI as a string, several as an array
	Scope    string `json:"scope,omitempty"`
	Email    string `json:"email,omitempty"`
}

// exchangeIDJAG is the draft's "Token Exchange" section: RFC 8693 with
// requested_token_type id-jag, an ID token this server issued to the
// requesting client as subject_token, and the target server's issuer as
// audience. The answer is RFC 8693 §2.2.1's, with token_type N_A and no
// refresh token. Non-goals: SAML assertions and refresh tokens as subject
// tokens, authorization_details (RFC 9396), DPoP-bound ID-JAGs (cnf.jkt),
// and step-up (insufficient_user_authentication).
func (s *Server) exchangeIDJAG(c Client, form url.Values, scope string, resource []string, ev *Event, now time.Time) (map[string]any, *oauthwire.Error) {
	aud, e := idJAGRequest(form)
	if e != nil {
		return nil, e
	}
	sub, e := s.idTokenSubject(c, form.Get("subject_token"), now)
	if e != nil {
		return nil, e
	}
	ev.Subject = sub.Subject
	g, e := idJAGPolicy(c, aud, resource)
	if e != nil {
		return nil, e
	}
	if scope, e = narrowScope(g.Scopes, scope); e != nil {
		return nil, e
	}
	cl := idJAGClaims{
		Claims: jwt.Claims{Issuer: s.issuer, Subject: sub.Subject, Audience: jwt.Audience{aud}, ID: rand.Text(),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(s.idJAGTTL))},
		ClientID: g.ClientID, Scope: scope, Email: sub.Email,
	}
	switch len(resource) {
	case 0:
	case 1:
		cl.Resource = resource[0]
	default:
		cl.Resource = resource
	}
	grant, err := jwt.Signed(s.jagSigner).Claims(cl).Serialize()
	if err != nil {
		return nil, oauthwire.Errorf("server_error", "signing failed")
	}
	resp := map[string]any{"access_token": grant, "issued_token_type": tokenTypeIDJAG, "token_type": "N_A",
		"expires_in": int64(s.idJAGTTL / time.Second)}
	if scope != "" {
		resp["scope"] = scope // RFC 8693 §2.2.1: required when it differs from the request
	}
	return resp, nil
}

// idJAGRequest checks the request's shape and returns its one audience.
func idJAGRequest(form url.Values) (string, *oauthwire.Error) {
	switch {
	case form.Get("subject_token") == "":
		return "", oauthwire.Errorf("invalid_request", "subject_token is required")
	case form.Get("subject_token_type") != tokenTypeID:
		return "", oauthwire.Errorf("invalid_request", "an ID-JAG is issued for a subject_token of type %s", tokenTypeID)
	case form.Has("actor_token") || form.Has("actor_token_type"):
		return "", oauthwire.Errorf("invalid_request", "actor_token is not used for ID-JAGs")
	case len(form["audience"]) != 1 || form.Get("audience") == "":
		return "", oauthwire.Errorf("invalid_request", "an ID-JAG needs exactly one audience: the target authorization server's issuer")
	}
	return form.Get("audience"), nil
}

// idTokenSubject verifies that token is an unexpired, unrevoked ID token
// from this server issued to c: the draft's processing rules require its
// aud to match the authenticated client.
func (s *Server) idTokenSubject(c Client, token string, now time.Time) (*claims, *oauthwire.Error) {
	sc, ok := s.live(token, now, "JWT")
	if !ok {
		return nil, oauthwire.Errorf("invalid_grant", "subject_token is not an unexpired, unrevoked ID token from this issuer")
	}
	if !slices.Contains(sc.Audience, c.ID) {
		return nil, oauthwire.Errorf("invalid_grant", "subject_token was issued to another client")
	}
	return sc, nil
}

// idJAGPolicy finds c's grant for aud and checks the resources against it.
func idJAGPolicy(c Client, aud string, resource []string) (IDJAGGrant, *oauthwire.Error) {
	i := slices.IndexFunc(c.IDJAG, func(g IDJAGGrant) bool { return g.Audience == aud })
	if i < 0 {
		return IDJAGGrant{}, oauthwire.Errorf("invalid_target", "this client may not request ID-JAGs for that audience")
	}
	g := c.IDJAG[i]
	if len(g.Resources) > 0 {
		for _, r := range resource {
			if !slices.Contains(g.Resources, r) {
				return IDJAGGrant{}, oauthwire.Errorf("invalid_target", "this client may not request ID-JAGs for that resource at that audience")
			}
		}
	}
	return g, nil
}

// narrowScope keeps the requested scopes that allowed permits; with no
// request it grants all of allowed. A request none of which is allowed is
// refused rather than answered with an empty grant.
func narrowScope(allowed []string, requested string) (string, *oauthwire.Error) {
	if len(allowed) == 0 {
		return requested, nil
	}
	if requested == "" {
		return strings.Join(allowed, " "), nil
	}
	var kept []string
	for _, t := range strings.Fields(requested) {
		if slices.Contains(allowed, t) {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		return "", oauthwire.Errorf("invalid_scope", "none of the requested scopes may be granted for that audience")
	}
	return strings.Join(kept, " "), nil
}

// idJAGMetadata adds what the draft's "Authorization Server (IdP)
// Metadata" section asks an IdP to advertise, from the identity chaining
// draft (draft-ietf-oauth-identity-chaining).
func (s *Server) idJAGMetadata(m map[string]any) {
	if s.issuesIDJAG {
		m["identity_chaining_requested_token_types_supported"] = []string{tokenTypeIDJAG}
	}
}
