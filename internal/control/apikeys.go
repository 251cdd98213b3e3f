package control

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

type createAPIKeyProviderInput struct {
	Name         string            `json:"name"`
	APIKey       *string           `json:"apiKey,omitempty"`
	SecretConfig json.RawMessage   `json:"apiKeySecretConfig,omitempty"`
	SecretSource *string           `json:"apiKeySecretSource,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
}

func (in *createAPIKeyProviderInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 1, 128, providerNamePattern)
	checkManagedSecret(c, "apiKey", in.APIKey, 65536, "apiKeySecretSource", in.SecretSource, "apiKeySecretConfig", in.SecretConfig)
	c.Tags("tags", in.Tags)
}

// checkManagedSecret enforces that a secret is given inline. behalf stores
// secrets in its own vault; AgentCore's EXTERNAL source refers to AWS
// Secrets Manager, which behalf does not reach.
func checkManagedSecret(c *wire.Checker, member string, secret *string, maxLen int, sourceMember string, source *string, configMember string, config json.RawMessage) {
	if source != nil {
		c.Enum(sourceMember, *source, true, "MANAGED", "EXTERNAL")
		if *source == "EXTERNAL" {
			c.Failf(sourceMember, "EXTERNAL (AWS Secrets Manager) is not supported by behalf; pass %s and behalf stores it encrypted", member)
		}
	}
	if len(config) > 0 {
		c.Failf(configMember, "is not supported by behalf (it refers to AWS Secrets Manager); pass %s instead", member)
	}
	if secret == nil || *secret == "" {
		c.Failf(member, "is required")
		return
	}
	c.OptString(member, secret, 1, maxLen, nil)
}

type secretARN struct {
	ARN string `json:"secretArn"`
}

type apiKeyProviderOutput struct {
	SecretARN       secretARN  `json:"apiKeySecretArn"`
	SecretSource    string     `json:"apiKeySecretSource"`
	Name            string     `json:"name"`
	Arn             string     `json:"credentialProviderArn"`
	CreatedTime     *wire.Time `json:"createdTime,omitempty"`
	LastUpdatedTime *wire.Time `json:"lastUpdatedTime,omitempty"`
	// Status and FailureReason, as an OAuth2 provider's, are behalf
	// extension members, present only when the key was lost.
	Status        string  `json:"status,omitempty"`
	FailureReason *string `json:"failureReason,omitempty"`
}

// statusUpdateFailed is the status (AgentCore's Status enum) of a provider
// whose secret was lost with a deleted vault key.
const statusUpdateFailed = "UPDATE_FAILED"

// lostSecretReason is the failureReason of a provider whose secret was
// lost: what to call to set it again.
func lostSecretReason(what, update string) *string {
	reason := "the " + what + " was sealed under a token vault key that was deleted, and ResetTokenVaultKeyMaterial removed it; set it again with " + update
	return &reason
}

func (s *Service) apiKeyOutput(p storage.APIKeyProvider, withTimes bool) *apiKeyProviderOutput {
	out := &apiKeyProviderOutput{
		SecretARN:    secretARN{s.cfg.ARNs.SecretARN(storage.KindAPIKeyProvider, p.Name)},
		SecretSource: "MANAGED",
		Name:         p.Name,
		Arn:          s.cfg.ARNs.Resource(storage.Resource{Kind: storage.KindAPIKeyProvider, Name: p.Name}),
	}
	if withTimes {
		created, updated := epoch(p.CreatedAt), epoch(p.UpdatedAt)
		out.CreatedTime, out.LastUpdatedTime = &created, &updated
	}
	if p.APIKey.Lost() {
		out.Status, out.FailureReason = statusUpdateFailed, lostSecretReason("API key", "UpdateApiKeyCredentialProvider")
	}
	return out
}

func (s *Service) createAPIKeyProvider(ctx context.Context, c *wire.Call, in *createAPIKeyProviderInput) (*apiKeyProviderOutput, error) {
	c.Audit.Provider = in.Name
	now := s.Now()
	p := storage.APIKeyProvider{ID: uuid.NewString(), Name: in.Name, CreatedAt: now, UpdatedAt: now}
	sealed, err := s.sealFor(ctx, *in.APIKey, vault.APIKeyBinding(p.ID))
	if err != nil {
		return nil, err
	}
	p.APIKey = sealed
	if err := c.Change(s.store).CreateAPIKeyProvider(ctx, p, in.Tags); err != nil {
		return nil, wire.StorageError(err, "API key credential provider", in.Name)
	}
	return s.apiKeyOutput(p, false), nil
}

type providerNameInput struct {
	Name string `json:"name"`
}

func (in *providerNameInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 1, 128, providerNamePattern)
}

func (s *Service) getAPIKeyProvider(ctx context.Context, _ *wire.Call, in *providerNameInput) (*apiKeyProviderOutput, error) {
	p, err := s.store.GetAPIKeyProvider(ctx, in.Name)
	if err != nil {
		return nil, wire.StorageError(err, "API key credential provider", in.Name)
	}
	return s.apiKeyOutput(p, true), nil
}

type updateAPIKeyProviderInput struct {
	Name         string          `json:"name"`
	APIKey       *string         `json:"apiKey,omitempty"`
	SecretConfig json.RawMessage `json:"apiKeySecretConfig,omitempty"`
	SecretSource *string         `json:"apiKeySecretSource,omitempty"`
}

func (in *updateAPIKeyProviderInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 1, 128, providerNamePattern)
	checkManagedSecret(c, "apiKey", in.APIKey, 65536, "apiKeySecretSource", in.SecretSource, "apiKeySecretConfig", in.SecretConfig)
}

func (s *Service) updateAPIKeyProvider(ctx context.Context, c *wire.Call, in *updateAPIKeyProviderInput) (*apiKeyProviderOutput, error) {
	c.Audit.Provider = in.Name
	current, err := s.store.GetAPIKeyProvider(ctx, in.Name)
	if err != nil {
		return nil, wire.StorageError(err, "API key credential provider", in.Name)
	}
	// Seal outside the transaction: the updater may run more than once.
	sealed, err := s.sealFor(ctx, *in.APIKey, vault.APIKeyBinding(current.ID))
	if err != nil {
		return nil, err
	}
	defer s.changed(storage.KindAPIKeyProvider, in.Name)
	p, err := c.Change(s.store).UpdateAPIKeyProvider(ctx, in.Name, func(p storage.APIKeyProvider) (storage.APIKeyProvider, error) {
		if p.ID != current.ID {
			return p, storage.ErrConflict // deleted and re-created meanwhile
		}
		p.APIKey = sealed
		return p, nil
	})
	if err != nil {
		return nil, wire.StorageError(err, "API key credential provider", in.Name)
	}
	return s.apiKeyOutput(p, true), nil
}

func (s *Service) deleteAPIKeyProvider(ctx context.Context, c *wire.Call, in *providerNameInput) (*struct{}, error) {
	c.Audit.Provider = in.Name
	defer s.changed(storage.KindAPIKeyProvider, in.Name)
	return nil, wire.StorageError(c.Change(s.store).DeleteAPIKeyProvider(ctx, in.Name), "API key credential provider", in.Name)
}

type listAPIKeyProvidersInput struct{ listInput }

func (in *listAPIKeyProvidersInput) Validate(c *wire.Checker) {
	c.Range("maxResults", in.MaxResults, 1, 100)
}

type providerItem struct {
	Name            string    `json:"name"`
	Vendor          string    `json:"credentialProviderVendor,omitempty"`
	Arn             string    `json:"credentialProviderArn"`
	CreatedTime     wire.Time `json:"createdTime"`
	LastUpdatedTime wire.Time `json:"lastUpdatedTime"`
}

type listProvidersOutput struct {
	Items     []providerItem `json:"credentialProviders"`
	NextToken *string        `json:"nextToken,omitempty"`
}

func (s *Service) listAPIKeyProviders(ctx context.Context, _ *wire.Call, in *listAPIKeyProvidersInput) (*listProvidersOutput, error) {
	after, err := wire.ParseNextToken("nextToken", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 100)
	ps, err := s.store.ListAPIKeyProviders(ctx, storage.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, fmt.Errorf("list API key credential providers: %w", err)
	}
	ps, next := paginate(ps, limit, func(p storage.APIKeyProvider) string { return p.Name })
	out := &listProvidersOutput{Items: make([]providerItem, len(ps)), NextToken: next}
	for i, p := range ps {
		out.Items[i] = providerItem{
			Name:            p.Name,
			Arn:             s.cfg.ARNs.Resource(storage.Resource{Kind: storage.KindAPIKeyProvider, Name: p.Name}),
			CreatedTime:     epoch(p.CreatedAt),
			LastUpdatedTime: epoch(p.UpdatedAt),
		}
	}
	return out, nil
}
