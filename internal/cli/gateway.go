package cli

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
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
	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/server"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wire"
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
				if _, err := cfg.UserHashKey(); err != nil {
					return err
				}
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

// runGateway serves the gateway until an interrupt or SIGTERM, with its
// own telemetry (the server's telemetry section, without audit export).
func runGateway(ctx context.Context, cmd *cobra.Command, cfg config.Gateway, creds aws.Credentials) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The collector is dialled under the gateway's egress policy, by a
	// client that is not instrumented: exports make no spans.
	tel, err := telemetry.New(ctx, cfg.Telemetry.Config, telemetry.Options{Version: server.Version(),
		HTTPClient: egress.NewClient(egress.Options{Policy: cfg.Egress, Timeout: cfg.Telemetry.OTLP.Timeout})})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(sctx))
	}()
	log := tel.Logger(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)), wire.LogAttrs)
	g, err := newStandaloneGateway(cfg, creds, tel, log)
	if err != nil {
		return err
	}
	return serveGateway(ctx, cfg, tel, g.Handler(), log)
}

// newStandaloneGateway builds the gateway over the official data-plane
// client, signing with creds. When traced, its data-plane calls carry the
// call's trace context, so that behalf's spans join the caller's trace.
func newStandaloneGateway(cfg config.Gateway, creds aws.Credentials, tel *telemetry.Telemetry, log *slog.Logger) (*gateway.Gateway, error) {
	key, err := cfg.UserHashKey()
	if err != nil {
		return nil, err
	}
	awsConfig := aws.Config{Region: cfg.Region, Credentials: credentials.StaticCredentialsProvider{Value: creds}}
	opts := gateway.Options{Log: log, Metrics: tel.Metrics, Users: telemetry.NewUserHasher(key), StateKey: stateKey(key)}
	if cfg.Telemetry.Traces {
		opts.Telemetry = tel
		awsConfig.HTTPClient = &http.Client{Transport: egress.Traced(http.DefaultTransport.(*http.Transport).Clone(), tel.Propagator)}
	}
	opts.Data = bedrockagentcore.NewFromConfig(awsConfig, func(o *bedrockagentcore.Options) { o.BaseEndpoint = aws.String(cfg.Endpoint) })
	return gateway.New(cfg, opts)
}

// serveGateway serves h on the gateway's listener, and Prometheus metrics
// on theirs or, without one, at /metrics beside the routes, until ctx
// ends.
func serveGateway(ctx context.Context, cfg config.Gateway, tel *telemetry.Telemetry, h http.Handler, log *slog.Logger) error {
	if tel.Prometheus != nil && cfg.Telemetry.MetricsListen == "" {
		// Whoever reaches the gateway reaches /metrics (docs/observability.md).
		mux := http.NewServeMux()
		mux.Handle("GET "+telemetry.MetricsPath, tel.Prometheus)
		mux.Handle("/", h)
		h = mux
	}
	metrics, metricsLn, err := tel.ListenMetrics(ctx, cfg.Telemetry.MetricsListen, log)
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return errors.Join(err, closeServer(metrics))
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if metrics != nil {
		go telemetry.ServeMetrics(ctx, metrics, metricsLn, log)
	}
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
	return errors.Join(err, closeServer(metrics))
}

// closeServer closes hs, if any.
func closeServer(hs *http.Server) error {
	if hs == nil {
		return nil
	}
	return hs.Close()
}

// stateKey is the key that signs the gateway's requestStates, derived
// from the user hash key (RFC 2104 HMAC as a PRF, under a label of its
// own), so that replicas sharing the one share the other; none without
// it.
func stateKey(userHashKey []byte) []byte {
	if userHashKey == nil {
		return nil
	}
	h := hmac.New(sha256.New, userHashKey)
	h.Write([]byte("behalf gateway request state"))
	return h.Sum(nil)
}
