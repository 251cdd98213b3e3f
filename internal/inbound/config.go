package inbound

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// Config is one inbound JWT authorizer: AgentCore's
// CustomJWTAuthorizerConfiguration without the fields behalf does not
// implement (advertisedScopeMapping, allowedWorkloadConfiguration,
// privateEndpoint*). The yaml names follow AgentCore's JSON names so that a
// configuration file can embed Config directly; ValidateConfigs uses them
// in its paths.
type Config struct {
	Name string `yaml:"name"`
	// DiscoveryURL is the IdP's OpenID Connect discovery URL
	// (…/.well-known/openid-configuration) or RFC 8414 metadata URL
	// (…/.well-known/oauth-authorization-server). The issuer is the part
	// before "/.well-known/".
	DiscoveryURL string `yaml:"discoveryUrl"`
	// AllowedAudience: at least one aud value must be in the list.
	AllowedAudience []string `yaml:"allowedAudience"`
	// AllowedClients: client_id (or azp when there is no client_id) must be
	// in the list. Cognito access tokens carry client_id and no aud.
	AllowedClients []string `yaml:"allowedClients"`
	// AllowedScopes: at least one of the token's scopes ("scope", or "scp"
	// as a string or an array) must be in the list.
	AllowedScopes []string      `yaml:"allowedScopes"`
	CustomClaims  []CustomClaim `yaml:"customClaims"`
}

// CustomClaim is AgentCore's CustomClaimValidationType, flattened.
type CustomClaim struct {
	// Name is a top-level claim name, taken literally ("cognito:groups",
	// "https://example.com/roles"); dots do not descend into objects.
	Name      string `yaml:"inboundTokenClaimName"`
	ValueType string `yaml:"inboundTokenClaimValueType"` // ValueString or ValueStringArray
	Operator  string `yaml:"claimMatchOperator"`         // OpEquals, OpContains or OpContainsAny
	// Value is the operand of EQUALS (the claim equals it) and CONTAINS
	// (the claim array has it as an element).
	Value string `yaml:"matchValueString"`
	// Values is the operand of CONTAINS_ANY (the claim array has at least
	// one of them as an element).
	Values []string `yaml:"matchValueStringList"`
}

// Custom claim value types and operators, as AgentCore spells them.
const (
	ValueString      = "STRING"
	ValueStringArray = "STRING_ARRAY"

	OpEquals      = "EQUALS"       // STRING only
	OpContains    = "CONTAINS"     // STRING_ARRAY only
	OpContainsAny = "CONTAINS_ANY" // STRING_ARRAY only
)

const (
	wellKnownOIDC  = "/.well-known/openid-configuration"
	wellKnownOAuth = "/.well-known/oauth-authorization-server"
)

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	// AgentCore's AllowedScopeType: printable ASCII except space, '"' and
	// '\' (the RFC 6749 §3.3 scope-token syntax).
	scopePattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,255}$`)
	// AgentCore writes InboundTokenClaimNameType as [A-Za-z0-9_.-:]+. Read
	// as a regular expression ".-:" is a range that includes '/' and the
	// digits but not '-'; the intent is surely a literal '-' and ':'. Accept
	// both readings: namespaced claims such as "https://x.example/roles"
	// need '/'.
	claimNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,255}$`)
	// AgentCore's MatchValueString.
	matchValuePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)
)

// ValidateConfigs checks cfgs and returns every problem found, each
// prefixed with its path, e.g. "inboundAuthorizers[1].allowedScopes[0]:
// must be 1 to 255 printable ASCII characters without space, '\"' or '\\'".
// It does no I/O. An empty list is valid.
func ValidateConfigs(cfgs []Config) []string {
	var probs []string
	seen := map[string]int{}
	for i, c := range cfgs {
		p := fmt.Sprintf("inboundAuthorizers[%d]", i)
		fail := func(path, format string, args ...any) {
			probs = append(probs, p+path+": "+fmt.Sprintf(format, args...))
		}
		switch j, dup := seen[c.Name]; {
		case !namePattern.MatchString(c.Name):
			fail(".name", "must be 1 to 64 characters from A-Z a-z 0-9 _ . -")
		case dup:
			fail(".name", "%q is already used by inboundAuthorizers[%d]", c.Name, j)
		default:
			seen[c.Name] = i
		}
		if msg := checkDiscoveryURL(c.DiscoveryURL); msg != "" {
			fail(".discoveryUrl", "%s", msg)
		}
		checkAllowLists(c, fail)
		for j, cc := range c.CustomClaims {
			for _, msg := range checkCustomClaim(cc) {
				fail(fmt.Sprintf(".customClaims[%d]%s", j, msg[0]), "%s", msg[1])
			}
		}
	}
	return probs
}

// checkAllowLists checks an authorizer's allowed audiences, clients and
// scopes, at least one of which (or a custom claim) must be set.
func checkAllowLists(c Config, fail func(path, format string, args ...any)) {
	if len(c.AllowedAudience) == 0 && len(c.AllowedClients) == 0 && len(c.AllowedScopes) == 0 && len(c.CustomClaims) == 0 {
		fail("", "set at least one of allowedAudience, allowedClients, allowedScopes or customClaims")
	}
	for j, a := range c.AllowedAudience {
		if a == "" {
			fail(fmt.Sprintf(".allowedAudience[%d]", j), "must not be empty")
		}
	}
	for j, a := range c.AllowedClients {
		if a == "" {
			fail(fmt.Sprintf(".allowedClients[%d]", j), "must not be empty")
		}
	}
	for j, s := range c.AllowedScopes {
		if !scopePattern.MatchString(s) {
			fail(fmt.Sprintf(".allowedScopes[%d]", j), `must be 1 to 255 printable ASCII characters without space, '"' or '\'`)
		}
	}
}

// checkCustomClaim returns (path suffix, message) pairs.
func checkCustomClaim(cc CustomClaim) [][2]string {
	var probs [][2]string
	fail := func(path, msg string) { probs = append(probs, [2]string{path, msg}) }
	if !claimNamePattern.MatchString(cc.Name) {
		fail(".inboundTokenClaimName", "must be 1 to 255 characters from A-Z a-z 0-9 _ . - : /")
	}
	checkClaimOperator(cc, fail)
	checkMatchValues(cc, fail)
	return probs
}

// checkClaimOperator checks that the operator suits the claim's value
// type.
func checkClaimOperator(cc CustomClaim, fail func(path, msg string)) {
	switch cc.ValueType {
	case ValueString:
		if cc.Operator != OpEquals {
			fail(".claimMatchOperator", "must be EQUALS for inboundTokenClaimValueType STRING")
		}
	case ValueStringArray:
		if cc.Operator != OpContains && cc.Operator != OpContainsAny {
			fail(".claimMatchOperator", "must be CONTAINS or CONTAINS_ANY for inboundTokenClaimValueType STRING_ARRAY")
		}
	default:
		fail(".inboundTokenClaimValueType", "must be STRING or STRING_ARRAY")
	}
}

// checkMatchValues checks the value, or list of values, that the operator
// compares the claim with.
func checkMatchValues(cc CustomClaim, fail func(path, msg string)) {
	const valueRule = "must be 1 to 255 characters from A-Z a-z 0-9 _ . -"
	switch cc.Operator {
	case OpEquals, OpContains:
		if !matchValuePattern.MatchString(cc.Value) {
			fail(".matchValueString", valueRule)
		}
		if len(cc.Values) > 0 {
			fail(".matchValueStringList", "must be empty for "+cc.Operator+" (use matchValueString)")
		}
	case OpContainsAny:
		if len(cc.Values) == 0 {
			fail(".matchValueStringList", "must list at least one value for CONTAINS_ANY")
		}
		for k, v := range cc.Values {
			if !matchValuePattern.MatchString(v) {
				fail(fmt.Sprintf(".matchValueStringList[%d]", k), valueRule)
			}
		}
		if cc.Value != "" {
			fail(".matchValueString", "must be empty for CONTAINS_ANY (use matchValueStringList)")
		}
	default:
		if cc.ValueType != ValueString && cc.ValueType != ValueStringArray {
			fail(".claimMatchOperator", "must be EQUALS, CONTAINS or CONTAINS_ANY")
		}
	}
}

// checkDiscoveryURL returns a problem with u, or "".
func checkDiscoveryURL(u string) string {
	if u == "" {
		return "is required"
	}
	const want = "must be an absolute https URL ending in " + wellKnownOIDC + " or " + wellKnownOAuth
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" || parsed.Opaque != "" {
		return want
	}
	if msg := checkFetchURL(parsed); msg != "" {
		return msg
	}
	// OpenID Connect Discovery 1.0 §2: the issuer has no query or fragment.
	if parsed.RawQuery != "" || parsed.ForceQuery {
		return "must not have a query"
	}
	if _, ok := issuerFromDiscoveryURL(u); !ok {
		return want
	}
	return ""
}

// checkFetchURL enforces the rules shared by discovery and JWKS URLs:
// https (http only to a loopback name, for development), no credentials,
// no fragment.
func checkFetchURL(u *url.URL) string {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return "must use https (http is allowed only for localhost, 127.0.0.1 and ::1)"
	default:
		return "must be an absolute https URL"
	}
	if u.User != nil {
		return "must not contain user information"
	}
	if u.Fragment != "" {
		return "must not have a fragment"
	}
	return ""
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// issuerFromDiscoveryURL returns the issuer the URL was formed from: OpenID
// Connect Discovery 1.0 §4 appends the well-known suffix to the issuer, and
// AgentCore's pattern puts RFC 8414's suffix at the end too.
func issuerFromDiscoveryURL(u string) (string, bool) {
	for _, suffix := range []string{wellKnownOIDC, wellKnownOAuth} {
		if iss, ok := strings.CutSuffix(u, suffix); ok {
			parsed, err := url.Parse(iss)
			if err != nil || parsed.Host == "" || strings.HasSuffix(iss, "/") {
				return "", false
			}
			return iss, true
		}
	}
	return "", false
}
