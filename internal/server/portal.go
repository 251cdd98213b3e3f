package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/portal"
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
		Gateway: s.cfg.Gateway, PublicURL: s.cfg.PublicURL, Key: key, Log: s.log, Now: s.now})
	return err
}
