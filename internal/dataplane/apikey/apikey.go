// Package apikey serves GetResourceApiKey: the API key an API key
// credential provider holds, to a caller whose workload access token
// permits it.
package apikey

import (
	"context"
	"net/http"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/secretsource"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Service vends API keys.
type Service struct {
	access  *access.Checker
	secrets access.Secrets
}

// New returns the service.
func New(a *access.Checker, s access.Secrets) *Service {
	return &Service{access: a, secrets: s}
}

// Operations lists GetResourceApiKey; every call is audited.
func (s *Service) Operations() []wire.Operation {
	return wire.Audited(wire.JSON("GetResourceApiKey", "/identities/api-key", http.StatusOK, s.getResourceAPIKey))
}

type apiKeyInput struct {
	Token    string `json:"workloadIdentityToken"`
	Provider string `json:"resourceCredentialProviderName"`
}

func (in *apiKeyInput) Validate(c *wire.Checker) {
	c.String("workloadIdentityToken", in.Token, 1, 131072, nil)
	c.String("resourceCredentialProviderName", in.Provider, 1, 128, access.ProviderNamePattern)
}

type apiKeyOutput struct {
	APIKey string `json:"apiKey"`
}

func (s *Service) getResourceAPIKey(ctx context.Context, c *wire.Call, in *apiKeyInput) (*apiKeyOutput, error) {
	if _, err := s.access.Authorize(ctx, c, in.Token, in.Provider, authz.GrantRequest{}); err != nil {
		return nil, err
	}
	p, err := s.access.APIKeyProvider(ctx, in.Provider)
	if err != nil {
		return nil, err
	}
	if ref := p.ExternalSecret; ref != nil {
		c.Audit.Resource = secretsource.AuditName(*ref)
	}
	key, err := s.secrets.APIKey(ctx, p)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return &apiKeyOutput{APIKey: string(key)}, nil
}
