package authserver

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wat"
)

// tokenResponse is RFC 6749 §5.1's.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// issued is what a grant produced.
type issued struct {
	grant
	refresh string // the refresh token, when one is issued
}

// token handles the token endpoint (RFC 6749 §3.2).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, client, basic, ok := s.clientRequest(w, r, func(form url.Values) storage.AuditRecord {
		return storage.AuditRecord{Operation: opToken, Flow: form.Get("grant_type")}
	})
	if !ok {
		return
	}
	grantType := form.Get("grant_type")
	t := &trail{rec: storage.AuditRecord{Operation: opToken, Flow: grantType, Principal: principal(client.ID)}}
	var (
		out issued
		e   *oauthwire.Error
	)
	switch grantType {
	case config.GrantAuthorizationCode:
		out, e = s.redeemCode(ctx, client, form, t)
	case config.GrantRefreshToken:
		out, e = s.refresh(ctx, client, form, t)
	case config.GrantJWTBearer:
		out, e = s.assertion(ctx, client, form)
	default:
		e = oauthwire.Errorf("unsupported_grant_type", "grant_type must be authorization_code, refresh_token or %s", config.GrantJWTBearer)
	}
	if e != nil {
		if !t.committed {
			_ = s.record(ctx, t.rec, e.AuditType())
		}
		oauthwire.WriteError(w, e, basic, s.cfg.Issuer)
		return
	}
	rec := t.rec
	token, claims, err := s.mint(out.grant)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "authorization server: sign an access token", logging.Err(err))
		oauthwire.WriteError(w, oauthwire.Errorf("server_error", "the access token could not be issued"), basic, s.cfg.Issuer)
		return
	}
	if out.refresh == "" {
		// The access token is the only thing handed out: it is not
		// handed out unless its record is written.
		rec.User, rec.Resource, rec.Scopes = out.user, out.resource, out.scopes
		if err := s.record(ctx, rec, ""); err != nil {
			oauthwire.WriteError(w, oauthwire.Errorf("server_error", "the grant could not be recorded"), basic, s.cfg.Issuer)
			return
		}
	}
	oauthwire.WriteJSON(w, http.StatusOK, tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: claims.Expiry - claims.IssuedAt,
		Scope: claims.Scope, RefreshToken: out.refresh})
}

// clientRequest reads the bounded form of a client's request to the
// token, revocation or introspection endpoint and authenticates the client
// (RFC 6749 §2.3), answering the request itself when either fails. A
// failed authentication is recorded, as the client the request claimed to
// be, when failure gives the record to write.
func (s *Server) clientRequest(w http.ResponseWriter, r *http.Request, failure func(url.Values) storage.AuditRecord) (url.Values, clients.Client, bool, bool) {
	form, e := oauthwire.PostForm(w, r)
	basic := r.Header.Get("Authorization") != ""
	if e != nil {
		oauthwire.WriteError(w, e, basic, s.cfg.Issuer)
		return nil, clients.Client{}, basic, false
	}
	client, e := s.opts.Clients.Authenticate(r.Context(), r, form)
	if e != nil {
		if failure != nil {
			rec := failure(form)
			rec.Principal = principal(claimedClient(r, form))
			_ = s.record(r.Context(), rec, e.Code)
		}
		oauthwire.WriteError(w, e, basic, s.cfg.Issuer)
		return nil, clients.Client{}, basic, false
	}
	return form, client, basic, true
}

// trail is a token request's audit record; committed once a change
// committed it, so that it is not written twice.
type trail struct {
	rec       storage.AuditRecord
	committed bool
}

// revokeFamily revokes a refresh family, committing t's record as the
// refusal errCode with it.
func (s *Server) revokeFamily(ctx context.Context, t *trail, family, errCode string) {
	failed := t.rec
	failed.Outcome, failed.ErrorType = audit.OutcomeFailure, errCode
	if _, err := s.bind(ctx, failed).RevokeRefreshFamily(ctx, family); err == nil {
		t.committed = true
	}
}

// redeemCode is the authorization code grant (RFC 6749 §4.1.3): the code
// is redeemed once whatever follows, and a code redeemed before revokes
// the refresh tokens it produced (§4.1.2).
func (s *Server) redeemCode(ctx context.Context, client clients.Client, form url.Values, t *trail) (issued, *oauthwire.Error) {
	if !client.AllowsGrant(config.GrantAuthorizationCode) {
		return issued{}, oauthwire.Errorf("unauthorized_client", "this client may not use the authorization code grant")
	}
	code := form.Get("code")
	if code == "" {
		return issued{}, oauthwire.Errorf("invalid_request", "code is required")
	}
	family := rand.Text()
	ar, err := s.opts.Store.RedeemAuthCode(ctx, oauthwire.Hash(code), family)
	t.rec.Resource, t.rec.User, t.rec.Scopes = ar.Resource, ar.User, ar.Scopes
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return issued{}, oauthwire.Errorf("invalid_grant", "the authorization code is not valid")
	case errors.Is(err, storage.ErrConflict):
		if ar.RefreshFamily != "" && ar.ClientID == client.ID {
			s.revokeFamily(ctx, t, ar.RefreshFamily, "invalid_grant")
		}
		return issued{}, oauthwire.Errorf("invalid_grant", "the authorization code was already used; the tokens it produced are revoked")
	case err != nil:
		return issued{}, oauthwire.Errorf("server_error", "the authorization code could not be redeemed")
	}
	switch {
	case ar.ClientID != client.ID:
		return issued{}, oauthwire.Errorf("invalid_grant", "the authorization code was issued to another client")
	case !s.now().Before(ar.ExpiresAt):
		return issued{}, oauthwire.Errorf("invalid_grant", "the authorization code has expired")
	case len(form["redirect_uri"]) != 1 || form.Get("redirect_uri") != ar.RedirectURI:
		return issued{}, oauthwire.Errorf("invalid_grant", "redirect_uri is not the one of the authorization request")
	case !oauthwire.VerifierMatches(form.Get("code_verifier"), ar.CodeChallenge):
		return issued{}, oauthwire.Errorf("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
	}
	if e := sameResource(form, ar.Resource); e != nil {
		return issued{}, e
	}
	g := grant{user: ar.User, clientID: client.ID, resource: ar.Resource, scopes: ar.Scopes}
	return s.withRefresh(ctx, client, g, family, nil, t)
}

// sameResource: a token request may name the resource, which must be the
// grant's (RFC 8707 §2.2).
func sameResource(form url.Values, resource string) *oauthwire.Error {
	if rs := form["resource"]; len(rs) > 1 || len(rs) == 1 && rs[0] != resource {
		return oauthwire.Errorf("invalid_target", "resource is not the one this grant is for")
	}
	return nil
}

// withRefresh issues a refresh token of family for g, when the client
// may use one, committing rec with it; rotate is the token it replaces.
func (s *Server) withRefresh(ctx context.Context, client clients.Client, g grant, family string, rotate []byte, t *trail) (issued, *oauthwire.Error) {
	out := issued{grant: g}
	if !client.AllowsGrant(config.GrantRefreshToken) {
		return out, nil
	}
	out.refresh = rand.Text() + rand.Text()
	next := storage.OAuthRefreshToken{Hash: oauthwire.Hash(out.refresh), Family: family, ClientID: client.ID, User: g.user,
		Resource: g.resource, Scopes: g.scopes, ExpiresAt: s.now().Add(s.cfg.RefreshTokenTTL)}
	ok := t.rec
	ok.User, ok.Resource, ok.Scopes = g.user, g.resource, g.scopes
	var err error
	if rotate == nil {
		err = s.bind(ctx, ok).CreateRefreshToken(ctx, next)
	} else {
		_, err = s.bind(ctx, ok).RotateRefreshToken(ctx, rotate, next)
		if errors.Is(err, storage.ErrConflict) {
			// Reuse, raced with another use: the store revoked the
			// family, and the refusal is recorded.
			return issued{}, oauthwire.Errorf("invalid_grant", "the refresh token was already used; its grant is revoked")
		}
		if errors.Is(err, storage.ErrNotFound) {
			return issued{}, oauthwire.Errorf("invalid_grant", "the refresh token is not valid")
		}
	}
	if err != nil {
		return issued{}, oauthwire.Errorf("server_error", "the refresh token could not be stored")
	}
	t.committed = true
	return out, nil
}

// refresh is the refresh token grant (RFC 6749 §6), rotating the token
// on every use (OAuth 2.1 §4.3.1). The scope may narrow, never widen.
func (s *Server) refresh(ctx context.Context, client clients.Client, form url.Values, t *trail) (issued, *oauthwire.Error) {
	if !client.AllowsGrant(config.GrantRefreshToken) {
		return issued{}, oauthwire.Errorf("unauthorized_client", "this client may not use refresh tokens")
	}
	hash := oauthwire.Hash(form.Get("refresh_token"))
	rt, err := s.opts.Store.GetRefreshToken(ctx, hash)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return issued{}, oauthwire.Errorf("invalid_grant", "the refresh token is not valid")
	case err != nil:
		return issued{}, oauthwire.Errorf("server_error", "the refresh token could not be read")
	}
	t.rec.User, t.rec.Resource, t.rec.Scopes = rt.User, rt.Resource, rt.Scopes
	if rt.ClientID != client.ID || !s.now().Before(rt.ExpiresAt) {
		return issued{}, oauthwire.Errorf("invalid_grant", "the refresh token is not valid")
	}
	if !rt.RotatedAt.IsZero() {
		// Reuse (OAuth 2.1 §4.3.1): revoke the grant.
		s.revokeFamily(ctx, t, rt.Family, "invalid_grant")
		return issued{}, oauthwire.Errorf("invalid_grant", "the refresh token was already used; its grant is revoked")
	}
	if e := sameResource(form, rt.Resource); e != nil {
		return issued{}, e
	}
	scopes := rt.Scopes
	if form.Get("scope") != "" {
		asked, e := oauthwire.ParseScope(form.Get("scope"))
		if e != nil {
			return issued{}, e
		}
		if !containsAll(rt.Scopes, asked) {
			return issued{}, oauthwire.Errorf("invalid_scope", "a refresh may narrow the scope, never widen it: ask the user again")
		}
		scopes = asked
	}
	g := grant{user: rt.User, clientID: client.ID, resource: rt.Resource, scopes: rt.Scopes}
	out, e := s.withRefresh(ctx, client, g, rt.Family, hash, t)
	out.scopes = scopes
	return out, e
}

// assertion is RFC 7523's jwt-bearer grant with an ID-JAG: an access
// token for the grant's user, resource and scopes, and no refresh token.
func (s *Server) assertion(ctx context.Context, client clients.Client, form url.Values) (issued, *oauthwire.Error) {
	if s.opts.Assertions == nil {
		return issued{}, oauthwire.Errorf("unsupported_grant_type", "this server trusts no identity provider's assertions")
	}
	if !client.AllowsGrant(config.GrantJWTBearer) {
		return issued{}, oauthwire.Errorf("unauthorized_client", "this client may not use the jwt-bearer grant")
	}
	scopes, e := oauthwire.ParseScope(form.Get("scope"))
	if e != nil {
		return issued{}, e
	}
	g, e := s.opts.Assertions.Redeem(ctx, form.Get("assertion"), client, scopes, s.resourceScopes())
	if e != nil {
		return issued{}, e
	}
	if _, ok := s.cfg.Resource(g.Resource); !ok {
		return issued{}, oauthwire.Errorf("invalid_target", "this server issues no tokens for that resource")
	}
	return issued{grant: grant{user: wat.UserFromJWT(g.Issuer, g.Subject), clientID: client.ID, resource: g.Resource, scopes: g.Scopes}}, nil
}
