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
}
