package behalfapi

// GetWorkloadJWTInput is the input of GetWorkloadJWT, behalf's analogue
// of AWS STS GetWebIdentityToken: a JWT naming the workload identity of
// the workload access token, for the audiences given.
type GetWorkloadJWTInput struct {
	WorkloadIdentityToken string   `json:"workloadIdentityToken"`
	Audience              []string `json:"audience"`
	// DurationSeconds is the JWT's lifetime, 60..3600; absent means 300.
	DurationSeconds *int `json:"durationSeconds,omitempty"`
}

// GetWorkloadJWTOutput is the signed JWT and when it expires: no later
// than the workload access token it was asked for with.
type GetWorkloadJWTOutput struct {
	JWT       string `json:"jwt"`
	ExpiresAt Time   `json:"expiresAt"`
}
