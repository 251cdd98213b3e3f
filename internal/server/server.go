// Package server assembles behalf: it opens storage and the vault,
// bootstraps the first admin principal, mounts the API planes and the
// health routes, and runs the HTTP server and background work until its
// context ends.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/authserver"
	"github.com/behalf-dev/behalf/internal/authserver/idjag"
	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/console"
	"github.com/behalf-dev/behalf/internal/control"
	"github.com/behalf-dev/behalf/internal/dataplane"
	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/dataplane/federation"
	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/portal"
	"github.com/behalf-dev/behalf/internal/secretsource"
	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/vault/pkcs11"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
	"github.com/behalf-dev/behalf/internal/workloadjwt"
)

// Server is one behalf process.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	store   storage.Storage
	keyring *vault.LocalKeyring
	keys    *vault.Keys
	// heldKeys are the cached signers of keys' asymmetric keys, which
	// PRIVATE_KEY_JWT providers sign their client assertions with.
	heldKeys *signingkeys.Held
	// token is the PKCS#11 token among s.keys; nil when none is configured.
	token   *pkcs11.Backend
	vault   *vault.Vault
	control *control.Service
	data    *dataplane.DataPlane
	tokens  *wat.Issuer
	// clientKeys sign the client assertions of behalf's confidential MCP
	// clients (control.NewClientKeys).
	clientKeys *signingkeys.Set
	users      *inbound.Set
	audit      *audit.Log
	router     *wire.Router
	authn      apiAuthenticator // the API's, which also verifies the gateway's signed callers
	// limit is the rate limit per principal; nil when there is none.
	limit   *principalLimit
	handler http.Handler
	certs   *certReloader
	tel     *telemetry.Telemetry
	// auditExport sends committed audit records and anchors out; nil
	// when off.
	auditExport *auditExport

	rewrapNow chan struct{}
	// now is the one clock every part of the server reads.
	now func() time.Time
	// freeSpace reports the bytes free on a directory's file system.
	freeSpace func(dir string) (uint64, error)
	// auditKey is the audit chain's key, for retention.
	auditKey []byte
	// gateway is the mounted `behalf gateway`; nil when not configured.
	gateway *gateway.Gateway
	// authServer is the OAuth authorization server for MCP clients; nil
	// when not configured.
	authServer *authserver.Server
	// assertions redeems ID-JAGs at the authorization server; nil when
	// it trusts no enterprise IdP.
	assertions *idjag.Verifier
	// secrets reads providers' secrets kept outside behalf.
	secrets *secretsource.Resolver
	// portals serves consent portals' pages; portalKeys verifies their
	// users' ID tokens.
	portals *portal.Server
	// console serves the admin console; nil when it is off.
	console *console.Server
	// lastAnchor is the audit chain head this replica last published;
	// nil before the first.
	lastAnchor atomic.Pointer[console.Anchor]
	portalKeys *inbound.Set

	// workloadJWTs signs behalf's own workload JWTs (GetWorkloadJWT) and
	// publishes their keys.
	workloadJWTs *workloadjwt.Issuer
}

// Options tune a server beyond its configuration, chiefly for tests.
type Options struct {
	// Getenv reads the bootstrap credentials; nil means os.Getenv.
	Getenv func(string) string
	// PrincipalCacheTTL bounds how long another replica's principal
	// changes take to be seen; zero means 5s.
	PrincipalCacheTTL time.Duration
	// CertificateCheckInterval is how often, at most, the TLS certificate
	// files are checked for a change; zero means 5s.
	CertificateCheckInterval time.Duration
	// KeyBackends are key-management backends added to the configured
	// ones: a test's PKCS#11 token, until configuration opens one.
	KeyBackends []vault.Backend
	// Now is the clock of everything the server decides by time: stored
	// timestamps and leases, token expiry, signature skew, caches, rate
	// limits and periodic clean-up; nil means time.Now. Tickers and
	// timeouts still run in real time.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.PrincipalCacheTTL == 0 {
		o.PrincipalCacheTTL = 5 * time.Second
	}
	if o.CertificateCheckInterval == 0 {
		o.CertificateCheckInterval = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// New opens everything the server needs. Call Close when done.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (_ *Server, err error) {
	opts.setDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	s := &Server{cfg: cfg, rewrapNow: make(chan struct{}, 1), now: opts.Now}
	// The collector is dialled under the same egress policy as providers,
	// by a client that is not instrumented: exports make no spans.
	if s.tel, err = telemetry.New(ctx, cfg.Telemetry.Config, telemetry.Options{
		Version:    Version(),
		HTTPClient: egress.NewClient(egress.Options{Policy: cfg.Egress, Timeout: cfg.Telemetry.OTLP.Timeout}),
	}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.tel.Shutdown(context.WithoutCancel(ctx)))
		}
	}()
	log = s.serverLog(log)
	s.log = log
	if s.certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, opts.CertificateCheckInterval, opts.Now, log); err != nil {
		return nil, err
	}
	outbound := egress.NewClient(egress.Options{Policy: cfg.Egress, Timeout: cfg.OutboundTimeout, Log: log, Metrics: s.tel.Metrics})
	store, err := sqlstore.Open(ctx, cfg.Storage, log, sqlstore.PostgresMaxOpenConns(cfg.StorageMaxOpenConns), sqlstore.Now(opts.Now))
	if err != nil {
		return nil, redactDSNError(cfg.Storage, fmt.Errorf("open storage %s: %w", RedactDSN(cfg.Storage), err))
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, store.Close(), s.closeToken())
		}
	}()
	s.store = store
	if err := s.openSecrets(ctx, opts.KeyBackends, outbound); err != nil {
		return nil, err
	}

	if err := s.openSigningKeys(ctx, opts.Now); err != nil {
		return nil, err
	}
	auditKey, userKey, err := s.serverKeys(ctx)
	if err != nil {
		return nil, err
	}
	if s.auditExport, err = newAuditExport(s.tel, cfg.Telemetry.AuditFile, log); err != nil {
		return nil, err
	}
	s.audit, s.auditKey = audit.New(s.store, auditKey, audit.Options{Now: opts.Now, Metrics: s.tel.Metrics, Export: s.auditExport.hook()}), auditKey
	defer func() {
		if err != nil {
			err = errors.Join(err, s.audit.Close(), s.auditExport.close())
		}
	}()
	if err := s.tel.Metrics.Gauge("behalf.audit.queue.depth", "{record}", "Audit records waiting for the writer.", s.audit.QueueDepth); err != nil {
		return nil, fmt.Errorf("audit queue gauge: %w", err)
	}
	users, err := s.openUsers(ctx, outbound)
	if err != nil {
		return nil, err
	}

	principals := newPrincipalCache(s.store, s.vault, opts.PrincipalCacheTTL, opts.Now, s.tel.Metrics)
	s.limit = newPrincipalLimit(cfg.RequestsPerSecond, cfg.RequestBurst, opts.Now, s.tel.Metrics)
	s.authn = throttle(newAuthenticator(cfg.Region, principals, opts.Now), s.limit)
	s.assemblePlanes(principals, auditKey, users, outbound)

	if err := s.bootstrapAndMount(ctx, opts.Getenv, principals, telemetry.NewUserHasher(userKey), outbound); err != nil {
		return nil, err
	}
	return s, nil
}

// bootstrapAndMount creates the first admin when there is none, builds
// the consent portals' pages, mounts the API and, when configured, builds
// the gateway that calls it in memory.
func (s *Server) bootstrapAndMount(ctx context.Context, getenv func(string) string, principals *principalCache, users telemetry.UserHasher, outbound *http.Client) (err error) {
	if err := s.bootstrapAdmin(ctx, getenv); err != nil {
		return err
	}
	if err := s.openPortals(ctx, outbound); err != nil {
		return err
	}
	if err := s.openConsole(ctx); err != nil {
		return err
	}
	s.handler = s.mount(users)
	if s.cfg.Gateway == nil {
		return nil
	}
	stateKey, err := serverKey(ctx, s.store, s.vault, gatewayStateKeyPurpose)
	if err != nil {
		return fmt.Errorf("gateway state key: %w", err)
	}
	s.gateway, err = s.newGateway(principals, users, stateKey)
	return err
}

// openSigningKeys loads (or makes) the rotating keys that encrypt
// workload access tokens and sign behalf's MCP clients' assertions and
// workload JWTs.
func (s *Server) openSigningKeys(ctx context.Context, now func() time.Time) error {
	var err error
	if s.tokens, err = wat.NewIssuer(ctx, s.store, s.vault, wat.Options{TTL: s.cfg.WATTTL, RotationPeriod: s.cfg.WATKeyRotation, Now: now, Metrics: s.tel.Metrics}); err != nil {
		return err
	}
	s.clientKeys = control.NewClientKeys(s.store, s.vault, now)
	arns := control.ARNs{Region: s.cfg.Region, AccountID: s.cfg.AccountID}
	s.workloadJWTs = workloadjwt.New(workloadjwt.Options{Store: s.store, Vault: s.vault, PublicURL: s.cfg.PublicURL, Subject: arns.Workload, Now: now})
	return errors.Join(s.clientKeys.Rotate(ctx), s.workloadJWTs.Rotate(ctx))
}

// openSecrets opens where providers' secrets are kept: the vault, and the
// sources of those kept outside behalf.
func (s *Server) openSecrets(ctx context.Context, keyBackends []vault.Backend, outbound *http.Client) error {
	if err := s.openVault(ctx, keyBackends); err != nil {
		return err
	}
	var err error
	s.secrets, err = s.openExternalSecrets(ctx, outbound)
	return err
}

// openExternalSecrets builds the reader of providers' EXTERNAL secrets
// from the sources configured; Secrets Manager is called through egress.
func (s *Server) openExternalSecrets(ctx context.Context, outbound *http.Client) (*secretsource.Resolver, error) {
	es := s.cfg.ExternalSecrets
	o := secretsource.Options{TTL: es.CacheTTL, Timeout: s.cfg.OutboundTimeout, Now: s.now, Metrics: s.tel.Metrics}
	if sm := es.SecretsManager; sm != nil {
		src, err := secretsource.NewSecretsManager(ctx, secretsource.SecretsManagerOptions{Region: sm.Region, Endpoint: sm.Endpoint, HTTP: outbound})
		if err != nil {
			return nil, err
		}
		o.SecretsManager = src
	}
	if len(es.Directories) > 0 {
		files, err := secretsource.NewFiles(es.Directories)
		if err != nil {
			return nil, err
		}
		o.Files = files
	}
	return secretsource.New(o), nil
}

// heldKeyTTL is how long a backend's signing key, with its public half, is
// cached: a key's JWK set is served, and its assertions signed, without
// asking the backend each time.
const heldKeyTTL = 5 * time.Minute

// openVault opens the keyring and the token vault under its current key,
// and routes key ids to it and the extra backends.
func (s *Server) openVault(ctx context.Context, extra []vault.Backend) error {
	var err error
	if s.keyring, err = openKeyring(ctx, s.cfg.Keyring, s.store); err != nil {
		return err
	}
	tv, err := control.EnsureTokenVault(ctx, s.store, s.keyring.ServiceKeyID())
	if err != nil {
		return fmt.Errorf("token vault: %w", err)
	}
	others, err := s.keyBackends(ctx)
	if err != nil {
		return err
	}
	s.keys = vault.NewKeys(append(append([]vault.Backend{s.keyring}, others...), extra...)...)
	s.heldKeys = signingkeys.NewHeld(s.keys, heldKeyTTL, s.now)
	if s.vault, err = vault.New(ctx, s.keys, s.keyring.ServiceKeyID()); err != nil {
		return fmt.Errorf("service key: %w", err)
	}
	s.vault.Metrics = s.tel.Metrics
	// behalf's own secrets are under the service key, so the server starts
	// even when the token vault's key cannot be used (or was deleted: then
	// ResetTokenVaultKeyMaterial starts the vault afresh).
	if err := s.vault.SetCurrent(ctx, tv.KeyID); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "the token vault's key cannot be used: its secrets neither open nor can be sealed until it can",
			slog.String(logging.KeyKeyID, tv.KeyID), logging.Err(err))
	}
	return nil
}

// openUsers builds the inbound JWT authorizers, and the authorization
// server when configured, whose own tokens it then verifies too; nil when
// no authorizer is configured.
func (s *Server) openUsers(ctx context.Context, outbound *http.Client) (access.UserVerifier, error) {
	if len(s.cfg.InboundAuthorizers) == 0 {
		return nil, nil
	}
	var err error
	if s.users, err = inbound.NewSet(s.cfg.InboundAuthorizers, inbound.Options{HTTPClient: outbound, Now: s.now, Metrics: s.tel.Metrics}); err != nil {
		return nil, err
	}
	return s.openAuthServer(ctx, s.users, outbound)
}

// assemblePlanes builds the data plane and the control plane.
func (s *Server) assemblePlanes(principals *principalCache, auditKey []byte, users access.UserVerifier, outbound *http.Client) {
	cfg := s.cfg
	arns := control.ARNs{Region: cfg.Region, AccountID: cfg.AccountID}
	authorizerNames := make([]string, len(cfg.InboundAuthorizers))
	for i, a := range cfg.InboundAuthorizers {
		authorizerNames[i] = a.Name
	}
	if s.authServer != nil {
		authorizerNames = append(authorizerNames, authserver.AuthorizerName)
	}
	s.data = dataplane.New(dataplane.Deps{
		Store: s.store, Vault: s.vault, Secrets: s.secrets, Tokens: s.tokens, Users: users, ClientKeys: s.clientKeys, WorkloadJWTs: s.workloadJWTs, HeldKeys: s.heldKeys,
		OAuth:     &oauthclient.Client{HTTP: outbound, UserAgent: "behalf (+https://github.com/behalf-dev/behalf)", Now: s.now},
		Principal: principals.principal,
		Now:       s.now,
		Audit:     s.audit,
		Log:       s.log,
		Federation: federation.Options{
			SessionTTL: cfg.SessionTTL, CallbackBase: cfg.PublicURL + control.CallbackPath,
			CallbackPattern: control.CallbackPath + "{provider}", Development: cfg.Development,
			NewSessionsPerUser: cfg.NewSessionsPerUser, NewSessionsPerPrincipal: cfg.NewSessionsPerPrincipal,
		},
		Metrics:       s.tel.Metrics,
		SignedCallers: s.authn,
	})
	s.control = control.New(control.Deps{
		Store: s.store, Vault: s.vault, Keyring: s.keyring, Keys: s.keys, HeldKeys: s.heldKeys, Secrets: s.secrets,
		HTTP:             outbound,
		Rewrap:           s.requestRewrap,
		PrincipalChanged: principals.invalidate,
		ResourceChanged:  s.data.Invalidate,
		Audit:            auditReader{store: s.store, key: auditKey},
		Connections:      s.data.Federation,
		ClientKeys:       s.clientKeys,
		KeySets:          s.keySets(),
		Now:              s.now,
	}, control.Config{ARNs: arns, PublicURL: cfg.PublicURL, InboundAuthorizers: authorizerNames})
}

// keySets are the rotating key sets GetKeyRotationStatus reports: the
// authorization server's when it is on, behalf's MCP clients', the
// workload access tokens' and the workload JWTs'.
func (s *Server) keySets() []control.KeySchedule {
	var sets []control.KeySchedule
	if s.authServer != nil {
		sets = append(sets, s.authServer.SigningKeys)
	}
	return append(sets, s.clientKeys.Status, s.tokens.Status, s.workloadJWTs.Status)
}

// mount builds the server's one mux: the API router registers the
// operations on it, and each package mounts its own routes. With tracing
// on, every request but a health probe gets a server span, continuing the
// caller's trace (W3C Trace Context), that the router names and describes.
func (s *Server) mount(users telemetry.UserHasher) http.Handler {
	mux := http.NewServeMux()
	if s.tel.Prometheus != nil && s.cfg.Telemetry.MetricsListen == "" {
		// Whoever reaches the API reaches /metrics (docs/observability.md).
		mux.Handle("GET /metrics", s.tel.Prometheus)
	}
	s.router = wire.NewRouter(mux, s.authn, authz.Authorizer{}, s.audit, s.log, wire.Telemetry{Metrics: s.tel.Metrics, Users: users})
	if s.limit != nil {
		s.router.LimitInvocations(s.limit)
	}
	s.control.Mount(s.router)
	s.control.MountPublic(mux)
	s.workloadJWTs.Mount(mux)
	s.data.Mount(s.router, mux)
	s.router.Unsupported(paymentsUnsupported, "/identities/CreatePaymentCredentialProvider", "/identities/GetPaymentCredentialProvider",
		"/identities/UpdatePaymentCredentialProvider", "/identities/DeletePaymentCredentialProvider",
		"/identities/ListPaymentCredentialProviders", "/identities/payment/token")
	s.mountHealth(mux)
	if s.authServer != nil {
		s.authServer.Mount(mux)
	}
	s.portals.Mount(mux)
	if s.console != nil {
		s.console.Mount(mux)
	}
	if !s.cfg.Telemetry.Traces {
		return mux
	}
	return s.tel.ServerSpans(mux, s.router.SpanName,
		func(r *http.Request) bool { return isHealthPath(r.URL.Path) || r.URL.Path == "/metrics" })
}

// Operations lists the API operations served.
func (s *Server) Operations() []string { return s.router.Operations() }

// ForgetConnections drops the data plane's cached copies of connections,
// as a change made through this server does; for tests that change
// connections in storage directly and mean it to be seen at once.
func (s *Server) ForgetConnections() { s.data.Federation.ForgetAll() }

// Store exposes the storage, for tests and tools that inspect it.
func (s *Server) Store() storage.Storage { return s.store }

// Close flushes the audit log and releases storage.
func (s *Server) Close() error {
	if s.users != nil {
		s.users.Close()
	}
	if s.assertions != nil {
		s.assertions.Close()
	}
	if s.portalKeys != nil {
		s.portalKeys.Close()
	}
	err := errors.Join(s.audit.Close(), s.auditExport.close(), s.store.Close(), s.closeToken())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, s.tel.Shutdown(ctx))
}

// Telemetry exposes the server's telemetry, for tests that flush it.
func (s *Server) Telemetry() *telemetry.Telemetry { return s.tel }

// Run serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (up to ShutdownTimeout), and
// stops background work. With a TLS certificate configured it serves
// HTTPS (TLS 1.2 or later) on ln.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	waitGateway, err := s.serveGateway(ctx)
	if err != nil {
		return err
	}
	metrics, metricsLn, err := s.listenMetrics(ctx)
	if err != nil {
		return errors.Join(err, waitGateway())
	}
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.background(bg)
	}()

	serve := func() error { return hs.Serve(ln) }
	if s.certs != nil {
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.GetCertificate}
		serve = func() error { return hs.ServeTLS(ln, "", "") }
	}
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	metricsDone := make(chan struct{})
	go func() {
		defer close(metricsDone)
		if metrics != nil {
			s.serveMetrics(ctx, metrics, metricsLn)
		}
	}()
	s.log.LogAttrs(ctx, slog.LevelInfo, "behalf is serving", slog.String(logging.KeyListen, ln.Addr().String()),
		slog.String(logging.KeyPublicURL, s.cfg.PublicURL), slog.String(logging.KeyStorage, RedactDSN(s.cfg.Storage)))

	select {
	case err = <-errc:
	case <-ctx.Done():
		s.log.LogAttrs(ctx, slog.LevelInfo, "shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		err = hs.Shutdown(sctx)
		cancel()
	}
	if metrics != nil {
		err = errors.Join(err, metrics.Close())
	}
	err = errors.Join(err, waitGateway())
	<-metricsDone
	stopBackground()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Version is behalf's module version as built, "(devel)" from a checkout.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "unknown"
}

// paymentsUnsupported answers the payment credential provider operations
// and GetResourcePaymentToken: their providers hold wallets of AgentCore
// Payments, an AWS service behalf cannot stand in for.
const paymentsUnsupported = "payment credential providers are not supported by behalf: they belong to AgentCore Payments " +
	"(payment connectors, managers and instruments), an AWS service with no self-hosted counterpart"
