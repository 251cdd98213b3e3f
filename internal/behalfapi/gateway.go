package behalfapi

// RecordGatewayCallInput is the input of RecordGatewayCall: one call the
// gateway served, as it reports it. It carries no credential of anyone's
// but, on a tool route, the workload access token the caller presented,
// which behalf minted: behalf reads the caller from it.
type RecordGatewayCallInput struct {
	Route    string `json:"route"`
	Kind     string `json:"kind"`
	Workload string `json:"workload,omitempty"`
	// User is the user acted for, as audit records name users
	// (jwt:<issuer>#<subject> or id:<user id>).
	User string `json:"user,omitempty"`
	// Status is the HTTP status the caller got; ErrorType the typed error
	// the gateway answered with, if any.
	Status    int    `json:"status"`
	ErrorType string `json:"errorType,omitempty"`
	// UpstreamStatus is the status the upstream answered; zero when the
	// call never reached it.
	UpstreamStatus int `json:"upstreamStatus,omitempty"`
	// Actors is the identity chain of a call from another agent: the
	// workloads it came through before Workload, outermost first.
	Actors []string `json:"actors,omitempty"`
	// CallerToken is, on a tool route, the workload access token the
	// caller presented, and on an mcp route the one minted for the MCP
	// client's user: behalf names the workload, user and identity chain
	// it was minted for in the record, so that every tool call says who
	// made it, including those the gateway's credential cache served. It
	// is neither stored nor echoed; one that does not open names no one.
	CallerToken string `json:"callerToken,omitempty"`
	// Rule is the mcp route's rule that refused the call (a toolScopes
	// key such as tools/call:<tool name>, or "scopes" for the route's
	// own), and Scopes every scope the call needed; both empty otherwise.
	Rule   string   `json:"rule,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
}

// GetWorkloadAccessTokenForChainInput is the input of
// GetWorkloadAccessTokenForChain: an agent (the caller) calls another (the
// workload) with its own workload access token, and the gateway in
// between asks for the callee's token for the same user.
type GetWorkloadAccessTokenForChainInput struct {
	// WorkloadName is the callee's workload identity.
	WorkloadName string `json:"workloadName"`
	// CallerToken is the calling agent's workload access token.
	CallerToken string `json:"callerToken"`
	// AllowedCallers are the workload identities that may call this one
	// (the gateway route's callers): the caller token's workload must be
	// one of them.
	AllowedCallers []string `json:"allowedCallers"`
}

// GetWorkloadAccessTokenForChainOutput is the callee's token, the
// identity chain it carries (the workloads before the callee, outermost
// first) and the user it acts for, as audit records name users (empty
// when the caller acted for no user).
type GetWorkloadAccessTokenForChainOutput struct {
	WorkloadAccessToken string   `json:"workloadAccessToken"`
	Actors              []string `json:"actors"`
	User                string   `json:"user,omitempty"`
}

// RuntimeUserIDHeader is the header in which an InvokeAgentRuntime caller
// signing with SigV4 names the user it acts for (runtimeUserId in the AWS
// API reference); its signature must cover it.
const RuntimeUserIDHeader = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"

// GetWorkloadAccessTokenForSignedCallerInput is the input of
// GetWorkloadAccessTokenForSignedCaller: a caller signed its request to
// the gateway with SigV4 as a principal and names a user, and the gateway
// passes the signed request on for behalf to verify, asking for the
// workload's token for that user.
type GetWorkloadAccessTokenForSignedCallerInput struct {
	// WorkloadName is the workload identity of the gateway's route.
	WorkloadName string `json:"workloadName"`
	// UserID is the user the caller names in RuntimeUserIDHeader.
	UserID string `json:"userId"`
	// SignedRequest is the caller's request as the gateway received it.
	SignedRequest SignedRequest `json:"signedRequest"`
}

// SignedRequest is a request signed with SigV4, passed on by the party
// that received it: the request line and headers as received, and the
// body by its SHA-256.
type SignedRequest struct {
	Method string `json:"method"`
	// Path and RawQuery are the request target as sent (escaped), which
	// the signature covers.
	Path     string `json:"path"`
	RawQuery string `json:"rawQuery,omitempty"`
	// Headers are Authorization and the headers its SignedHeaders names
	// (Host among them), each with its values in the order received.
	Headers map[string][]string `json:"headers"`
	// PayloadSHA256 is the lowercase hex SHA-256 of the body as received.
	PayloadSHA256 string `json:"payloadSha256"`
}

// GetWorkloadAccessTokenForSignedCallerOutput is the workload's token for
// the user, and that user as audit records name users (id:<user id>).
type GetWorkloadAccessTokenForSignedCallerOutput struct {
	WorkloadAccessToken string `json:"workloadAccessToken"`
	User                string `json:"user"`
}
