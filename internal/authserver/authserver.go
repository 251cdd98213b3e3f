// Package authserver is behalf's OAuth 2.1 authorization server for MCP
// clients (docs/authorization-server.md). Its issuer is the server's
// public URL; it publishes RFC 8414 metadata and the OpenID Connect
// discovery document, and serves under /oauth2/:
//
//   - authorize: RFC 6749 §4.1 with PKCE S256 required (RFC 7636), exact
//     redirect URIs, one RFC 8707 resource, and RFC 9207 iss on every
//     response. Users sign in at the organisation's OpenID provider
//     (login/callback), then consent to the client's scopes (consent);
//     consent is remembered per user, client and resource.
//   - token: authorization_code (single-use codes; a replayed code revokes
//     what it produced), refresh_token (rotated on every use; a rotated
//     token used again revokes its family) and, with an ID-JAG verifier,
//     RFC 7523's jwt-bearer grant.
//   - revoke (RFC 7009) and introspect (RFC 7662).
//   - jwks: the public keys of the access tokens, RFC 9068 JWTs signed
//     with ES256 keys sealed by behalf's vault and rotated.
//
// Every grant, consent and revocation is audited with the change that
// makes it. Non-goals: DPoP, mTLS-bound tokens, PAR, JAR, ID tokens and
// the implicit and password grants.
package authserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/authserver/idjag"
	"github.com/behalf-dev/behalf/internal/clientip"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/ratelimit"
	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
)

// ClientRegistry resolves and authenticates clients (package clients).
type ClientRegistry interface {
	// Resolve finds the client of a client_id, without authenticating it.
	Resolve(ctx context.Context, clientID string) (clients.Client, *oauthwire.Error)
	// Authenticate authenticates the client of a token, revocation or
	// introspection request (RFC 6749 §2.3).
	Authenticate(ctx context.Context, r *http.Request, form url.Values) (clients.Client, *oauthwire.Error)
	// Register serves RFC 7591 registration.
	Register(w http.ResponseWriter, r *http.Request)
	// Metadata adds the registry's server metadata.
	Metadata(m map[string]any)
}

// AssertionVerifier redeems ID-JAGs (package idjag).
type AssertionVerifier interface {
	// Redeem verifies an assertion presented by client and returns what
	// it grants; resources maps each resource to the scopes offered.
	Redeem(ctx context.Context, assertion string, client clients.Client, requestedScopes []string, resources map[string][]string) (idjag.Grant, *oauthwire.Error)
	Metadata(m map[string]any)
}

// Paths of the endpoints, under the issuer.
const (
	PathAuthorize     = "/oauth2/authorize"
	PathLoginCallback = "/oauth2/login/callback"
	PathConsent       = "/oauth2/consent"
	PathToken         = "/oauth2/token" //nolint:gosec // G101: a path, no credential
	PathRevoke        = "/oauth2/revoke"
	PathIntrospect    = "/oauth2/introspect"
	PathJWKS          = "/oauth2/jwks"
	PathRegister      = "/oauth2/register"
)

// Options are the server's collaborators.
type Options struct {
	Config config.AuthorizationServer
	Store  storage.Storage
	Vault  *vault.Vault
	// Audit records every grant, consent and revocation; nil records
	// nothing (tests of parts only).
	Audit *audit.Log
	// Users verifies the login identity provider's ID tokens with the
	// rules of the inbound authorizer Config.Login.Authorizer.
	Users *inbound.Set
	// LoginDiscoveryURL is that authorizer's discovery URL.
	LoginDiscoveryURL string
	// LoginClientSecret is behalf's secret at the login identity
	// provider; empty for a public client.
	LoginClientSecret string
	// HTTP calls the login identity provider, under the egress policy.
	HTTP *http.Client
	// Key derives the login leg's state, PKCE verifier and nonce and the
	// consent form's token (HMAC-SHA256); at least 32 bytes, secret.
	Key     []byte
	Clients ClientRegistry
	// Assertions redeems ID-JAGs; nil turns the jwt-bearer grant off.
	Assertions AssertionVerifier
	Log        *slog.Logger
	Now        func() time.Time
	// RequestsPerMinute bounds the calls to authorize, token and
	// introspect per client IP; zero means 600.
	RequestsPerMinute int
	// ClientIP names a request's client for that limit; the zero value
	// names the connection's peer.
	ClientIP clientip.Resolver
}

// Server is the authorization server. It is safe for concurrent use.
type Server struct {
	cfg     config.AuthorizationServer
	opts    Options
	keys    *signingkeys.Set
	login   *login
	limiter *ratelimit.Limiter
	now     func() time.Time
	log     *slog.Logger
}

// SigningKeys is the schedule of the access tokens' signing keys, without
// their material.
func (s *Server) SigningKeys() signingkeys.SetStatus { return s.keys.Status() }

// New loads (or creates) the signing keys. It does not contact the login
// identity provider: that happens at the first sign-in.
func New(ctx context.Context, opts Options) (*Server, error) {
	if len(opts.Key) < 32 {
		return nil, errors.New("authserver: Key must have at least 32 bytes")
	}
	if opts.Store == nil || opts.Vault == nil || opts.Users == nil || opts.Clients == nil || opts.HTTP == nil {
		return nil, errors.New("authserver: Store, Vault, Users, Clients and HTTP are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RequestsPerMinute == 0 {
		opts.RequestsPerMinute = 600
	}
	s := &Server{cfg: opts.Config, opts: opts, now: opts.Now, log: opts.Log,
		limiter: ratelimit.New(ratelimit.PerMinute(opts.RequestsPerMinute), ratelimit.Options{Now: opts.Now})}
	s.keys = newSigningKeys(opts)
	if err := s.keys.Rotate(ctx); err != nil {
		return nil, err
	}
	s.login = &login{s: s, discoveryURL: opts.LoginDiscoveryURL}
	return s, nil
}

// Issuer is the server's issuer identifier.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// Mount registers the endpoints on mux.
func (s *Server) Mount(mux *http.ServeMux) {
	meta := s.metadataPath()
	mux.HandleFunc("GET "+meta.oauth, s.metadata(false))
	mux.HandleFunc("GET "+meta.oidc, s.metadata(true))
	mux.HandleFunc("GET "+PathAuthorize, s.limited(s.authorize))
	mux.HandleFunc("GET "+PathLoginCallback, s.limited(s.loginCallback))
	mux.HandleFunc("GET "+PathConsent, s.consentPage)
	mux.HandleFunc("POST "+PathConsent, s.limited(s.consent))
	mux.HandleFunc("POST "+PathToken, s.limited(s.token))
	mux.HandleFunc("POST "+PathRevoke, s.limited(s.revoke))
	mux.HandleFunc("POST "+PathIntrospect, s.limited(s.introspect))
	mux.HandleFunc("GET "+PathJWKS, s.keys.ServeJWKS)
	mux.HandleFunc("POST "+PathRegister, s.limited(s.opts.Clients.Register))
}

type metadataPaths struct{ oauth, oidc string }

// metadataPath places the metadata: RFC 8414 §3.1 inserts the well-known
// segment before the issuer's path, OpenID Connect Discovery §4 appends
// it.
func (s *Server) metadataPath() metadataPaths {
	u, _ := url.Parse(s.cfg.Issuer) // validated by config
	return metadataPaths{oauth: "/.well-known/oauth-authorization-server" + u.Path, oidc: u.Path + "/.well-known/openid-configuration"}
}

// limited refuses a client IP's calls beyond RequestsPerMinute.
func (s *Server) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.limiter.Allow(s.opts.ClientIP.Of(r)) {
			w.Header().Set("Retry-After", "60")
			oauthwire.WriteError(w, oauthwire.Errorf("temporarily_unavailable", "too many requests from this address; retry later"), false, "")
			return
		}
		h(w, r)
	}
}

// metadata serves RFC 8414 §2 metadata; oidc adds what OpenID Connect
// Discovery 1.0 §3 requires of the same document.
func (s *Server) metadata(oidc bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		iss := s.cfg.Issuer
		var scopes []string
		for _, r := range s.cfg.Resources {
			for _, sc := range r.Scopes {
				if !slices.Contains(scopes, sc) {
					scopes = append(scopes, sc)
				}
			}
		}
		grants := []string{config.GrantAuthorizationCode, config.GrantRefreshToken}
		if s.opts.Assertions != nil {
			grants = append(grants, config.GrantJWTBearer)
		}
		m := map[string]any{
			"issuer":                                         iss,
			"authorization_endpoint":                         iss + PathAuthorize,
			"token_endpoint":                                 iss + PathToken,
			"jwks_uri":                                       iss + PathJWKS,
			"revocation_endpoint":                            iss + PathRevoke,
			"introspection_endpoint":                         iss + PathIntrospect,
			"scopes_supported":                               scopes,
			"response_types_supported":                       []string{"code"},
			"response_modes_supported":                       []string{"query"},
			"grant_types_supported":                          grants,
			"code_challenge_methods_supported":               []string{"S256"},
			"authorization_response_iss_parameter_supported": true,
			"token_endpoint_auth_methods_supported":          []string{config.AuthMethodNone, config.AuthMethodSecretBasic, config.AuthMethodSecretPost},
		}
		s.opts.Clients.Metadata(m)
		if s.opts.Assertions != nil {
			s.opts.Assertions.Metadata(m)
		}
		// RFC 7009 and RFC 7662 take the token endpoint's methods, but
		// a public client cannot introspect.
		methods, _ := m["token_endpoint_auth_methods_supported"].([]string)
		m["revocation_endpoint_auth_methods_supported"] = methods
		m["introspection_endpoint_auth_methods_supported"] = slices.DeleteFunc(slices.Clone(methods), func(s string) bool { return s == config.AuthMethodNone })
		if oidc {
			// No ID token is ever issued (openid is not a scope here);
			// the members are those the document must have.
			m["subject_types_supported"] = []string{"public"}
			m["id_token_signing_alg_values_supported"] = []string{"ES256"}
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Type", "application/json")
		writeJSONBody(w, m)
	}
}

// mac is HMAC-SHA256 of parts under the server's key, base64url: 43
// characters, a valid PKCE verifier too.
func (s *Server) mac(purpose string, parts ...string) string {
	return oauthwire.MAC(s.opts.Key, purpose, parts...)
}

// resourceScopes maps every resource to its scopes.
func (s *Server) resourceScopes() map[string][]string {
	m := make(map[string][]string, len(s.cfg.Resources))
	for _, r := range s.cfg.Resources {
		m[r.Resource] = slices.Clone(r.Scopes)
	}
	return m
}

// Cleanup removes ended authorization requests, expired refresh tokens
// and expired one-time token ids, and reports how many of each.
func (s *Server) Cleanup(ctx context.Context) (requests, refresh, ids int, err error) {
	now := s.now()
	var errs [3]error
	requests, errs[0] = s.opts.Store.DeleteEndedAuthRequests(ctx, now)
	refresh, errs[1] = s.opts.Store.DeleteExpiredRefreshTokens(ctx, now)
	ids, errs[2] = s.opts.Store.DeleteExpiredTokenIDs(ctx, now)
	return requests, refresh, ids, errors.Join(errs[:]...)
}

// Rotate keeps the signing keys current; replicas call it periodically.
func (s *Server) Rotate(ctx context.Context) error { return s.keys.Rotate(ctx) }

func errorf(format string, args ...any) error { return fmt.Errorf("authserver: "+format, args...) }
