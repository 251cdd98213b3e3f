package behalfapi

// ListConnectionsInput is the input of ListConnections; empty filters
// match everything.
type ListConnectionsInput struct {
	Provider   string  `json:"provider,omitempty"`
	Workload   string  `json:"workload,omitempty"`
	User       string  `json:"user,omitempty"`
	NextToken  *string `json:"nextToken,omitempty"`
	MaxResults *int    `json:"maxResults,omitempty"`
}

// Connection is a user's grant held for a workload at an OAuth2 provider.
type Connection struct {
	Provider     string   `json:"provider"`
	Workload     string   `json:"workload"`
	User         string   `json:"user"`
	Status       string   `json:"status"`
	Scopes       []string `json:"scopes"`
	ExpiresAt    *Time    `json:"accessTokenExpiresAt,omitempty"`
	CreatedTime  Time     `json:"createdTime"`
	LastUsedTime Time     `json:"lastUsedTime"`
}

// ListConnectionsOutput is the output of ListConnections.
type ListConnectionsOutput struct {
	Connections []Connection `json:"connections"`
	NextToken   *string      `json:"nextToken,omitempty"`
}

// ConnectionInput names a connection, for RevokeConnection and
// DeleteConnection.
type ConnectionInput struct {
	Provider string `json:"provider"`
	Workload string `json:"workload"`
	User     string `json:"user"`
}

// RevokeConnectionOutput is the output of RevokeConnection.
type RevokeConnectionOutput struct {
	// RevokedAtProvider reports whether the provider confirmed revocation
	// (RFC 7009); false when it offers no revocation endpoint.
	RevokedAtProvider bool   `json:"revokedAtProvider"`
	Message           string `json:"message"`
}
