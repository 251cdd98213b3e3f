package behalfapi

// ListOAuthConsentsInput is the input of ListOAuthConsents: one user's
// consents to the authorization server's clients.
type ListOAuthConsentsInput struct {
	User       string  `json:"user"`
	NextToken  *string `json:"nextToken,omitempty"`
	MaxResults *int    `json:"maxResults,omitempty"`
}

// OAuthConsent is a user's remembered consent to a client's access to a
// resource.
type OAuthConsent struct {
	User        string   `json:"user"`
	ClientID    string   `json:"clientId"`
	Resource    string   `json:"resource"`
	Scopes      []string `json:"scopes"`
	CreatedTime Time     `json:"createdTime"`
	UpdatedTime Time     `json:"updatedTime"`
}

// ListOAuthConsentsOutput is the output of ListOAuthConsents.
type ListOAuthConsentsOutput struct {
	Consents  []OAuthConsent `json:"consents"`
	NextToken *string        `json:"nextToken,omitempty"`
}

// DeleteOAuthConsentInput names a consent, for DeleteOAuthConsent.
type DeleteOAuthConsentInput struct {
	User     string `json:"user"`
	ClientID string `json:"clientId"`
	Resource string `json:"resource"`
}
