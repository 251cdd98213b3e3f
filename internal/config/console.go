package config

import (
	"regexp"
	"time"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// ConsoleFile turns on the admin console at <publicUrl>/console/
// (docs/console.md): operators sign in at the organisation's identity
// provider, and those whose ID token carries the admin claim act with the
// admin principal's authorization, each change audited with their name.
type ConsoleFile struct {
	// Enabled serves the console; default false.
	Enabled bool `yaml:"enabled"`
	// Provider names the OAuth2 credential provider operators sign in at
	// (an OpenID provider; behalf's callback is <publicUrl>/console/callback).
	Provider string `yaml:"provider"`
	// Scopes are asked at sign-in; openid is added.
	Scopes []string `yaml:"scopes"`
	// AdminClaim is the ID token claim that makes a person an operator.
	AdminClaim ConsoleClaimFile `yaml:"adminClaim"`
	// Principal is the access key id of the principal whose authorization
	// the console acts with.
	Principal string `yaml:"principal"`
	// SessionTTL is how long a sign-in lasts; default 30m.
	SessionTTL time.Duration `yaml:"sessionTtl"`
}

// ConsoleClaimFile names a claim and the value it must have: a string
// claim equal to it, or a string-array claim containing it.
type ConsoleClaimFile struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// Console is the validated console configuration.
type Console struct {
	Provider              string
	Scopes                []string
	ClaimName, ClaimValue string
	Principal             string
	SessionTTL            time.Duration
}

// DefaultConsoleSessionTTL is how long a console sign-in lasts by default.
const DefaultConsoleSessionTTL = 30 * time.Minute

var (
	consoleProviderPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	accessKeyIDPattern     = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	claimNamePattern       = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
)

// validateConsole checks the console section; c.Console stays nil when
// it is off.
func (f File) validateConsole(c *Config, probs *Problems) {
	k := f.Console
	if !k.Enabled {
		return
	}
	if !consoleProviderPattern.MatchString(k.Provider) {
		probs.add("console.provider", "must name an OAuth2 credential provider (letters, digits, - and _, at most 128)")
	}
	for _, s := range k.Scopes {
		if !oauthwire.ValidScopeToken(s) {
			probs.add("console.scopes", "%q is not a scope (RFC 6749 §3.3)", s)
		}
	}
	if !claimNamePattern.MatchString(k.AdminClaim.Name) {
		probs.add("console.adminClaim.name", "must name the ID token claim that makes a person an admin, e.g. groups")
	}
	if k.AdminClaim.Value == "" || len(k.AdminClaim.Value) > 1024 {
		probs.add("console.adminClaim.value", "must be the value the claim must equal or contain, e.g. behalf-admins (at most 1024 bytes)")
	}
	if !accessKeyIDPattern.MatchString(k.Principal) {
		probs.add("console.principal", "must be the access key id of the principal the console acts with (16 to 128 capital letters and digits)")
	}
	ttl := k.SessionTTL
	if ttl == 0 {
		ttl = DefaultConsoleSessionTTL
	}
	if ttl < time.Minute || ttl > 12*time.Hour {
		probs.add("console.sessionTtl", "must be between 1m and 12h")
	}
	c.Console = &Console{Provider: k.Provider, Scopes: k.Scopes, ClaimName: k.AdminClaim.Name, ClaimValue: k.AdminClaim.Value,
		Principal: k.Principal, SessionTTL: ttl}
}
