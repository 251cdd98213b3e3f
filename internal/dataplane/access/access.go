// Package access is the data plane's shared check of a caller and its
// workload access token: the caller may act for the token's workload, the
// principal that minted the token still may, the workload identity still
// exists in the incarnation the token names, and the workload's
// credential-provider grant permits the request. It also keeps the
// short-lived caches of the records every vend reads (workload identities
// and credential providers) and loads providers with their configuration
// decoded.
package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Member patterns of the data-plane API (the AWS API reference of
// GetWorkloadAccessToken and GetResourceApiKey).
var (
	WorkloadNamePattern = wire.Pattern(`[A-Za-z0-9_.-]+`)
	ProviderNamePattern = wire.Pattern(`[a-zA-Z0-9\-_]+`)
)

// UserVerifier validates users' JWTs with the configured inbound
// authorizers (see package inbound).
type UserVerifier interface {
	Verify(ctx context.Context, token string, allowed []string) (*inbound.Identity, error)
	// Has reports whether an authorizer is configured.
	Has(name string) bool
}

// UserOf names the user a verified JWT speaks for: the key the verifier
// gave (behalf's own authorization server's tokens: the same user as one
// who presents their identity provider's JWT directly), else the issuer's
// subject.
func UserOf(id *inbound.Identity) string {
	if id.User != "" {
		return id.User
	}
	return wat.UserFromJWT(id.Issuer, id.Subject)
}

// Deps are the checker's collaborators.
type Deps struct {
	Store  storage.Storage
	Tokens *wat.Issuer
	// Users is nil when no inbound authorizer is configured.
	Users UserVerifier
	// Principal looks up a principal, through the authenticator's cache.
	Principal func(ctx context.Context, accessKeyID string) (storage.Principal, error)
	Now       func() time.Time
	// RecordTTL bounds how long a change made through another replica to a
	// workload identity or provider takes to be seen.
	RecordTTL time.Duration
	// Metrics counts the caches' hits and misses; nil counts nothing.
	Metrics *telemetry.Metrics
}

// Checker checks workload access tokens and serves the records the vend
// paths read.
type Checker struct {
	Deps
	workloads *Cache[storage.WorkloadIdentity]
	apiKeys   *Cache[storage.APIKeyProvider]
	oauth2    *Cache[OAuth2Provider]
}

// OAuth2Provider is a provider record with its configuration decoded.
type OAuth2Provider struct {
	storage.OAuth2Provider
	Config provider.OAuth2
}

// New returns a checker.
func New(d Deps) *Checker {
	return &Checker{
		Deps:      d,
		workloads: NewCache[storage.WorkloadIdentity](d.RecordTTL, d.Now, telemetry.CacheWorkloadIdentity, d.Metrics),
		apiKeys:   NewCache[storage.APIKeyProvider](d.RecordTTL, d.Now, telemetry.CacheAPIKeyProvider, d.Metrics),
		oauth2:    NewCache[OAuth2Provider](d.RecordTTL, d.Now, telemetry.CacheOAuth2Provider, d.Metrics),
	}
}

// Invalidate drops any cached copy of a changed resource.
func (c *Checker) Invalidate(r storage.Resource) {
	switch r.Kind {
	case storage.KindWorkloadIdentity:
		c.workloads.Invalidate(r.Name)
	case storage.KindAPIKeyProvider:
		c.apiKeys.Invalidate(r.Name)
	case storage.KindOAuth2Provider:
		c.oauth2.Invalidate(r.Name)
	}
}

// Workload returns a workload identity, from the cache when it is recent.
func (c *Checker) Workload(ctx context.Context, name string) (storage.WorkloadIdentity, error) {
	return c.workloads.Get(ctx, name, c.Store.GetWorkloadIdentity)
}

// APIKeyProvider returns an API key credential provider, from the cache
// when it is recent; a missing one is ResourceNotFoundException.
func (c *Checker) APIKeyProvider(ctx context.Context, name string) (storage.APIKeyProvider, error) {
	p, err := c.apiKeys.Get(ctx, name, c.Store.GetAPIKeyProvider)
	return p, wire.StorageError(err, "API key credential provider", name)
}

// OAuth2Provider returns an OAuth2 credential provider, from the cache
// when it is recent; a missing one is ResourceNotFoundException.
func (c *Checker) OAuth2Provider(ctx context.Context, name string) (OAuth2Provider, error) {
	p, err := c.oauth2.Get(ctx, name, c.LoadOAuth2Provider)
	return p, wire.StorageError(err, "OAuth2 credential provider", name)
}

// LoadOAuth2Provider reads a provider from storage, bypassing the cache.
func (c *Checker) LoadOAuth2Provider(ctx context.Context, name string) (OAuth2Provider, error) {
	p, err := c.Store.GetOAuth2Provider(ctx, name)
	if err != nil {
		return OAuth2Provider{}, err
	}
	cfg, err := provider.Decode(p.Config)
	return OAuth2Provider{OAuth2Provider: p, Config: cfg}, err
}

// SecretLost answers a vend from a provider whose secret (what, set with
// update) was lost with a deleted token vault key
// (ResetTokenVaultKeyMaterial, vault.ErrSecretLost): nothing can be
// vended until an administrator sets it again.
func SecretLost(provider, what, update string) error {
	msg := "the " + what + " of credential provider " + provider + " was sealed under a token vault key that was deleted, and " +
		"ResetTokenVaultKeyMaterial removed it; an administrator must set it again with " + update
	return wire.Validation(msg, wire.FieldError{Name: "resourceCredentialProviderName", Message: "its " + what + " must be set again"})
}

// ProviderName names a provider by id for audit records; empty when it is
// gone.
func (c *Checker) ProviderName(ctx context.Context, id string) (string, error) {
	p, err := c.Store.GetOAuth2ProviderByID(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("credential provider %s: %w", id, err)
	}
	return p.Name, nil
}

// Verified is a checked workload access token with its workload.
type Verified struct {
	Claims   wat.Claims
	Workload storage.WorkloadIdentity
}

// Authorize opens a workload access token and checks, in order: the
// caller may act for its workload; the principal that minted it still
// may; the workload still exists; and its grant permits provider and
// request. The call's record names the token's user and identity chain.
func (c *Checker) Authorize(ctx context.Context, call *wire.Call, token, provider string, req authz.GrantRequest) (Verified, error) {
	call.Audit.Provider, call.Audit.Scopes = provider, req.Scopes
	claims, err := c.Open(ctx, token)
	if err != nil {
		return Verified{}, err
	}
	call.Audit.User, call.Audit.Actors = claims.User, claims.Actors
	w, err := c.Check(ctx, call.Caller, claims, call.ActFor)
	if err != nil {
		return Verified{}, err
	}
	if err := checkAllowList(w, provider, req); err != nil {
		return Verified{}, err
	}
	return Verified{Claims: claims, Workload: w}, nil
}

// Open opens a workload access token: an invalid or expired one is
// UnauthorizedException. What it binds is checked by Check.
func (c *Checker) Open(ctx context.Context, token string) (wat.Claims, error) {
	claims, err := c.Tokens.Open(ctx, token)
	switch {
	case errors.Is(err, wat.ErrExpired):
		return claims, wire.Unauthorized("the workload access token has expired; get a new one")
	case errors.Is(err, wat.ErrInvalid):
		return claims, wire.Unauthorized("the workload access token is not valid")
	case err != nil:
		return claims, fmt.Errorf("open workload access token: %w", err)
	}
	return claims, nil
}

// Check checks what an opened token binds, in order: actFor (the caller's
// grant for the token's workload: wire.Call.ActFor when the call acts for
// it, wire.Call.MayActFor when it only presents it); the principal that
// minted it still exists in that incarnation and may act for it; the
// workload identity still exists in the incarnation the token names. It
// returns the workload identity.
func (c *Checker) Check(ctx context.Context, caller wire.Caller, claims wat.Claims, actFor func(workload string) error) (storage.WorkloadIdentity, error) {
	if err := actFor(claims.Workload); err != nil {
		return storage.WorkloadIdentity{}, err
	}
	if err := c.checkMinter(ctx, caller, claims); err != nil {
		return storage.WorkloadIdentity{}, err
	}
	w, err := c.Workload(ctx, claims.Workload)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return w, wire.AccessDenied("workload identity %s no longer exists", claims.Workload)
	case err != nil:
		return w, fmt.Errorf("workload identity %s: %w", claims.Workload, err)
	case w.CreatedAt.UnixMicro() != claims.WorkloadVersion:
		return w, wire.AccessDenied("workload identity %s was deleted and created again since this token was minted", claims.Workload)
	}
	return w, nil
}

// checkMinter checks the principal that minted a token still exists, in
// the incarnation that minted it, and may still act for its workload.
func (c *Checker) checkMinter(ctx context.Context, caller wire.Caller, claims wat.Claims) error {
	if claims.Principal == caller.AccessKeyID {
		return checkPrincipalVersion(caller.CreatedAt, claims)
	}
	p, err := c.Principal(ctx, claims.Principal)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return wire.AccessDenied("the principal that minted this workload access token no longer exists")
	case err != nil:
		return fmt.Errorf("principal %s: %w", claims.Principal, err)
	}
	if err := checkPrincipalVersion(p.CreatedAt, claims); err != nil {
		return err
	}
	if !authz.ActsFor(wire.Caller{AccessKeyID: p.AccessKeyID, Role: p.Role, Workloads: p.Workloads}, claims.Workload) {
		return wire.AccessDenied("the principal that minted this workload access token is not granted workload identity %s", claims.Workload)
	}
	return nil
}

func checkPrincipalVersion(created time.Time, claims wat.Claims) error {
	if created.UnixMicro() != claims.PrincipalVersion {
		return wire.AccessDenied("the principal that minted this workload access token was deleted and created again since")
	}
	return nil
}

// checkAllowList enforces a workload identity's credential-provider
// allow-list, behalf's least-privilege binding of agents to providers.
func checkAllowList(w storage.WorkloadIdentity, provider string, req authz.GrantRequest) error {
	return authz.CheckProviderGrant(w, provider, req)
}

// VerifyUser validates a user's JWT with the authorizers the workload
// allows.
func (c *Checker) VerifyUser(ctx context.Context, token string, allowed []string) (*inbound.Identity, error) {
	if c.Users == nil {
		return nil, wire.Unauthorized("this server has no inbound JWT authorizer configured (inboundAuthorizers), so it cannot accept user tokens")
	}
	if allowed != nil {
		// A workload may name an authorizer that has since been removed
		// from the configuration; it then allows what remains.
		allowed = slices.DeleteFunc(slices.Clone(allowed), func(name string) bool { return !c.Users.Has(name) })
		if len(allowed) == 0 {
			return nil, wire.AccessDenied("this workload identity allows no configured inbound JWT authorizer")
		}
	}
	id, err := c.Users.Verify(ctx, token, allowed)
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
	return nil, fmt.Errorf("verify user token: %w", err)
}
