package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/smithy-go"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/wat"
)

// An mcp route is a tool route with an MCP authorization front: its
// callers are OAuth clients holding an access token for the route's
// resource, which the gateway validates as an OAuth 2.1 resource server
// (the MCP authorization specification) before injecting the route's own
// credential. The client's token never reaches the upstream (toolHeaders).

// wellKnownPRM is RFC 9728 §3's well-known path segment.
const wellKnownPRM = "/.well-known/oauth-protected-resource"

// Error types of an mcp route's refusals.
const (
	errInsufficientScope = "InsufficientScope"
	errHeaderMismatch    = "HeaderMismatch"
	// jsonRPCHeaderMismatch is the JSON-RPC error of a request whose
	// Mcp-Method or Mcp-Name header differs from its body (MCP
	// 2026-07-28, Streamable HTTP).
	jsonRPCHeaderMismatch = -32020
)

// mcpResource is an mcp route's protected resource: its metadata and the
// challenges it answers with.
type mcpResource struct {
	config.MCPRouteFile
	// metadataURL is where its protected resource metadata is (RFC 9728
	// §3.1: the well-known segment inserted before the resource's path).
	metadataURL string
	metadata    []byte
}

// protectedResourceMetadata is RFC 9728 §2's document, with the members
// an mcp route has.
type protectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`
}

func newMCPResource(rc config.GatewayRouteFile) (*mcpResource, error) {
	u, err := url.Parse(rc.Resource)
	if err != nil {
		return nil, err
	}
	scopes := slices.Clone(rc.Scopes)
	for _, rule := range slices.Sorted(mapKeys(rc.ToolScopes)) {
		scopes = oauthwire.UnionScopes(scopes, rc.ToolScopes[rule])
	}
	doc, err := json.Marshal(protectedResourceMetadata{Resource: rc.Resource, AuthorizationServers: rc.AuthorizationServers,
		ScopesSupported: scopes, BearerMethodsSupported: []string{"header"}, ResourceName: rc.Name})
	if err != nil {
		return nil, err
	}
	return &mcpResource{MCPRouteFile: rc.MCPRouteFile, metadataURL: u.Scheme + "://" + u.Host + wellKnownPRM + u.Path, metadata: doc}, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// serveMetadata serves the protected resource metadata (RFC 9728 §3.2).
func (m *mcpResource) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(m.metadata) // the caller went away: nothing to do
}

// challenge answers 401 with a bearer challenge that tells an MCP client
// where the metadata is and what to ask for (RFC 6750 §3, RFC 9728 §5.1);
// code is invalid_token when a token was sent.
func (m *mcpResource) challenge(w http.ResponseWriter, code, message string) {
	params := `resource_metadata="` + m.metadataURL + `", scope="` + strings.Join(m.Scopes, " ") + `"`
	if code != "" {
		params = `error="` + code + `", ` + params
	}
	w.Header().Set("WWW-Authenticate", "Bearer "+params)
	writeError(w, http.StatusUnauthorized, "UnauthorizedException", message)
}

// insufficientScope answers 403 with every scope the call needs in one
// challenge (RFC 6750 §3.1; MCP's step-up authorization).
func (m *mcpResource) insufficientScope(w http.ResponseWriter, need []string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+strings.Join(need, " ")+`", resource_metadata="`+m.metadataURL+`"`)
	writeError(w, http.StatusForbidden, errInsufficientScope, "the access token lacks a scope this call needs: "+strings.Join(need, " "))
}

// serveMCP validates the caller's access token, mints the workload
// access token of the route's workload for its user, checks the scopes
// the JSON-RPC call needs, and forwards as a tool route does.
func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request, s *callState) {
	m := s.route.mcp
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		m.challenge(w, "", "an access token for "+m.Resource+" is required")
		return
	}
	granted, ok := g.mcpCaller(w, r, s, token)
	if !ok {
		return
	}
	body, ok := readBody(w, r, s.route)
	if !ok {
		return
	}
	calls, err := mcpCallsOf(r, body)
	if err != nil {
		writeHeaderMismatch(w, err)
		return
	}
	if rule, need := m.denied(calls, granted); rule != "" {
		s.rule, s.ruleScopes = rule, need
		m.insufficientScope(w, need)
		return
	}
	s.rpc, s.mcpBody = rpcRequestOf(r, body), true
	if g.acceptRequestState(w, r, s) {
		g.forward(w, r, s)
	}
}

// mcpCaller accepts an access token issued for the route's resource by
// one of its authorization servers (RFC 8707 audience, RFC 9068 §4) and
// has behalf verify it with the workload's inbound authorizers while
// minting the workload's token for its user
// (GetWorkloadAccessTokenForJWT). It returns the token's scopes, or
// answers the caller itself.
func (g *Gateway) mcpCaller(w http.ResponseWriter, r *http.Request, s *callState, token string) ([]string, bool) {
	m := s.route.mcp
	c, ok := accessTokenClaims(token)
	if !ok || !slices.Contains(m.AuthorizationServers, c.Issuer) || !slices.Contains(c.Audience, m.Resource) {
		m.challenge(w, "invalid_token", "the access token was not issued for "+m.Resource+" by one of its authorization servers")
		return nil, false
	}
	out, err := g.data.GetWorkloadAccessTokenForJWT(r.Context(), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
		WorkloadName: aws.String(s.route.Workload), UserToken: aws.String(token)})
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && slices.Contains([]string{"AccessDeniedException", "ValidationException", "UnauthorizedException"}, apiErr.ErrorCode()) {
			m.challenge(w, "invalid_token", "the access token was not accepted: "+apiErr.ErrorMessage())
			return nil, false
		}
		g.dataPlaneError(w, r, err)
		return nil, false
	}
	s.wat, s.user, s.accessToken = aws.ToString(out.WorkloadAccessToken), wat.UserFromJWT(c.Issuer, c.Subject), token
	return c.scopes(), true
}

// tokenClaims are the claims of an access token the gateway reads: the
// data plane verifies its signature and lifetime.
type tokenClaims struct {
	Issuer   string       `json:"iss"`
	Subject  string       `json:"sub"`
	Audience stringOrList `json:"aud"`
	Scope    string       `json:"scope"`
	Scp      stringOrList `json:"scp"`
}

// scopes are the token's scope (RFC 8693 §4.2) and scp claims.
func (c tokenClaims) scopes() []string {
	out := strings.Fields(c.Scope)
	for _, s := range c.Scp {
		out = append(out, strings.Fields(s)...)
	}
	return out
}

// stringOrList is a claim that is a string or an array of strings
// (RFC 7519 §4.1.3's aud).
type stringOrList []string

func (l *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*l = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

// accessTokenClaims decodes a JWT's payload, unverified.
func accessTokenClaims(token string) (tokenClaims, bool) {
	var c tokenClaims
	return c, unverifiedClaims(token, &c) && c.Issuer != "" && c.Subject != ""
}

// mcpCall is one JSON-RPC message of a call: its method ("" for a
// response) and, for tools/call and prompts/get, the tool's or prompt's
// name.
type mcpCall struct{ method, name string }

// errNotJSONRPC refuses a POST body that is no JSON-RPC message.
var errNotJSONRPC = errors.New("the request body is not a JSON-RPC message")

// mcpCallsOf reads the JSON-RPC requests of a POST body (a message or a
// batch); other methods carry none. The Mcp-Method and Mcp-Name headers,
// when sent, must agree with the body (MCP 2026-07-28, Streamable HTTP).
func mcpCallsOf(r *http.Request, body []byte) ([]mcpCall, error) {
	if r.Method != http.MethodPost {
		return nil, nil
	}
	raws := []json.RawMessage{body}
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		// A fresh slice: decoding into one whose element is body would
		// write the batch's first message over the body being decoded,
		// and forwarded.
		raws = nil
		if json.Unmarshal(body, &raws) != nil || len(raws) == 0 {
			return nil, errNotJSONRPC
		}
	}
	calls := make([]mcpCall, 0, len(raws))
	for _, raw := range raws {
		c, err := mcpCallOf(raw)
		if err != nil {
			return nil, err
		}
		calls = append(calls, c)
	}
	return calls, checkMCPHeaders(r.Header, calls[0], len(calls) == 1)
}

// mcpCallOf reads one message's method and tool name as the upstream
// will: members matched exactly, and never one of two of the same name
// (encoding/json alone would take "Params" for "params", and the last of
// two "method" members, where an upstream may take the first).
func mcpCallOf(raw json.RawMessage) (mcpCall, error) {
	msg, err := members(raw)
	if err != nil {
		return mcpCall{}, err
	}
	var c mcpCall
	if m, ok := msg["method"]; ok && json.Unmarshal(m, &c.method) != nil {
		return mcpCall{}, errNotJSONRPC
	}
	if c.method == "tools/call" || c.method == "prompts/get" {
		params, err := members(msg["params"])
		if err != nil || json.Unmarshal(params["name"], &c.name) != nil {
			return mcpCall{}, errNotJSONRPC
		}
	}
	return c, nil
}

// members decodes a JSON object's members, refusing duplicate names.
func members(raw json.RawMessage) (map[string]json.RawMessage, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, errNotJSONRPC
	}
	out := map[string]json.RawMessage{}
	for d.More() {
		t, err := d.Token()
		name, ok := t.(string)
		if _, dup := out[name]; err != nil || !ok || dup {
			return nil, errNotJSONRPC
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, errNotJSONRPC
		}
		out[name] = v
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return nil, errNotJSONRPC
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errNotJSONRPC
	}
	return out, nil
}

// errHeaderBody refuses a request whose MCP headers differ from its body.
var errHeaderBody = errors.New("the Mcp-Method or Mcp-Name header differs from the request body")

func checkMCPHeaders(h http.Header, c mcpCall, single bool) error {
	method, name := c.method, c.name
	hm, hn := h.Get("Mcp-Method"), h.Get("Mcp-Name")
	if hm == "" && hn == "" {
		return nil
	}
	if !single || hm != method {
		return errHeaderBody
	}
	if hn == "" {
		return nil
	}
	if inner, ok := strings.CutPrefix(hn, "=?base64?"); ok && strings.HasSuffix(inner, "?=") {
		decoded, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(inner, "?="))
		if err != nil {
			return errHeaderBody
		}
		hn = string(decoded)
	}
	if (method == "tools/call" || method == "prompts/get") && hn != name {
		return errHeaderBody
	}
	return nil
}

// writeHeaderMismatch answers 400: a JSON-RPC error for headers that
// differ from the body, a typed error for a body that is no message.
func writeHeaderMismatch(w http.ResponseWriter, err error) {
	if errors.Is(err, errNotJSONRPC) {
		writeError(w, http.StatusBadRequest, "ValidationException", err.Error())
		return
	}
	w.Header().Set("X-Amzn-ErrorType", errHeaderMismatch)
	writeJSON(w, http.StatusBadRequest, map[string]any{"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": jsonRPCHeaderMismatch, "message": err.Error()}})
}

// denied is the first rule, most specific first, whose scopes the token
// lacks for one of calls ("" when none), and every scope the calls need.
func (m *mcpResource) denied(calls []mcpCall, granted []string) (rule string, need []string) {
	need = slices.Clone(m.Scopes)
	add := func(name string) {
		for _, s := range m.ToolScopes[name] {
			if !slices.Contains(need, s) {
				need = append(need, s)
			}
		}
		if rule == "" && !containsAll(granted, m.ToolScopes[name]) {
			rule = name
		}
	}
	for _, c := range calls {
		if c.method == "tools/call" {
			add(config.ToolCallRule + c.name)
		}
		if c.method != "" {
			add(c.method)
		}
	}
	if rule == "" && !containsAll(granted, m.Scopes) {
		rule = "scopes"
	}
	return rule, need
}

func containsAll(have, want []string) bool {
	for _, s := range want {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
}

// servePRM serves an mcp route's protected resource metadata at its
// path-inserted well-known URI (RFC 9728 §3.1) and, for the first mcp
// route, at the root one too, where MCP clients look when a challenge
// names none.
func servePRM(mux *http.ServeMux, r *route, first bool) {
	mux.HandleFunc("GET "+wellKnownPRM+r.Path, r.mcp.serveMetadata)
	if first {
		mux.HandleFunc("GET "+wellKnownPRM, r.mcp.serveMetadata)
	}
}
