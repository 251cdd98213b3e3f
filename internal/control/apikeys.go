package control

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

type createAPIKeyProviderInput struct {
	Name         string            `json:"name"`
	APIKey       *string           `json:"apiKey,omitempty"`
	SecretConfig *secretRefInput   `json:"apiKeySecretConfig,omitempty"`
	SecretSource *string           `json:"apiKeySecretSource,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
}

func (in *createAPIKeyProviderInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 1, 128, providerNamePattern)
	apiKeySecret(in.APIKey, in.SecretSource, in.SecretConfig).check(c, true)
	c.Tags("tags", in.Tags)
}

// apiKeySecret is an API key provider's key as a request gives it.
func apiKeySecret(key, source *string, ref *secretRefInput) secretInput {
	return secretInput{value: key, source: source, ref: ref,
		members: secretMembers{value: "apiKey", source: "apiKeySecretSource", config: "apiKeySecretConfig", maxLen: 65536}}
}

type secretARN struct {
	ARN string `json:"secretArn"`
}

type apiKeyProviderOutput struct {
	SecretARN       secretARN  `json:"apiKeySecretArn"`
	SecretSource    string     `json:"apiKeySecretSource"`
	SecretJSONKey   *string    `json:"apiKeySecretJsonKey,omitempty"`
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
		Name: p.Name,
		Arn:  s.cfg.ARNs.Resource(storage.Resource{Kind: storage.KindAPIKeyProvider, Name: p.Name}),
	}
	out.SecretARN, out.SecretSource, out.SecretJSONKey = s.secretOutput(storage.KindAPIKeyProvider, p.Name, p.ExternalSecret)
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
	key, err := s.keepSecret(ctx, apiKeySecret(in.APIKey, in.SecretSource, in.SecretConfig), vault.APIKeyBinding(p.ID))
	if err != nil {
		return nil, err
	}
	p.APIKey, p.ExternalSecret = key.sealed, key.ref
	auditSecret(c, key.ref)
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
	SecretConfig *secretRefInput `json:"apiKeySecretConfig,omitempty"`
	SecretSource *string         `json:"apiKeySecretSource,omitempty"`
}

// Validate requires the key, or where it is kept: the update replaces it.
func (in *updateAPIKeyProviderInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 1, 128, providerNamePattern)
	apiKeySecret(in.APIKey, in.SecretSource, in.SecretConfig).check(c, true)
}

func (s *Service) updateAPIKeyProvider(ctx context.Context, c *wire.Call, in *updateAPIKeyProviderInput) (*apiKeyProviderOutput, error) {
	c.Audit.Provider = in.Name
	current, err := s.store.GetAPIKeyProvider(ctx, in.Name)
	if err != nil {
		return nil, wire.StorageError(err, "API key credential provider", in.Name)
	}
	// Seal outside the transaction: the updater may run more than once.
	key, err := s.keepSecret(ctx, apiKeySecret(in.APIKey, in.SecretSource, in.SecretConfig), vault.APIKeyBinding(current.ID))
	if err != nil {
		return nil, err
	}
	auditSecret(c, key.ref)
	defer s.changed(storage.KindAPIKeyProvider, in.Name)
	p, err := c.Change(s.store).UpdateAPIKeyProvider(ctx, in.Name, func(p storage.APIKeyProvider) (storage.APIKeyProvider, error) {
		if p.ID != current.ID {
			return p, storage.ErrConflict // deleted and re-created meanwhile
		}
		// One of the two: a switch between MANAGED and EXTERNAL drops the other.
		p.APIKey, p.ExternalSecret = key.sealed, key.ref
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
