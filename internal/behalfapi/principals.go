package behalfapi

// CreatePrincipalInput is the input of CreatePrincipal. AccessKeyID and
// SecretAccessKey are given together or not at all; without them the
// server generates a key pair.
type CreatePrincipalInput struct {
	AccessKeyID     *string  `json:"accessKeyId,omitempty"`
	SecretAccessKey *string  `json:"secretAccessKey,omitempty"`
	Role            string   `json:"role"`
	Workloads       []string `json:"workloads,omitempty"`
	// Operations limits a runtime principal to these data-plane
	// operations; empty allows all.
	Operations  []string `json:"operations,omitempty"`
	Description *string  `json:"description,omitempty"`
}

// PrincipalIDInput names a principal, for GetPrincipal and DeletePrincipal.
type PrincipalIDInput struct {
	AccessKeyID string `json:"accessKeyId"`
}

// ListPrincipalsInput is the input of ListPrincipals.
type ListPrincipalsInput struct{ ListInput }

// UpdatePrincipalInput is the input of UpdatePrincipal; nil members stay
// as they are.
type UpdatePrincipalInput struct {
	AccessKeyID string    `json:"accessKeyId"`
	Role        *string   `json:"role,omitempty"`
	Workloads   *[]string `json:"workloads,omitempty"`
	// Operations replaces the list; empty allows every data-plane
	// operation again.
	Operations  *[]string `json:"operations,omitempty"`
	Description *string   `json:"description,omitempty"`
}

// Principal is the output of the principal operations. SecretAccessKey is
// set only by CreatePrincipal: it is shown once.
type Principal struct {
	AccessKeyID     string   `json:"accessKeyId"`
	SecretAccessKey string   `json:"secretAccessKey,omitempty"`
	Role            string   `json:"role"`
	Workloads       []string `json:"workloads"`
	Operations      []string `json:"operations,omitempty"`
	Description     string   `json:"description,omitempty"`
	CreatedTime     Time     `json:"createdTime"`
	LastUpdatedTime Time     `json:"lastUpdatedTime"`
}

// ListPrincipalsOutput is the output of ListPrincipals.
type ListPrincipalsOutput struct {
	Principals []*Principal `json:"principals"`
	NextToken  *string      `json:"nextToken,omitempty"`
}

// CreateVaultKeyOutput is the output of CreateVaultKey: the ARN of the new
// key in the server's local keyring.
type CreateVaultKeyOutput struct {
	KMSKeyARN string `json:"kmsKeyArn"`
}
