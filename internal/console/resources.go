package console

import (
	"net/http"
	"regexp"
	"strconv"

	"github.com/behalf-dev/behalf/internal/behalfapi"
)

// namePattern bounds a resource name taken from the path; the operation
// validates it again.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,255}$`)

func (s *Server) workloads(q *request) {
	var out listOutput
	if err := s.call(q, "ListWorkloadIdentities", behalfapi.ListInput{NextToken: token(q), MaxResults: intp(20)}, &out); err != nil {
		s.refused(q, "Could not list workload identities", err)
		return
	}
	s.render(q, http.StatusOK, "workloads", pageData{Title: "Workload identities", Data: out.Workloads, Next: next(q, out.NextToken)})
}

// workloadDetail is GetWorkloadIdentity's output, with behalf's
// allow-lists (absent: not limited).
type workloadDetail struct {
	Name        string                     `json:"name"`
	ARN         string                     `json:"workloadIdentityArn"`
	ReturnURLs  []string                   `json:"allowedResourceOauth2ReturnUrls"`
	Authorizers *[]string                  `json:"allowedInboundAuthorizers"`
	Providers   *[]behalfapi.ProviderGrant `json:"allowedCredentialProviders"`
	Created     behalfapi.Time             `json:"createdTime"`
	Updated     behalfapi.Time             `json:"lastUpdatedTime"`
}

func (s *Server) workload(q *request) {
	if out, ok := s.readWorkload(q); ok {
		s.render(q, http.StatusOK, "workload", pageData{Title: "Workload identity " + out.Name, Data: out})
	}
}

// readWorkload reads the workload identity the path names through
// GetWorkloadIdentity; when it cannot, it has answered with a page.
func (s *Server) readWorkload(q *request) (workloadDetail, bool) {
	var out workloadDetail
	name := q.r.PathValue("name")
	if !namePattern.MatchString(name) {
		s.errorPage(q, http.StatusNotFound, "No such workload identity", "This address names no workload identity.")
		return out, false
	}
	if err := s.call(q, "GetWorkloadIdentity", map[string]string{"name": name}, &out); err != nil {
		s.refused(q, "Could not read the workload identity", err)
		return out, false
	}
	return out, true
}

func (s *Server) providers(q *request) {
	var oauth, keys listOutput
	if err := s.call(q, "ListOauth2CredentialProviders", behalfapi.ListInput{NextToken: token(q), MaxResults: intp(20)}, &oauth); err != nil {
		s.refused(q, "Could not list OAuth2 credential providers", err)
		return
	}
	if err := s.call(q, "ListApiKeyCredentialProviders", behalfapi.ListInput{MaxResults: intp(100)}, &keys); err != nil {
		s.refused(q, "Could not list API key credential providers", err)
		return
	}
	s.render(q, http.StatusOK, "providers", pageData{Title: "Credential providers", Data: struct{ OAuth2, APIKeys []item }{oauth.Providers, keys.Providers},
		Next: next(q, oauth.NextToken)})
}

// providerDetail is GetOauth2CredentialProvider's output, which holds no
// secret: where the client secret is kept, not the secret.
type providerDetail struct {
	Name         string                    `json:"name"`
	Vendor       string                    `json:"credentialProviderVendor"`
	ARN          string                    `json:"credentialProviderArn"`
	CallbackURL  string                    `json:"callbackUrl"`
	Status       string                    `json:"status"`
	SecretSource string                    `json:"clientSecretSource"`
	Secret       secretRef                 `json:"clientSecretArn"`
	SecretKey    string                    `json:"clientSecretJsonKey"`
	Config       map[string]providerConfig `json:"oauth2ProviderConfigOutput"`
	McpServer    *struct{}                 `json:"mcpServer"`
	Created      behalfapi.Time            `json:"createdTime"`
	Updated      behalfapi.Time            `json:"lastUpdatedTime"`
}

// secretRef is a provider's Secret output: for a secret kept outside
// behalf (EXTERNAL), the secret id it is read from.
type secretRef struct {
	ID string `json:"secretArn"`
}

type providerConfig struct {
	ClientID   string `json:"clientId"`
	AuthMethod string `json:"clientAuthenticationMethod"`
	Discovery  struct {
		URL      string `json:"discoveryUrl"`
		Metadata struct {
			Issuer                string `json:"issuer"`
			AuthorizationEndpoint string `json:"authorizationEndpoint"`
			TokenEndpoint         string `json:"tokenEndpoint"`
		} `json:"authorizationServerMetadata"`
	} `json:"oauthDiscovery"`
}

func (s *Server) provider(q *request) {
	name := q.r.PathValue("name")
	if !namePattern.MatchString(name) {
		s.errorPage(q, http.StatusNotFound, "No such credential provider", "This address names no credential provider.")
		return
	}
	var out providerDetail
	if err := s.call(q, "GetOauth2CredentialProvider", map[string]string{"name": name}, &out); err != nil {
		s.refused(q, "Could not read the credential provider", err)
		return
	}
	s.render(q, http.StatusOK, "provider", pageData{Title: "OAuth2 credential provider " + out.Name, Data: out})
}

func (s *Server) principals(q *request) {
	var out behalfapi.ListPrincipalsOutput
	if err := s.call(q, "ListPrincipals", behalfapi.ListInput{NextToken: token(q), MaxResults: intp(100)}, &out); err != nil {
		s.refused(q, "Could not list principals", err)
		return
	}
	s.render(q, http.StatusOK, "principals", pageData{Title: "Principals and their grants", Data: out.Principals, Next: next(q, out.NextToken)})
}

// connectionFilter is the connections page's search.
type connectionFilter struct{ User, Provider, Workload string }

func (s *Server) connections(q *request) {
	f := connectionFilter{User: field(q, "user", 2048), Provider: field(q, "provider", 128), Workload: field(q, "workload", 255)}
	var out behalfapi.ListConnectionsOutput
	in := behalfapi.ListConnectionsInput{User: f.User, Provider: f.Provider, Workload: f.Workload, NextToken: token(q), MaxResults: intp(100)}
	if err := s.call(q, "ListConnections", in, &out); err != nil {
		s.refused(q, "Could not list connections", err)
		return
	}
	s.render(q, http.StatusOK, "connections", pageData{Title: "Users' connections", Next: next(q, out.NextToken), Data: struct {
		Filter      connectionFilter
		Connections []behalfapi.Connection
	}{f, out.Connections}})
}

// revoke revokes a user's connection through RevokeConnection: at the
// provider when it offers revocation (RFC 7009), then here.
func (s *Server) revoke(q *request) {
	var out behalfapi.RevokeConnectionOutput
	in := behalfapi.ConnectionInput{Provider: formValue(q, "provider"), Workload: formValue(q, "workload"), User: formValue(q, "user")}
	if err := s.call(q, "RevokeConnection", in, &out); err != nil {
		s.refused(q, "Could not revoke the connection", err)
		return
	}
	s.render(q, http.StatusOK, "revoked", pageData{Title: "Connection revoked", Body: out.Message, Data: in})
}

// auditFilter is the audit page's filters.
type auditFilter struct{ Operation, Workload, User, Provider string }

// auditPage is how many records the audit page shows at once.
const auditPage = 50

func (s *Server) audit(q *request) {
	f := auditFilter{Operation: field(q, "operation", 128), Workload: field(q, "workload", 255), User: field(q, "user", 2048), Provider: field(q, "provider", 128)}
	var out behalfapi.ListAuditRecordsOutput
	in := behalfapi.ListAuditRecordsInput{NewestFirst: true, Operation: f.Operation, Workload: f.Workload, User: f.User, Provider: f.Provider,
		NextToken: token(q), MaxResults: intp(auditPage)}
	if err := s.call(q, "ListAuditRecords", in, &out); err != nil {
		s.refused(q, "Could not list audit records", err)
		return
	}
	// The last published anchor is checked with the chain: records deleted
	// or rewritten after it show even when the head row was moved back.
	anchor, anchoring := s.anchorOf()
	var verify behalfapi.VerifyAuditLogOutput
	if err := s.call(q, "VerifyAuditLog", behalfapi.VerifyAuditLogInput{Incremental: true, Anchor: anchorInput(anchor)}, &verify); err != nil {
		s.refused(q, "Could not verify the audit log", err)
		return
	}
	s.render(q, http.StatusOK, "audit", pageData{Title: "Audit log", Next: next(q, out.NextToken), Data: struct {
		Filter    auditFilter
		Records   []behalfapi.AuditRecord
		Verify    behalfapi.VerifyAuditLogOutput
		Head      string
		Anchoring bool
		Anchor    *Anchor
		Checked   bool
	}{f, out.Records, verify, strconv.FormatInt(verify.HeadSeq, 10) + ":" + verify.HeadHash, anchoring, anchor,
		anchorInput(anchor) != nil && verify.NextToken == nil}})
}
