// Package idjag accepts Identity Assertion JWT Authorization Grants
// (draft-ietf-oauth-identity-assertion-authz-grant; the MCP
// Enterprise-Managed Authorization extension): an enterprise IdP that
// behalf trusts exchanges a user's ID token for a short-lived JWT, the
// ID-JAG, whose audience is behalf, and the client redeems it at behalf's
// token endpoint with RFC 7523's jwt-bearer grant for an access token to
// one resource.
//
// Verifier.Redeem checks the ID-JAG (the draft's "Processing Rules" and
// RFC 7523 §3) and returns the Grant it allows; the token endpoint issues
// and audits the access token. The assertion itself is never logged nor
// put in an error.
//
// Non-goals: no refresh tokens for ID-JAGs (the draft leaves them to the
// server; behalf's client asks the IdP again), no encrypted ID-JAGs, no
// tenant claims (tenant, aud_tenant, aud_sub), which behalf ignores.
package idjag

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/json"

	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
)

const (
	// GrantType is RFC 7523 §2.1's grant type, with which an ID-JAG is
	// redeemed.
	GrantType = oauthwire.GrantJWTBearer
	// Profile is the ID-JAG's grant profile, advertised in
	// authorization_grant_profiles_supported.
	Profile = "urn:ietf:params:oauth:grant-profile:id-jag"
	// Type is the JWT typ header of an ID-JAG (RFC 8725 §3.11).
	Type = "oauth-id-jag+jwt"
	// DefaultMaxLifetime bounds exp - iat unless Options say otherwise.
	DefaultMaxLifetime = 10 * time.Minute
	// leeway is the clock skew allowed on exp and iat.
	leeway = 30 * time.Second
	// maxAssertionBytes bounds an ID-JAG before any parsing.
	maxAssertionBytes = 16 << 10
	maxJTIBytes       = 256
)

// algs are the signature algorithms an ID-JAG may use: asymmetric only
// (RFC 8725 §3.1), never none or HS*.
var algs = []string{"RS256", "PS256", "ES256", "EdDSA"}

// TrustedIssuer is an IdP whose ID-JAGs behalf accepts. JWKSURI empty
// means the jwks_uri of the issuer's OpenID Connect discovery document
// (Issuer + "/.well-known/openid-configuration").
type TrustedIssuer struct{ Issuer, JWKSURI string }

// Options configure a Verifier.
type Options struct {
	// Issuer is this authorization server's issuer: an ID-JAG's aud.
	Issuer  string
	Trusted []TrustedIssuer
	// HTTP fetches the issuers' discovery documents and keys: behalf's
	// egress-policed client.
	HTTP *http.Client
	// Store remembers the jti of every redeemed ID-JAG until it expires.
	Store storage.Storage
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxLifetime bounds an ID-JAG's exp - iat; zero means
	// DefaultMaxLifetime.
	MaxLifetime time.Duration
	// Log receives the causes of key fetches that failed; nil discards
	// them.
	Log *slog.Logger
}

// Verifier redeems ID-JAGs. It is safe for concurrent use; Close stops
// the background refresh of the issuers' keys.
type Verifier struct {
	o       Options
	trusted map[string]TrustedIssuer
	keys    *inbound.Set
}

// New validates o and returns a Verifier. It does no I/O: each issuer's
// keys are fetched on first use.
func New(o Options) (*Verifier, error) {
	switch {
	case o.Issuer == "" || o.Store == nil || o.HTTP == nil:
		return nil, errors.New("idjag: Issuer, Store and HTTP are required")
	case o.MaxLifetime < 0:
		return nil, errors.New("idjag: MaxLifetime must not be negative")
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = DefaultMaxLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{o: o, trusted: map[string]TrustedIssuer{}}
	for _, t := range o.Trusted {
		switch {
		case t.Issuer == "" || t.Issuer == o.Issuer:
			return nil, fmt.Errorf("idjag: trusted issuer %q must be set and not this server", t.Issuer)
		case v.trusted[t.Issuer] != (TrustedIssuer{}):
			return nil, fmt.Errorf("idjag: trusted issuer %q is listed twice", t.Issuer)
		}
		v.trusted[t.Issuer] = t
	}
	keys, err := inbound.NewSet(nil, inbound.Options{HTTPClient: o.HTTP, Now: o.Now, MaxTokenBytes: maxAssertionBytes})
	if err != nil {
		return nil, fmt.Errorf("idjag: %w", err)
	}
	v.keys = keys
	return v, nil
}

// Close stops refreshing the issuers' keys.
func (v *Verifier) Close() { v.keys.Close() }

// Metadata adds the RFC 8414 member announcing ID-JAGs, when some issuer
// is trusted.
func (v *Verifier) Metadata(m map[string]any) {
	if len(v.trusted) > 0 {
		m["authorization_grant_profiles_supported"] = []string{Profile}
	}
}

// claims are an ID-JAG's claims behalf reads.
type claims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	Audience json.RawMessage `json:"aud"`
	ClientID string          `json:"client_id"`
	Expiry   *float64        `json:"exp"`
	IssuedAt *float64        `json:"iat"`
	ID       string          `json:"jti"`
	Resource json.RawMessage `json:"resource"`
	Scope    *string         `json:"scope"`
}

// Redeem checks the ID-JAG assertion presented by client, which the token
// endpoint authenticated, and returns what it grants. resources maps each
// resource behalf offers to its scopes; requestedScopes is the request's
// scope (empty: all the ID-JAG allows).
//
// It applies the draft's processing rules: typ exactly oauth-id-jag+jwt;
// an allowed algorithm and a signature by a trusted issuer's key; aud
// exactly this server's issuer (a string, or an array of that one);
// client_id the client's id; exp ahead, iat not ahead, exp - iat at most
// MaxLifetime; sub and jti present; the resource one of resources; and
// the jti used once. Scopes granted are the ID-JAG's scope ∩ the
// resource's ∩ the requested ones. Errors are RFC 6749 §5.2 codes whose
// descriptions name the failing check and never the assertion.
func (v *Verifier) Redeem(ctx context.Context, assertion string, client clients.Client, requestedScopes []string, resources map[string][]string) (Grant, *oauthwire.Error) {
	switch {
	case len(v.trusted) == 0:
		return Grant{}, oauthwire.Errorf("unsupported_grant_type", "this server accepts no ID-JAGs")
	case client.Public():
		return Grant{}, oauthwire.Errorf("unauthorized_client", "a public client may not redeem an ID-JAG")
	case !client.AllowsGrant(GrantType):
		return Grant{}, oauthwire.Errorf("unauthorized_client", "the client may not use grant type %s", GrantType)
	}
	iss, oe := parseUnverified(assertion)
	if oe != nil {
		return Grant{}, oe
	}
	t, ok := v.trusted[iss]
	if !ok {
		return Grant{}, invalidGrant("the ID-JAG's issuer is not trusted").Because("issuer")
	}
	payload, e := v.keys.VerifySignature(ctx, assertion, t.Issuer, t.JWKSURI, t.Issuer)
	if e != nil {
		if e.Kind == inbound.KindUnavailable {
			v.o.Log.LogAttrs(ctx, slog.LevelWarn, "ID-JAG issuer keys unavailable", slog.String(logging.KeyProvider, t.Issuer), logging.Err(e))
			return Grant{}, oauthwire.Errorf("temporarily_unavailable", "the ID-JAG issuer's keys could not be fetched")
		}
		return Grant{}, invalidGrant("the ID-JAG is refused: %s", e.Message).Because("token")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Grant{}, invalidGrant("the ID-JAG's claims are not a JSON object with members of the right types").Because("claims")
	}
	if oe := v.check(c, client); oe != nil {
		return Grant{}, oe
	}
	g, oe := grant(c, requestedScopes, resources)
	if oe != nil {
		return Grant{}, oe
	}
	// The draft's processing rules, with RFC 7523 §3 item 7: a jti is
	// used once, remembered as long as the ID-JAG is accepted (until exp
	// plus the leeway).
	switch err := v.o.Store.UseTokenID(ctx, "id-jag:"+c.Issuer+"#"+c.ID, g.Expiry.Add(leeway)); {
	case errors.Is(err, storage.ErrAlreadyExists):
		return Grant{}, invalidGrant("the ID-JAG was already used (jti)").Because("replayed")
	case err != nil:
		v.o.Log.LogAttrs(ctx, slog.LevelError, "recording an ID-JAG's jti failed", logging.Err(err))
		return Grant{}, oauthwire.Errorf("server_error", "the ID-JAG could not be recorded")
	}
	g.ClientID = client.ID
	return g, nil
}

func invalidGrant(format string, args ...any) *oauthwire.Error {
	return oauthwire.Errorf("invalid_grant", format, args...)
}

// check applies the draft's rules to the verified claims, but for the
// resource, the scopes and the jti's single use.
func (v *Verifier) check(c claims, client clients.Client) *oauthwire.Error {
	aud, ok := stringOrArray(c.Audience)
	now := v.o.Now()
	switch {
	case !ok || len(aud) != 1 || aud[0] != v.o.Issuer:
		return invalidGrant("the ID-JAG's aud must be exactly this server's issuer").Because("aud")
	case c.ClientID != client.ID:
		return invalidGrant("the ID-JAG's client_id is not the authenticated client").Because("client_id")
	case c.Subject == "":
		return invalidGrant("the ID-JAG has no sub").Because("sub")
	case c.ID == "" || len(c.ID) > maxJTIBytes:
		return invalidGrant("the ID-JAG needs a jti of at most %d bytes", maxJTIBytes).Because("jti")
	case c.Expiry == nil || c.IssuedAt == nil:
		return invalidGrant("the ID-JAG needs exp and iat").Because("exp")
	}
	exp, iat := numericDate(*c.Expiry), numericDate(*c.IssuedAt)
	switch {
	case !now.Before(exp.Add(leeway)):
		return invalidGrant("the ID-JAG has expired").Because("expired")
	case iat.After(now.Add(leeway)):
		return invalidGrant("the ID-JAG was issued in the future (iat)").Because("iat")
	case exp.Sub(iat) > v.o.MaxLifetime:
		return invalidGrant("the ID-JAG's lifetime (exp - iat) exceeds %s", v.o.MaxLifetime).Because("lifetime")
	}
	return nil
}

// grant is what the checked claims allow: the one resource named, and the
// scopes the ID-JAG, the resource and the request all allow.
func grant(c claims, requested []string, resources map[string][]string) (Grant, *oauthwire.Error) {
	named, ok := stringOrArray(c.Resource)
	switch {
	case c.Resource == nil:
		return Grant{}, oauthwire.Errorf("invalid_target", "the ID-JAG names no resource").Because("resource")
	case !ok || len(named) != 1:
		return Grant{}, oauthwire.Errorf("invalid_target", "the ID-JAG must name exactly one resource").Because("resource")
	}
	offered, ok := resources[named[0]]
	if !ok {
		return Grant{}, oauthwire.Errorf("invalid_target", "the ID-JAG's resource is not one this server offers").Because("resource")
	}
	var jagScopes []string
	if c.Scope != nil {
		var oe *oauthwire.Error
		if jagScopes, oe = oauthwire.ParseScope(*c.Scope); oe != nil {
			return Grant{}, invalidGrant("the ID-JAG's scope is not an RFC 6749 §3.3 scope")
		}
	}
	var scopes []string
	for _, s := range jagScopes {
		if slices.Contains(offered, s) && (len(requested) == 0 || slices.Contains(requested, s)) {
			scopes = append(scopes, s)
		}
	}
	if len(scopes) == 0 {
		return Grant{}, oauthwire.Errorf("invalid_scope", "no scope is allowed by the ID-JAG, the resource and the request together").Because("scope")
	}
	return Grant{Issuer: c.Issuer, Subject: c.Subject, Resource: named[0], Scopes: scopes, Expiry: numericDate(*c.Expiry)}, nil
}

var b64 = base64.RawURLEncoding.Strict()

// parseUnverified checks an ID-JAG's header (typ exactly oauth-id-jag+jwt,
// an allowed alg) and returns its unverified iss, which only chooses the
// keys to verify it with.
func parseUnverified(assertion string) (string, *oauthwire.Error) {
	if assertion == "" || len(assertion) > maxAssertionBytes {
		return "", invalidGrant("the assertion must be a JWT of at most %d bytes", maxAssertionBytes).Because("form")
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "", invalidGrant("the assertion is not a signed JWT in compact form").Because("form")
	}
	var h struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	raw, err := b64.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &h) != nil {
		return "", invalidGrant("the assertion's header is not base64url JSON with distinct members").Because("form")
	}
	switch {
	case h.Typ != Type:
		return "", invalidGrant("the assertion's typ must be %s", Type).Because("typ")
	case !slices.Contains(algs, h.Alg):
		return "", invalidGrant("the ID-JAG's alg must be one of %s", strings.Join(algs, ", ")).Because("alg")
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	raw, err = b64.DecodeString(parts[1])
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Issuer == "" {
		return "", invalidGrant("the ID-JAG's claims are not base64url JSON with an iss").Because("claims")
	}
	return c.Issuer, nil
}

// stringOrArray decodes RFC 7519 §4.1.3's "string or array of strings".
func stringOrArray(v json.RawMessage) ([]string, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return []string{s}, true
	}
	var list []string
	if json.Unmarshal(v, &list) != nil || list == nil {
		return nil, false
	}
	return list, true
}

// numericDate is RFC 7519 §2's NumericDate; inbound already refused
// values beyond year 9999.
func numericDate(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
}
