package authserver

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
)

// revoke handles RFC 7009 revocation: a refresh token revokes its whole
// family; an access token's id is recorded until it expires, so that
// introspection and the data plane refuse it. A token that is unknown,
// or another client's, is answered 200 all the same (RFC 7009 §2.2).
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, client, basic, ok := s.clientRequest(w, r, func(url.Values) storage.AuditRecord { return storage.AuditRecord{Operation: opRevoke} })
	if !ok {
		return
	}
	rec := storage.AuditRecord{Operation: opRevoke, Principal: principal(client.ID)}
	token := form.Get("token")
	if token == "" {
		oauthwire.WriteError(w, oauthwire.Errorf("invalid_request", "token is required"), basic, s.cfg.Issuer)
		return
	}
	rt, err := s.opts.Store.GetRefreshToken(ctx, oauthwire.Hash(token))
	switch {
	case err == nil && rt.ClientID == client.ID:
		rec.User, rec.Resource, rec.Scopes, rec.Flow = rt.User, rt.Resource, rt.Scopes, "refresh_token"
		if _, err := s.bind(ctx, rec).RevokeRefreshFamily(ctx, rt.Family); err != nil {
			oauthwire.WriteError(w, oauthwire.Errorf("server_error", "the token could not be revoked"), basic, s.cfg.Issuer)
			return
		}
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		oauthwire.WriteError(w, oauthwire.Errorf("server_error", "the token could not be revoked"), basic, s.cfg.Issuer)
		return
	case errors.Is(err, storage.ErrNotFound):
		c, err := s.parseAccessToken(ctx, token)
		if err != nil || c.ClientID != client.ID {
			break // unknown, expired (nothing to revoke) or another client's
		}
		rec.User, rec.Resource, rec.Scopes, rec.Flow = c.Subject, c.Audience, strings.Fields(c.Scope), "access_token"
		err = s.bind(ctx, rec).UseTokenID(ctx, revokedKey(c.ID), time.Unix(c.Expiry, 0).Add(time.Minute))
		if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			oauthwire.WriteError(w, oauthwire.Errorf("server_error", "the token could not be revoked"), basic, s.cfg.Issuer)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// introspect handles RFC 7662 introspection, for authenticated
// (confidential) clients, of their own tokens: any other token is
// reported inactive.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, client, basic, ok := s.clientRequest(w, r, nil)
	if !ok {
		return
	}
	if client.Public() {
		oauthwire.WriteError(w, oauthwire.Errorf("invalid_client", "introspection is for clients that authenticate"), basic, s.cfg.Issuer)
		return
	}
	token := form.Get("token")
	inactive := map[string]any{"active": false}
	if c, ok, err := s.active(ctx, token); err != nil {
		oauthwire.WriteError(w, oauthwire.Errorf("server_error", "the token could not be introspected"), basic, s.cfg.Issuer)
		return
	} else if ok {
		if c.ClientID != client.ID {
			oauthwire.WriteJSON(w, http.StatusOK, inactive)
			return
		}
		oauthwire.WriteJSON(w, http.StatusOK, map[string]any{"active": true, "scope": c.Scope, "client_id": c.ClientID, "sub": c.Subject,
			"aud": c.Audience, "exp": c.Expiry, "iat": c.IssuedAt, "iss": c.Issuer, "jti": c.ID, "token_type": "Bearer"})
		return
	}
	rt, err := s.opts.Store.GetRefreshToken(ctx, oauthwire.Hash(token))
	if err != nil || rt.ClientID != client.ID || !rt.RotatedAt.IsZero() || !s.now().Before(rt.ExpiresAt) {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			oauthwire.WriteError(w, oauthwire.Errorf("server_error", "the token could not be introspected"), basic, s.cfg.Issuer)
			return
		}
		oauthwire.WriteJSON(w, http.StatusOK, inactive)
		return
	}
	oauthwire.WriteJSON(w, http.StatusOK, map[string]any{"active": true, "scope": strings.Join(rt.Scopes, " "), "client_id": rt.ClientID,
		"sub": rt.User, "aud": rt.Resource, "exp": rt.ExpiresAt.Unix(), "iat": rt.CreatedAt.Unix(), "iss": s.cfg.Issuer, "token_type": "refresh_token"})
}
