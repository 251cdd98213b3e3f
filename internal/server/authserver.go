package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/behalf-dev/behalf/internal/authserver"
	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/authserver/idjag"
	"github.com/behalf-dev/behalf/internal/clientip"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/inbound"
)

// authServerKeyPurpose names the key that derives the authorization
// server's login state, PKCE verifier, nonce and consent form tokens.
const authServerKeyPurpose = "oauth-authserver"

// openAuthServer builds the authorization server, when configured, and
// returns the user verifier that also accepts its access tokens.
func (s *Server) openAuthServer(ctx context.Context, users access.UserVerifier, outbound *http.Client) (access.UserVerifier, error) {
	cfg := s.cfg.AuthorizationServer
	if cfg == nil {
		return users, nil
	}
	key, err := serverKey(ctx, s.store, s.vault, authServerKeyPurpose)
	if err != nil {
		return nil, fmt.Errorf("authorization server key: %w", err)
	}
	loginSecret, err := config.ReadSecretFile(cfg.Login.ClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("authorizationServer.login.clientSecretFile: %w", err)
	}
	clientIP := clientip.New(s.cfg.TrustedProxies)
	registry, err := s.authServerClients(cfg, outbound, clientIP)
	if err != nil {
		return nil, err
	}
	opts := authserver.Options{
		Config: *cfg, Store: s.store, Vault: s.vault, Audit: s.audit, Users: s.users, LoginClientSecret: loginSecret,
		HTTP: outbound, Key: key, Clients: registry, Log: s.log, Now: s.now, ClientIP: clientIP,
	}
	i := slices.IndexFunc(s.cfg.InboundAuthorizers, func(a inbound.Config) bool { return a.Name == cfg.Login.Authorizer })
	opts.LoginDiscoveryURL = s.cfg.InboundAuthorizers[i].DiscoveryURL
	if len(cfg.IDJagIssuers) > 0 {
		trusted := make([]idjag.TrustedIssuer, len(cfg.IDJagIssuers))
		for i, t := range cfg.IDJagIssuers {
			trusted[i] = idjag.TrustedIssuer{Issuer: t.Issuer, JWKSURI: t.JWKSURI}
		}
		if s.assertions, err = idjag.New(idjag.Options{Issuer: cfg.Issuer, Trusted: trusted, HTTP: outbound, Store: s.store, Now: s.now, Log: s.log}); err != nil {
			return nil, err
		}
		opts.Assertions = s.assertions
	}
	if s.authServer, err = authserver.New(ctx, opts); err != nil {
		return nil, err
	}
	return authServerUsers{set: s.users, as: s.authServer}, nil
}

// authServerClients builds the authorization server's client registry,
// reading the pre-registered clients' secrets.
func (s *Server) authServerClients(cfg *config.AuthorizationServer, outbound *http.Client, clientIP clientip.Resolver) (*clients.Registry, error) {
	pre := make([]clients.PreregisteredClient, len(cfg.Clients))
	for i, c := range cfg.Clients {
		secret, err := config.ReadSecretFile(c.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("authorizationServer.clients[%d].clientSecretFile: %w", i, err)
		}
		pre[i] = clients.PreregisteredClient{ClientID: c.ClientID, ClientName: c.ClientName, RedirectURIs: c.RedirectURIs,
			GrantTypes: c.GrantTypes, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, JWKSURI: c.JWKSURI}
		if secret != "" {
			pre[i].Secret = []byte(secret)
		}
	}
	return clients.New(clients.Options{Store: s.store, HTTP: outbound, Issuer: cfg.Issuer, TokenEndpoint: cfg.Issuer + authserver.PathToken,
		RegistrationEndpoint: cfg.Issuer + authserver.PathRegister, Preregistered: pre, MetadataDocuments: cfg.ClientIDMetadataDocuments,
		DynamicRegistration: cfg.DynamicRegistration, RegistrationsPerMinute: cfg.RegistrationsPerMinute,
		ClientIP: clientIP, Audit: s.audit, Log: s.log, Now: s.now})
}

// authServerUsers verifies users' JWTs: the authorization server's own
// access tokens in process, against its key set and revocations, as the
// inbound authorizer authserver.AuthorizerName; every other token with
// the configured inbound authorizers.
type authServerUsers struct {
	set *inbound.Set
	as  *authserver.Server
}

func (u authServerUsers) Has(name string) bool {
	return name == authserver.AuthorizerName || u.set.Has(name)
}

func (u authServerUsers) Verify(ctx context.Context, token string, allowed []string) (*inbound.Identity, error) {
	if u.as.IsOwnToken(token) {
		if allowed != nil && !slices.Contains(allowed, authserver.AuthorizerName) {
			return nil, &inbound.Error{Kind: inbound.KindUntrustedIssuer, Message: "tokens of this server's authorization server are not allowed here"}
		}
		return u.as.VerifyAccessToken(ctx, token)
	}
	if allowed != nil {
		allowed = slices.DeleteFunc(slices.Clone(allowed), func(n string) bool { return n == authserver.AuthorizerName })
		if len(allowed) == 0 {
			return nil, &inbound.Error{Kind: inbound.KindUntrustedIssuer, Message: "token issuer matches no allowed inbound authorizer"}
		}
	}
	return u.set.Verify(ctx, token, allowed)
}
