package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/server"
)

func newServeCommand() *cobra.Command {
	var configPath, listen, storage, publicURL, tlsCert, tlsKey string
	var check bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the behalf server",
		Long: `Run the behalf server. With no configuration it listens on 127.0.0.1:8787,
keeps its SQLite database and a generated local master key under ./behalf-data,
and writes a generated admin key pair to ./behalf-data/admin-credentials.

Settings come from, lowest precedence first: defaults, the YAML file given with
--config, BEHALF_* environment variables, then flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := config.Load(configPath, os.Getenv)
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			if flags.Changed("listen") {
				f.Listen = listen
			}
			if flags.Changed("storage") {
				f.Storage = storage
			}
			if flags.Changed("public-url") {
				f.PublicURL = publicURL
			}
			if flags.Changed("data-dir") {
				f.DataDir, _ = flags.GetString("data-dir")
			}
			if flags.Changed("tls-cert-file") {
				f.TLS.CertFile = tlsCert
			}
			if flags.Changed("tls-key-file") {
				f.TLS.KeyFile = tlsKey
			}
			cfg, err := f.Validate()
			if err != nil {
				return err
			}
			if check {
				tlsFiles := "off"
				if cfg.TLSCertFile != "" {
					tlsFiles = cfg.TLSCertFile + ", " + cfg.TLSKeyFile
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "configuration is valid\n  listen:     %s\n  public URL: %s\n  data dir:   %s\n  storage:    %s\n  keyring:    %s\n  tls:        %s\n",
					cfg.Listen, cfg.PublicURL, cfg.DataDir, server.RedactDSN(cfg.Storage), cfg.Keyring, tlsFiles)
				return err
			}
			return serve(cmd.Context(), cmd, cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configPath, "config", "", "YAML configuration file")
	fl.BoolVar(&check, "check-config", false, "validate the configuration and exit")
	fl.StringVar(&listen, "listen", "", "address to listen on (default 127.0.0.1:8787; env BEHALF_LISTEN)")
	fl.StringVar(&storage, "storage", "", "postgres:// URL or SQLite file (default <data-dir>/behalf.db; env BEHALF_STORAGE)")
	fl.StringVar(&publicURL, "public-url", "", "external base URL, for OAuth callback URLs (default http(s)://<listen>; env BEHALF_PUBLIC_URL)")
	fl.StringVar(&tlsCert, "tls-cert-file", "", "serve HTTPS with this PEM certificate chain, reloaded when it changes (env BEHALF_TLS_CERT_FILE)")
	fl.StringVar(&tlsKey, "tls-key-file", "", "the PEM private key for --tls-cert-file (env BEHALF_TLS_KEY_FILE)")
	return cmd
}

// serve runs the server until an interrupt or SIGTERM, then closes its
// storage, reporting a failure to close with any other error.
func serve(ctx context.Context, cmd *cobra.Command, cfg config.Config) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(cmd, cfg)
	srv, err := server.New(ctx, cfg, log, server.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return err
	}
	return srv.Run(ctx, ln)
}

func newLogger(cmd *cobra.Command, cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), opts))
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), opts))
}
