package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wat"
	"github.com/behalf-dev/behalf/internal/wire"
)

// A consent portal (package portal) acts for the user signed in to it:
// it starts, completes and revokes that user's authorizations itself,
// each audited with the portal as the principal and the user as the
// user. These are its entry points; the checks are the API's.

// Provider loads an OAuth2 credential provider, uncached.
func (s *Service) Provider(ctx context.Context, name string) (access.OAuth2Provider, error) {
	p, err := s.Access.LoadOAuth2Provider(ctx, name)
	return p, wire.StorageError(err, "OAuth2 credential provider", name)
}

// Exchange sends form to p's token endpoint, its client authenticated as
// for every other token request.
func (s *Service) Exchange(ctx context.Context, p access.OAuth2Provider, form url.Values) (*oauthclient.Token, error) {
	return s.Endpoint.Request(ctx, p, form)
}

// PortalRequest is what a portal asks a provider for, for its user.
type PortalRequest struct {
	// Principal names the portal in the audit trail ("portal:<id>").
	Principal, Provider, Workload, User string
	Scopes                              []string
	// ReturnURL is the portal's completion route. It is behalf's own, set
	// by the server, so the workload's allowedResourceOauth2ReturnUrls,
	// which guard the URLs a caller chooses, do not apply.
	ReturnURL string
}

// StartForPortal starts (or reuses an open) USER_FEDERATION session for
// the portal's user and returns the provider's authorization URL. The
// workload's grant must allow the provider and scopes, and the new-session
// limits apply, per user and per portal.
func (s *Service) StartForPortal(ctx context.Context, in PortalRequest) (string, error) {
	tr := s.newTrail(ctx, storage.AuditRecord{Operation: "PortalConnect", Principal: in.Principal, RequestID: wire.RequestID(ctx),
		Workload: in.Workload, User: in.User, Provider: in.Provider, Scopes: in.Scopes})
	url, err := s.startForPortal(ctx, tr, in)
	if err != nil {
		tr.finish(ctx, wire.AsError(err).Type)
		return "", err
	}
	tr.finish(ctx, "")
	return url, nil
}

func (s *Service) startForPortal(ctx context.Context, tr *trail, in PortalRequest) (string, error) {
	p, err := s.Provider(ctx, in.Provider)
	if err != nil {
		return "", err
	}
	w, err := s.Access.Workload(ctx, in.Workload)
	if err != nil {
		return "", wire.StorageError(err, "workload identity", in.Workload)
	}
	if err := authz.CheckProviderGrant(w, p.Name, authz.GrantRequest{Scopes: in.Scopes}); err != nil {
		return "", err
	}
	if p.Config.Resolved.AuthorizationEndpoint == "" {
		return "", wire.Validation(fmt.Sprintf("credential provider %s has no authorization endpoint, so it cannot run USER_FEDERATION", p.Name))
	}
	v := access.Verified{Workload: w, Claims: wat.Claims{Workload: w.Name, User: in.User}}
	req := &tokenflow.Request{Scopes: in.Scopes, ReturnURL: &in.ReturnURL}
	// A reconnect asks an MCP server provider for what the user granted
	// too, as an agent's step-up does.
	switch conn, err := s.Store.GetConnection(ctx, storage.ConnectionKey{ProviderID: p.ID, Workload: w.Name, User: in.User}); {
	case err == nil && conn.Status == storage.ConnectionActive:
		req = stepUp(v, p, req, conn.Scopes)
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return "", fmt.Errorf("read connection: %w", err)
	}
	sess, authURL, err := s.newSession(ctx, v, p, req)
	if err != nil {
		return "", err
	}
	sess.RequestKey = requestKey(p, w, in.User, req)
	admit := func() error { return s.admitSession(ctx, w.Name, in.User, in.Principal, "portal") }
	// A new session is stored with tr's record.
	_, authURL, err = s.startOrReuse(ctx, tr.change(""), sess, authURL, admit)
	return authURL, err
}

// maxOpenSessions bounds the sessions PendingScopes reads.
const maxOpenSessions = 50

// PendingScopes are the scopes k's user has been asked to grant and has
// not yet: those of k's sessions still in progress, an agent's step-up
// (its request, or the union stepUp made) or a consent not finished.
func (s *Service) PendingScopes(ctx context.Context, k storage.ConnectionKey) ([]string, error) {
	open, err := s.Store.ListOpenOAuthSessions(ctx, k, s.Now(), maxOpenSessions)
	if err != nil {
		return nil, fmt.Errorf("list open sessions: %w", err)
	}
	var scopes []string
	for _, sess := range open {
		var req sessionRequest
		if json.Unmarshal(sess.Request, &req) != nil {
			continue // corrupt: its callback fails it
		}
		scopes = oauthwire.UnionScopes(scopes, req.Scopes)
	}
	return scopes, nil
}

// MissingScopes are the scopes of wanted that granted lacks, but
// offline_access, which asks for a refresh token and grants the access
// token nothing (many servers leave it out of a token response's scope).
func MissingScopes(granted, wanted []string) []string {
	var missing []string
	for _, sc := range wanted {
		if sc != provider.OfflineAccess && !slices.Contains(granted, sc) && !slices.Contains(missing, sc) {
			missing = append(missing, sc)
		}
	}
	return missing
}

// ErrNotPortalSession is CompleteForPortal's refusal of a session whose
// return URL is not the portal's.
var ErrNotPortalSession = errors.New("federation: the session does not return to this portal")

// CompleteForPortal binds an authorized session's tokens to user, the
// user signed in to the portal, as CompleteResourceTokenAuth does: a
// session started for another user is refused and ended, its tokens
// discarded. The session — the portal's own, or an agent's — must return
// to returnURL, the portal's completion route. It is audited as
// CompleteResourceTokenAuth by principal. It returns the provider's name.
func (s *Service) CompleteForPortal(ctx context.Context, principal, sessionID, returnURL, user string) (string, error) {
	id, _ := strings.CutPrefix(sessionID, SessionURIPrefix)
	sess, err := s.Store.GetOAuthSession(ctx, id)
	if err != nil {
		return "", wire.StorageError(err, "session", sessionID)
	}
	var req sessionRequest
	if err := json.Unmarshal(sess.Request, &req); err != nil {
		return "", fmt.Errorf("session %s: corrupt request: %w", sess.ID, err)
	}
	if req.ReturnURL != returnURL {
		return "", ErrNotPortalSession
	}
	provider := s.providerName(ctx, sess.ProviderID)
	tr := s.newTrail(ctx, storage.AuditRecord{Operation: "CompleteResourceTokenAuth", Principal: principal, RequestID: wire.RequestID(ctx),
		Workload: sess.Workload, User: user, Provider: provider})
	if err := s.bind(ctx, tr.changeFailing, sess, user); err != nil {
		tr.finish(ctx, wire.AsError(err).Type)
		return provider, err
	}
	tr.finish(ctx, "")
	return provider, nil
}

// RevokeForPortal is Revoke for the portal's user, audited as
// RevokeConnection by principal.
func (s *Service) RevokeForPortal(ctx context.Context, principal, providerName string, conn storage.Connection) (bool, error) {
	tr := s.newTrail(ctx, storage.AuditRecord{Operation: "RevokeConnection", Principal: principal, RequestID: wire.RequestID(ctx),
		Workload: conn.Workload, User: conn.User, Provider: providerName})
	revoked, err := s.revoke(ctx, func() storage.Storage { return tr.change("") }, providerName, conn)
	if err != nil {
		tr.finish(ctx, wire.AsError(err).Type)
		return false, err
	}
	tr.finish(ctx, "")
	return revoked, nil
}
