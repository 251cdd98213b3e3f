package clients

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/clientip"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/ratelimit"
	"github.com/behalf-dev/behalf/internal/storage"
)

// PreregisteredClient is a client from behalf's configuration.
type PreregisteredClient struct {
	ClientID, ClientName    string
	RedirectURIs            []string
	GrantTypes              []string // default authorization_code and refresh_token
	TokenEndpointAuthMethod string   // default client_secret_basic with a Secret, else none
	// Secret is the client secret of a client_secret_basic or
	// client_secret_post client; nil for the others.
	Secret []byte
	// JWKSURI is where a private_key_jwt client publishes its keys.
	JWKSURI string
	// ApplicationType is web (the default) or native.
	ApplicationType string
}

// Options configure a Registry.
type Options struct {
	// Store keeps dynamically registered clients and the ids of used
	// client assertions.
	Store storage.Storage
	// HTTP fetches metadata documents and clients' JWKS: behalf's
	// egress-policed client (package egress).
	HTTP *http.Client
	// Issuer is the authorization server's issuer; TokenEndpoint its
	// token endpoint. A client assertion's aud must name one of them (RFC
	// 7523 §3).
	Issuer, TokenEndpoint string
	// RegistrationEndpoint is advertised when DynamicRegistration is on.
	RegistrationEndpoint string
	Preregistered        []PreregisteredClient
	// MetadataDocuments accepts clients named by the https URL of their
	// Client ID Metadata Document.
	MetadataDocuments bool
	// DynamicRegistration enables Register (RFC 7591).
	DynamicRegistration bool
	// RegistrationsPerMinute bounds registrations per client IP address;
	// zero means DefaultRegistrationsPerMinute.
	RegistrationsPerMinute int
	// ClientIP names a request's client for that limit; the zero value
	// names the connection's peer.
	ClientIP clientip.Resolver
	// Audit records registrations, committed with the stored client; nil
	// records nothing.
	Audit *audit.Log
	// Log receives the causes of failures clients are not told about; nil
	// discards them.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultRegistrationsPerMinute bounds registrations per client IP.
const DefaultRegistrationsPerMinute = 10

// Registry resolves and authenticates clients and registers new ones. It
// is safe for concurrent use.
type Registry struct {
	o             Options
	preregistered map[string]entry
	documents     *cache[entry]
	keys          *cache[[]jose.JSONWebKey]
	limiter       *ratelimit.Limiter
}

// entry is a client with what authenticating it needs.
type entry struct {
	Client
	secretHash []byte
	jwksURI    string
	jwks       []jose.JSONWebKey
}

// New validates o and returns a Registry. It does no I/O.
func New(o Options) (*Registry, error) {
	switch {
	case o.Store == nil || o.HTTP == nil:
		return nil, errors.New("clients: Store and HTTP are required")
	case o.Issuer == "" || o.TokenEndpoint == "":
		return nil, errors.New("clients: Issuer and TokenEndpoint are required")
	case o.DynamicRegistration && o.RegistrationEndpoint == "":
		return nil, errors.New("clients: RegistrationEndpoint is required with DynamicRegistration")
	case o.RegistrationsPerMinute < 0:
		return nil, errors.New("clients: RegistrationsPerMinute must not be negative")
	}
	if o.RegistrationsPerMinute == 0 {
		o.RegistrationsPerMinute = DefaultRegistrationsPerMinute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// The caller's client keeps its transport (and so the egress policy);
	// this copy refuses redirects whatever the caller's does, as the
	// metadata document draft requires.
	httpClient := *o.HTTP
	httpClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.HTTP = &httpClient
	r := &Registry{
		o:             o,
		preregistered: map[string]entry{},
		documents:     newCache[entry](maxCached, o.Now),
		keys:          newCache[[]jose.JSONWebKey](maxCached, o.Now),
		limiter:       ratelimit.New(ratelimit.PerMinute(o.RegistrationsPerMinute), ratelimit.Options{Now: o.Now}),
	}
	for i, p := range o.Preregistered {
		e, err := preregistered(p)
		if err != nil {
			return nil, fmt.Errorf("clients: pre-registered client %d (%q): %w", i, p.ClientID, err)
		}
		if _, dup := r.preregistered[e.ID]; dup {
			return nil, fmt.Errorf("clients: pre-registered client %q is listed twice", e.ID)
		}
		r.preregistered[e.ID] = e
	}
	return r, nil
}

// preregistered validates a configured client like a registration.
func preregistered(p PreregisteredClient) (entry, error) {
	if p.ClientID == "" || len(p.ClientID) > maxURIBytes || isURL(p.ClientID) {
		return entry{}, errors.New("client_id must be set, at most 2000 bytes, and not a URL (those name metadata documents)")
	}
	md := metadata{
		ClientID: p.ClientID, ClientName: p.ClientName, RedirectURIs: p.RedirectURIs, GrantTypes: p.GrantTypes,
		TokenEndpointAuthMethod: p.TokenEndpointAuthMethod, ApplicationType: p.ApplicationType, JWKSURI: p.JWKSURI,
	}
	if md.GrantTypes == nil {
		md.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	if md.TokenEndpointAuthMethod == "" {
		md.TokenEndpointAuthMethod = AuthNone
		if p.Secret != nil {
			md.TokenEndpointAuthMethod = AuthClientSecretBasic
		}
	}
	if !md.secretBased() && p.Secret != nil {
		return entry{}, fmt.Errorf("a secret is only for client_secret_basic and client_secret_post, not %s", md.TokenEndpointAuthMethod)
	}
	if md.secretBased() && len(p.Secret) == 0 {
		return entry{}, fmt.Errorf("%s needs a secret", md.TokenEndpointAuthMethod)
	}
	if e := complete(&md, Preregistered); e != nil {
		return entry{}, errors.New(e.Description)
	}
	e := md.entry(Preregistered)
	if p.Secret != nil {
		e.secretHash = oauthwire.Hash(string(p.Secret))
	}
	return e, nil
}

func (md *metadata) secretBased() bool {
	return md.TokenEndpointAuthMethod == AuthClientSecretBasic || md.TokenEndpointAuthMethod == AuthClientSecretPost
}

// entry is the client md describes, without its secret.
func (md *metadata) entry(kind Kind) entry {
	e := entry{
		Client: Client{
			ID: md.ClientID, Name: md.ClientName, URI: md.ClientURI, Kind: kind,
			RedirectURIs: md.RedirectURIs, GrantTypes: md.GrantTypes,
			ApplicationType: md.ApplicationType, TokenEndpointAuthMethod: md.TokenEndpointAuthMethod,
		},
		jwksURI: md.JWKSURI,
	}
	if md.JWKS != nil {
		e.jwks = md.JWKS.Keys
	}
	return e
}

// isURL reports whether a client_id is meant as a metadata document URL.
func isURL(clientID string) bool {
	return strings.HasPrefix(clientID, "https://") || strings.HasPrefix(clientID, "http://")
}

// Resolve finds the client of the authorization endpoint: pre-registered,
// named by its metadata document (fetched, or cached), or registered
// dynamically. An unknown or invalid client is invalid_client, which the
// authorization endpoint must show to the user rather than redirect (RFC
// 6749 §4.1.2.1).
func (r *Registry) Resolve(ctx context.Context, clientID string) (Client, *oauthwire.Error) {
	e, oe := r.lookup(ctx, clientID)
	return e.Client, oe
}

func (r *Registry) lookup(ctx context.Context, clientID string) (entry, *oauthwire.Error) {
	switch {
	case clientID == "":
		return entry{}, oauthwire.Errorf("invalid_request", "client_id is required")
	case isURL(clientID):
		if !r.o.MetadataDocuments {
			return entry{}, oauthwire.Errorf("invalid_client", "this server does not accept client metadata documents")
		}
		return r.document(ctx, clientID)
	}
	if e, ok := r.preregistered[clientID]; ok {
		return e, nil
	}
	if len(clientID) > maxURIBytes {
		return entry{}, oauthwire.Errorf("invalid_client", "unknown client")
	}
	stored, err := r.o.Store.GetOAuthClient(ctx, clientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return entry{}, oauthwire.Errorf("invalid_client", "unknown client")
	case err != nil:
		r.o.Log.LogAttrs(ctx, slog.LevelError, "reading a registered client failed", logging.Err(err))
		return entry{}, oauthwire.Errorf("server_error", "the client could not be read")
	}
	var md metadata
	if err := json.Unmarshal(stored.Metadata, &md); err != nil {
		r.o.Log.LogAttrs(ctx, slog.LevelError, "a registered client's stored metadata does not decode", logging.Err(err))
		return entry{}, oauthwire.Errorf("server_error", "the client could not be read")
	}
	md.ClientID = stored.ID
	e := md.entry(Dynamic)
	e.secretHash = stored.SecretHash
	return e, nil
}

// Metadata adds the RFC 8414 §2 members about clients to m.
func (r *Registry) Metadata(m map[string]any) {
	if r.o.DynamicRegistration {
		m["registration_endpoint"] = r.o.RegistrationEndpoint
	}
	m["client_id_metadata_document_supported"] = r.o.MetadataDocuments
	m["token_endpoint_auth_methods_supported"] = []string{AuthNone, AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT}
	m["token_endpoint_auth_signing_alg_values_supported"] = oauthwire.ClientAssertionAlgNames()
}
