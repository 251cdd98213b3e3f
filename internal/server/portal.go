package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/behalf-dev/behalf/internal/console"
	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/portal"
	"github.com/behalf-dev/behalf/internal/wire"
)

// openPortals builds the consent portals' pages, with a verifier of their
// users' ID tokens of its own: the issuers it learns come from stored
// credential providers, not from the configured inbound authorizers.
func (s *Server) openPortals(ctx context.Context, outbound *http.Client) error {
	key, err := serverKey(ctx, s.store, s.vault, portalKeyPurpose)
	if err != nil {
		return fmt.Errorf("consent portal key: %w", err)
	}
	if s.portalKeys, err = inbound.NewSet(nil, inbound.Options{HTTPClient: outbound, Now: s.now, Metrics: s.tel.Metrics}); err != nil {
		return err
	}
	s.portals, err = portal.New(portal.Options{Store: s.store, Federation: s.data.Federation, Signatures: s.portalKeys, Audit: s.audit,
		Gateway: s.cfg.Gateway, PublicURL: s.cfg.PublicURL, Key: key, SessionTTL: s.cfg.Portals.SessionTTL,
		ReauthenticateAfter: s.cfg.Portals.ReauthenticateAfter, Log: s.log, Now: s.now})
	return err
}

// openConsole builds the admin console when it is on, with a key of its
// own and the portals' verifier of ID tokens (both learn issuers from
// stored credential providers). Its API is the router, built later.
func (s *Server) openConsole(ctx context.Context) error {
	if s.cfg.Console == nil {
		return nil
	}
	key, err := serverKey(ctx, s.store, s.vault, consoleKeyPurpose)
	if err != nil {
		return fmt.Errorf("console key: %w", err)
	}
	metrics := ""
	if s.tel.Prometheus != nil && s.cfg.Telemetry.MetricsListen == "" {
		metrics = s.cfg.PublicURL + "/metrics"
	}
	api := console.InvokeFunc(func(ctx context.Context, in wire.Invocation) (json.RawMessage, error) {
		return s.router.Invoke(ctx, in)
	})
	var anchor func() (console.Anchor, bool)
	if s.cfg.Telemetry.AuditAnchorInterval > 0 {
		anchor = func() (console.Anchor, bool) {
			if a := s.lastAnchor.Load(); a != nil {
				return *a, true
			}
			return console.Anchor{}, false
		}
	}
	s.console, err = console.New(console.Options{Config: *s.cfg.Console, Store: s.store, IDPs: s.data.Federation, Signatures: s.portalKeys,
		API: api, Audit: s.audit, PublicURL: s.cfg.PublicURL, Key: key, Metrics: metrics, Gatherer: s.tel.Gatherer, Started: s.tel.Started,
		Gateway: s.cfg.Gateway, Anchor: anchor, Log: s.log, Now: s.now})
	return err
}
