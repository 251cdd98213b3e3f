// Package dextest runs Dex, a real OIDC provider and OAuth2 authorization
// server, inside the test process, so behalf's tests meet real signed JWTs,
// real discovery and JWKS, and a real token endpoint instead of hand-made
// fakes.
//
// It is a test-only package: Dex links every connector (LDAP, SAML, …), so
// only _test.go files and this package may import Dex; deps_test.go enforces
// it. The Dex version is pinned in go.mod because its server package is not
// a stable API.
//
// # Users and subjects
//
// Dex has two connectors here, and both yield the same upstream user
// (UserID, UserEmail, UserName: Dex's mock identity, which is hard-coded):
//
//   - PasswordConnectorID ("mockpw", type mockPassword) serves the password
//     grant for Username / Password. It is limited to the password and
//     refresh_token grants so that it never appears in the browser flow.
//   - CallbackConnectorID ("mock", type mockCallback) logs the user in with no
//     UI. It is the only connector the browser flow can use, so /auth selects
//     it without connector_id; passing connector_id=mock does the same. It is
//     also the connector token exchange verifies subject tokens with. Its
//     identity adds groups ["authors"].
//
// Dex's sub is not the upstream user ID: it is base64url(protobuf{user_id,
// connector_id}), so the same user has a different sub per connector
// (PasswordSubject, CallbackSubject). A client_credentials token has
// sub = Subject(clientID, "").
//
// Dex's own "local" password connector is not used: it deadlocks memory
// storage on the first refresh (see refreshSerializer). The mock connectors
// hit the same deadlock on the second refresh of a chain; Start avoids it
// with refreshSerializer.
package dextest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dexidp/dex/server"
	"github.com/dexidp/dex/server/authflow"
	dexoauth2 "github.com/dexidp/dex/server/oauth2"
	"github.com/dexidp/dex/server/signer"
	"github.com/dexidp/dex/server/tokens"
	"github.com/dexidp/dex/storage"
	"github.com/dexidp/dex/storage/memory"
)

// Connector IDs. They are part of every Dex subject.
const (
	PasswordConnectorID = "mockpw"
	CallbackConnectorID = "mock"
)

// Credentials accepted by the password grant (PasswordLogin).
const (
	Username = "kilgore"
	Password = "so-it-goes"
)

// The one upstream user both connectors return (Dex's connector/mock).
const (
	UserID    = "0-385-28089-0"
	UserEmail = "kilgore@kilgore.trout" // email_verified is true
	UserName  = "Kilgore Trout"         // the "name" claim, with scope profile
)

// The sub claim of the user's tokens, per connector: Subject(UserID, …).
const (
	PasswordSubject = "Cg0wLTM4NS0yODA4OS0wEgZtb2NrcHc" //nolint:gosec // G101: a subject, not a credential
	CallbackSubject = "Cg0wLTM4NS0yODA4OS0wEgRtb2Nr"
)

// Subject returns the sub Dex puts in tokens for userID logged in through
// connectorID. For client_credentials tokens, pass the client ID and "".
func Subject(userID, connectorID string) string {
	s, err := tokens.GenSubject(userID, connectorID)
	if err != nil {
		panic("dextest: " + err.Error()) // only for non-UTF-8 input
	}
	return s
}

// Token types for RFC 8693 token exchange (subject_token_type,
// requested_token_type, issued_token_type).
const (
	TokenTypeAccess = dexoauth2.TokenTypeAccess
	TokenTypeID     = dexoauth2.TokenTypeID
)

// GrantTypeTokenExchange is the RFC 8693 grant type, accepted when
// Options.TokenExchange is set.
const GrantTypeTokenExchange = dexoauth2.GrantTypeTokenExchange

// Client is an OAuth2 client registered at Dex. All clients are
// confidential and may use every enabled grant and both connectors.
type Client struct {
	ID, Secret string
	// RedirectURIs must contain, exactly, the redirect_uri of an
	// authorization request; Dex shows an error page otherwise.
	RedirectURIs []string
	// TrustedPeers are the clients that may put this client in their tokens'
	// aud, by requesting the scope "audience:server:client_id:" + ID. Such a
	// token has aud [ID, requester] and azp requester; others have
	// aud requester and no azp.
	TrustedPeers []string
}

// Options configure Start. The zero value gives a working server with no
// clients.
type Options struct {
	Clients []Client

	// RotateRefreshTokens makes every refresh return a new refresh token and
	// invalidates the one presented (after RefreshReuseInterval, if set).
	RotateRefreshTokens bool
	// RefreshReuseInterval is Dex's grace window, counted from a refresh
	// token's last use (its issue, at first). Inside it the token is not
	// rotated but returned again, and a rotated-out token still yields the
	// current one. Zero disables it: every refresh rotates, and an old token
	// fails at once.
	RefreshReuseInterval time.Duration

	// Now is Dex's clock (its tokens' dates, the refresh reuse window);
	// nil means time.Now.
	Now func() time.Time

	// TokenExchange enables the RFC 8693 grant type.
	TokenExchange bool

	// RequirePKCE makes /auth reject authorization requests without an S256
	// code_challenge (plain is then not accepted either). Without it Dex
	// accepts S256, plain, or no PKCE, but always checks a verifier against
	// a challenge that was sent.
	RequirePKCE bool

	// IDTokensValidFor is the lifetime of ID and access tokens (Dex uses the
	// same for both); zero means Dex's 24h. Dex has no separate access
	// token lifetime.
	IDTokensValidFor time.Duration

	// Logger receives Dex's logs; nil discards them. Dex logs why it rejects
	// a request there, while its responses carry only error_description.
	Logger *slog.Logger
}

// Dex is a running Dex server.
type Dex struct {
	URL          string // http://127.0.0.1:PORT
	Issuer       string // URL + "/dex", the iss of every token
	DiscoveryURL string // Issuer + "/.well-known/openid-configuration"
	AuthURL      string // Issuer + "/auth"
	TokenURL     string // Issuer + "/token"
	KeysURL      string // Issuer + "/keys", the JWKS

	dex   http.Handler
	store storage.Storage
	http  *http.Client // for the helpers; never follows redirects

	mu       sync.Mutex
	requests map[string]int // token endpoint POSTs by grant_type
	fault    func(http.ResponseWriter, *http.Request) bool
}

// Start runs Dex on 127.0.0.1:0 until t ends.
func Start(t testing.TB, opts Options) *Dex {
	t.Helper()
	// Cancelling ctx at cleanup stops Dex's key rotation and garbage
	// collection goroutines and ends requests still held by a fault, so that
	// closing the server never waits for a test's hanging handler.
	ctx, cancel := context.WithCancel(context.Background())

	d := &Dex{requests: map[string]int{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(d.serve))
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	t.Cleanup(func() {
		cancel()
		// Close waits for every handler to return; a Dex handler stuck on a
		// lock would otherwise hang the test binary until its -timeout.
		closed := make(chan struct{})
		go func() { srv.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Errorf("dextest: a request to Dex was still running 10s after the test ended")
		}
	})

	d.URL = "http://" + srv.Listener.Addr().String()
	d.Issuer = d.URL + "/dex"
	d.DiscoveryURL = d.Issuer + "/.well-known/openid-configuration"
	d.AuthURL = d.Issuer + "/auth"
	d.TokenURL = d.Issuer + "/token"
	d.KeysURL = d.Issuer + "/keys"
	d.http = &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d.store = serializeRefreshUpdates(memory.New(logger))

	for _, c := range opts.Clients {
		d.AddClient(t, c)
	}
	for _, c := range []storage.Connector{
		{
			ID: PasswordConnectorID, Type: "mockPassword", Name: "Password", ResourceVersion: "1",
			Config: []byte(`{"username":"` + Username + `","password":"` + Password + `"}`),
			// Kept out of the browser flow, where /auth would otherwise show
			// a connector chooser, since two connectors would be eligible.
			GrantTypes: []string{dexoauth2.GrantTypePassword, dexoauth2.GrantTypeRefreshToken},
		},
		{ID: CallbackConnectorID, Type: "mockCallback", Name: "Mock", ResourceVersion: "1"},
	} {
		if err := d.store.CreateConnector(ctx, c); err != nil {
			t.Fatalf("dextest: create connector %s: %v", c.ID, err)
		}
	}

	idTokensValidFor := opts.IDTokensValidFor
	if idTokensValidFor == 0 {
		idTokensValidFor = 24 * time.Hour
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	sig, err := (&signer.LocalConfig{KeysRotationPeriod: "6h"}).Open(ctx, d.store, idTokensValidFor, now, logger)
	if err != nil {
		t.Fatalf("dextest: signer: %v", err)
	}

	grants := []string{
		dexoauth2.GrantTypeAuthorizationCode,
		dexoauth2.GrantTypeRefreshToken,
		dexoauth2.GrantTypePassword,
		dexoauth2.GrantTypeClientCredentials,
	}
	if opts.TokenExchange {
		grants = append(grants, dexoauth2.GrantTypeTokenExchange)
	}
	var pkce authflow.PKCEConfig
	if opts.RequirePKCE {
		pkce = authflow.PKCEConfig{Enforce: true, CodeChallengeMethodsSupported: []string{dexoauth2.PKCEMethodS256}}
	}

	dex, err := server.NewServer(ctx, server.Config{
		Issuer:             d.Issuer,
		Storage:            d.store,
		Signer:             sig,
		Logger:             logger,
		SkipApprovalScreen: true, // no consent page: Authorize is browserless
		PasswordConnector:  PasswordConnectorID,
		AllowedGrantTypes:  grants,
		PKCE:               pkce,
		IDTokensValidFor:   idTokensValidFor,
		RefreshTokenPolicy: tokens.NewRefreshStrategy(opts.RotateRefreshTokens, 0, 0, opts.RefreshReuseInterval, now),
		Now:                now,
	})
	if err != nil {
		t.Fatalf("dextest: start Dex: %v", err)
	}
	d.dex = dex
	srv.Start()
	return d
}

// AddClient registers a client. It may be called while Dex runs, e.g. once
// the redirect URI of a behalf test server is known.
func (d *Dex) AddClient(t testing.TB, c Client) {
	t.Helper()
	err := d.store.CreateClient(context.Background(), storage.Client{
		ID: c.ID, Secret: c.Secret, Name: c.ID,
		RedirectURIs: slices.Clone(c.RedirectURIs), TrustedPeers: slices.Clone(c.TrustedPeers),
	})
	if err != nil {
		t.Fatalf("dextest: add client %q: %v", c.ID, err)
	}
}

// SetRedirectURIs replaces the redirect URIs of a registered client.
func (d *Dex) SetRedirectURIs(t testing.TB, clientID string, uris ...string) {
	t.Helper()
	err := d.store.UpdateClient(context.Background(), clientID, func(c storage.Client) (storage.Client, error) {
		c.RedirectURIs = slices.Clone(uris)
		return c, nil
	})
	if err != nil {
		t.Fatalf("dextest: set redirect URIs of %q: %v", clientID, err)
	}
}

// refreshSerializer runs Dex's refresh-token updaters outside memory
// storage's lock. Once a refresh token has been rotated its ConnectorData is
// empty, and Dex then reads the offline session from inside the
// UpdateRefreshToken updater; memory storage runs updaters holding its
// non-reentrant mutex, so the second refresh of a chain deadlocked the whole
// server (with any connector, "local" included). Here
// the read-modify-write is serialized by a mutex of its own, which every
// refresh-token update passes, and only the final write takes memory
// storage's lock.
type refreshSerializer struct {
	storage.Storage
	mu sync.Mutex
}

func serializeRefreshUpdates(s storage.Storage) storage.Storage {
	return &refreshSerializer{Storage: s}
}

func (s *refreshSerializer) UpdateRefreshToken(ctx context.Context, id string, updater func(storage.RefreshToken) (storage.RefreshToken, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.GetRefresh(ctx, id)
	if err != nil {
		return err
	}
	updated, err := updater(old)
	if err != nil {
		return err
	}
	return s.Storage.UpdateRefreshToken(ctx, id, func(storage.RefreshToken) (storage.RefreshToken, error) {
		return updated, nil
	})
}
