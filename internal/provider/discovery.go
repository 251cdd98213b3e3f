package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxDocument bounds a discovery document.
const maxDocument = 1 << 20

// ErrDiscovery reports a discovery document that could not be fetched or
// is not valid. Its text is safe to show to the administrator.
var ErrDiscovery = errors.New("discovery failed")

// Discover fetches authorization-server metadata from an OpenID Connect
// Discovery 1.0 (§4) or RFC 8414 (§3) document and validates it: the
// issuer must be the one the document's URL was derived from (OIDC
// Discovery §4.3, RFC 8414 §3.3), and the endpoints behalf needs must be
// absolute https URLs (http only on loopback). client should come from
// egress.NewClient, which decides which addresses may be reached.
func Discover(ctx context.Context, client *http.Client, discoveryURL string) (Metadata, error) {
	fail := func(err error) (Metadata, error) {
		return Metadata{}, fmt.Errorf("%w: %s: %s", ErrDiscovery, discoveryURL, err.Error())
	}
	if err := CheckEndpoint(discoveryURL); err != nil {
		return fail(err)
	}
	raw, err := fetchDocument(ctx, client, discoveryURL)
	if err != nil {
		return fail(err)
	}
	var m Metadata
	if err := json.Unmarshal(raw, &m); err != nil {
		return fail(errors.New("the document is not valid JSON metadata"))
	}
	if err := checkMetadata(discoveryURL, m); err != nil {
		return fail(err)
	}
	return m, nil
}

// fetchDocument gets the JSON document at discoveryURL, bounded.
func fetchDocument(ctx context.Context, client *http.Client, discoveryURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, discoveryURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("could not fetch the document (%w)", redactURLError(err))
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the server answered HTTP %d", res.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "" && mt != "application/json" {
		return nil, fmt.Errorf("the document has content type %q, not application/json", mt)
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxDocument+1))
	if err != nil {
		return nil, errors.New("could not read the document")
	}
	if len(raw) > maxDocument {
		return nil, fmt.Errorf("the document is larger than %d bytes", maxDocument)
	}
	return raw, nil
}

// checkMetadata requires the issuer that discoveryURL was derived from and
// a token endpoint, and checks every endpoint behalf may call.
func checkMetadata(discoveryURL string, m Metadata) error {
	if m.Issuer == "" {
		return errors.New("the document has no issuer")
	}
	if !issuerMatches(discoveryURL, m.Issuer) {
		return fmt.Errorf("the document's issuer %q does not match the discovery URL", m.Issuer)
	}
	if m.TokenEndpoint == "" {
		return errors.New("the document has no token_endpoint")
	}
	for _, e := range []struct{ name, url string }{
		{"issuer", m.Issuer}, {"authorization_endpoint", m.AuthorizationEndpoint}, {"token_endpoint", m.TokenEndpoint},
		{"revocation_endpoint", m.RevocationEndpoint}, {"jwks_uri", m.JWKSURI},
	} {
		if e.url == "" {
			continue
		}
		if err := CheckEndpoint(e.url); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return nil
}

// issuerMatches checks that discoveryURL is where issuer's metadata lives:
// issuer + "/.well-known/openid-configuration" (OIDC Discovery §4), or the
// RFC 8414 §3.1 form that inserts the well-known segment before the
// issuer's path (or the OIDC-style suffix, which RFC 8414 §5 allows).
func issuerMatches(discoveryURL, issuer string) bool {
	trimmed := strings.TrimSuffix(issuer, "/")
	for _, suffix := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		if discoveryURL == trimmed+suffix {
			return true
		}
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return false
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	for _, wk := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		if discoveryURL == u.Scheme+"://"+u.Host+wk+path {
			return true
		}
	}
	return false
}

// CheckEndpoint requires an absolute https URL, or http on a loopback host
// (for development), without user information or fragment.
func CheckEndpoint(raw string) error {
	if len(raw) > 2048 {
		return errors.New("the URL is longer than 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	if u.User != nil || u.Fragment != "" {
		return errors.New("the URL must not contain user information or a fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return errors.New("the URL must use https (http only for localhost)")
	}
	return errors.New("the URL must use https")
}

// redactURLError keeps a transport error's cause without repeating the
// URL's query, which may carry parameters.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
