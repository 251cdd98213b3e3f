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

	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/devcollector"
)

func newDevCollectorCommand() *cobra.Command {
	var listen string
	var quiet time.Duration
	cmd := &cobra.Command{
		Use:   "dev-collector",
		Short: "Run a development-only OpenTelemetry collector on loopback that prints traces as trees",
		Long: `Run a DEVELOPMENT-ONLY OpenTelemetry collector: it receives OTLP over HTTP (protobuf,
optionally gzipped) at /v1/traces, /v1/logs and /v1/metrics, prints each trace as an
indented tree of spans (name, kind, duration, status, key attributes) once no span of it has
arrived for --quiet, and each log record on one line. Metrics are only counted: read them at
/metrics. Nothing is kept. It listens on loopback only.`,
		Example: `  behalf dev-collector
  behalf dev-collector --listen 127.0.0.1:14318`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quiet < 100*time.Millisecond {
				return errors.New("--quiet must be at least 100ms")
			}
			return runDevCollector(cmd, listen, quiet)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:4318", "address to listen on: 127.0.0.1, [::1] or localhost, with a port")
	cmd.Flags().DurationVar(&quiet, "quiet", devcollector.DefaultQuiet, "print a trace once no span of it has arrived for this long; longer than the exporters' batch delay (OTEL_BSP_SCHEDULE_DELAY, 5s)")
	return cmd
}

func runDevCollector(cmd *cobra.Command, listen string, quiet time.Duration) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, endpoint, err := listenLoopback(ctx, listen, "the dev collector prints what it receives")
	if err != nil {
		return err
	}
	defer func() { _ = ln.Close() }() // already closed once Serve has run
	if _, err := fmt.Fprintf(cmd.OutOrStdout(), devCollectorBanner, endpoint, endpoint); err != nil {
		return err
	}

	c := devcollector.New(cmd.OutOrStdout(), devcollector.Options{Quiet: quiet})
	flushed := make(chan struct{})
	stopFlushing := make(chan struct{})
	go func() { c.Run(stopFlushing); close(flushed) }()
	defer func() { close(stopFlushing); <-flushed }() // print what is left

	hs := &http.Server{
		Handler:           c,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.NewTextHandler(cmd.ErrOrStderr(), nil), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

const devCollectorBanner = `behalf dev-collector: a DEVELOPMENT-ONLY OpenTelemetry collector. It prints each trace as a
tree and each log record on one line, and keeps nothing.

  OTLP/HTTP endpoint:  %s   (traces, logs and metrics; http/protobuf)

Point behalf at it in its configuration file (behalf serve --config FILE):

  telemetry:
    otlp:
      endpoint: %s
    traces:
      enabled: true
    logs:
      otlp: true

Stop with Ctrl-C.

`

// listenLoopback listens on listen, which must name 127.0.0.1, [::1] or
// localhost — the names behalf accepts for plain-http discovery URLs —
// for the reason why gives, and returns the listener and its http URL.
func listenLoopback(ctx context.Context, listen, why string) (net.Listener, string, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, "", fmt.Errorf("--listen %q: %w", listen, err)
	}
	if host != "127.0.0.1" && host != "::1" && host != "localhost" {
		return nil, "", fmt.Errorf("--listen %q: %s, so it listens only on 127.0.0.1, [::1] or localhost", listen, why)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", listen)
	if err != nil {
		return nil, "", err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, "http://" + net.JoinHostPort(host, port), nil
}
