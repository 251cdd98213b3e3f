package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// MCPRouteFile is what an mcp route adds to a tool route: the OAuth
// protected resource (RFC 9728) it is to MCP clients, the authorization
// servers whose tokens it accepts and the scopes each call needs.
type MCPRouteFile struct {
	// Resource is the route's canonical resource URI (RFC 8707), the URL
	// at which MCP clients reach it: https, or http on a loopback host,
	// whose path is the route's path. Tokens must carry it in aud.
	Resource string `yaml:"resource"`
	// AuthorizationServers are the issuers whose tokens the route accepts
	// (the protected resource metadata's authorization_servers).
	AuthorizationServers []string `yaml:"authorizationServers"`
	// Scopes are the scopes every call needs.
	Scopes []string `yaml:"scopes"`
	// ToolScopes are the scopes a JSON-RPC method ("tools/list") or one
	// tool's calls ("tools/call:<tool name>") need besides Scopes.
	ToolScopes map[string][]string `yaml:"toolScopes"`
}

// Bounds of an mcp route.
const (
	maxAuthorizationServers = 16
	maxMCPScopes            = 64
	maxToolScopeRules       = 256
)

var (
	// RFC 6749 §3.3 scope-token.
	mcpScopePattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,255}$`)
	// A JSON-RPC method name as MCP spells them ("tools/call").
	mcpMethodPattern = regexp.MustCompile(`^[A-Za-z0-9_./-]{1,128}$`)
	// An MCP tool name (the 2025-11-25 tools specification's format).
	mcpToolNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
)

// ToolCallRule is the prefix of a toolScopes key for one tool's calls.
const ToolCallRule = "tools/call:"

func (m MCPRouteFile) isZero() bool {
	return m.Resource == "" && len(m.AuthorizationServers) == 0 && len(m.Scopes) == 0 && len(m.ToolScopes) == 0
}

// validate checks an mcp route's resource, issuers and scopes.
func (m MCPRouteFile) validate(at, path string, probs *Problems) {
	if msg := checkResource(m.Resource, path); msg != "" {
		probs.add(at+".resource", "%s", msg)
	}
	if n := len(m.AuthorizationServers); n == 0 || n > maxAuthorizationServers {
		probs.add(at+".authorizationServers", "names 1 to %d issuers", maxAuthorizationServers)
	}
	for i, issuer := range m.AuthorizationServers {
		if !secureURL(issuer) || slices.Contains(m.AuthorizationServers[:i], issuer) {
			probs.add(fmt.Sprintf("%s.authorizationServers[%d]", at, i), "%q must be an https (or loopback http) issuer URL without query or fragment, named once", issuer)
		}
	}
	checkScopes(m.Scopes, at+".scopes", probs)
	if len(m.ToolScopes) > maxToolScopeRules {
		probs.add(at+".toolScopes", "has %d rules; at most %d", len(m.ToolScopes), maxToolScopeRules)
	}
	for rule, scopes := range m.ToolScopes {
		if !validToolScopeRule(rule) {
			probs.add(at+".toolScopes", "%q is neither a JSON-RPC method nor tools/call:<tool name>", rule)
		}
		checkScopes(scopes, fmt.Sprintf("%s.toolScopes[%s]", at, rule), probs)
	}
}

func validToolScopeRule(rule string) bool {
	if tool, ok := strings.CutPrefix(rule, ToolCallRule); ok {
		return mcpToolNamePattern.MatchString(tool)
	}
	return mcpMethodPattern.MatchString(rule)
}

func checkScopes(scopes []string, at string, probs *Problems) {
	if len(scopes) == 0 || len(scopes) > maxMCPScopes {
		probs.add(at, "names 1 to %d scopes", maxMCPScopes)
	}
	for i, s := range scopes {
		if !mcpScopePattern.MatchString(s) || slices.Contains(scopes[:i], s) {
			probs.add(fmt.Sprintf("%s[%d]", at, i), "%q must be an RFC 6749 scope token, named once", s)
		}
	}
}

// checkResource checks a canonical resource URI (RFC 8707 §2; the MCP
// authorization specification's canonical server URI): lowercase scheme
// and host, no query, fragment or trailing slash, and the route's path,
// where the gateway serves it and its metadata.
func checkResource(resource, path string) string {
	if !secureURL(resource) {
		return fmt.Sprintf("%q must be an https (or loopback http) URL without query or fragment", resource)
	}
	u, _ := httpURL(resource)
	if u.Host != strings.ToLower(u.Host) || u.Scheme != strings.ToLower(u.Scheme) || u.RawPath != "" {
		return fmt.Sprintf("%q must be canonical: lowercase scheme and host, an unescaped path", resource)
	}
	if u.Path != path {
		return fmt.Sprintf("%q must be the route's URL: its path must be the route's path %s", resource, path)
	}
	return ""
}

// secureURL is an https URL, or an http one on a loopback host, with no
// credentials, query or fragment.
func secureURL(s string) bool {
	u, ok := httpURL(s)
	if !ok || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return false
	}
	return u.Scheme == "https" || isLoopbackHost(u.Hostname())
}
