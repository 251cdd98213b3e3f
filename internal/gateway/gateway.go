// Package gateway is `behalf gateway`: a reverse proxy that puts users'
// identities into agents and credentials into tools, as AgentCore Runtime
// and AgentCore Gateway do. In front of an agent it validates a user's
// bearer JWT, mints a workload access token for the route's workload and
// that user (GetWorkloadAccessTokenForJWT) and forwards the request with
// the Runtime's headers, stripping every other header the caller sent. In
// front of a tool it takes the caller's workload access token, fetches
// the route's credential (GetResourceApiKey, GetResourceOauth2Token),
// replaces any credential the caller sent with it, and forwards. In front
// of an MCP server it is an OAuth resource server (mcp.go): it validates
// the client's access token for the route's resource, mints the workload
// access token from it, checks the scopes the JSON-RPC call needs, and
// then injects the credential as for a tool.
//
// It reaches behalf only through the official data-plane client, signed
// as a principal, so every policy, allow-list, rate limit and audit record
// of the data plane applies to it unchanged. Upstreams are dialled through
// the egress policy.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// Options are what a gateway needs besides its configuration.
type Options struct {
	// Data is the data-plane client, signed as the gateway's principal.
	Data *bedrockagentcore.Client
	// Log receives one line per call and upstream failures.
	Log *slog.Logger
	// Telemetry, when set, makes each call a SERVER span and each
	// upstream call a CLIENT span; nil leaves calls untraced.
	Telemetry *telemetry.Telemetry
	// Users hashes user ids for the log; zero uses a key of this process.
	Users telemetry.UserHasher
	// Metrics, when set, counts calls by route, kind and outcome, and the
	// credential cache's hits and misses.
	Metrics *telemetry.Metrics
	// Now is the credential cache's clock; default time.Now.
	Now func() time.Time
	// StateKey signs the requestState of the gateway's input_required
	// results (elicit.go): a secret the gateway's replicas share; empty, a
	// key of this process's own.
	StateKey []byte
}

// Gateway serves the routes of one configuration.
type Gateway struct {
	data    *bedrockagentcore.Client
	log     *slog.Logger
	users   telemetry.UserHasher
	metrics *telemetry.Metrics
	creds   *credentialCache
	handler http.Handler
	// states and sessions serve consent as URL-mode elicitation (elicit.go).
	states   requestStates
	sessions *sessionCapabilities
	// agents maps a route's name and workload to the route, for
	// InvokeAgentRuntime's /runtimes/{agentRuntimeArn}/invocations
	// (runtimes).
	agents map[string]*route
}

// route is one configured route with its proxy.
type route struct {
	config.GatewayRouteFile
	upstream *url.URL
	proxy    *httputil.ReverseProxy
	mcp      *mcpResource // an mcp route's
}

// New builds a gateway for cfg.
func New(cfg config.Gateway, o Options) (*Gateway, error) {
	if o.Data == nil {
		return nil, errors.New("gateway: no data-plane client")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	g := &Gateway{data: o.Data, log: o.Log, users: o.Users, metrics: o.Metrics, creds: newCredentialCache(o.Now, o.Metrics)}
	if g.users == (telemetry.UserHasher{}) {
		g.users = telemetry.NewUserHasher([]byte(rand.Text()))
	}
	g.states, g.sessions = requestStates{key: o.StateKey, now: o.Now}, &sessionCapabilities{m: map[string]time.Time{}, now: o.Now}
	if len(g.states.key) == 0 {
		g.states.key = []byte(rand.Text())
	}
	mux := http.NewServeMux()
	rootPRM := false
	var agents []*route
	for _, rc := range cfg.Routes {
		r, err := g.newRoute(rc, cfg.Egress, o.Telemetry)
		if err != nil {
			return nil, err
		}
		if r.Kind == config.KindAgent {
			agents = append(agents, r)
		}
		if r.mcp != nil {
			servePRM(mux, r, !rootPRM)
			rootPRM = true
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { g.serve(w, req, &callState{route: r}) })
		mux.Handle(r.Path+"/", h)
		mux.Handle(r.Path, h)
	}
	g.agents = runtimes(agents)
	mux.HandleFunc("POST /runtimes/{arn}/invocations", g.invokeAgentRuntime)
	g.handler = mux
	if o.Telemetry != nil {
		// A call's span is named after its route once it is known (serve).
		named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			trace.SpanFromContext(r.Context()).SetName("gateway")
			mux.ServeHTTP(w, r)
		})
		g.handler = o.Telemetry.ServerSpans(named, func(*http.Request) string { return "" }, func(*http.Request) bool { return false })
	}
	return g, nil
}

func (g *Gateway) newRoute(rc config.GatewayRouteFile, policy egress.Policy, tel *telemetry.Telemetry) (*route, error) {
	u, err := url.Parse(rc.Upstream)
	if err != nil {
		return nil, err
	}
	eo := egress.Options{Policy: policy, Timeout: rc.Timeout + time.Second, Log: g.log}
	if tel != nil {
		// Every upstream call is a CLIENT span; only an agent, which shares
		// behalf's traces, receives their context. An upstream is no
		// provider: behalf.outbound.* does not count its calls (the
		// gateway's own behalf.gateway.calls do).
		eo.Spans = true
		if rc.Kind == config.KindAgent {
			eo.Propagator = tel.Propagator
		}
	}
	r := &route{GatewayRouteFile: rc, upstream: u}
	if rc.Kind == config.KindMCP {
		if r.mcp, err = newMCPResource(rc); err != nil {
			return nil, err
		}
	}
	transport := egress.NewClient(eo).Transport
	if rc.Kind != config.KindAgent {
		transport = &credentialTransport{base: transport, g: g, route: r}
	}
	r.proxy = &httputil.ReverseProxy{
		Rewrite:       r.rewrite,
		Transport:     transport,
		FlushInterval: -1,
		ModifyResponse: func(res *http.Response) error {
			s := stateOf(res.Request)
			s.status = res.StatusCode
			r.withoutCredential(res)
			res.Body = &upstreamBody{ReadCloser: res.Body, s: s}
			if err := g.record(context.WithoutCancel(res.Request.Context()), s, res.StatusCode, ""); err != nil {
				return errors.Join(errNotRecorded, err)
			}
			s.recorded = true
			if s.rpc != nil && s.rpc.method == "initialize" && s.rpc.urlElicitation && res.StatusCode == http.StatusOK {
				g.sessions.remember(r.Name, res.Header.Get("Mcp-Session-Id"))
			}
			if s.sessionID != "" {
				res.Header.Set(HeaderSessionID, s.sessionID)
			}
			return nil
		},
		ErrorHandler: g.upstreamError,
		ErrorLog:     slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return r, nil
}

// runtimes maps the runtime ids InvokeAgentRuntime's ARNs may end in to
// agent routes: a route's name, which is unique, names it before any
// route's workload does; a workload that several routes serve names the
// first, in the configuration's order.
func runtimes(agents []*route) map[string]*route {
	m := map[string]*route{}
	for _, r := range agents {
		if _, taken := m[r.Workload]; !taken {
			m[r.Workload] = r
		}
	}
	for _, r := range agents {
		m[r.Name] = r
	}
	return m
}

// Handler serves the gateway's routes.
func (g *Gateway) Handler() http.Handler { return g.handler }

// invokeAgentRuntime serves AgentCore's InvokeAgentRuntime wire: the
// runtime is the route whose name or workload the ARN's last segment (or
// the agent id) names (runtimes), and the payload goes to its
// /invocations.
func (g *Gateway) invokeAgentRuntime(w http.ResponseWriter, r *http.Request) {
	arn := r.PathValue("arn")
	id := arn[strings.LastIndex(arn, "/")+1:]
	rt, ok := g.agents[id]
	if !ok {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "no agent runtime named "+id)
		return
	}
	signed := r.Clone(r.Context()) // as the caller signed it
	r.URL.Path, r.URL.RawPath, r.URL.RawQuery = rt.Path+"/invocations", "", ""
	g.serve(w, r, &callState{route: rt, runtime: true, signed: signed})
}

// serve serves one call of a route: its response leaves only once the
// call's audit record is stored (callWriter). The call is logged and
// counted even when its response is aborted (a cut stream).
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, s *callState) {
	start := time.Now()
	trace.SpanFromContext(r.Context()).SetName("gateway " + s.route.Name)
	cw := &callWriter{ResponseWriter: w, g: g, ctx: context.WithoutCancel(r.Context()), s: s}
	defer func() {
		result, errType := outcome(cw.status), cw.errType
		if errType != "" && result == telemetry.OutcomeSuccess { // a JSON-RPC error or elicitation, at 200
			result = telemetry.OutcomeClientError
			if errType != errInvalidRequestState {
				result = telemetry.OutcomeAccessDenied
			}
		}
		if s.cutBy != "" {
			result, errType = telemetry.OutcomeServerError, s.cutBy
		}
		g.logCall(r.Context(), s, cw.status)
		g.metrics.GatewayCall(r.Context(), s.route.Name, s.route.Kind, result, errType, time.Since(start))
	}()
	var ok bool
	if s.path, s.rawPath, ok = s.route.below(r.URL); !ok {
		writeError(cw, http.StatusBadRequest, "ValidationException", "the request path must not hold dot segments, encoded or not")
		return
	}
	switch s.route.Kind {
	case config.KindAgent:
		g.serveAgent(cw, r, s)
	case config.KindMCP:
		g.serveMCP(cw, r, s)
	default:
		g.serveTool(cw, r, s)
	}
}

// outcome classifies the status the caller got as the requests metric
// does.
func outcome(status int) string {
	switch {
	case status < http.StatusBadRequest:
		return telemetry.OutcomeSuccess
	case status == http.StatusTooManyRequests:
		return telemetry.OutcomeThrottled
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return telemetry.OutcomeAccessDenied
	case status < http.StatusInternalServerError:
		return telemetry.OutcomeClientError
	}
	return telemetry.OutcomeServerError
}

// callState is one call in progress, carried in the request context from
// the handler to the proxy's rewrite and error handler.
type callState struct {
	route     *route
	runtime   bool          // InvokeAgentRuntime: upstream failures are RuntimeClientError
	signed    *http.Request // the request as the caller sent it, for its SigV4 signature
	wat       string
	sessionID string
	timedOut  func() bool
	tooLarge  atomic.Bool // the request body exceeded the route's limit
	tooSlow   atomic.Bool // the request body did not arrive within the route's timeout
	// path and rawPath are the request's path below the route's, decoded
	// and as sent.
	path, rawPath string
	// cut: reading the upstream's response failed after it had started;
	// cutBy is the error type its second record names.
	cut      atomic.Bool
	cutBy    string
	user     string
	status   int  // the upstream's
	recorded bool // the call's audit record is stored
	// notRecorded: the upstream answered but its record was refused.
	notRecorded bool
	// actors is the identity chain of a call from another agent: the
	// workloads before the route's, outermost first.
	actors []string
	// rule is the mcp route's rule that refused the call (a toolScopes
	// key, or "scopes"), ruleScopes the scopes the call needed.
	rule       string
	ruleScopes []string
	// accessToken is an mcp route's client's, once verified.
	accessToken string
	// rpc is the MCP client's JSON-RPC request, if the body is one;
	// mcpBody: the call is MCP (an mcp route's, or a JSON-RPC body).
	rpc     *rpcRequest
	mcpBody bool
	// consentAsked: the request is a retry with the gateway's
	// requestState.
	consentAsked bool
}

type stateKey struct{}

func stateOf(r *http.Request) *callState {
	s, _ := r.Context().Value(stateKey{}).(*callState)
	return s
}

// forward sends r to the route's upstream within the route's timeout and
// body limit.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, s *callState) {
	ctx, cancel := context.WithTimeout(r.Context(), s.route.Timeout)
	defer cancel()
	defer writeDeadline(w, s.route.Timeout)()
	s.timedOut = func() bool { return errors.Is(ctx.Err(), context.DeadlineExceeded) }
	// The proxy aborts a response whose upstream fails mid-stream
	// (http.ErrAbortHandler): the caller sees the stream cut.
	defer g.recordCut(r.Context(), s)
	s.route.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, stateKey{}, s)))
}

// A request body that did not arrive within the route's timeout (RFC 9110
// §15.5.9).
const (
	errBodyTimeout = "RequestTimeoutException"
	msgBodyTimeout = "the request body did not arrive within this route's timeout"
)

// writeGrace is how long, past a route's timeout and the recording of
// the call, the gateway waits for a caller to take the rest of its answer.
const writeGrace = 5 * time.Second

// writeDeadline bounds the writing of a call's response by the route's
// timeout, the call's recording and writeGrace, as the listeners set no
// WriteTimeout (which would cut every route's streams alike): a caller
// that stops reading (a slow read) would otherwise hold the call for ever
// once the socket's buffers are full, as the route's timeout ends the
// upstream's answer but not a write blocked on the caller. The returned
// function lifts it, for the connection's next request.
func writeDeadline(w http.ResponseWriter, timeout time.Duration) func() {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(timeout + recordTimeout + writeGrace)) // a writer that is no connection's has no deadline to set
	return func() { _ = rc.SetWriteDeadline(time.Time{}) }
}

// Error types of a response cut after it started.
const (
	errStreamCut     = "UpstreamStreamCut"
	errStreamTimeout = "GatewayTimeoutException"
)

// recordCut gives a response that the upstream cut after it had started
// (and was recorded) a second record that says so: a failure with error
// type UpstreamStreamCut, or GatewayTimeoutException when the route's
// timeout ran out. A caller that left cut nothing.
func (g *Gateway) recordCut(ctx context.Context, s *callState) {
	if !s.cut.Load() || !s.recorded || ctx.Err() != nil {
		return
	}
	s.cutBy = errStreamCut
	if s.timedOut() {
		s.cutBy = errStreamTimeout
	}
	if err := g.record(context.WithoutCancel(ctx), s, s.status, s.cutBy); err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "gateway call's cut stream not recorded", slog.String(logging.KeyRoute, s.route.Name), logging.Err(err))
	}
}

// upstreamBody notes that reading the upstream's response failed after it
// had started.
type upstreamBody struct {
	io.ReadCloser
	s *callState
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.s.cut.Store(true)
	}
	return n, err
}

func (g *Gateway) logCall(ctx context.Context, s *callState, status int) {
	attrs := []slog.Attr{slog.String(logging.KeyRoute, s.route.Name), slog.String(logging.KeyKind, s.route.Kind), slog.Int(logging.KeyStatus, status)}
	if s.route.Workload != "" {
		attrs = append(attrs, slog.String(logging.KeyWorkload, s.route.Workload))
	}
	if s.user != "" {
		attrs = append(attrs, slog.String(logging.KeyUserHash, g.users.Hash(s.user)))
	}
	if s.status != 0 {
		attrs = append(attrs, slog.Int(logging.KeyUpstreamStatus, s.status))
	}
	if s.cutBy != "" {
		attrs = append(attrs, slog.String(logging.KeyErrorType, s.cutBy))
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "gateway call", attrs...)
}

// upstreamError answers a failed upstream call: 500 when the upstream's
// answer could not be recorded, 413 for a body over the
// route's limit, 504 when the route's timeout ran out, and otherwise 502
// (or InvokeAgentRuntime's 424 RuntimeClientError). Every proxied request
// carries its callState.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	s := stateOf(r)
	var consent *consentRequired
	var denied *deniedError
	switch {
	case errors.Is(err, errNotRecorded):
		g.log.LogAttrs(r.Context(), slog.LevelError, "gateway call not recorded", slog.String(logging.KeyRoute, s.route.Name), logging.Err(err))
		s.notRecorded = true // the upstream's answer is withheld
		writeError(w, http.StatusInternalServerError, "InternalServerException", "the call could not be recorded")
	case s.tooLarge.Load():
		writeError(w, http.StatusRequestEntityTooLarge, "ValidationException", "the request body is larger than this route allows")
	case s.tooSlow.Load():
		writeError(w, http.StatusRequestTimeout, errBodyTimeout, msgBodyTimeout)
	case errors.As(err, &consent):
		g.answerConsent(w, r, s, consent)
	case errors.As(err, &denied):
		if denied.status == http.StatusUnauthorized { // the caller's workload access token (RFC 7235 §3.1)
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
		writeError(w, denied.status, denied.errType, denied.message)
	case s.timedOut():
		if s.runtime {
			writeError(w, http.StatusFailedDependency, "RuntimeClientError", "the agent did not answer in time")
			return
		}
		writeError(w, http.StatusGatewayTimeout, "GatewayTimeoutException", "the upstream did not answer in time")
	default:
		g.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream call failed", slog.String(logging.KeyRoute, s.route.Name), logging.Err(err))
		if s.runtime {
			writeError(w, http.StatusFailedDependency, "RuntimeClientError", "the agent could not be reached")
			return
		}
		writeError(w, http.StatusBadGateway, "BadGatewayException", "the upstream could not be reached")
	}
}

// below is the part of u's path below the route's, decoded and as sent
// (the route's own segments as the mux matched them, in any encoding). It
// refuses a part holding a dot segment, which the mux resolves only when
// sent as such: percent-encoded, or behind an encoded slash or a
// backslash, it would reach the upstream, which may decode and resolve it
// (RFC 3986 §5.2.4) to a path outside the route's upstream path.
func (r *route) below(u *url.URL) (path, rawPath string, ok bool) {
	segments := strings.SplitAfterN(u.EscapedPath(), "/", strings.Count(r.Path, "/")+2)
	if len(segments) <= strings.Count(r.Path, "/")+1 {
		return "", "", true // the route's path itself
	}
	rawPath = "/" + segments[len(segments)-1]
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		return "", "", false
	}
	for segment := range strings.FieldsFuncSeq(path, func(c rune) bool { return c == '/' || c == '\\' }) {
		if segment == "." || segment == ".." {
			return "", "", false
		}
	}
	return path, rawPath, true
}

// rewrite builds the upstream request: the route's upstream URL with the
// path below the route's, as the caller encoded it, and only the headers
// the route kind allows.
func (r *route) rewrite(pr *httputil.ProxyRequest) {
	s := stateOf(pr.In)
	pr.SetURL(r.upstream)
	pr.Out.URL.Path = strings.TrimSuffix(r.upstream.Path, "/") + s.path
	pr.Out.URL.RawPath = strings.TrimSuffix(r.upstream.EscapedPath(), "/") + s.rawPath
	pr.Out.Host = r.upstream.Host
	if r.Kind == config.KindAgent {
		pr.Out.Header = agentHeaders(pr.In.Header, s, r.ReturnURL)
		return
	}
	pr.Out.Header = toolHeaders(pr.Out.Header, r.Credential.Header)
	if q := r.Credential.QueryParameter; q != "" {
		values := pr.Out.URL.Query()
		values.Del(q)
		pr.Out.URL.RawQuery = values.Encode()
	}
}

func newSessionID() string { return uuid.NewString() }

// writeError answers with AgentCore's typed error body.
func writeError(w http.ResponseWriter, status int, errType, message string) {
	w.Header().Set("X-Amzn-ErrorType", errType)
	writeJSON(w, status, map[string]string{"__type": errType, "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the caller went away: nothing to do
}
