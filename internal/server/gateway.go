package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"

	"github.com/behalf-dev/behalf/internal/gateway"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// newGateway builds the mounted gateway: the official data-plane client,
// signed as the configured principal, calling this server's handler in
// memory, so that its calls are authenticated, limited and audited as
// any principal's are. Callers signing with SigV4 are verified by this
// server's GetWorkloadAccessTokenForSignedCaller, as for a standalone
// gateway.
func (s *Server) newGateway(principals *principalCache, users telemetry.UserHasher, stateKey []byte) (*gateway.Gateway, error) {
	cfg := *s.cfg.Gateway
	creds := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		p, err := principals.get(ctx, cfg.Principal)
		if err != nil {
			return aws.Credentials{}, fmt.Errorf("gateway principal %s: %w", cfg.Principal, err)
		}
		return aws.Credentials{AccessKeyID: cfg.Principal, SecretAccessKey: p.secret, Source: "behalf principal"}, nil
	})
	data := bedrockagentcore.NewFromConfig(aws.Config{Region: cfg.Region, Credentials: creds, RetryMaxAttempts: 1,
		HTTPClient: gateway.HandlerTransport(s.handler)},
		func(o *bedrockagentcore.Options) {
			o.BaseEndpoint, o.HTTPSignerV4 = aws.String(cfg.Endpoint), clockSigner{v4.NewSigner(), s.now}
		})
	opts := gateway.Options{Data: data, Log: s.log, Users: users, Metrics: s.tel.Metrics, Now: s.now, StateKey: stateKey}
	if s.cfg.Telemetry.Traces {
		opts.Telemetry = s.tel
	}
	return gateway.New(cfg, opts)
}

// clockSigner signs at the server's clock, which its signature check
// reads.
type clockSigner struct {
	signer *v4.Signer
	now    func() time.Time
}

func (c clockSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	_ time.Time, optFns ...func(*v4.SignerOptions)) error {
	return c.signer.SignHTTP(ctx, creds, r, payloadHash, service, region, c.now(), optFns...)
}

// serveGateway serves the mounted gateway, if any, until ctx ends; the
// returned function waits for it to stop.
func (s *Server) serveGateway(ctx context.Context) (wait func() error, err error) {
	if s.gateway == nil {
		return func() error { return nil }, nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Gateway.Listen)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	hs := &http.Server{Handler: s.gateway.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.LogAttrs(ctx, slog.LevelInfo, "behalf gateway is serving", slog.String(logging.KeyListen, ln.Addr().String()))
	return func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		err := hs.Shutdown(sctx)
		if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
		return err
	}, nil
}
