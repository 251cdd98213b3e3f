package mcpauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// ClientMetadata is the client metadata behalf presents (RFC 7591 §2),
// in a registration request or a Client ID Metadata Document.
type ClientMetadata struct {
	ClientID                string   `json:"client_id,omitempty"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	// JWKSURI is where the keys of a private_key_jwt client are
	// (RFC 7591 §2).
	JWKSURI string `json:"jwks_uri,omitempty"`
}

// RegisteredClient is a registration response's client (RFC 7591 §3.2.1).
// ClientSecret is empty for a public client.
type RegisteredClient struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret,omitempty"`
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
}

// ErrRegistration reports that the authorization server refused the
// registration, or that its answer was not a client.
var ErrRegistration = errors.New("mcpauth: dynamic client registration failed")

// maxClientID bounds a registered client id behalf keeps.
const maxClientID = 256

// Register registers a client at an authorization server's registration
// endpoint (RFC 7591 §3.1) through client (egress-policed; no redirect is
// followed). Its errors wrap ErrRegistration and quote the server's error
// code and description (§3.2.2), never a body that may hold a secret.
func Register(ctx context.Context, client *http.Client, endpoint string, md ClientMetadata) (RegisteredClient, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	fail := func(format string, args ...any) (RegisteredClient, error) {
		return RegisteredClient{}, fmt.Errorf("%w: %s", ErrRegistration, fmt.Sprintf(format, args...))
	}
	if _, err := parseEndpoint(endpoint); err != nil {
		return fail("registration_endpoint: %s", err.Error())
	}
	body, err := json.Marshal(md)
	if err != nil {
		return fail("the metadata could not be encoded")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return fail("the request could not be built")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Do(req)
	if err != nil {
		return fail("%s", ErrUnreachable.Error())
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	raw, err := io.ReadAll(io.LimitReader(res.Body, MaxDocument+1))
	if err != nil || len(raw) > MaxDocument {
		return fail("the response could not be read (at most %d bytes)", MaxDocument)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		return fail("the server answered HTTP %d with content type %q, not application/json", res.StatusCode, mt)
	}
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		var e struct {
			Code        string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = decodeObject(raw, &e)
		return fail("the server answered HTTP %d %s", res.StatusCode, strings.TrimSpace(printable(e.Code, 64)+" "+printable(e.Description, 256)))
	}
	var rc RegisteredClient
	if err := decodeObject(raw, &rc); err != nil {
		return fail("the response is not a registered client")
	}
	if rc.ClientID == "" || len(rc.ClientID) > maxClientID || printable(rc.ClientID, maxClientID) != rc.ClientID {
		return fail("the response has no client_id of at most %d printable characters", maxClientID)
	}
	if len(rc.ClientSecret) > 2048 {
		return fail("the response's client_secret is longer than 2048 bytes")
	}
	return rc, nil
}

// printable keeps up to n printable ASCII characters of s, for text a
// server chose that behalf shows.
func printable(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}
