package behalfapi

// ProviderGrant is one member of allowedCredentialProviders, behalf's
// extension member of CreateWorkloadIdentity, UpdateWorkloadIdentity and
// GetWorkloadIdentity: a credential provider the workload may use, and how
// far (docs/data-plane.md). Scopes: none listed allows any scope.
// Resources, Audiences and CustomParameters (names only): none listed
// allows none. In each list, ["*"] allows any value. Provider "*", alone
// and without qualifiers, allows every provider without limits.
type ProviderGrant struct {
	Provider         string   `json:"provider"`
	Scopes           []string `json:"scopes,omitempty"`
	Resources        []string `json:"resources,omitempty"`
	Audiences        []string `json:"audiences,omitempty"`
	CustomParameters []string `json:"customParameters,omitempty"`
}
