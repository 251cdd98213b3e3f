package oauthvendor

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Sentinel errors. Every error Resolve returns wraps one of them; test with
// errors.Is. A *FieldError carries the details.
var (
	// ErrUnknownVendor: the Vendor value did not come from this catalogue.
	ErrUnknownVendor = errors.New("oauthvendor: unknown credential provider vendor")
	// ErrMissingField: the configuration lacks a value the vendor needs.
	ErrMissingField = errors.New("oauthvendor: missing required field")
	// ErrFieldNotAllowed: the configuration sets a value this vendor's
	// union member does not carry, or sets mutually exclusive values.
	ErrFieldNotAllowed = errors.New("oauthvendor: field not allowed")
	// ErrInvalidValue: a value is malformed, for instance an endpoint that is
	// not an absolute https URL.
	ErrInvalidValue = errors.New("oauthvendor: invalid value")
)

// FieldError reports one problem with one configuration field. Field is the
// path as the AgentCore API names it, e.g.
// "includedOauth2ProviderConfig.issuer". Reason is safe to show to API
// callers: it never contains secrets, only the field's own value.
type FieldError struct {
	Vendor string
	Field  string
	Reason string
	Err    error // ErrMissingField, ErrFieldNotAllowed or ErrInvalidValue
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("oauthvendor: %s: %s: %s", e.Vendor, e.Field, e.Reason)
}

func (e *FieldError) Unwrap() error { return e.Err }

// ResolveInput carries the tenant-specific parts of a provider's
// oauth2ProviderConfigInput. Set only the fields the vendor's ConfigMember
// carries; Resolve refuses the others rather than ignore them.
type ResolveInput struct {
	// TenantID is microsoftOauth2ProviderConfig.tenantId.
	TenantID string
	// Issuer, AuthorizationEndpoint and TokenEndpoint are the fields of
	// includedOauth2ProviderConfig, or of
	// customOauth2ProviderConfig.oauthDiscovery.authorizationServerMetadata.
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	// DiscoveryURL is customOauth2ProviderConfig.oauthDiscovery.discoveryUrl.
	DiscoveryURL string
}

// Endpoints are a provider's resolved, validated endpoints. A field is empty
// when the vendor has no such endpoint or it is still to be read from the
// discovery document.
type Endpoints struct {
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	RevocationEndpoint    string
	// DiscoveryURL is the OpenID Connect Discovery 1.0 or RFC 8414 metadata
	// document, when one is known.
	DiscoveryURL string
}

// NeedsDiscovery reports that the authorization or token endpoint is still
// unknown and must be read from DiscoveryURL. Values the configuration set
// explicitly take precedence over the discovered ones.
func (e Endpoints) NeedsDiscovery() bool {
	return e.DiscoveryURL != "" && (e.AuthorizationEndpoint == "" || e.TokenEndpoint == "")
}

// maxURLLen bounds every URL Resolve accepts (AgentCore's own string fields
// stop at 2048).
const maxURLLen = 2048

// maxTenantLen bounds a Microsoft tenant: a GUID or a DNS name (RFC 1035
// §2.3.4 limits names to 255 octets).
const maxTenantLen = 253

// discoverySuffix is appended to an issuer to find its OpenID Connect
// Discovery document (OpenID Connect Discovery 1.0 §4).
const discoverySuffix = "/.well-known/openid-configuration"

// oauthMetadataSuffix marks an RFC 8414 §3 metadata document.
const oauthMetadataSuffix = "/.well-known/oauth-authorization-server"

// Resolve returns the endpoints of a provider of vendor v configured with in.
//
//   - Named vendors (Google, GitHub, Slack, Salesforce, Atlassian, LinkedIn)
//     take no input and get their defaults.
//   - Microsoft substitutes TenantID, or DefaultTenant ("common") when it is
//     empty, into its endpoint templates. The multi-tenant aliases common,
//     organizations and consumers get no Issuer.
//   - Included vendors that are TenantScoped need an Issuer, or both
//     AuthorizationEndpoint and TokenEndpoint. With an issuer the result
//     carries DiscoveryURL = issuer (without a trailing "/") +
//     "/.well-known/openid-configuration", and explicit endpoints win over
//     discovered ones; see NeedsDiscovery. Other included vendors take their
//     defaults, and any value the input sets replaces the default; a token
//     endpoint on another host also drops the default revocation endpoint.
//   - CustomOauth2 needs a DiscoveryURL, or Issuer, AuthorizationEndpoint
//     and TokenEndpoint together (authorizationServerMetadata), not both.
//
// Every URL must be absolute https, or http when the host is 127.0.0.1, ::1
// or localhost; it may carry no user information or fragment (RFC 6749
// §3.1, §3.2), and an issuer no query either (RFC 8414 §2). Resolve reports
// all problems at once, joined with errors.Join; each is a *FieldError.
// Resolve does no I/O: it never fetches the discovery document, and it
// learns no revocation endpoint for tenant-scoped vendors except through
// the caller's discovery.
func (v Vendor) Resolve(in ResolveInput) (Endpoints, error) {
	r := resolver{vendor: v}
	var out Endpoints
	switch v.ConfigMember {
	case "":
		return Endpoints{}, fmt.Errorf("%w %q", ErrUnknownVendor, v.Name)
	case MemberCustom:
		out = r.custom(in)
	case MemberMicrosoft:
		r.refuse(in, "tenantId")
		out = r.microsoft(in.TenantID)
	case MemberIncluded:
		r.refuse(in, "issuer", "authorizationEndpoint", "tokenEndpoint")
		out = r.included(in)
	default:
		r.refuse(in)
		out = r.defaults("")
	}
	if err := errors.Join(r.errs...); err != nil {
		return Endpoints{}, err
	}
	return out, nil
}

// resolver collects the problems of one Resolve call.
type resolver struct {
	vendor Vendor
	errs   []error
}

func (r *resolver) fail(sentinel error, field, format string, args ...any) {
	r.errs = append(r.errs, &FieldError{
		Vendor: r.vendor.Name,
		Field:  r.vendor.ConfigMember + "." + field,
		Reason: fmt.Sprintf(format, args...),
		Err:    sentinel,
	})
}

// refuse reports every input field that is set but not in allowed.
func (r *resolver) refuse(in ResolveInput, allowed ...string) {
	set := []struct {
		name, value string
	}{
		{"tenantId", in.TenantID},
		{"issuer", in.Issuer},
		{"authorizationEndpoint", in.AuthorizationEndpoint},
		{"tokenEndpoint", in.TokenEndpoint},
		{"discoveryUrl", in.DiscoveryURL},
	}
	for _, f := range set {
		if f.value == "" || slices.Contains(allowed, f.name) {
			continue
		}
		r.fail(ErrFieldNotAllowed, f.name, "%s does not carry %s", r.vendor.ConfigMember, f.name)
	}
}

// defaults returns the vendor's default endpoints with tenant substituted.
func (r *resolver) defaults(tenant string) Endpoints {
	sub := func(s string) string { return strings.ReplaceAll(s, TenantPlaceholder, tenant) }
	return Endpoints{
		Issuer:                sub(r.vendor.Issuer),
		AuthorizationEndpoint: sub(r.vendor.AuthorizationEndpoint),
		TokenEndpoint:         sub(r.vendor.TokenEndpoint),
		RevocationEndpoint:    sub(r.vendor.RevocationEndpoint),
		DiscoveryURL:          sub(r.vendor.DiscoveryURL),
	}
}

func (r *resolver) microsoft(tenant string) Endpoints {
	if tenant == "" {
		tenant = r.vendor.DefaultTenant
	}
	if !validTenant(tenant) {
		r.fail(ErrInvalidValue, "tenantId",
			"%q is not a tenant GUID or domain name (letters, digits, '.' and '-', at most %d characters)",
			tenant, maxTenantLen)
		return Endpoints{}
	}
	out := r.defaults(tenant)
	switch strings.ToLower(tenant) {
	case "common", "organizations", "consumers":
		// Tokens name the user's home tenant, so there is no single issuer.
		out.Issuer = ""
	}
	return out
}

func (r *resolver) included(in ResolveInput) Endpoints {
	out := Endpoints{}
	if !r.vendor.TenantScoped {
		out = r.defaults("")
	}
	defaultTokenHost := hostOf(out.TokenEndpoint)

	if in.Issuer != "" && r.checkIssuer("issuer", in.Issuer) {
		out.Issuer = in.Issuer
		out.DiscoveryURL = ""
		if r.vendor.OIDC {
			// OpenID Connect Discovery 1.0 §4.1: drop a terminating "/"
			// before appending the well-known path.
			out.DiscoveryURL = strings.TrimSuffix(in.Issuer, "/") + discoverySuffix
		}
	}
	if in.AuthorizationEndpoint != "" && r.checkEndpoint("authorizationEndpoint", in.AuthorizationEndpoint) {
		out.AuthorizationEndpoint = in.AuthorizationEndpoint
	}
	if in.TokenEndpoint != "" && r.checkEndpoint("tokenEndpoint", in.TokenEndpoint) {
		out.TokenEndpoint = in.TokenEndpoint
		// Never send a token to a revocation endpoint on another host than
		// the one that issued it.
		if hostOf(in.TokenEndpoint) != defaultTokenHost {
			out.RevocationEndpoint = ""
		}
	}
	if r.vendor.TenantScoped && in.Issuer == "" {
		r.requireTenantEndpoints(in)
	}
	return out
}

// requireTenantEndpoints checks that a tenant-scoped vendor without an
// issuer (to discover the endpoints from) has both endpoints. Presence, not
// validity, decides: a malformed value has been reported already.
func (r *resolver) requireTenantEndpoints(in ResolveInput) {
	switch {
	case in.AuthorizationEndpoint == "" && in.TokenEndpoint == "":
		r.fail(ErrMissingField, "issuer",
			"%s is tenant-scoped: set issuer, or both authorizationEndpoint and tokenEndpoint", r.vendor.Name)
	case in.AuthorizationEndpoint == "":
		r.fail(ErrMissingField, "authorizationEndpoint",
			"%s is tenant-scoped: set authorizationEndpoint (or issuer) together with tokenEndpoint", r.vendor.Name)
	case in.TokenEndpoint == "":
		r.fail(ErrMissingField, "tokenEndpoint",
			"%s is tenant-scoped: set tokenEndpoint (or issuer) together with authorizationEndpoint", r.vendor.Name)
	}
}

// custom resolves customOauth2ProviderConfig.oauthDiscovery, a union of
// discoveryUrl and authorizationServerMetadata.
func (r *resolver) custom(in ResolveInput) Endpoints {
	const (
		discovery = "oauthDiscovery.discoveryUrl"
		metadata  = "oauthDiscovery.authorizationServerMetadata."
	)
	if in.TenantID != "" {
		r.fail(ErrFieldNotAllowed, "tenantId", "%s does not carry tenantId", MemberCustom)
	}
	hasMetadata := in.Issuer != "" || in.AuthorizationEndpoint != "" || in.TokenEndpoint != ""
	switch {
	case in.DiscoveryURL != "" && hasMetadata:
		r.fail(ErrFieldNotAllowed, "oauthDiscovery",
			"oauthDiscovery is a union: set discoveryUrl or authorizationServerMetadata, not both")
		return Endpoints{}
	case in.DiscoveryURL != "":
		if !r.checkEndpoint(discovery, in.DiscoveryURL) {
			return Endpoints{}
		}
		if !isMetadataPath(in.DiscoveryURL) {
			r.fail(ErrInvalidValue, discovery,
				"%q does not name a /.well-known/openid-configuration or /.well-known/oauth-authorization-server document",
				in.DiscoveryURL)
			return Endpoints{}
		}
		return Endpoints{DiscoveryURL: in.DiscoveryURL}
	case !hasMetadata:
		r.fail(ErrMissingField, "oauthDiscovery",
			"set discoveryUrl, or authorizationServerMetadata with issuer, authorizationEndpoint and tokenEndpoint")
		return Endpoints{}
	}
	// authorizationServerMetadata: all three members are required.
	for _, f := range []struct{ name, value string }{
		{"issuer", in.Issuer},
		{"authorizationEndpoint", in.AuthorizationEndpoint},
		{"tokenEndpoint", in.TokenEndpoint},
	} {
		if f.value == "" {
			r.fail(ErrMissingField, metadata+f.name, "authorizationServerMetadata requires %s", f.name)
		}
	}
	if in.Issuer != "" {
		r.checkIssuer(metadata+"issuer", in.Issuer)
	}
	if in.AuthorizationEndpoint != "" {
		r.checkEndpoint(metadata+"authorizationEndpoint", in.AuthorizationEndpoint)
	}
	if in.TokenEndpoint != "" {
		r.checkEndpoint(metadata+"tokenEndpoint", in.TokenEndpoint)
	}
	return Endpoints{
		Issuer:                in.Issuer,
		AuthorizationEndpoint: in.AuthorizationEndpoint,
		TokenEndpoint:         in.TokenEndpoint,
	}
}

// checkEndpoint validates an endpoint URL and reports whether it is valid.
func (r *resolver) checkEndpoint(field, raw string) bool {
	if reason := endpointProblem(raw); reason != "" {
		r.fail(ErrInvalidValue, field, "%q %s", truncate(raw), reason)
		return false
	}
	return true
}

// checkIssuer validates an issuer identifier: an endpoint URL without a
// query (RFC 8414 §2; OpenID Connect Discovery 1.0 §3).
func (r *resolver) checkIssuer(field, raw string) bool {
	if !r.checkEndpoint(field, raw) {
		return false
	}
	if u, _ := url.Parse(raw); u.RawQuery != "" || u.ForceQuery {
		r.fail(ErrInvalidValue, field, "%q: an issuer has no query component", truncate(raw))
		return false
	}
	return true
}

// endpointProblem returns why raw is not an acceptable endpoint URL, or "".
func endpointProblem(raw string) string {
	if len(raw) > maxURLLen {
		return fmt.Sprintf("is longer than %d bytes", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a URL"
	}
	switch {
	case !u.IsAbs() || u.Opaque != "":
		return "is not an absolute URL"
	case u.Host == "" || u.Hostname() == "":
		return "has no host"
	case u.User != nil:
		return "must not carry user information"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not carry a fragment"
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return ""
	case "http":
		if isLoopback(u.Hostname()) {
			return ""
		}
		return "must use https (http only for 127.0.0.1, ::1 or localhost)"
	default:
		return "must use https"
	}
}

// isLoopback reports whether host is one of the loopback names RFC 8252
// §7.3 and §8.3 allow plain http for.
func isLoopback(host string) bool {
	switch strings.ToLower(host) {
	case "127.0.0.1", "::1", "localhost":
		return true
	}
	return false
}

// isMetadataPath reports whether a discovery URL's path names an OpenID
// Connect Discovery or RFC 8414 document, including RFC 8414 §3's
// path-inserted form ("/.well-known/oauth-authorization-server/tenant").
func isMetadataPath(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	for _, s := range []string{discoverySuffix, oauthMetadataSuffix} {
		if strings.HasSuffix(u.Path, s) || strings.Contains(u.Path, s+"/") {
			return true
		}
	}
	return false
}

// validTenant reports whether t is usable as one path segment of a Microsoft
// endpoint: a GUID, a verified domain or an alias such as "common".
func validTenant(t string) bool {
	if t == "" || len(t) > maxTenantLen {
		return false
	}
	for i, c := range t {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

func hostOf(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// truncate shortens a value quoted in an error message.
func truncate(s string) string {
	const maxQuoted = 200
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}
