// Package dataplane serves the AgentCore Identity data plane: workload
// access tokens for an agent acting alone or for a user, and the
// credentials agents exchange them for — API keys and OAuth2 tokens.
// Wire shapes follow agentcore-api.md §7; behaviour follows §12.
//
// Every call is checked three ways before a credential leaves: the caller
// (a SigV4 principal) must be granted the workload, the token's minting
// principal must still be granted it, and — beyond AgentCore — the
// workload identity's own allow-list must permit the provider and scopes.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
)

// UserVerifier validates users' JWTs with the configured inbound
// authorizers (see package inbound).
type UserVerifier interface {
	Verify(ctx context.Context, token string, allowed []string) (*inbound.Identity, error)
	// Has reports whether an authorizer is configured.
	Has(name string) bool
}

// Deps are the data plane's collaborators.
type Deps struct {
	Store  storage.Storage
	Vault  *vault.Vault
	Tokens *wat.Issuer
	// Users is nil when no inbound authorizer is configured.
	Users UserVerifier
	OAuth *oauthclient.Client
	// Principal looks up a principal, through the authenticator's cache.
	Principal func(ctx context.Context, accessKeyID string) (storage.Principal, error)
	Now       func() time.Time
	// RecordTTL bounds how long a change made through another replica to a
	// workload identity or provider takes to be seen; default 2s.
	RecordTTL time.Duration
	// Audit records what happens outside API calls (browser callbacks).
	Audit      wire.Auditor
	Log        *slog.Logger
	Federation FederationOptions
}

// Service implements the data-plane operations.
type Service struct {
	Deps
	m2m       singleflight.Group
	workloads *recordCache[storage.WorkloadIdentity]
	apiKeys   *recordCache[storage.APIKeyProvider]
	oauth2    *recordCache[oauth2Provider]
	// tokens keeps sealed M2M tokens read from the vault, so that a hot
	// entry is not read from storage on every call.
	tokens *recordCache[storage.CachedToken]
	// refreshes shares one refresh per connection among this process's
	// callers; leaseOwner names this process to the others.
	refreshes  singleflight.Group
	leaseOwner string
}

// oauth2Provider is a provider record with its configuration decoded.
type oauth2Provider struct {
	storage.OAuth2Provider
	cfg provider.OAuth2
}

// New returns the data plane.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.RecordTTL <= 0 {
		d.RecordTTL = 2 * time.Second
	}
	return &Service{
		leaseOwner: uuid.NewString(),
		Deps:       d,
		workloads:  newRecordCache[storage.WorkloadIdentity](d.RecordTTL, d.Now),
		apiKeys:    newRecordCache[storage.APIKeyProvider](d.RecordTTL, d.Now),
		oauth2:     newRecordCache[oauth2Provider](d.RecordTTL, d.Now),
		tokens:     newRecordCache[storage.CachedToken](d.RecordTTL, d.Now),
	}
}

// Invalidate drops any cached copy of a changed resource.
func (s *Service) Invalidate(r storage.Resource) {
	switch r.Kind {
	case storage.KindWorkloadIdentity:
		s.workloads.invalidate(r.Name)
	case storage.KindAPIKeyProvider:
		s.apiKeys.invalidate(r.Name)
	case storage.KindOAuth2Provider:
		s.oauth2.invalidate(r.Name)
	}
}

// Operations lists the data-plane operations; every call is audited.
func (s *Service) Operations() []wire.Operation {
	return wire.Audited(
		wire.JSON("GetWorkloadAccessToken", "/identities/GetWorkloadAccessToken", http.StatusOK, s.getWorkloadAccessToken),
		wire.JSON("GetWorkloadAccessTokenForJWT", "/identities/GetWorkloadAccessTokenForJWT", http.StatusOK, s.getWorkloadAccessTokenForJWT),
		wire.JSON("GetWorkloadAccessTokenForUserId", "/identities/GetWorkloadAccessTokenForUserId", http.StatusOK, s.getWorkloadAccessTokenForUserID),
		wire.JSON("GetResourceApiKey", "/identities/api-key", http.StatusOK, s.getResourceAPIKey),
		wire.JSON("GetResourceOauth2Token", "/identities/oauth2/token", http.StatusOK, s.getResourceOAuth2Token),
		wire.JSON("CompleteResourceTokenAuth", "/identities/CompleteResourceTokenAuth", http.StatusOK, s.completeResourceTokenAuth),
	)
}

var (
	workloadNamePattern = wire.Pattern(`[A-Za-z0-9_.-]+`)
	providerNamePattern = wire.Pattern(`[a-zA-Z0-9\-_]+`)
	jwtPattern          = wire.Pattern(`[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+`)
)

// workloadForMinting loads the workload a token is being minted for and
// checks the caller may act for it.
func (s *Service) workloadForMinting(ctx context.Context, c *wire.Call, name string) (storage.WorkloadIdentity, error) {
	c.Audit.Workload = name
	if err := authz.CheckActsFor(c.Caller, name); err != nil {
		return storage.WorkloadIdentity{}, err
	}
	w, err := s.workloads.get(ctx, name, s.Store.GetWorkloadIdentity)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.WorkloadIdentity{}, wire.NotFound("workload identity %s does not exist", name)
	}
	if err != nil {
		return storage.WorkloadIdentity{}, wire.Internal(err)
	}
	return w, nil
}

type tokenOutput struct {
	Token string `json:"workloadAccessToken"`
}

func (s *Service) mint(c *wire.Call, w storage.WorkloadIdentity, user, userToken string, notAfter time.Time) (*tokenOutput, error) {
	c.Audit.User = user
	token, _, err := s.Tokens.Mint(wat.Claims{Workload: w.Name, WorkloadVersion: w.CreatedAt.UnixMicro(), User: user, UserToken: userToken,
		Principal: c.Caller.AccessKeyID}, notAfter)
	if errors.Is(err, wat.ErrExpired) {
		return nil, wire.Unauthorized("the user token expires now; get a fresh one")
	}
	if err != nil {
		return nil, wire.Internal(err)
	}
	return &tokenOutput{Token: token}, nil
}

type workloadInput struct {
	WorkloadName string `json:"workloadName"`
}

func (in *workloadInput) Validate(c *wire.Checker) {
	c.String("workloadName", in.WorkloadName, 3, 255, workloadNamePattern)
}

func (s *Service) getWorkloadAccessToken(ctx context.Context, c *wire.Call, in *workloadInput) (*tokenOutput, error) {
	w, err := s.workloadForMinting(ctx, c, in.WorkloadName)
	if err != nil {
		return nil, err
	}
	return s.mint(c, w, "", "", time.Time{})
}

type forJWTInput struct {
	workloadInput
	UserToken string `json:"userToken"`
}

func (in *forJWTInput) Validate(c *wire.Checker) {
	in.workloadInput.Validate(c)
	c.String("userToken", in.UserToken, 1, 131072, nil)
	if in.UserToken != "" && len(in.UserToken) <= 131072 && !jwtPattern.MatchString(in.UserToken) {
		c.Failf("userToken", "must be a JWT (three base64url segments separated by dots)")
	}
}

func (s *Service) getWorkloadAccessTokenForJWT(ctx context.Context, c *wire.Call, in *forJWTInput) (*tokenOutput, error) {
	w, err := s.workloadForMinting(ctx, c, in.WorkloadName)
	if err != nil {
		return nil, err
	}
	id, err := s.verifyUser(ctx, in.UserToken, w.AllowedAuthorizers)
	if err != nil {
		return nil, err
	}
	return s.mint(c, w, wat.UserFromJWT(id.Issuer, id.Subject), in.UserToken, id.Expiry)
}

// verifyUser validates a user's JWT with the authorizers the workload
// allows.
func (s *Service) verifyUser(ctx context.Context, token string, allowed []string) (*inbound.Identity, error) {
	if s.Users == nil {
		return nil, wire.Unauthorized("this server has no inbound JWT authorizer configured (inboundAuthorizers), so it cannot accept user tokens")
	}
	if allowed != nil {
		// A workload may name an authorizer that has since been removed
		// from the configuration; it then allows what remains.
		allowed = slices.DeleteFunc(slices.Clone(allowed), func(name string) bool { return !s.Users.Has(name) })
		if len(allowed) == 0 {
			return nil, wire.AccessDenied("this workload identity allows no configured inbound JWT authorizer")
		}
	}
	id, err := s.Users.Verify(ctx, token, allowed)
	if err == nil {
		return id, nil
	}
	var ie *inbound.Error
	if errors.As(err, &ie) {
		if ie.Kind == inbound.KindUnavailable {
			return nil, wire.BadGateway("%s", ie.Message)
		}
		return nil, wire.Unauthorized("user token rejected: %s", ie.Message)
	}
	return nil, wire.Internal(err)
}

type forUserIDInput struct {
	workloadInput
	UserID string `json:"userId"`
}

func (in *forUserIDInput) Validate(c *wire.Checker) {
	in.workloadInput.Validate(c)
	c.String("userId", in.UserID, 1, 128, nil)
}

func (s *Service) getWorkloadAccessTokenForUserID(ctx context.Context, c *wire.Call, in *forUserIDInput) (*tokenOutput, error) {
	w, err := s.workloadForMinting(ctx, c, in.WorkloadName)
	if err != nil {
		return nil, err
	}
	return s.mint(c, w, wat.UserFromID(in.UserID), "", time.Time{})
}

// access is a verified workload access token with its workload.
type access struct {
	claims   wat.Claims
	workload storage.WorkloadIdentity
}

// authorize opens a workload access token and checks, in order: the
// caller may act for its workload; the principal that minted it still
// may; the workload still exists; and its allow-list permits provider
// and scopes.
func (s *Service) authorize(ctx context.Context, c *wire.Call, token, provider string, scopes []string) (access, error) {
	c.Audit.Provider, c.Audit.Scopes = provider, scopes
	claims, err := s.Tokens.Open(ctx, token)
	switch {
	case errors.Is(err, wat.ErrExpired):
		return access{}, wire.Unauthorized("the workload access token has expired; get a new one")
	case errors.Is(err, wat.ErrInvalid):
		return access{}, wire.Unauthorized("the workload access token is not valid")
	case err != nil:
		return access{}, wire.Internal(err)
	}
	c.Audit.Workload, c.Audit.User = claims.Workload, claims.User
	if err := authz.CheckActsFor(c.Caller, claims.Workload); err != nil {
		return access{}, err
	}
	if claims.Principal != c.Caller.AccessKeyID {
		p, err := s.Principal(ctx, claims.Principal)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return access{}, wire.AccessDenied("the principal that minted this workload access token no longer exists")
		case err != nil:
			return access{}, wire.Internal(err)
		}
		if !authz.ActsFor(wire.Caller{AccessKeyID: p.AccessKeyID, Role: p.Role, Workloads: p.Workloads}, claims.Workload) {
			return access{}, wire.AccessDenied("the principal that minted this workload access token is not granted workload identity %s", claims.Workload)
		}
	}
	w, err := s.workloads.get(ctx, claims.Workload, s.Store.GetWorkloadIdentity)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return access{}, wire.AccessDenied("workload identity %s no longer exists", claims.Workload)
	case err != nil:
		return access{}, wire.Internal(err)
	case w.CreatedAt.UnixMicro() != claims.WorkloadVersion:
		return access{}, wire.AccessDenied("workload identity %s was deleted and created again since this token was minted", claims.Workload)
	}
	if err := checkAllowList(w, provider, scopes); err != nil {
		return access{}, err
	}
	return access{claims: claims, workload: w}, nil
}

// checkAllowList enforces a workload identity's credential-provider
// allow-list, behalf's least-privilege binding of agents to providers.
func checkAllowList(w storage.WorkloadIdentity, provider string, scopes []string) error {
	if w.AllowedProviders == nil {
		return nil
	}
	i := slices.IndexFunc(w.AllowedProviders, func(g storage.ProviderGrant) bool { return g.Provider == provider })
	if i < 0 {
		return wire.AccessDenied("workload identity %s is not allowed to use credential provider %s", w.Name, provider)
	}
	if allowed := w.AllowedProviders[i].Scopes; len(allowed) > 0 {
		if len(scopes) == 0 {
			// Without a scope the provider would apply its defaults, which
			// the grant does not limit (RFC 6749 §3.3).
			return wire.AccessDenied("workload identity %s may use credential provider %s only with scopes from %s; request them explicitly",
				w.Name, provider, strings.Join(allowed, " "))
		}
		for _, sc := range scopes {
			if !slices.Contains(allowed, sc) {
				return wire.AccessDenied("workload identity %s is not allowed scope %q of credential provider %s", w.Name, sc, provider)
			}
		}
	}
	return nil
}

type apiKeyInput struct {
	Token    string `json:"workloadIdentityToken"`
	Provider string `json:"resourceCredentialProviderName"`
}

func (in *apiKeyInput) Validate(c *wire.Checker) {
	c.String("workloadIdentityToken", in.Token, 1, 131072, nil)
	c.String("resourceCredentialProviderName", in.Provider, 1, 128, providerNamePattern)
}

type apiKeyOutput struct {
	APIKey string `json:"apiKey"`
}

// APIKeyBinding binds an API key to its provider record; the control plane
// seals with the same binding.
func APIKeyBinding(providerID string) vault.Binding {
	return vault.Binding{Kind: storage.SecretAPIKey, Owner: providerID}
}

func (s *Service) getResourceAPIKey(ctx context.Context, c *wire.Call, in *apiKeyInput) (*apiKeyOutput, error) {
	if _, err := s.authorize(ctx, c, in.Token, in.Provider, nil); err != nil {
		return nil, err
	}
	p, err := s.apiKeys.get(ctx, in.Provider, s.Store.GetAPIKeyProvider)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, wire.NotFound("API key credential provider %s does not exist", in.Provider)
	case err != nil:
		return nil, wire.Internal(err)
	}
	key, err := s.Vault.Open(ctx, p.APIKey, APIKeyBinding(p.ID))
	if err != nil {
		return nil, wire.Internal(fmt.Errorf("open API key of %s: %w", p.Name, err))
	}
	return &apiKeyOutput{APIKey: string(key)}, nil
}
