package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/mcpauth"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/oauthvendor"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Remote MCP servers as OAuth2 credential providers (a behalf extension,
// docs/mcp-client.md). Such a provider is an OAuth2 provider like any
// other — Get, List, Delete, workload grants and GetResourceOauth2Token
// serve it — whose configuration records the server (provider.MCPServer)
// and whose client behalf registered itself, in the MCP specification's
// order ("Client Registration Approaches"): the client the administrator
// pre-registered; else a Client ID Metadata Document behalf serves at
// ClientDocumentPath; else RFC 7591 dynamic registration.

// ClientDocumentPath is where behalf serves its MCP clients' metadata
// documents; the provider id follows it, and the document's URL is the
// client id.
const ClientDocumentPath = "/mcp-clients/"

// ClientJWKSPath is where behalf publishes the public keys of its MCP
// clients that authenticate with private_key_jwt: one JWK set for every
// provider (their documents' jwks_uri), since one key set, rotated once,
// signs for all of them; a provider id is a UUID, never "jwks".
const ClientJWKSPath = ClientDocumentPath + "jwks"

// behalf's MCP client keys: server keys of ClientKeyPurpose, rotated by
// the signingkeys machinery the authorization server's keys use.
const (
	// ClientKeyPurpose names them.
	ClientKeyPurpose = "mcp-client-signing"
	// clientKeyRotation is how long a key signs.
	clientKeyRotation = 30 * 24 * time.Hour
	// clientKeyPrepublish is how long a new key is in the JWKS before it
	// signs: an authorization server that caches the JWKS for up to an
	// hour (the JWKS says max-age 300) has the new key before its first
	// assertion, and every replica has loaded it (maintenance runs every
	// five minutes).
	clientKeyPrepublish = time.Hour
	// clientKeyRetain is how long a key stays in the JWKS after it last
	// signed: an assertion is sent at once and lives two minutes
	// (oauthclient), to which the authorization server adds its leeway.
	clientKeyRetain = 10 * time.Minute
)

// NewClientKeys is behalf's MCP client key set; Rotate loads it (and
// makes its first key), and should be called periodically.
func NewClientKeys(st signingkeys.Store, v *vault.Vault, now func() time.Time) *signingkeys.Set {
	return signingkeys.New(st, v, signingkeys.Options{Purpose: ClientKeyPurpose, Rotation: clientKeyRotation,
		Prepublish: clientKeyPrepublish, Retain: clientKeyRetain, Now: now})
}

func (s *Service) mcpProviderOperations() []wire.Operation {
	return wire.Audited(
		wire.JSON("CreateMcpServerCredentialProvider", "/behalf/CreateMcpServerCredentialProvider", http.StatusCreated, s.createMCPProvider),
		wire.JSON("UpdateMcpServerCredentialProvider", "/behalf/UpdateMcpServerCredentialProvider", http.StatusOK, s.updateMCPProvider),
	)
}

// MountPublic registers the control plane's unauthenticated routes: the
// MCP clients' metadata documents and their JWKS, and the JWKS of
// PRIVATE_KEY_JWT providers, which authorization servers fetch.
func (s *Service) MountPublic(mux *http.ServeMux) {
	mux.HandleFunc("GET "+ClientDocumentPath+"{provider}", s.serveClientDocument)
	mux.HandleFunc("GET "+JWKSPath+"{provider}", s.serveProviderJWKS)
	if s.ClientKeys != nil {
		mux.HandleFunc("GET "+ClientJWKSPath, s.ClientKeys.ServeJWKS)
	}
}

type createMCPProviderInput behalfapi.CreateMcpServerCredentialProviderInput

func (in *createMCPProviderInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 1, 128, providerNamePattern)
	c.String("serverUrl", in.ServerURL, 1, 2048, nil)
	c.Strings("scopes", in.Scopes, 0, 50, 1, 128, scopePattern)
	checkMCPClient(c, givenClient{in.ClientID, in.ClientSecret, in.ClientPrivateKey, in.SigningAlgorithm, in.TokenEndpointAuthMethod, in.ClientMetadataDocumentURL})
	c.OptString("identityProvider", in.IdentityProvider, 1, 128, providerNamePattern)
	c.Tags("tags", in.Tags)
}

type updateMCPProviderInput behalfapi.UpdateMcpServerCredentialProviderInput

func (in *updateMCPProviderInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 1, 128, providerNamePattern)
	checkMCPClient(c, givenClient{in.ClientID, in.ClientSecret, in.ClientPrivateKey, in.SigningAlgorithm, in.TokenEndpointAuthMethod, nil})
	if in.IdentityProvider != nil && *in.IdentityProvider != "" { // "" turns it off
		c.OptString("identityProvider", in.IdentityProvider, 1, 128, providerNamePattern)
	}
}

// scopePattern is RFC 6749 §3.3's scope-token.
var scopePattern = wire.Pattern(`[\x21\x23-\x5B\x5D-\x7E]+`)

// givenClient is the client the administrator gave: a pre-registered
// one, its id and a secret or a private key (private_key_jwt); or the URL
// where they serve behalf's Client ID Metadata Document.
type givenClient struct{ id, secret, privateKey, signingAlgorithm, secretMethod, documentURL *string }

func checkMCPClient(c *wire.Checker, g givenClient) {
	c.OptString("clientId", g.id, 1, 256, nil)
	c.OptString("clientSecret", g.secret, 1, 2048, nil)
	c.OptString("clientPrivateKey", g.privateKey, 1, oauthclient.MaxClientKey, nil)
	if g.secret != nil && g.id == nil {
		c.Failf("clientSecret", "is given without clientId")
	}
	if g.privateKey != nil && g.id == nil {
		c.Failf("clientPrivateKey", "is given without clientId")
	}
	if g.secret != nil && g.privateKey != nil {
		c.Failf("clientPrivateKey", "is given with clientSecret: a client authenticates with one")
	}
	checkDocumentURL(c, g)
	if g.secretMethod != nil {
		c.Enum("tokenEndpointAuthMethod", *g.secretMethod, true, string(oauthvendor.ClientSecretBasic), string(oauthvendor.ClientSecretPost))
		if g.secret == nil {
			c.Failf("tokenEndpointAuthMethod", "is given without clientSecret")
		}
	}
	if g.signingAlgorithm != nil {
		c.Enum("signingAlgorithm", *g.signingAlgorithm, true, oauthclient.SigningAlgorithms...)
		if g.privateKey == nil {
			c.Failf("signingAlgorithm", "is given without clientPrivateKey")
		}
	}
	if g.privateKey != nil {
		// The key is never quoted: only why it cannot sign.
		if _, _, err := oauthclient.ParseClientKey([]byte(*g.privateKey), aws.ToString(g.signingAlgorithm)); err != nil {
			c.Failf("clientPrivateKey", "%s", err.Error())
		}
	}
}

// checkDocumentURL checks the URL of a Client ID Metadata Document the
// administrator serves.
func checkDocumentURL(c *wire.Checker, g givenClient) {
	if g.documentURL == nil {
		return
	}
	c.String("clientMetadataDocumentUrl", *g.documentURL, 1, 2048, nil)
	if msg := clients.CheckDocumentURL(*g.documentURL); msg != "" {
		c.Failf("clientMetadataDocumentUrl", "%s", msg)
	}
	if g.id != nil {
		c.Failf("clientMetadataDocumentUrl", "is given with clientId: the document's URL is the client id")
	}
}

// mcpClient is a client registered for a provider, with its secret or
// private key ("" for a public client).
type mcpClient struct {
	id, secret, registration, authMethod, signingAlgorithm string
}

func (s *Service) createMCPProvider(ctx context.Context, c *wire.Call, in *createMCPProviderInput) (*behalfapi.McpServerCredentialProviderOutput, error) {
	c.Audit.Provider, c.Audit.Resource = in.Name, "mcp-server/"+in.ServerURL
	// Registering a client for a name that is taken would leave it
	// orphaned at the authorization server.
	if _, err := s.store.GetOAuth2Provider(ctx, in.Name); err == nil {
		return nil, wire.StorageError(storage.ErrAlreadyExists, "OAuth2 credential provider", in.Name)
	}
	d, err := s.discoverForProvider(ctx, in.Name, in.ServerURL)
	if err != nil {
		return nil, err
	}
	if in.IdentityProvider != nil {
		if err := s.checkIdentityProvider(ctx, *in.IdentityProvider, d.AuthorizationServer); err != nil {
			return nil, err
		}
	}
	id := uuid.NewString()
	client, err := s.registerMCPClient(ctx, id, in.Name, d, givenClient{in.ClientID, in.ClientSecret, in.ClientPrivateKey, in.SigningAlgorithm, in.TokenEndpointAuthMethod, in.ClientMetadataDocumentURL})
	if err != nil {
		return nil, err
	}
	scopes := in.Scopes
	if len(scopes) == 0 {
		scopes = d.Scopes
	}
	now := s.Now()
	cfg := mcpConfig(d, in.ServerURL, scopes, client, now.Unix())
	cfg.MCP.IdentityProvider = aws.ToString(in.IdentityProvider)
	p := storage.OAuth2Provider{ID: id, Name: in.Name, Vendor: cfg.Vendor, Config: cfg.Encode(), CreatedAt: now, UpdatedAt: now}
	if p.ClientSecret, err = s.sealFor(ctx, client.secret, OAuth2ClientSecretBinding(p.ID)); err != nil {
		return nil, err
	}
	if err := c.Change(s.store).CreateOAuth2Provider(ctx, p, in.Tags); err != nil {
		return nil, wire.StorageError(err, "OAuth2 credential provider", in.Name)
	}
	return s.mcpOutput(p, cfg, false), nil
}

// updateMCPProvider discovers the server's authorization again. The
// client stays while the issuer does (or is replaced by one given); when
// the issuer changed, a client is registered at the new one, and the
// provider's sessions and connections, whose tokens the old one issued,
// are deleted with the change (RepointOAuth2Provider).
func (s *Service) updateMCPProvider(ctx context.Context, c *wire.Call, in *updateMCPProviderInput) (*behalfapi.McpServerCredentialProviderOutput, error) {
	c.Audit.Provider = in.Name
	current, err := s.store.GetOAuth2Provider(ctx, in.Name)
	if err != nil {
		return nil, wire.StorageError(err, "OAuth2 credential provider", in.Name)
	}
	cur, err := provider.Decode(current.Config)
	if err != nil {
		return nil, fmt.Errorf("OAuth2 credential provider %s: %w", in.Name, err)
	}
	if cur.MCP == nil {
		return nil, wire.Validation("OAuth2 credential provider "+in.Name+" is not an MCP server provider; use UpdateOauth2CredentialProvider",
			wire.FieldError{Name: "name", Message: "is not an MCP server provider"})
	}
	c.Audit.Resource = "mcp-server/" + cur.MCP.ServerURL
	d, err := s.discoverForProvider(ctx, in.Name, cur.MCP.ServerURL)
	if err != nil {
		return nil, err
	}
	repoint := d.AuthorizationServer.Issuer != cur.MCP.Issuer || d.Resource != cur.MCP.Resource
	fresh := repoint || in.ClientID != nil
	cfg, sealed, err := s.updatedMCPConfig(ctx, current, cur, d, in, repoint)
	if err != nil {
		return nil, err
	}
	cfg.MCP.IdentityProvider = cur.MCP.IdentityProvider
	if in.IdentityProvider != nil {
		if *in.IdentityProvider != "" {
			if err := s.checkIdentityProvider(ctx, *in.IdentityProvider, d.AuthorizationServer); err != nil {
				return nil, err
			}
		}
		cfg.MCP.IdentityProvider = *in.IdentityProvider
	}
	var secret *storedSecret
	if fresh {
		secret = &storedSecret{sealed: sealed}
	}
	p, err := s.replaceProvider(ctx, c, current, repoint, current.Vendor, cfg.Encode(), secret)
	if err != nil {
		return nil, err
	}
	return s.mcpOutput(p, cfg, repoint), nil
}

// updatedMCPConfig is the configuration an update stores: the current
// client, unless the issuer changed (repoint) or a client id is given,
// when a client is registered anew and its secret sealed.
func (s *Service) updatedMCPConfig(ctx context.Context, current storage.OAuth2Provider, cur provider.OAuth2, d mcpauth.Discovery,
	in *updateMCPProviderInput, repoint bool) (provider.OAuth2, storage.Sealed, error) {
	client := mcpClient{id: cur.ClientID, registration: cur.MCP.Registration, authMethod: cur.MCP.TokenEndpointAuthMethod,
		signingAlgorithm: cur.MCP.SigningAlgorithm}
	if !repoint && in.ClientID == nil {
		return mcpConfig(d, cur.MCP.ServerURL, cur.MCP.Scopes, client, cur.MCP.RegisteredAt), storage.Sealed{}, nil
	}
	if repoint && in.ClientID == nil && cur.MCP.Registration == provider.RegistrationPreregistered {
		const msg = "is required: the server's authorization server changed, and the pre-registered client belongs to the old one"
		return provider.OAuth2{}, storage.Sealed{}, wire.Validation("clientId "+msg, wire.FieldError{Name: "clientId", Message: msg})
	}
	given := givenClient{in.ClientID, in.ClientSecret, in.ClientPrivateKey, in.SigningAlgorithm, in.TokenEndpointAuthMethod, nil}
	if in.ClientID == nil && s.documentHostedElsewhere(current.ID, current.Name, cur) {
		given.documentURL = &cur.ClientID // the document names no authorization server: it serves the new one too
	}
	client, err := s.registerMCPClient(ctx, current.ID, in.Name, d, given)
	if err != nil {
		return provider.OAuth2{}, storage.Sealed{}, err
	}
	sealed, err := s.sealFor(ctx, client.secret, OAuth2ClientSecretBinding(current.ID))
	if err != nil {
		return provider.OAuth2{}, storage.Sealed{}, err
	}
	return mcpConfig(d, cur.MCP.ServerURL, cur.MCP.Scopes, client, s.Now().Unix()), sealed, nil
}

// discoverForProvider runs MCP discovery through the egress-policed
// client: a URL it cannot take is a ValidationException on serverUrl, a
// server it refuses a 502 naming the step and reason.
func (s *Service) discoverForProvider(ctx context.Context, name, serverURL string) (mcpauth.Discovery, error) {
	d, err := mcpauth.Discover(telemetry.WithOutbound(ctx, name, telemetry.EndpointDiscovery), s.HTTP, serverURL)
	var de *mcpauth.DiscoveryError
	switch {
	case errors.As(err, &de) && de.Step == mcpauth.StepInput:
		return d, wire.Validation(err.Error(), wire.FieldError{Name: "serverUrl", Message: de.Reason})
	case err != nil:
		return d, wire.BadGateway("%s", err.Error())
	case d.AuthorizationServer.AuthorizationEndpoint == "":
		return d, wire.BadGateway("the MCP server's authorization server %s has no authorization_endpoint, so users cannot consent", d.AuthorizationServer.Issuer)
	}
	return d, nil
}

// registerMCPClient gives the provider with id a client at the server's
// authorization server, in the specification's order of preference.
func (s *Service) registerMCPClient(ctx context.Context, id, name string, d mcpauth.Discovery, given givenClient) (mcpClient, error) {
	as := d.AuthorizationServer
	if given.id != nil {
		c := mcpClient{id: *given.id, registration: provider.RegistrationPreregistered, authMethod: "none"}
		switch {
		case given.privateKey != nil:
			// Validate parsed the key; this names the algorithm it chose.
			_, alg, err := oauthclient.ParseClientKey([]byte(*given.privateKey), aws.ToString(given.signingAlgorithm))
			if err != nil {
				return mcpClient{}, wire.Validation("clientPrivateKey "+err.Error(), wire.FieldError{Name: "clientPrivateKey", Message: err.Error()})
			}
			c.secret, c.authMethod, c.signingAlgorithm = *given.privateKey, string(oauthvendor.PrivateKeyJWT), alg
		case given.secret != nil:
			c.secret, c.authMethod = *given.secret, string(preferredSecretMethod(as.TokenEndpointAuthMethodsSupported))
			if given.secretMethod != nil {
				c.authMethod = *given.secretMethod
			}
		}
		return c, nil
	}
	md := s.clientMetadata(id, name, "none")
	switch {
	case !as.ClientIDMetadataDocumentSupported:
	case given.documentURL != nil:
		// A document behalf does not serve names no key of behalf's: the
		// client is public, and PKCE protects its codes.
		return mcpClient{id: *given.documentURL, registration: provider.RegistrationMetadataDocument, authMethod: "none"}, nil
	case md.ClientID != "":
		c := mcpClient{id: md.ClientID, registration: provider.RegistrationMetadataDocument, authMethod: "none"}
		if s.ClientKeys != nil && verifiesOwnKey(as) {
			c.authMethod, c.signingAlgorithm = string(oauthvendor.PrivateKeyJWT), string(jose.ES256)
		}
		return c, nil
	}
	if as.RegistrationEndpoint == "" {
		const msg = "the MCP server's authorization server accepts neither Client ID Metadata Documents " +
			"(at behalf's https public URL, or at clientMetadataDocumentUrl) nor dynamic registration: register a client there and pass its clientId"
		return mcpClient{}, wire.Validation(msg, wire.FieldError{Name: "clientId", Message: "is required for this authorization server"})
	}
	md.ClientID, md.ApplicationType = "", "web"
	rc, err := mcpauth.Register(telemetry.WithOutbound(ctx, name, telemetry.EndpointDiscovery), s.HTTP, as.RegistrationEndpoint, md)
	if err != nil {
		return mcpClient{}, wire.BadGateway("%s", err.Error())
	}
	c := mcpClient{id: rc.ClientID, secret: rc.ClientSecret, registration: provider.RegistrationDynamic, authMethod: rc.TokenEndpointAuthMethod}
	switch {
	case c.secret == "":
		c.authMethod = "none"
	case c.authMethod != string(oauthvendor.ClientSecretPost):
		c.authMethod = string(oauthvendor.ClientSecretBasic) // RFC 7591 §2's default
	}
	return c, nil
}

// checkIdentityProvider checks the enterprise IdP's provider of an MCP
// server provider: an OAuth2 provider, not an MCP server's, whose issuer
// and token endpoint are known (the issuer tells which users' JWTs go
// there); and the server's authorization server, when it lists its
// grants, takes the jwt-bearer grant that redeems ID-JAGs (RFC 7523 §2.1).
func (s *Service) checkIdentityProvider(ctx context.Context, name string, as mcpauth.AuthorizationServerMetadata) error {
	invalid := func(msg string) error {
		return wire.Validation("identityProvider "+name+" "+msg, wire.FieldError{Name: "identityProvider", Message: msg})
	}
	p, err := s.store.GetOAuth2Provider(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return invalid("is not an OAuth2 credential provider: create the enterprise IdP's first")
	}
	if err != nil {
		return wire.StorageError(err, "OAuth2 credential provider", name)
	}
	cfg, err := provider.Decode(p.Config)
	switch {
	case err != nil:
		return fmt.Errorf("OAuth2 credential provider %s: %w", name, err)
	case cfg.MCP != nil:
		return invalid("is an MCP server provider; name the enterprise IdP's OAuth2 credential provider")
	case cfg.Resolved.Issuer == "" || cfg.Resolved.TokenEndpoint == "":
		return invalid("has no issuer or token endpoint: create it with its discovery URL or its authorization server metadata")
	case len(as.GrantTypesSupported) > 0 && !slices.Contains(as.GrantTypesSupported, oauthwire.GrantJWTBearer):
		return invalid("cannot be used: the MCP server's authorization server does not offer the jwt-bearer grant that redeems ID-JAGs")
	}
	return nil
}

// verifiesOwnKey reports whether the authorization server takes
// private_key_jwt assertions signed with behalf's MCP client key (ES256):
// it lists the method, and ES256 among its algorithms if it lists them.
// A Client ID Metadata Document's client is then confidential, its key
// in behalf's vault, rather than public (MCP 2025-11-25, "Client ID
// Metadata Documents"; RFC 7523 §2.2).
func verifiesOwnKey(as mcpauth.AuthorizationServerMetadata) bool {
	algs := as.TokenEndpointAuthSigningAlgValuesSupported
	return slices.Contains(as.TokenEndpointAuthMethodsSupported, string(oauthvendor.PrivateKeyJWT)) &&
		(len(algs) == 0 || slices.Contains(algs, string(jose.ES256)))
}

// preferredSecretMethod is how a pre-registered confidential client
// authenticates: client_secret_basic unless the server offers only
// client_secret_post.
func preferredSecretMethod(supported []string) oauthvendor.AuthMethod {
	if !slices.Contains(supported, string(oauthvendor.ClientSecretBasic)) && slices.Contains(supported, string(oauthvendor.ClientSecretPost)) {
		return oauthvendor.ClientSecretPost
	}
	return oauthvendor.ClientSecretBasic
}

// clientMetadata is the provider's client metadata (RFC 7591 §2): a web
// client whose one redirect URI is the provider's callback, using the
// authorization code and refresh grants, without a secret: public (auth
// method none), or private_key_jwt with behalf's MCP client keys at
// ClientJWKSPath. Its client id is its document's URL, or "" when
// behalf's public URL cannot name a document (MCP authorization: https,
// or http on loopback).
func (s *Service) clientMetadata(id, name, authMethod string) mcpauth.ClientMetadata {
	md := mcpauth.ClientMetadata{
		ClientName: "behalf: " + name, RedirectURIs: []string{s.cfg.PublicURL + CallbackPath + id},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: "none",
	}
	if authMethod == string(oauthvendor.PrivateKeyJWT) {
		// jwks_uri rather than jwks (RFC 7591 §2): the keys rotate
		// without the document changing, which authorization servers
		// cache (the draft lets them, up to their own bound).
		md.TokenEndpointAuthMethod, md.JWKSURI = authMethod, s.cfg.PublicURL+ClientJWKSPath
	}
	docURL := s.cfg.PublicURL + ClientDocumentPath + id
	if canonical, err := mcpauth.CanonicalResource(docURL); err == nil && canonical == docURL {
		md.ClientID = docURL
	}
	return md
}

// documentHostedElsewhere reports whether an MCP server provider's client
// is a Client ID Metadata Document the administrator serves.
func (s *Service) documentHostedElsewhere(id, name string, cfg provider.OAuth2) bool {
	return cfg.MCP.Registration == provider.RegistrationMetadataDocument && cfg.ClientID != s.clientMetadata(id, name, "none").ClientID
}

// serveClientDocument serves an MCP server provider's Client ID Metadata
// Document; every other id is not found.
func (s *Service) serveClientDocument(w http.ResponseWriter, r *http.Request) {
	notFound := func() { http.Error(w, "not found", http.StatusNotFound) }
	p, cfg, ok := s.publicProvider(w, r, 64, s.store.GetOAuth2ProviderByID)
	if !ok {
		return
	}
	if cfg.MCP == nil || cfg.MCP.Registration != provider.RegistrationMetadataDocument {
		notFound()
		return
	}
	md := s.clientMetadata(p.ID, p.Name, cfg.MCP.TokenEndpointAuthMethod)
	if md.ClientID != cfg.ClientID {
		notFound() // the public URL changed since: the registered client id is no longer served
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(md) // the client has gone: nothing to do
}

// mcpConfig is the stored configuration of an MCP server provider.
func mcpConfig(d mcpauth.Discovery, serverURL string, scopes []string, c mcpClient, registeredAt int64) provider.OAuth2 {
	as := d.AuthorizationServer
	return provider.OAuth2{
		Vendor: "CustomOauth2", Member: oauthvendor.MemberCustom, ClientID: c.id,
		MCP: &provider.MCPServer{ServerURL: serverURL, Resource: d.Resource, Issuer: as.Issuer, AuthorizationServerSource: d.AuthorizationServerSource, Registration: c.registration,
			RegisteredAt: registeredAt, Scopes: scopes, TokenEndpointAuthMethod: c.authMethod, SigningAlgorithm: c.signingAlgorithm},
		Resolved: provider.Metadata{
			Issuer: as.Issuer, AuthorizationEndpoint: as.AuthorizationEndpoint, TokenEndpoint: as.TokenEndpoint,
			RevocationEndpoint: as.RevocationEndpoint, GrantTypesSupported: as.GrantTypesSupported,
			TokenEndpointAuthMethodsSupported: as.TokenEndpointAuthMethodsSupported, CodeChallengeMethodsSupported: as.CodeChallengeMethodsSupported,
			ResponseTypesSupported:                     []string{"code"},
			AuthorizationResponseIssParameterSupported: as.AuthorizationResponseIssParameterSupported,
			ScopesSupported:                            as.ScopesSupported,
		},
	}
}

func (s *Service) mcpOutput(p storage.OAuth2Provider, cfg provider.OAuth2, reregistered bool) *behalfapi.McpServerCredentialProviderOutput {
	out := &behalfapi.McpServerCredentialProviderOutput{
		Name:                  p.Name,
		CredentialProviderArn: s.cfg.ARNs.Resource(storage.Resource{Kind: storage.KindOAuth2Provider, Name: p.Name}),
		CallbackURL:           s.cfg.PublicURL + CallbackPath + p.ID,
		McpServer:             mcpServerOutput(cfg),
		ClientID:              cfg.ClientID,
		Reregistered:          reregistered,
	}
	if s.documentHostedElsewhere(p.ID, p.Name, cfg) {
		md := s.clientMetadata(p.ID, p.Name, "none")
		md.ClientID = cfg.ClientID
		out.ClientMetadataDocument, _ = json.Marshal(md) // strings and slices always marshal
	}
	return out
}

func mcpServerOutput(cfg provider.OAuth2) behalfapi.McpServer {
	m := cfg.MCP
	out := behalfapi.McpServer{ServerURL: m.ServerURL, Resource: m.Resource, Issuer: m.Issuer, AuthorizationServerSource: m.AuthorizationServerSource, Scopes: nonNil(m.Scopes),
		Registration: m.Registration, TokenEndpointAuthMethod: m.TokenEndpointAuthMethod, SigningAlgorithm: m.SigningAlgorithm, RegisteredTime: behalfapi.Time(time.Unix(m.RegisteredAt, 0).UTC()),
		IdentityProvider: m.IdentityProvider}
	if m.Registration == provider.RegistrationMetadataDocument {
		out.ClientMetadataDocumentURL = cfg.ClientID
	}
	if out.AuthorizationServerSource == "" {
		out.AuthorizationServerSource = mcpauth.SourceResourceMetadata
	}
	return out
}
