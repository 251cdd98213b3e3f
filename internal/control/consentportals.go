package control

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"

	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Consent portals (CreateConsentPortal and its siblings in the AgentCore
// Control API reference; docs/consent-portals.md): where a gateway's users
// sign in with an identity provider, through an OAuth2 credential
// provider, and consent to agents acting for them. behalf provisions a
// portal synchronously, so every portal it answers with is ACTIVE.

// PortalPath is where a portal's pages live; the portal id and a slash
// follow it.
const PortalPath = "/portals/"

func (s *Service) consentPortalOperations() []wire.Operation {
	reads := []wire.Operation{
		wire.JSON("GetConsentPortal", "/identities/GetConsentPortal", http.StatusOK, s.getConsentPortal),
		wire.JSON("ListConsentPortals", "/identities/ListConsentPortals", http.StatusOK, s.listConsentPortals),
	}
	return append(reads, wire.Audited(
		wire.JSON("CreateConsentPortal", "/identities/CreateConsentPortal", http.StatusAccepted, s.createConsentPortal),
		wire.JSON("UpdateConsentPortal", "/identities/UpdateConsentPortal", http.StatusAccepted, s.updateConsentPortal),
		wire.JSON("DeleteConsentPortal", "/identities/DeleteConsentPortal", http.StatusNoContent, s.deleteConsentPortal),
	)...)
}

// The members' constraints, from the AgentCore Control API reference
// (ConsentPortalIdpConfig, ConsentPortalSource, CreateConsentPortal).
var (
	portalNamePattern      = wire.Pattern(`[a-zA-Z0-9_-]{1,50}`)
	portalIDPattern        = wire.Pattern(`[a-zA-Z0-9\-_]{1,50}-[A-Za-z0-9]{10}`)
	portalARNPattern       = wire.Pattern(`arn:aws[^:]*:bedrock-agentcore:[a-z0-9-]+:[0-9]{12}:consent-portal/[a-zA-Z0-9\-_]{1,50}-[A-Za-z0-9]{10}`)
	executionRolePattern   = wire.Pattern(`arn:aws(-[a-z-]+)?:iam::[0-9]{12}:role/[a-zA-Z0-9+=,.@\-_/]+`)
	oauth2ProviderARNRegex = wire.Pattern(`arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc):bedrock-agentcore:[a-z0-9-]{1,32}:[0-9]{12}:token-vault/[a-zA-Z0-9_-]{1,64}/oauth2credentialprovider/[a-zA-Z0-9_-]{1,128}`)
	// scopeTokenPattern is RFC 6749 §3.3's scope-token.
	scopeTokenPattern = wire.Pattern(`[\x21\x23-\x5B\x5D-\x7E]+`)
	gatewaySourceID   = wire.Pattern(`([0-9a-z][-]?){1,100}-[0-9a-z]{10}`)
	gatewaySourceARN  = wire.Pattern(`arn:aws(-[a-z-]+)?:bedrock-agentcore:[a-z0-9-]{1,20}:[0-9]{12}:gateway/([0-9a-z][-]?){1,48}-[a-z0-9]{10}`)
)

const (
	// sourceTypeGateway is ConsentPortalSourceType's only value.
	sourceTypeGateway = "agentcore-gateway"
	// portalActive is the ConsentPortalStatus of every portal behalf has.
	portalActive = "ACTIVE"
	// maxPortalScopes bounds idpConfig.scopes, which the model leaves
	// unbounded, as a workload's provider grants are.
	maxPortalScopes = 100
	// maxARNLength bounds the ARN members the model leaves unbounded
	// (IAM's own limit on an ARN).
	maxARNLength = 2048
)

type portalIdpConfig struct {
	CredentialProviderARN string   `json:"credentialProviderArn"`
	Scopes                []string `json:"scopes"`
	Audience              *string  `json:"audience,omitempty"`
}

func (p *portalIdpConfig) validate(c *wire.Checker, name string) {
	c.String(name+".credentialProviderArn", p.CredentialProviderARN, 1, maxARNLength, oauth2ProviderARNRegex)
	c.Strings(name+".scopes", p.Scopes, 1, maxPortalScopes, 1, 255, scopeTokenPattern)
	c.OptString(name+".audience", p.Audience, 0, 2048, nil)
}

type portalSource struct {
	Identifier string `json:"identifier"`
	Type       string `json:"type"`
}

type createConsentPortalInput struct {
	Name             string            `json:"name"`
	Description      *string           `json:"description,omitempty"`
	ExecutionRoleARN string            `json:"executionRoleArn"`
	IdpConfig        *portalIdpConfig  `json:"idpConfig"`
	Sources          []portalSource    `json:"sources"`
	Tags             map[string]string `json:"tags,omitempty"`
}

func (in *createConsentPortalInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 1, 50, portalNamePattern)
	c.OptString("description", in.Description, 0, 512, nil)
	c.String("executionRoleArn", in.ExecutionRoleARN, 1, maxARNLength, executionRolePattern)
	c.Required("idpConfig", in.IdpConfig != nil)
	if in.IdpConfig != nil {
		in.IdpConfig.validate(c, "idpConfig")
	}
	// The model fixes the list at one source.
	if len(in.Sources) != 1 {
		c.Failf("sources", "must have exactly 1 item")
	}
	for i, src := range in.Sources {
		member := fmt.Sprintf("sources[%d]", i)
		c.Enum(member+".type", src.Type, true, sourceTypeGateway)
		c.String(member+".identifier", src.Identifier, 1, maxARNLength, nil)
		if src.Identifier != "" && !gatewaySourceID.MatchString(src.Identifier) && !gatewaySourceARN.MatchString(src.Identifier) {
			c.Failf(member+".identifier", "must be a gateway id or a gateway ARN")
		}
	}
	c.Tags("tags", in.Tags)
}

// consentPortalOutput is the answer of CreateConsentPortal,
// GetConsentPortal and UpdateConsentPortal.
type consentPortalOutput struct {
	ARN              string          `json:"consentPortalArn"`
	ID               string          `json:"consentPortalId"`
	Name             string          `json:"name"`
	Description      string          `json:"description,omitempty"`
	ExecutionRoleARN string          `json:"executionRoleArn"`
	IdpConfig        portalIdpConfig `json:"idpConfig"`
	Sources          []portalSource  `json:"sources"`
	Status           string          `json:"status"`
	PortalURL        string          `json:"portalUrl"`
	CreatedAt        wire.Time       `json:"createdAt"`
	UpdatedAt        wire.Time       `json:"updatedAt"`
}

func (s *Service) portalARN(id string) string {
	return s.cfg.ARNs.Resource(storage.Resource{Kind: storage.KindConsentPortal, Name: id})
}

func (s *Service) consentPortalOutput(p storage.ConsentPortal) *consentPortalOutput {
	idp := portalIdpConfig{
		CredentialProviderARN: s.cfg.ARNs.Resource(storage.Resource{Kind: storage.KindOAuth2Provider, Name: p.Provider}),
		Scopes:                p.Scopes,
	}
	if p.Audience != "" {
		idp.Audience = &p.Audience
	}
	return &consentPortalOutput{
		ARN: s.portalARN(p.ID), ID: p.ID, Name: p.Name, Description: p.Description, ExecutionRoleARN: p.ExecutionRoleARN,
		IdpConfig: idp, Sources: portalSources(p.Sources), Status: portalActive, PortalURL: s.cfg.PublicURL + PortalPath + p.ID + "/",
		CreatedAt: epoch(p.CreatedAt), UpdatedAt: epoch(p.UpdatedAt),
	}
}

func portalSources(stored []storage.ConsentPortalSource) []portalSource {
	out := make([]portalSource, len(stored))
	for i, src := range stored {
		out[i] = portalSource{Identifier: src.Identifier, Type: src.Type}
	}
	return out
}

// portalProvider returns the name of the OAuth2 credential provider that a
// validated idpConfig names, once it is sure the provider exists here and
// can sign users in.
func (s *Service) portalProvider(ctx context.Context, member, arn string) (string, error) {
	r, ok := s.cfg.ARNs.resourceOf(arn)
	if !ok || r.Kind != storage.KindOAuth2Provider {
		return "", wire.NotFound("%s %s names no OAuth2 credential provider of this server's region %s and account %s", member, arn, s.cfg.ARNs.Region, s.cfg.ARNs.AccountID)
	}
	p, err := s.store.GetOAuth2Provider(ctx, r.Name)
	if err != nil {
		return "", wire.StorageError(err, "OAuth2 credential provider", r.Name)
	}
	cfg, err := provider.Decode(p.Config)
	if err != nil {
		return "", fmt.Errorf("OAuth2 credential provider %s: %w", r.Name, err)
	}
	if cfg.MCP != nil {
		// Its authorization server issues tokens for one MCP server; it
		// is not an identity provider users sign in with.
		return "", wire.Validation(member+" names an MCP server credential provider, not an identity provider",
			wire.FieldError{Name: member, Message: "names an MCP server credential provider"})
	}
	return r.Name, nil
}

// newPortalID returns "<name>-<10 random letters and digits>", the shape
// of AgentCore's consent portal ids.
func newPortalID(name string) string {
	return name + "-" + rand.Text()[:10]
}

func (s *Service) createConsentPortal(ctx context.Context, c *wire.Call, in *createConsentPortalInput) (*consentPortalOutput, error) {
	var check wire.Checker
	for i, src := range in.Sources {
		if strings.HasPrefix(src.Identifier, "arn:") && !strings.HasPrefix(src.Identifier, s.cfg.ARNs.prefix()) {
			check.Failf(fmt.Sprintf("sources[%d].identifier", i), "names a gateway outside this server's region %s and account %s", s.cfg.ARNs.Region, s.cfg.ARNs.AccountID)
		}
	}
	if err := check.Err(); err != nil {
		return nil, err
	}
	name, err := s.portalProvider(ctx, "idpConfig.credentialProviderArn", in.IdpConfig.CredentialProviderARN)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	p := storage.ConsentPortal{
		ID: newPortalID(in.Name), Name: in.Name, ExecutionRoleARN: in.ExecutionRoleARN,
		Provider: name, Scopes: in.IdpConfig.Scopes, Sources: make([]storage.ConsentPortalSource, len(in.Sources)),
		CreatedAt: now, UpdatedAt: now,
	}
	if in.Description != nil {
		p.Description = *in.Description
	}
	if in.IdpConfig.Audience != nil {
		p.Audience = *in.IdpConfig.Audience
	}
	for i, src := range in.Sources {
		p.Sources[i] = storage.ConsentPortalSource{Type: src.Type, Identifier: src.Identifier}
	}
	c.Audit.Resource, c.Audit.Provider = s.portalARN(p.ID), name
	if err := c.Change(s.store).CreateConsentPortal(ctx, p, in.Tags); err != nil {
		return nil, wire.StorageError(err, "consent portal", in.Name)
	}
	return s.consentPortalOutput(p), nil
}

type consentPortalIdentifierInput struct {
	Identifier string `json:"consentPortalIdentifier"`
}

func (in *consentPortalIdentifierInput) Validate(c *wire.Checker) {
	checkPortalIdentifier(c, in.Identifier)
}

// checkPortalIdentifier checks a consentPortalIdentifier: a portal id or
// its ARN.
func checkPortalIdentifier(c *wire.Checker, v string) {
	const name = "consentPortalIdentifier"
	if strings.HasPrefix(v, "arn:") {
		c.String(name, v, 1, maxARNLength, portalARNPattern)
		return
	}
	c.String(name, v, 1, 61, portalIDPattern)
}

// portalID resolves a validated consentPortalIdentifier to a portal id.
func (s *Service) portalID(identifier string) (string, error) {
	if !strings.HasPrefix(identifier, "arn:") {
		return identifier, nil
	}
	r, ok := s.cfg.ARNs.resourceOf(identifier)
	if !ok || r.Kind != storage.KindConsentPortal {
		return "", wire.NotFound("consent portal %s is not in this server's region %s and account %s", identifier, s.cfg.ARNs.Region, s.cfg.ARNs.AccountID)
	}
	return r.Name, nil
}

func (s *Service) getConsentPortal(ctx context.Context, _ *wire.Call, in *consentPortalIdentifierInput) (*consentPortalOutput, error) {
	id, err := s.portalID(in.Identifier)
	if err != nil {
		return nil, err
	}
	p, err := s.store.GetConsentPortal(ctx, id)
	if err != nil {
		return nil, wire.StorageError(err, "consent portal", in.Identifier)
	}
	return s.consentPortalOutput(p), nil
}

// updateConsentPortalInput: a present member replaces the stored one; the
// name and sources are fixed at creation.
type updateConsentPortalInput struct {
	Identifier       string           `json:"consentPortalIdentifier"`
	Description      *string          `json:"description,omitempty"`
	ExecutionRoleARN *string          `json:"executionRoleArn,omitempty"`
	IdpConfig        *portalIdpConfig `json:"idpConfig,omitempty"`
}

func (in *updateConsentPortalInput) Validate(c *wire.Checker) {
	checkPortalIdentifier(c, in.Identifier)
	c.OptString("description", in.Description, 0, 512, nil)
	c.OptString("executionRoleArn", in.ExecutionRoleARN, 1, maxARNLength, executionRolePattern)
	if in.IdpConfig != nil {
		in.IdpConfig.validate(c, "idpConfig")
	}
}

func (s *Service) updateConsentPortal(ctx context.Context, c *wire.Call, in *updateConsentPortalInput) (*consentPortalOutput, error) {
	id, err := s.portalID(in.Identifier)
	if err != nil {
		return nil, err
	}
	c.Audit.Resource = s.portalARN(id)
	var providerName string
	if in.IdpConfig != nil {
		if providerName, err = s.portalProvider(ctx, "idpConfig.credentialProviderArn", in.IdpConfig.CredentialProviderARN); err != nil {
			return nil, err
		}
	}
	p, err := c.Change(s.store).UpdateConsentPortal(ctx, id, func(p storage.ConsentPortal) (storage.ConsentPortal, error) {
		if in.Description != nil {
			p.Description = *in.Description
		}
		if in.ExecutionRoleARN != nil {
			p.ExecutionRoleARN = *in.ExecutionRoleARN
		}
		if in.IdpConfig != nil {
			p.Provider, p.Scopes, p.Audience = providerName, in.IdpConfig.Scopes, ""
			if in.IdpConfig.Audience != nil {
				p.Audience = *in.IdpConfig.Audience
			}
		}
		return p, nil
	})
	if err != nil {
		return nil, wire.StorageError(err, "consent portal", in.Identifier)
	}
	c.Audit.Provider = p.Provider
	return s.consentPortalOutput(p), nil
}

func (s *Service) deleteConsentPortal(ctx context.Context, c *wire.Call, in *consentPortalIdentifierInput) (*struct{}, error) {
	id, err := s.portalID(in.Identifier)
	if err != nil {
		return nil, err
	}
	c.Audit.Resource = s.portalARN(id)
	return nil, wire.StorageError(c.Change(s.store).DeleteConsentPortal(ctx, id), "consent portal", in.Identifier)
}

type listConsentPortalsInput struct{ listInput }

func (in *listConsentPortalsInput) Validate(c *wire.Checker) {
	c.Range("maxResults", in.MaxResults, 1, 100)
}

type consentPortalSummary struct {
	ARN         string         `json:"consentPortalArn"`
	ID          string         `json:"consentPortalId"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Sources     []portalSource `json:"sources"`
	Status      string         `json:"status"`
	PortalURL   string         `json:"portalUrl"`
	CreatedAt   wire.Time      `json:"createdAt"`
	UpdatedAt   wire.Time      `json:"updatedAt"`
}

type listConsentPortalsOutput struct {
	Items     []consentPortalSummary `json:"consentPortals"`
	NextToken *string                `json:"nextToken,omitempty"`
}

func (s *Service) listConsentPortals(ctx context.Context, _ *wire.Call, in *listConsentPortalsInput) (*listConsentPortalsOutput, error) {
	after, err := wire.ParseNextToken("nextToken", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 100)
	ps, err := s.store.ListConsentPortals(ctx, storage.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, fmt.Errorf("list consent portals: %w", err)
	}
	ps, next := paginate(ps, limit, func(p storage.ConsentPortal) string { return p.ID })
	out := &listConsentPortalsOutput{Items: make([]consentPortalSummary, len(ps)), NextToken: next}
	for i, p := range ps {
		o := s.consentPortalOutput(p)
		out.Items[i] = consentPortalSummary{ARN: o.ARN, ID: o.ID, Name: o.Name, Description: o.Description, Sources: o.Sources,
			Status: o.Status, PortalURL: o.PortalURL, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
	}
	return out, nil
}
