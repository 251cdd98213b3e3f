package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/logging"
)

func newGatewayCommand(cf *clientFlags) *cobra.Command {
	var configPath string
	var check bool
	cmd := &cobra.Command{
		Use:   "gateway --config FILE",
		Short: "Run behalf gateway: users' identities into agents, credentials into tools",
		Long: `Run behalf gateway, a reverse proxy configured by a YAML file (see
examples/gateway.yaml). In front of an agent it accepts a user's bearer JWT
and delivers the request with a workload access token for that user, as
AgentCore Runtime does, or, from an agent the route names among its
callers, that agent's own workload access token, and delivers a token for
the same user naming the chain of agents; in front of a tool it takes the
caller's workload access token and injects the route's credential, as
AgentCore Gateway does.

It calls the behalf server at the file's endpoint, signing as a principal
with the credentials the CLI uses (flags, AWS_* variables, or a
shared-credentials file). Create that principal with, for example:

  behalf principal create --role runtime --workload my-agent \
    --operation GetWorkloadAccessTokenForJWT \
    --operation GetResourceApiKey --operation GetResourceOauth2Token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return errors.New("--config is required")
			}
			f, err := config.LoadGateway(configPath)
			if err != nil {
				return err
			}
			cfg, err := f.Validate()
			if err != nil {
				return err
			}
			if check {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "configuration is valid\n  listen:   %s\n  endpoint: %s\n  routes:   %d\n", cfg.Listen, cfg.Endpoint, len(cfg.Routes))
				return err
			}
			creds, err := cf.credentials()
			if err != nil {
				return err
			}
			return runGateway(cmd.Context(), cmd, cfg, creds)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the gateway's YAML configuration file")
	cmd.Flags().BoolVar(&check, "check-config", false, "validate the configuration and exit")
	return cmd
}

// runGateway serves the gateway until an interrupt or SIGTERM.
func runGateway(ctx context.Context, cmd *cobra.Command, cfg config.Gateway, creds aws.Credentials) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	data := bedrockagentcore.NewFromConfig(aws.Config{Region: cfg.Region, Credentials: credentials.StaticCredentialsProvider{Value: creds}},
		func(o *bedrockagentcore.Options) { o.BaseEndpoint = aws.String(cfg.Endpoint) })
	g, err := gateway.New(cfg, gateway.Options{Data: data, Log: log})
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.LogAttrs(ctx, slog.LevelInfo, "behalf gateway is serving", slog.String(logging.KeyListen, ln.Addr().String()),
		slog.String(logging.KeyEndpoint, cfg.Endpoint), slog.Int(logging.KeyCount, len(cfg.Routes)))
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		err = hs.Shutdown(sctx)
		cancel()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
