// Package server assembles behalf: it opens storage and the vault,
// bootstraps the first admin principal, mounts the API planes and the
// health routes, and runs the HTTP server and background work until its
// context ends.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/control"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Server is one behalf process.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	store   storage.Storage
	keyring *vault.LocalKeyring
	vault   *vault.Vault
	control *control.Service
	router  *wire.Router
	handler http.Handler

	rewrapNow chan struct{}
}

// Options tune a server beyond its configuration, chiefly for tests.
type Options struct {
	// Getenv reads the bootstrap credentials; nil means os.Getenv.
	Getenv func(string) string
	// PrincipalCacheTTL bounds how long another replica's principal
	// changes take to be seen; zero means 5s.
	PrincipalCacheTTL time.Duration
}

// New opens everything the server needs. Call Close when done.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (s *Server, err error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.PrincipalCacheTTL == 0 {
		opts.PrincipalCacheTTL = 5 * time.Second
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	s = &Server{cfg: cfg, log: log, rewrapNow: make(chan struct{}, 1)}
	if s.keyring, err = vault.OpenLocalKeyring(cfg.Keyring); err != nil {
		return nil, err
	}
	store, err := sqlstore.Open(ctx, cfg.Storage, log)
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", RedactDSN(cfg.Storage), err)
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	s.store = store
	tv, err := control.EnsureTokenVault(ctx, s.store, s.keyring.ServiceKeyID())
	if err != nil {
		return nil, fmt.Errorf("token vault: %w", err)
	}
	if s.vault, err = vault.New(ctx, s.keyring, tv.KeyID); err != nil {
		return nil, fmt.Errorf("token vault key %s: %w", tv.KeyID, err)
	}

	principals := newPrincipalCache(s.store, s.vault, opts.PrincipalCacheTTL)
	arns := control.ARNs{Region: cfg.Region, AccountID: cfg.AccountID}
	s.control = control.New(control.Deps{
		Store: s.store, Vault: s.vault, Keyring: s.keyring,
		HTTP:             &http.Client{Timeout: 10 * time.Second},
		Rewrap:           s.requestRewrap,
		PrincipalChanged: principals.invalidate,
	}, control.Config{ARNs: arns, PublicURL: cfg.PublicURL})

	if err := s.bootstrapAdmin(ctx, opts.Getenv); err != nil {
		return nil, err
	}

	s.router = wire.NewRouter(newAuthenticator(cfg.Region, principals), authz.Authorizer{}, log)
	s.router.Handle(s.control.Operations()...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("/", s.router)
	s.handler = mux
	return s, nil
}

// Handler serves the whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// Operations lists the API operations served.
func (s *Server) Operations() []string { return s.router.Operations() }

// Store exposes the storage, for tests and tools that inspect it.
func (s *Server) Store() storage.Storage { return s.store }

// Close releases storage.
func (s *Server) Close() error { return s.store.Close() }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		writeStatus(w, http.StatusServiceUnavailable, "storage unavailable")
		return
	}
	writeStatus(w, http.StatusOK, "ready")
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"status": status})
}

// Run serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (up to ShutdownTimeout), and
// stops background work.
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
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.background(bg)
	}()

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("behalf is serving", "listen", ln.Addr().String(), "public_url", s.cfg.PublicURL, "storage", RedactDSN(s.cfg.Storage))

	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		s.log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		err = hs.Shutdown(sctx)
		cancel()
	}
	stopBackground()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
