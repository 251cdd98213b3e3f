package mcpauth

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// maxURL bounds every URL discovery takes or follows.
const maxURL = 2048

// CanonicalResource returns the canonical URI of an MCP server (MCP
// authorization, "Canonical Server URI"; RFC 8707 §2): scheme and host
// lowercased, the scheme's default port dropped (RFC 3986 §6.2.3), no
// fragment and no trailing slash. The URL must be absolute https, or http
// on a loopback host, without user information.
func CanonicalResource(raw string) (string, error) {
	u, err := parseEndpoint(raw)
	if err != nil {
		return "", err
	}
	u.Fragment, u.RawFragment = "", ""
	if port := u.Port(); (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		u.Host = strings.TrimSuffix(u.Host, ":"+port)
	}
	u.Host = strings.ToLower(u.Host)
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), strings.TrimRight(u.RawPath, "/")
	u.ForceQuery = false
	return u.String(), nil
}

// parseEndpoint parses a URL discovery may fetch: absolute https, or http
// on a loopback host (for development), without user information; its
// scheme lowercased.
func parseEndpoint(raw string) (*url.URL, error) {
	if len(raw) > maxURL {
		return nil, fmt.Errorf("the URL is longer than %d characters", maxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q has user information", raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch u.Scheme {
	case "https":
		return u, nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return u, nil
		}
		return nil, fmt.Errorf("%q must use https (http only on a loopback host)", raw)
	}
	return nil, fmt.Errorf("%q must use https", raw)
}

func isLoopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return strings.EqualFold(h, "localhost") || (ip != nil && ip.IsLoopback())
}
