package federation

import (
	"context"
	"errors"
	"fmt"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/oauthvendor"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Revoke revokes a user's tokens at the provider when it offers
// revocation (RFC 7009 §2; the refresh token first, which revokes its
// access tokens too at most providers, §2.1), then deletes the
// connection. A provider that fails to revoke leaves the connection in
// place, so the revocation can be retried. revoked reports whether the
// provider confirmed revocation; false when it offers none. The deletion
// commits with c's audit record (Call.Change).
func (s *Service) Revoke(ctx context.Context, c *wire.Call, providerName string, conn storage.Connection) (revoked bool, err error) {
	return s.revoke(ctx, func() storage.Storage { return c.Change(s.Store) }, providerName, conn)
}

// revoke is Revoke, the deletion made through change's store.
func (s *Service) revoke(ctx context.Context, change func() storage.Storage, providerName string, conn storage.Connection) (revoked bool, err error) {
	// Revoked at the provider or not, the cached copy must not outlive the call.
	defer s.connections.forget(conn.ConnectionKey)
	p, err := s.Access.LoadOAuth2Provider(ctx, providerName)
	if err != nil {
		return false, fmt.Errorf("OAuth2 credential provider %s: %w", providerName, err)
	}
	if endpoint, _ := revocation(p); endpoint != "" {
		ts, err := s.openTokens(ctx, conn)
		if err != nil {
			return false, err
		}
		if revoked, err = s.revokeTokens(ctx, p, ts); err != nil {
			return false, err
		}
	}
	if err := change().DeleteConnection(ctx, conn.ConnectionKey); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return revoked, fmt.Errorf("delete connection: %w", err)
	}
	return revoked, nil
}

// revocation returns the provider's revocation endpoint ("" when it offers
// none) and how to call it.
func revocation(p access.OAuth2Provider) (string, oauthvendor.RevocationStyle) {
	endpoint, style := p.Config.Resolved.RevocationEndpoint, p.Config.VendorInfo().RevocationStyle
	if endpoint != "" && style == oauthvendor.RevocationNone {
		style = oauthvendor.RevocationRFC7009 // discovered for a custom or tenant provider
	}
	return endpoint, style
}

// revokeTokens revokes ts at the provider, the refresh token first;
// revoked is false when the provider offers no revocation.
func (s *Service) revokeTokens(ctx context.Context, p access.OAuth2Provider, ts tokenSet) (revoked bool, err error) {
	endpoint, style := revocation(p)
	if endpoint == "" {
		return false, nil
	}
	cred, err := s.Endpoint.Credential(ctx, p)
	if err != nil {
		return false, err
	}
	toRevoke := []struct{ token, hint string }{{ts.RefreshToken, "refresh_token"}, {ts.AccessToken, "access_token"}}
	if style != oauthvendor.RevocationRFC7009 {
		toRevoke = toRevoke[1:] // bearer and GitHub styles revoke the access token (grant)
	}
	for _, t := range toRevoke {
		if t.token == "" {
			continue
		}
		r := tokenflow.Revocation(p.Config, cred, endpoint, style, t.token, t.hint)
		if err := s.OAuth.Revoke(telemetry.WithOutbound(ctx, p.Name, telemetry.EndpointRevocation), r); err != nil {
			return false, tokenflow.UpstreamError(p.Name, err)
		}
	}
	return true, nil
}
