package behalfapi

// RecordGatewayCallInput is the input of RecordGatewayCall: one call the
// gateway served, as it reports it. It carries no credential.
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
