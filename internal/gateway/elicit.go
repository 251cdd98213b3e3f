package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// A route's credential of type user needs the user's consent at the
// third party first. To an MCP client's JSON-RPC request the gateway
// answers that as MCP lets a server ask a client for a third party's
// authorization, URL-mode elicitation: an MCP 2026-07-28 client that
// declares elicitation.url in its request's _meta gets an input_required
// result (multi round-trip requests) whose requestState the gateway
// signs; an MCP 2025-11-25 client that declared it at initialize gets the
// URLElicitationRequiredError (-32042). Any other JSON-RPC request gets
// the JSON-RPC error consentRequiredCode carrying what the
// ConsentRequiredException body carries, at 200: a 401 would make an MCP
// client authorize itself to the route again, which does not help. A
// request that is no JSON-RPC request gets the ConsentRequiredException.

// MCP protocol revisions that elicit by URL.
const (
	revisionURLElicitation = "2025-11-25"
	revisionMRTR           = "2026-07-28"
)

// JSON-RPC error codes of a consent.
const (
	// codeURLElicitationRequired is MCP 2025-11-25's
	// URLElicitationRequiredError.
	codeURLElicitationRequired = -32042
	// consentRequiredCode is the gateway's, for a client that does not
	// elicit by URL (JSON-RPC 2.0 §5.1: -32000 to -32099 are the
	// implementation's).
	consentRequiredCode = -32000
	codeInvalidParams   = -32602
)

// Error types a call's record names.
const (
	errConsentRequired        = "ConsentRequiredException"
	errURLElicitationRequired = "URLElicitationRequired"
	errInvalidRequestState    = "InvalidRequestState"
)

// _meta keys of MCP 2026-07-28 requests.
const (
	metaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	metaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
)

// consentInput is the key of the gateway's input request in an
// input_required result.
const consentInput = "behalf_consent"

// requestStatePrefix marks a requestState the gateway issued; another
// is the upstream's, which passes through.
const requestStatePrefix = "behalf1."

// requestStateTTL bounds how long a user may take to consent.
const requestStateTTL = 15 * time.Minute

// rpcRequest is a JSON-RPC request an MCP client sent: one message with
// an id.
type rpcRequest struct {
	id             json.RawMessage
	method, name   string
	revision       string // _meta's protocol version, or MCP-Protocol-Version
	sessionID      string // Mcp-Session-Id
	urlElicitation bool   // declared in _meta, or initialize's capabilities
	requestState   string
	// accepted: the response to the gateway's input request was accept.
	accepted bool
	// arguments are the call's arguments, compacted, which a
	// requestState is bound to.
	arguments []byte
	// params are the request's members, for stripping the gateway's
	// requestState before the upstream sees it.
	msg, params map[string]json.RawMessage
}

// elicits reports whether MCP lets the request's answer be an
// input_required result (MCP 2026-07-28, multi round-trip requests):
// these requests wait for the user's consent; others go to the upstream
// without the user's token until the user gave it (credentialTransport).
func (q *rpcRequest) elicits() bool {
	return q != nil && (q.method == "tools/call" || q.method == "resources/read" || q.method == "prompts/get")
}

// rpcRequestOf reads the JSON-RPC request a POST body holds, nil for
// anything else (a batch, a notification, a response, no JSON).
func rpcRequestOf(r *http.Request, body []byte) *rpcRequest {
	if r.Method != http.MethodPost {
		return nil
	}
	msg, err := members(body)
	if err != nil || msg["id"] == nil {
		return nil
	}
	q := &rpcRequest{id: msg["id"], msg: msg, revision: r.Header.Get("Mcp-Protocol-Version"), sessionID: r.Header.Get("Mcp-Session-Id")}
	if json.Unmarshal(msg["method"], &q.method) != nil || q.method == "" {
		return nil
	}
	if msg["params"] == nil {
		return q
	}
	if q.params, err = members(msg["params"]); err != nil {
		return nil
	}
	_ = json.Unmarshal(q.params["name"], &q.name) // a name that is no string names no tool
	if q.method == "resources/read" {
		_ = json.Unmarshal(q.params["uri"], &q.name)
	}
	var compact bytes.Buffer
	if json.Compact(&compact, q.params["arguments"]) == nil {
		q.arguments = compact.Bytes()
	}
	_ = json.Unmarshal(q.params["requestState"], &q.requestState)
	var responses map[string]struct {
		Action string `json:"action"`
	}
	if json.Unmarshal(q.params["inputResponses"], &responses) == nil {
		q.accepted = responses[consentInput].Action == "accept"
	}
	var meta struct {
		Version      string          `json:"io.modelcontextprotocol/protocolVersion"`
		Capabilities json.RawMessage `json:"io.modelcontextprotocol/clientCapabilities"`
	}
	if json.Unmarshal(q.params["_meta"], &meta) == nil && meta.Version != "" {
		q.revision, q.urlElicitation = meta.Version, declaresURL(meta.Capabilities)
	}
	if q.method == "initialize" {
		var init struct {
			Version      string          `json:"protocolVersion"`
			Capabilities json.RawMessage `json:"capabilities"`
		}
		_ = json.Unmarshal(msg["params"], &init) // params that are no object declare nothing
		q.revision, q.urlElicitation = init.Version, declaresURL(init.Capabilities)
	}
	return q
}

// declaresURL reports whether client capabilities declare URL-mode
// elicitation (elicitation.url; an empty elicitation is form mode only).
func declaresURL(capabilities json.RawMessage) bool {
	var c struct {
		Elicitation *struct {
			URL json.RawMessage `json:"url"`
		} `json:"elicitation"`
	}
	return json.Unmarshal(capabilities, &c) == nil && c.Elicitation != nil && len(c.Elicitation.URL) > 0 && string(c.Elicitation.URL) != "null"
}

// withoutGatewayState is the request's body without the gateway's
// requestState and input response, which the upstream never issued.
func (q *rpcRequest) withoutGatewayState() ([]byte, error) {
	params := map[string]json.RawMessage{}
	for k, v := range q.params {
		params[k] = v
	}
	delete(params, "requestState")
	var responses map[string]json.RawMessage
	if json.Unmarshal(q.params["inputResponses"], &responses) == nil && responses != nil {
		delete(responses, consentInput)
		delete(params, "inputResponses")
		if len(responses) > 0 {
			raw, err := json.Marshal(responses)
			if err != nil {
				return nil, err
			}
			params["inputResponses"] = raw
		}
	}
	rawParams, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	msg := map[string]json.RawMessage{}
	for k, v := range q.msg {
		msg[k] = v
	}
	msg["params"] = rawParams
	return json.Marshal(msg)
}

// requestStateClaims are what a requestState binds the retried request
// to.
type requestStateClaims struct {
	Route   string `json:"r"`
	Caller  string `json:"c"` // callerBinding
	Call    string `json:"m"` // callBinding
	Expires int64  `json:"e"`
}

// requestStates signs and opens the requestStates of input_required
// results, and names consent sessions in elicitation ids, with the
// gateway's state key.
type requestStates struct {
	key []byte
	now func() time.Time
}

func (k requestStates) mac(label string, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, k.key)
	h.Write([]byte(label))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write(p)
	}
	return h.Sum(nil)
}

// elicitationID names a consent session without its URI.
func (k requestStates) elicitationID(sessionURI string) string {
	return base64.RawURLEncoding.EncodeToString(k.mac("elicitation", []byte(sessionURI))[:18])
}

func (k requestStates) seal(c requestStateClaims) string {
	payload, _ := json.Marshal(c) // strings and a number: no error
	enc := base64.RawURLEncoding.EncodeToString(payload)
	return requestStatePrefix + enc + "." + base64.RawURLEncoding.EncodeToString(k.mac("request-state", []byte(enc)))
}

var errRequestState = errors.New("the requestState was not issued for this request, or has expired")

// open checks a requestState the gateway issued against the claims the
// retried request must have.
func (k requestStates) open(state string, want requestStateClaims) error {
	body, ok := strings.CutPrefix(state, requestStatePrefix)
	enc, sig, ok2 := strings.Cut(body, ".")
	if !ok || !ok2 || len(state) > maxRequestState {
		return errRequestState
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.mac("request-state", []byte(enc))) {
		return errRequestState
	}
	payload, err := base64.RawURLEncoding.DecodeString(enc)
	var c requestStateClaims
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return errRequestState
	}
	if c.Route != want.Route || !hmac.Equal([]byte(c.Caller), []byte(want.Caller)) || c.Call != want.Call || k.now().Unix() >= c.Expires {
		return errRequestState
	}
	return nil
}

// maxRequestState bounds a requestState the gateway reads.
const maxRequestState = 1 << 10

// claims are those a requestState for q on s's call carries.
func (k requestStates) claims(s *callState, q *rpcRequest) requestStateClaims {
	caller := s.user
	if caller == "" { // a tool route's caller: its workload access token
		caller = "wat:" + s.cacheToken()
	}
	return requestStateClaims{Route: s.route.Name,
		Caller:  base64.RawURLEncoding.EncodeToString(k.mac("caller", []byte(caller))),
		Call:    base64.RawURLEncoding.EncodeToString(k.mac("call", []byte(q.method), []byte(q.name), q.arguments)),
		Expires: k.now().Add(requestStateTTL).Unix()}
}

// acceptRequestState reads a retried request's requestState: one the
// gateway issued must be for this caller's same call on this route, and
// unexpired, and leaves the body before the upstream sees it; another is
// the upstream's. It answers the caller itself when it refuses the
// request.
func (g *Gateway) acceptRequestState(w http.ResponseWriter, r *http.Request, s *callState) bool {
	q := s.rpc
	if q == nil || !strings.HasPrefix(q.requestState, requestStatePrefix) {
		return true
	}
	if err := g.states.open(q.requestState, g.states.claims(s, q)); err != nil || !q.elicits() {
		w.Header().Set("X-Amzn-ErrorType", errInvalidRequestState)
		writeRPC(w, r, q.id, "error", map[string]any{"code": codeInvalidParams, "message": errRequestState.Error()})
		return false
	}
	s.consentAsked = true
	body, err := q.withoutGatewayState()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalServerException", "the request could not be forwarded")
		return false
	}
	setBody(r, body)
	return true
}

// answerConsent answers a call whose credential needs the user's consent
// in the shape the caller understands (the comment at the top).
func (g *Gateway) answerConsent(w http.ResponseWriter, r *http.Request, s *callState, c *consentRequired) {
	q := s.rpc
	structured := map[string]string{"__type": errConsentRequired, "message": "the user must authorize access first",
		"authorizationUrl": c.authorizationURL, "sessionUri": c.sessionURI}
	if q == nil {
		w.Header().Set("X-Amzn-ErrorType", errConsentRequired)
		writeJSON(w, http.StatusUnauthorized, structured)
		return
	}
	elicitation := map[string]string{"mode": "url", "elicitationId": g.states.elicitationID(c.sessionURI), "url": c.authorizationURL,
		"message": "Authorize " + s.route.Name + " to act for you at " + s.route.Credential.Provider + "."}
	switch {
	case q.revision >= revisionMRTR && q.urlElicitation && q.elicits() && (!s.consentAsked || q.accepted):
		w.Header().Set("X-Amzn-ErrorType", errURLElicitationRequired)
		writeRPC(w, r, q.id, "result", map[string]any{"resultType": "input_required",
			"inputRequests": map[string]any{consentInput: map[string]any{"method": "elicitation/create", "params": elicitation}},
			"requestState":  g.states.seal(g.states.claims(s, q))})
	case q.revision >= revisionURLElicitation && q.revision < revisionMRTR && (q.urlElicitation || g.sessions.urlElicitation(s.route.Name, q.sessionID)):
		w.Header().Set("X-Amzn-ErrorType", errURLElicitationRequired)
		writeRPC(w, r, q.id, "error", map[string]any{"code": codeURLElicitationRequired, "message": "the user must authorize access first",
			"data": map[string]any{"elicitations": []any{elicitation}}})
	default:
		w.Header().Set("X-Amzn-ErrorType", errConsentRequired)
		writeRPC(w, r, q.id, "error", map[string]any{"code": consentRequiredCode, "message": structured["message"], "data": structured})
	}
}

// writeRPC answers a JSON-RPC request with a result or an error, as
// application/json unless the caller accepts only an event stream (MCP
// Streamable HTTP).
func writeRPC(w http.ResponseWriter, r *http.Request, id json.RawMessage, member string, v any) {
	msg, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, member: v})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalServerException", "the answer could not be encoded")
		return
	}
	accept := r.Header.Get("Accept")
	if accept == "" || strings.Contains(accept, "application/json") || strings.Contains(accept, "*/*") || !strings.Contains(accept, "text/event-stream") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(msg, '\n')) // the caller went away: nothing to do
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("event: message\ndata: " + string(msg) + "\n\n")) // as above
}

// setBody replaces a request's body, which readBody read.
func setBody(r *http.Request, body []byte) {
	r.Body = http.NoBody
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.Body, _ = r.GetBody()
	r.ContentLength = int64(len(body))
}

// Bounds of the remembered MCP 2025-11-25 sessions.
const (
	maxSessions = 10000
	sessionTTL  = 24 * time.Hour
)

// sessionCapabilities remembers, per route and Mcp-Session-Id, that an
// MCP 2025-11-25 client declared URL-mode elicitation at initialize,
// which its later requests do not repeat. It is this process's: a
// replica that did not see the initialize answers the JSON-RPC
// consentRequiredCode error, which every client understands.
type sessionCapabilities struct {
	mu  sync.Mutex
	m   map[string]time.Time // expiry
	now func() time.Time
}

func sessionKey(route, id string) string { return route + "\x00" + id }

func (c *sessionCapabilities) remember(route, id string) {
	if id == "" || len(id) > 256 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.m) >= maxSessions {
		for k, exp := range c.m {
			if !now.Before(exp) {
				delete(c.m, k)
			}
		}
	}
	for k := range c.m { // still full: forget any one
		if len(c.m) < maxSessions {
			break
		}
		delete(c.m, k)
	}
	c.m[sessionKey(route, id)] = now.Add(sessionTTL)
}

func (c *sessionCapabilities) urlElicitation(route, id string) bool {
	if id == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[sessionKey(route, id)]
	return ok && c.now().Before(exp)
}
