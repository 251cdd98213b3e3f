// Package mcpauth is the client side of MCP authorization (MCP
// specification, "Authorization", 2025-11-25 and 2026-07-28): how behalf,
// calling a remote MCP server on an agent's behalf, learns which
// authorization server guards it and what that server supports.
//
// Discover probes the server without credentials, reads its Bearer
// challenge (RFC 6750 §3, RFC 9728 §5.1), fetches its protected resource
// metadata (RFC 9728) and its authorization server's metadata (RFC 8414,
// OpenID Connect Discovery 1.0), and checks what the specification
// requires before a client may go on: the resource is the server's (or,
// at the root well-known URI, its origin's), the issuer is the one asked
// for, PKCE S256 is supported. A server that answers 401 and serves no
// protected resource metadata is discovered as the 2025-03-26 revision
// had it: the authorization server is the server's origin, its RFC 8414
// metadata at the origin's well-known URI or, without one, its default
// endpoints. It obtains no token and registers no client.
package mcpauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/json"
)

// MaxDocument bounds every response body discovery reads.
const MaxDocument = 64 << 10

// DefaultTimeout bounds a whole discovery, on top of the caller's context
// and the client's own per-call bound.
const DefaultTimeout = 30 * time.Second

// Well-known path segments: RFC 9728 §3, RFC 8414 §3, OpenID Connect
// Discovery 1.0 §4.
const (
	wellKnownResource      = "/.well-known/oauth-protected-resource"
	wellKnownAuthorization = "/.well-known/oauth-authorization-server"
	wellKnownOpenID        = "/.well-known/openid-configuration"
)

// Discovery is what an MCP server's authorization is.
type Discovery struct {
	// ServerURL is the server's canonical URI (CanonicalResource).
	ServerURL string
	// Resource is the canonical URI of the protected resource its
	// metadata names, the RFC 8707 resource of its tokens: ServerURL, or
	// the server's origin when the metadata at the root well-known URI
	// names the origin (RFC 9728 §3.3).
	Resource string
	// ChallengeScopes are the scopes of the 401's challenge, if any.
	ChallengeScopes []string
	// ResourceMetadataURL is where the protected resource metadata was
	// found, and ResourceMetadataSource how: "challenge" (its
	// resource_metadata parameter), "path" (RFC 9728 §3.1's well-known
	// URI with the server's path) or "root" (the well-known URI alone);
	// "none", with no URL and an empty ResourceMetadata, when the server
	// serves none and the 2025-03-26 discovery found its authorization
	// server (AuthorizationServerSource).
	ResourceMetadataURL    string
	ResourceMetadataSource string
	ResourceMetadata       ResourceMetadata
	// AuthorizationServer is the metadata of the authorization server a
	// client uses, found as AuthorizationServerSource says.
	AuthorizationServer AuthorizationServerMetadata
	// AuthorizationServerSource is SourceResourceMetadata,
	// SourceOriginMetadata or SourceDefaultEndpoints.
	AuthorizationServerSource string
	// AuthorizationServerMetadataURL is where its metadata was found; ""
	// for SourceDefaultEndpoints.
	AuthorizationServerMetadataURL string
	// Scopes is what a client asks for (MCP authorization, "Scope
	// Selection Strategy"): the challenge's scopes, else the resource's
	// scopes_supported, else none; ScopeSource says which ("challenge",
	// "resource-metadata" or "").
	Scopes      []string
	ScopeSource string
}

// How Discover found the authorization server.
const (
	// SourceResourceMetadata: the first of the protected resource
	// metadata's authorization_servers (MCP authorization 2025-11-25).
	SourceResourceMetadata = "resource-metadata"
	// SourceOriginMetadata: the server serves no protected resource
	// metadata; the authorization server is its origin, whose RFC 8414
	// metadata is at the origin's well-known URI (MCP authorization
	// 2025-03-26, "Server Metadata Discovery").
	SourceOriginMetadata = "origin-metadata"
	// SourceDefaultEndpoints: no protected resource metadata and no
	// authorization server metadata at the origin; the endpoints are
	// /authorize, /token and /register at the origin (MCP authorization
	// 2025-03-26, "Fallbacks for Servers without Metadata Discovery").
	SourceDefaultEndpoints = "default-endpoints"
)

// ResourceMetadata is RFC 9728 §2's protected resource metadata, the
// members an MCP client uses.
type ResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// AuthorizationServerMetadata is RFC 8414 §2's authorization server
// metadata, the members an MCP client uses.
type AuthorizationServerMetadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// TokenEndpointAuthSigningAlgValuesSupported lists the algorithms of
	// the private_key_jwt client assertions it verifies.
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	// ClientIDMetadataDocumentSupported: client ids may be URLs of
	// client metadata documents (MCP 2025-11-25).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
	// AuthorizationResponseIssParameterSupported: RFC 9207.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// AuthorizationGrantProfilesSupported lists the JWT authorization
	// grant profiles it accepts, such as the Identity Assertion JWT
	// Authorization Grant (ID-JAG).
	AuthorizationGrantProfilesSupported []string `json:"authorization_grant_profiles_supported,omitempty"`
}

// Discover discovers the authorization of the MCP server at serverURL.
// client should come from egress.NewClient, which decides which
// addresses may be reached; Discover follows no redirect, whatever the
// client's CheckRedirect: a metadata document must be served at its own
// URL (RFC 9728 §3.3 and RFC 8414 §3.3 tie it to that URL), and a
// redirect would let the server send discovery elsewhere. Every
// failure is a *DiscoveryError; a server that answers the probe with 2xx
// and serves no protected resource metadata is ErrNotProtected, not
// discovered at its origin: nothing says it is protected.
func Discover(ctx context.Context, client *http.Client, serverURL string) (Discovery, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	d := &discoverer{ctx: ctx, client: &c}

	canonical, err := CanonicalResource(serverURL)
	if err != nil {
		return Discovery{}, &DiscoveryError{Step: StepInput, Err: ErrInvalidURL, Reason: err.Error()}
	}
	out := Discovery{ServerURL: canonical}
	challenge, openStatus, err := d.probe(serverURL)
	if err != nil {
		return Discovery{}, err
	}
	if s := challenge.Params["scope"]; s != "" {
		out.ChallengeScopes = strings.Fields(s)
	}
	out.ResourceMetadata, out.ResourceMetadataURL, out.ResourceMetadataSource, err = d.resourceMetadata(canonical, challenge.Params["resource_metadata"])
	switch {
	case err == nil:
		out.Resource, _ = CanonicalResource(out.ResourceMetadata.Resource) // resourceMetadata checked it
		out.AuthorizationServerSource = SourceResourceMetadata
		if out.AuthorizationServer, out.AuthorizationServerMetadataURL, err = d.authorizationMetadata(out.ResourceMetadata.AuthorizationServers[0]); err != nil {
			return Discovery{}, err
		}
	case openStatus == 0 && errors.Is(err, errResourceMetadataNotFound):
		// A 401 and no metadata offered anywhere: a server of the
		// 2025-03-26 revision, which had no protected resource metadata.
		out.Resource, out.ResourceMetadataSource = canonical, "none"
		var de *DiscoveryError
		_ = errors.As(err, &de) // resourceMetadata returns only *DiscoveryError
		if out.AuthorizationServer, out.AuthorizationServerMetadataURL, out.AuthorizationServerSource, err = d.originAuthorization(canonical, de.Reason); err != nil {
			return Discovery{}, err
		}
	default:
		return Discovery{}, notProtected(err, serverURL, openStatus)
	}
	switch {
	case len(out.ChallengeScopes) > 0:
		out.Scopes, out.ScopeSource = out.ChallengeScopes, "challenge"
	case len(out.ResourceMetadata.ScopesSupported) > 0:
		out.Scopes, out.ScopeSource = out.ResourceMetadata.ScopesSupported, "resource-metadata"
	default:
		out.Scopes = []string{}
	}
	return out, nil
}

type discoverer struct {
	ctx    context.Context
	client *http.Client
}

// initialize is the probe's body: a JSON-RPC initialize request, what
// an MCP client sends first.
const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"behalf","version":"discovery"}}}`

// probe sends the unauthenticated initialize and returns the 401's
// Bearer challenge. A server may answer initialize without a token and
// require one only for later requests (MCP authorization, "Scope
// Challenge Handling" answers per operation): a 2xx is returned as
// openStatus, with no challenge, and discovery goes on at the
// well-known URIs.
func (d *discoverer) probe(serverURL string) (c Challenge, openStatus int, err error) {
	fail := func(err error, reason string) (Challenge, int, error) {
		return Challenge{}, 0, &DiscoveryError{Step: StepProbe, URL: serverURL, Err: err, Reason: reason}
	}
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, serverURL, strings.NewReader(initialize))
	if err != nil {
		return fail(ErrInvalidURL, "the request could not be built")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	res, err := d.client.Do(req)
	if err != nil {
		return fail(d.transportError(err), "")
	}
	_ = res.Body.Close() // unread: the probe needs only the status and header
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return Challenge{}, res.StatusCode, nil
	}
	if res.StatusCode != http.StatusUnauthorized {
		return fail(ErrNotProtected, fmt.Sprintf("the server answered HTTP %d, not 401", res.StatusCode))
	}
	cs, err := ParseChallenges(res.Header.Values("WWW-Authenticate"))
	if err != nil {
		return fail(ErrChallenge, err.Error())
	}
	b, ok := BearerChallenge(cs)
	if !ok {
		return fail(ErrNotProtected, "the 401 has no Bearer challenge")
	}
	return b, 0, nil
}

// notProtected is the refusal of a server that answered the probe with
// openStatus (a 2xx) and serves no protected resource metadata at the
// well-known URIs: nothing says it is protected. Other errors are
// returned as they are.
func notProtected(err error, serverURL string, openStatus int) error {
	var de *DiscoveryError
	if openStatus == 0 || !errors.As(err, &de) || !errors.Is(de.Err, errNoResourceMetadata) {
		return err
	}
	return &DiscoveryError{Step: StepProbe, URL: serverURL, Err: ErrNotProtected,
		Reason: fmt.Sprintf("the server answered HTTP %d, not 401, and serves no protected resource metadata (%s)", openStatus, de.Reason)}
}

// resourceMetadata fetches the protected resource metadata from the
// challenge's URL or, without one, from the well-known URIs (RFC 9728
// §3.1; MCP authorization, "Protected Resource Metadata Discovery
// Requirements"), and checks it is the server's (§3.3).
func (d *discoverer) resourceMetadata(canonical, fromChallenge string) (m ResourceMetadata, at, source string, err error) {
	type candidate struct{ url, source string }
	var candidates []candidate
	u, _ := url.Parse(canonical) // canonical parses
	origin := originOf(u)
	if fromChallenge != "" {
		if _, err := parseEndpoint(fromChallenge); err != nil {
			return m, "", "", &DiscoveryError{Step: StepResourceMetadata, Err: ErrInvalidURL, Reason: "resource_metadata: " + err.Error()}
		}
		candidates = []candidate{{fromChallenge, "challenge"}}
	} else {
		if p := u.EscapedPath(); p != "" {
			candidates = append(candidates, candidate{origin + wellKnownResource + p, "path"})
		}
		candidates = append(candidates, candidate{origin + wellKnownResource, "root"})
	}
	var missing []string
	notFound := fromChallenge == ""
	for _, c := range candidates {
		raw, status, err := d.fetch(StepResourceMetadata, c.url)
		if err != nil {
			return m, "", "", err
		}
		if status != http.StatusOK {
			missing = append(missing, fmt.Sprintf("%s answered HTTP %d", c.url, status))
			notFound = notFound && status == http.StatusNotFound
			continue
		}
		if m, err = DecodeResourceMetadata(raw); err != nil {
			return m, "", "", &DiscoveryError{Step: StepResourceMetadata, URL: c.url, Err: ErrResourceMetadata, Reason: err.Error()}
		}
		// RFC 9728 §3.3: the resource is the URL the metadata's URI was
		// made from, the server's, or at the root URI its origin's.
		if rc, err := CanonicalResource(m.Resource); err != nil || (rc != canonical && (c.source != "root" || rc != origin)) {
			return ResourceMetadata{}, "", "", &DiscoveryError{Step: StepResourceMetadata, URL: c.url, Err: ErrResourceMismatch,
				Reason: fmt.Sprintf("its resource is %q, not %q", m.Resource, canonical)}
		}
		if len(m.AuthorizationServers) == 0 {
			return ResourceMetadata{}, "", "", &DiscoveryError{Step: StepResourceMetadata, URL: c.url, Err: ErrNoAuthorizationServer,
				Reason: "authorization_servers is empty"}
		}
		return m, c.url, c.source, nil
	}
	sentinel := errNoResourceMetadata
	if notFound {
		sentinel = errResourceMetadataNotFound
	}
	return m, "", "", &DiscoveryError{Step: StepResourceMetadata, Err: sentinel, Reason: strings.Join(missing, "; ") + redirectNote(missing)}
}

// originAuthorization is the 2025-03-26 revision's discovery (MCP
// authorization 2025-03-26, "Server Metadata Discovery" and "Fallbacks
// for Servers without Metadata Discovery"), for a server that answered
// 401 and whose well-known protected resource metadata URIs answered 404
// (as noMetadata says): its authorization server is the origin of its
// URL, the path discarded. The origin's RFC 8414 metadata is the answer
// if it is there, checked as authorizationMetadata checks, but for the
// issuer: the revision names no issuer, only the origin that serves the
// document, so the issuer must be on that origin (with or without a
// path) rather than identical to it (RFC 8414 §3.3); an issuer of
// another origin is refused. Only a 404 there means the default
// endpoints; any other answer, a redirect too, is refused. The default
// endpoints come with no metadata: nothing advertises PKCE, which the
// revision requires of every client (as OAuth 2.1 does) and behalf
// always uses; the issuer is the origin.
func (d *discoverer) originAuthorization(canonical, noMetadata string) (m AuthorizationServerMetadata, at, source string, err error) {
	u, _ := url.Parse(canonical) // canonical parses
	origin := originOf(u)
	at = origin + wellKnownAuthorization
	fail := func(sentinel error, reason string) (AuthorizationServerMetadata, string, string, error) {
		return AuthorizationServerMetadata{}, "", "", &DiscoveryError{Step: StepAuthorizationMetadata, URL: at, Err: sentinel,
			Reason: reason + "; 2025-03-26 discovery at the server's origin, as it serves no protected resource metadata (" + noMetadata + ")"}
	}
	raw, status, err := d.fetch(StepAuthorizationMetadata, at)
	switch {
	case err != nil:
		return AuthorizationServerMetadata{}, "", "", err
	case status == http.StatusNotFound:
		return AuthorizationServerMetadata{Issuer: origin, AuthorizationEndpoint: origin + "/authorize", TokenEndpoint: origin + "/token",
			RegistrationEndpoint: origin + "/register"}, "", SourceDefaultEndpoints, nil
	case status != http.StatusOK:
		answered := []string{fmt.Sprintf("it answered HTTP %d, neither the metadata nor 404", status)}
		return fail(ErrAuthorizationMetadata, answered[0]+redirectNote(answered))
	}
	if m, err = DecodeAuthorizationServerMetadata(raw); err != nil {
		return fail(ErrAuthorizationMetadata, err.Error())
	}
	if !issuerOnOrigin(m.Issuer, origin) {
		return fail(ErrIssuerMismatch, fmt.Sprintf("its issuer is %q, not an issuer on the server's origin %q", m.Issuer, origin))
	}
	if !slices.Contains(m.CodeChallengeMethodsSupported, "S256") {
		return fail(ErrNoPKCE, "code_challenge_methods_supported does not list S256")
	}
	return m, at, SourceOriginMetadata, nil
}

// issuerOnOrigin reports whether issuer is an issuer identifier (RFC 8414
// §2: no query or fragment) on origin, a canonical one.
func issuerOnOrigin(issuer, origin string) bool {
	c, err := CanonicalResource(issuer)
	if err != nil || strings.ContainsAny(issuer, "?#") {
		return false
	}
	u, _ := url.Parse(c) // c is canonical
	return originOf(u) == origin
}

// originOf is an absolute URL's origin, scheme://host, as it is written.
func originOf(u *url.URL) string { return u.Scheme + "://" + u.Host }

// authorizationMetadata fetches issuer's metadata from the URIs the MCP
// specification lists, in its order ("Authorization Server Metadata
// Discovery"): RFC 8414 §3.1's path insertion, then OpenID Connect
// Discovery's, then OpenID Connect Discovery 1.0 §4's path appending.
// The first document found is the answer: a wrong one is refused, not
// skipped.
func (d *discoverer) authorizationMetadata(issuer string) (AuthorizationServerMetadata, string, error) {
	var m AuthorizationServerMetadata
	u, err := parseEndpoint(issuer)
	if err != nil || u.RawQuery != "" || u.Fragment != "" {
		reason := "its issuer has a query or fragment (RFC 8414 §2)"
		if err != nil {
			reason = err.Error()
		}
		return m, "", &DiscoveryError{Step: StepAuthorizationMetadata, Err: ErrInvalidURL, Reason: "authorization server: " + reason}
	}
	origin, path := originOf(u), strings.TrimSuffix(u.EscapedPath(), "/")
	candidates := []string{origin + wellKnownAuthorization, origin + wellKnownOpenID}
	if path != "" {
		candidates = []string{origin + wellKnownAuthorization + path, origin + wellKnownOpenID + path, origin + path + wellKnownOpenID}
	}
	var missing []string
	for _, at := range candidates {
		raw, status, err := d.fetch(StepAuthorizationMetadata, at)
		if err != nil {
			return m, "", err
		}
		if status != http.StatusOK {
			missing = append(missing, fmt.Sprintf("%s answered HTTP %d", at, status))
			continue
		}
		fail := func(sentinel error, reason string) (AuthorizationServerMetadata, string, error) {
			return AuthorizationServerMetadata{}, "", &DiscoveryError{Step: StepAuthorizationMetadata, URL: at, Err: sentinel, Reason: reason}
		}
		if m, err = DecodeAuthorizationServerMetadata(raw); err != nil {
			return fail(ErrAuthorizationMetadata, err.Error())
		}
		if m.Issuer != issuer {
			return fail(ErrIssuerMismatch, fmt.Sprintf("its issuer is %q, not %q", m.Issuer, issuer))
		}
		if !slices.Contains(m.CodeChallengeMethodsSupported, "S256") {
			return fail(ErrNoPKCE, "code_challenge_methods_supported does not list S256")
		}
		return m, at, nil
	}
	return m, "", &DiscoveryError{Step: StepAuthorizationMetadata, Err: ErrAuthorizationMetadata, Reason: strings.Join(missing, "; ") + redirectNote(missing)}
}

func redirectNote(missing []string) string {
	for _, m := range missing {
		if strings.Contains(m, "HTTP 3") {
			return " (redirects are not followed)"
		}
	}
	return ""
}

// fetch GETs a JSON document, bounded by MaxDocument, and returns its
// body when the status is 200.
func (d *discoverer) fetch(step Step, at string) ([]byte, int, error) {
	fail := func(err error, reason string) ([]byte, int, error) {
		return nil, 0, &DiscoveryError{Step: step, URL: at, Err: err, Reason: reason}
	}
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, at, nil)
	if err != nil {
		return fail(ErrInvalidURL, "the request could not be built")
	}
	req.Header.Set("Accept", "application/json")
	res, err := d.client.Do(req)
	if err != nil {
		return fail(d.transportError(err), "")
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	if res.StatusCode != http.StatusOK {
		return nil, res.StatusCode, nil
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		return fail(errFor(step), fmt.Sprintf("the document's content type is %q, not application/json", mt))
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, MaxDocument+1))
	if err != nil {
		return fail(d.transportError(err), "reading the document failed")
	}
	if len(raw) > MaxDocument {
		return fail(ErrTooLarge, fmt.Sprintf("the document is larger than %d bytes", MaxDocument))
	}
	return raw, http.StatusOK, nil
}

func errFor(step Step) error {
	if step == StepResourceMetadata {
		return ErrResourceMetadata
	}
	return ErrAuthorizationMetadata
}

// transportError classifies a failed call: out of time, or unreachable
// (egress tells no more).
func (d *discoverer) transportError(err error) error {
	if errors.Is(d.ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	return ErrUnreachable
}

// DecodeResourceMetadata decodes RFC 9728 §2 protected resource
// metadata: one JSON object, members matched exactly, none named twice,
// resource and authorization_servers of the right types.
func DecodeResourceMetadata(raw []byte) (ResourceMetadata, error) {
	var m ResourceMetadata
	if err := decodeObject(raw, &m); err != nil {
		return ResourceMetadata{}, err
	}
	if m.Resource == "" {
		return ResourceMetadata{}, errors.New("the document has no resource")
	}
	for _, as := range m.AuthorizationServers {
		if as == "" {
			return ResourceMetadata{}, errors.New("authorization_servers lists an empty issuer")
		}
	}
	return m, nil
}

// DecodeAuthorizationServerMetadata decodes RFC 8414 §2 authorization
// server metadata, as DecodeResourceMetadata does, and requires an issuer
// and a token endpoint, and that every endpoint a client calls is an
// https URL (http only on a loopback host).
func DecodeAuthorizationServerMetadata(raw []byte) (AuthorizationServerMetadata, error) {
	var m AuthorizationServerMetadata
	if err := decodeObject(raw, &m); err != nil {
		return AuthorizationServerMetadata{}, err
	}
	if m.Issuer == "" {
		return AuthorizationServerMetadata{}, errors.New("the document has no issuer")
	}
	if m.TokenEndpoint == "" {
		return AuthorizationServerMetadata{}, errors.New("the document has no token_endpoint")
	}
	for _, e := range []struct{ name, url string }{
		{"authorization_endpoint", m.AuthorizationEndpoint}, {"token_endpoint", m.TokenEndpoint},
		{"registration_endpoint", m.RegistrationEndpoint}, {"revocation_endpoint", m.RevocationEndpoint},
	} {
		if e.url == "" {
			continue
		}
		if _, err := parseEndpoint(e.url); err != nil {
			return AuthorizationServerMetadata{}, fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return m, nil
}

// decodeObject decodes one JSON object with go-jose's JSON fork, which
// refuses duplicate members and matches names case-sensitively (the
// standard library takes the last duplicate and folds case), and refuses
// anything after it. Unknown members are allowed: metadata is extensible.
func decodeObject(raw []byte, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("the document is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return errors.New("the document is not valid metadata JSON: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("the document has data after the JSON object")
	}
	return nil
}
