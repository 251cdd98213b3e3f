package console

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/oauthvendor"
)

// formValue is a form's one value of k; empty when absent or repeated.
func formValue(q *request, k string) string {
	if v := q.form[k]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// apiKeyDetail is GetApiKeyCredentialProvider's output, which holds no
// secret.
type apiKeyDetail struct {
	Name         string         `json:"name"`
	ARN          string         `json:"credentialProviderArn"`
	SecretSource string         `json:"apiKeySecretSource"`
	Secret       secretRef      `json:"apiKeySecretArn"`
	SecretKey    string         `json:"apiKeySecretJsonKey"`
	Created      behalfapi.Time `json:"createdTime"`
	Updated      behalfapi.Time `json:"lastUpdatedTime"`
}

// sourceExternal is the secret source of a provider whose secret is kept
// outside behalf: the console cannot set it, only where it is kept can.
const sourceExternal = "EXTERNAL"

// keptElsewhere is the page refusing to set a secret kept outside behalf.
func (s *Server) keptElsewhere(q *request, title, what, secretID, jsonKey string) {
	s.errorPage(q, http.StatusBadRequest, title, "This provider's "+what+" is kept outside behalf, in "+secretID+" (JSON key "+jsonKey+
		"), and read from there when used: change it there. To have behalf keep it instead, update the provider with the API or behalf provider.")
}

func (s *Server) apiKeyProvider(q *request) {
	name := q.r.PathValue("name")
	if !namePattern.MatchString(name) {
		s.errorPage(q, http.StatusNotFound, "No such credential provider", "This address names no credential provider.")
		return
	}
	var out apiKeyDetail
	if err := s.call(q, "GetApiKeyCredentialProvider", map[string]string{"name": name}, &out); err != nil {
		s.refused(q, "Could not read the credential provider", err)
		return
	}
	s.render(q, http.StatusOK, "apikey", pageData{Title: "API key credential provider " + out.Name, Data: out})
}

// secretSet is the page after a new secret was stored: it names the
// provider, never the secret.
type secretSet struct{ Name, Link, What string }

// setAPIKey stores a new API key through UpdateApiKeyCredentialProvider.
func (s *Server) setAPIKey(q *request) {
	name := q.r.PathValue("name")
	const title = "Could not set the API key"
	var cur apiKeyDetail
	if err := s.call(q, "GetApiKeyCredentialProvider", map[string]string{"name": name}, &cur); err != nil {
		s.refused(q, title, err)
		return
	}
	if cur.SecretSource == sourceExternal {
		s.keptElsewhere(q, title, "API key", cur.Secret.ID, cur.SecretKey)
		return
	}
	in := map[string]string{"name": name, "apiKey": formValue(q, "apiKey")}
	if err := s.call(q, "UpdateApiKeyCredentialProvider", in, nil); err != nil {
		s.refused(q, title, err)
		return
	}
	s.render(q, http.StatusOK, "secretset", pageData{Title: "API key set", Data: secretSet{Name: name, Link: "apikeys/" + name, What: "API key"}})
}

// keepsConfig reports whether an OAuth2 provider's configuration member
// can be sent back as GetOauth2CredentialProvider shows it: the output
// holds neither Microsoft's tenant nor the included vendors' issuer and
// endpoints, and UpdateOauth2CredentialProvider would take their absence
// as a move to another authorization server.
func keepsConfig(member string) bool {
	return member != oauthvendor.MemberMicrosoft && member != oauthvendor.MemberIncluded
}

// oauth2Stored is what GetOauth2CredentialProvider's output holds of the
// configuration, kept as shown to be sent back.
type oauth2Stored struct {
	Name         string                     `json:"name"`
	Vendor       string                     `json:"credentialProviderVendor"`
	SecretSource string                     `json:"clientSecretSource"`
	Secret       secretRef                  `json:"clientSecretArn"`
	SecretKey    string                     `json:"clientSecretJsonKey"`
	Config       map[string]json.RawMessage `json:"oauth2ProviderConfigOutput"`
	McpServer    json.RawMessage            `json:"mcpServer"`
}

type oauth2Member struct {
	Discovery  json.RawMessage `json:"oauthDiscovery,omitempty"`
	ClientID   string          `json:"clientId,omitempty"`
	AuthMethod string          `json:"clientAuthenticationMethod,omitempty"`
	OnBehalfOf json.RawMessage `json:"onBehalfOfTokenExchangeConfig,omitempty"`
	Secret     string          `json:"clientSecret"`
}

// setClientSecret stores a new client secret through
// UpdateOauth2CredentialProvider, which replaces the whole configuration:
// it sends back the configuration GetOauth2CredentialProvider shows, with
// the secret.
func (s *Server) setClientSecret(q *request) {
	name := q.r.PathValue("name")
	const title = "Could not set the client secret"
	var cur oauth2Stored
	if err := s.call(q, "GetOauth2CredentialProvider", map[string]string{"name": name}, &cur); err != nil {
		s.refused(q, title, err)
		return
	}
	if cur.SecretSource == sourceExternal {
		s.keptElsewhere(q, title, "client secret", cur.Secret.ID, cur.SecretKey)
		return
	}
	if len(cur.McpServer) > 0 && string(cur.McpServer) != "null" {
		s.errorPage(q, http.StatusBadRequest, title, "This is an MCP server provider: set its secret with UpdateMcpServerCredentialProvider.")
		return
	}
	if len(cur.Config) != 1 {
		s.errorPage(q, http.StatusBadRequest, title, "The provider's configuration has no single member to keep.")
		return
	}
	var member string
	var m oauth2Member
	for k, raw := range cur.Config {
		member = k
		if err := json.Unmarshal(raw, &m); err != nil {
			s.internalError(q, "read a provider's configuration", err)
			return
		}
	}
	if !keepsConfig(member) {
		s.errorPage(q, http.StatusBadRequest, title, "The console cannot keep this provider's tenant or endpoints: set its secret with the API or behalf provider update.")
		return
	}
	if member != oauthvendor.MemberCustom {
		// The named vendors' members take only a client id and secret.
		m = oauth2Member{ClientID: m.ClientID}
	}
	m.Secret = formValue(q, "clientSecret")
	in := map[string]any{"name": name, "credentialProviderVendor": cur.Vendor, "oauth2ProviderConfigInput": map[string]oauth2Member{member: m}}
	if err := s.call(q, "UpdateOauth2CredentialProvider", in, nil); err != nil {
		s.refused(q, title, err)
		return
	}
	s.render(q, http.StatusOK, "secretset", pageData{Title: "Client secret set", Data: secretSet{Name: name, Link: "providers/" + name, What: "client secret"}})
}

// maxGrantLines bounds the allow-list form; the operation takes 50.
const maxGrantLines = 51

// grantsText is an allow-list as the workload page's form shows it: a
// line per provider, its name and then its scopes; "*" alone when there
// is no allow-list.
func grantsText(grants *[]behalfapi.ProviderGrant) string {
	if grants == nil {
		return "*"
	}
	var b strings.Builder
	for _, g := range *grants {
		b.WriteString(strings.Join(append([]string{g.Provider}, g.Scopes...), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// parseGrants reads the form's allow-list: a provider already listed
// keeps its resources, audiences and custom parameters, which the form
// does not show. "*" alone removes the allow-list. The operation checks
// the rest.
func parseGrants(text string, current *[]behalfapi.ProviderGrant) ([]behalfapi.ProviderGrant, bool) {
	kept := map[string]behalfapi.ProviderGrant{}
	if current != nil {
		for _, g := range *current {
			kept[g.Provider] = g
		}
	}
	grants := []behalfapi.ProviderGrant{}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if len(lines) > maxGrantLines+1 {
		return nil, false
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		g := kept[f[0]]
		g.Provider, g.Scopes = f[0], f[1:]
		if len(g.Scopes) == 0 {
			g.Scopes = nil
		}
		grants = append(grants, g)
	}
	return grants, len(grants) <= maxGrantLines
}

// setAllowList replaces a workload identity's credential-provider
// allow-list through UpdateWorkloadIdentity.
func (s *Server) setAllowList(q *request) {
	name := q.r.PathValue("name")
	const title = "Could not change the allow-list"
	var cur workloadDetail
	if err := s.call(q, "GetWorkloadIdentity", map[string]string{"name": name}, &cur); err != nil {
		s.refused(q, title, err)
		return
	}
	grants, ok := parseGrants(formValue(q, "providers"), cur.Providers)
	if !ok {
		s.errorPage(q, http.StatusBadRequest, title, "An allow-list holds at most 50 providers.")
		return
	}
	in := map[string]any{"name": name, "allowedCredentialProviders": grants}
	var out workloadDetail
	if err := s.call(q, "UpdateWorkloadIdentity", in, &out); err != nil {
		s.refused(q, title, err)
		return
	}
	s.render(q, http.StatusOK, "workload", pageData{Title: "Workload identity " + out.Name, Body: "The allow-list was changed.", Data: out})
}

// confirmDelete asks before a workload identity is deleted; the page
// changes nothing.
func (s *Server) confirmDelete(q *request) {
	if out, ok := s.readWorkload(q); ok {
		s.render(q, http.StatusOK, "deleteworkload", pageData{Title: "Delete workload identity " + out.Name, Data: out})
	}
}

// deleteWorkload deletes a workload identity through
// DeleteWorkloadIdentity.
func (s *Server) deleteWorkload(q *request) {
	name := q.r.PathValue("name")
	if err := s.call(q, "DeleteWorkloadIdentity", map[string]string{"name": name}, nil); err != nil {
		s.refused(q, "Could not delete the workload identity", err)
		return
	}
	s.render(q, http.StatusOK, "workloaddeleted", pageData{Title: "Workload identity deleted", Data: name})
}
