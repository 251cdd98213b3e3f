package portal

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wat"
)

// The sign-in is OpenID Connect Core §3.1 (authorization code) at the
// portal's identity provider, with PKCE S256 (RFC 7636) and a nonce. The
// state, verifier and nonce are derived by HMAC from a random sign-in id
// sealed in the browser's sign-in cookie, so nothing is stored until the
// callback spends the id (one use).

// idTokenLeeway is the clock skew allowed on an ID token's exp and iat.
const idTokenLeeway = time.Minute

func (s *Server) redirectURI(p storage.ConsentPortal) string { return s.base(p) + "callback" }

func (s *Server) derive(purpose string, l login) string {
	return oauthwire.MAC(s.o.Key, "portal-"+purpose, l.Portal, l.ID)
}

// signIn sends the browser to the identity provider.
func (s *Server) signIn(q *request) {
	ctx, p := q.ctx(), q.portal
	idp, err := s.o.Federation.Provider(ctx, p.Provider)
	if err != nil || idp.Config.Resolved.AuthorizationEndpoint == "" || idp.Config.Resolved.Issuer == "" {
		if err != nil {
			s.o.Log.LogAttrs(ctx, slog.LevelWarn, "consent portal: identity provider unavailable", logging.Err(err))
		}
		s.errorPage(q.w, http.StatusServiceUnavailable, "Sign-in is unavailable",
			"This portal's identity provider cannot be used for sign-in. Tell the portal's administrator.")
		return
	}
	l := login{Portal: p.ID, ID: rand.Text(), Expires: s.o.Now().Add(loginTTL).Unix()}
	v, err := s.seal(loginCookie, l)
	if err != nil {
		s.internalError(ctx, q.w, "seal a sign-in", err)
		return
	}
	s.setCookie(q.w, p, loginCookie, v, int(loginTTL/time.Second))
	scopes := slices.Clone(p.Scopes)
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...) // OpenID Connect Core §3.1.2.1
	}
	verifier := s.derive("verifier", l)
	params := url.Values{"response_type": {"code"}, "client_id": {idp.Config.ClientID}, "redirect_uri": {s.redirectURI(p)},
		"scope": {strings.Join(scopes, " ")}, "state": {s.derive("state", l)}, "nonce": {s.derive("nonce", l)},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
	if p.Audience != "" {
		params.Set("audience", p.Audience)
	}
	endpoint := idp.Config.Resolved.AuthorizationEndpoint
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	http.Redirect(q.w, q.r, endpoint+sep+params.Encode(), http.StatusFound)
}

// callback receives the browser back from the identity provider (OpenID
// Connect Core §3.1.2.5): the state must be the one derived from this
// browser's sign-in cookie, unspent.
func (s *Server) callback(q *request) {
	ctx, p, in := q.ctx(), q.portal, q.r.URL.Query()
	rec := storage.AuditRecord{Operation: "PortalSignIn", Principal: principal(p), Provider: p.Provider}
	var l login
	if !s.open(q.r, loginCookie, &l) || l.Portal != p.ID || !s.o.Now().Before(time.Unix(l.Expires, 0)) ||
		len(in["state"]) != 1 || subtle.ConstantTimeCompare([]byte(in.Get("state")), []byte(s.derive("state", l))) != 1 {
		s.record(ctx, rec, "invalid_request")
		s.errorPage(q.w, http.StatusBadRequest, "This sign-in link is not valid here",
			"It was already used, has expired, or was started in another browser. Sign in again from the portal's page.")
		return
	}
	s.setCookie(q.w, p, loginCookie, "", -1)
	switch err := s.o.Store.UseTokenID(ctx, "portal-login:"+l.ID, time.Unix(l.Expires, 0)); {
	case errors.Is(err, storage.ErrAlreadyExists):
		s.record(ctx, rec, "invalid_request:replayed")
		s.errorPage(q.w, http.StatusBadRequest, "This sign-in link was already used", "Sign in again from the portal's page.")
		return
	case err != nil:
		s.internalError(ctx, q.w, "record a sign-in", err)
		return
	}
	if in.Get("error") != "" || in.Get("code") == "" || len(in.Get("code")) > 4096 {
		s.record(ctx, rec, "access_denied")
		s.errorPage(q.w, http.StatusForbidden, "You did not sign in", "The identity provider did not sign you in. Sign in again from the portal's page.")
		return
	}
	user, err := s.identify(ctx, p, l, in)
	if err != nil {
		s.o.Log.LogAttrs(ctx, slog.LevelWarn, "consent portal: sign-in refused", logging.Err(err))
		s.record(ctx, rec, "access_denied")
		s.errorPage(q.w, http.StatusForbidden, "The sign-in could not be verified", "Sign in again from the portal's page.")
		return
	}
	rec.User = user
	if err := s.startSession(q.w, p, user); err != nil {
		s.internalError(ctx, q.w, "seal a session", err)
		return
	}
	s.record(ctx, rec, "")
	http.Redirect(q.w, q.r, s.base(p), http.StatusSeeOther)
}

// identify redeems the code and verifies the ID token: its signature with
// the issuer's keys and the allow-listed algorithms, iss (the provider's
// issuer), aud (the provider's client id), azp, exp, iat and the nonce.
// It returns the user key, the one a workload access token minted from
// this issuer's JWT for the same subject carries.
func (s *Server) identify(ctx context.Context, p storage.ConsentPortal, l login, in url.Values) (string, error) {
	idp, err := s.o.Federation.Provider(ctx, p.Provider)
	if err != nil {
		return "", err
	}
	md := idp.Config.Resolved
	// RFC 9207 §2.4: an iss sent must be the provider's, and one promised
	// must be sent.
	if iss, sent := in["iss"]; sent && (len(iss) != 1 || iss[0] != md.Issuer) || !sent && md.AuthorizationResponseIssParameterSupported {
		return "", errors.New("the authorization response names another issuer")
	}
	tok, err := s.o.Federation.Exchange(ctx, idp, url.Values{"grant_type": {"authorization_code"}, "code": {in.Get("code")},
		"redirect_uri": {s.redirectURI(p)}, "code_verifier": {s.derive("verifier", l)}})
	if err != nil {
		return "", fmt.Errorf("code exchange: %w", err)
	}
	if tok.IDToken == "" {
		return "", errors.New("the identity provider returned no ID token")
	}
	return s.verifyIDToken(ctx, idp, tok.IDToken, s.derive("nonce", l))
}

// idClaims are the ID token claims checked (OpenID Connect Core §2).
type idClaims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	Audience json.RawMessage `json:"aud"`
	AZP      string          `json:"azp"`
	Expiry   float64         `json:"exp"`
	IssuedAt float64         `json:"iat"`
	Nonce    string          `json:"nonce"`
}

func (s *Server) verifyIDToken(ctx context.Context, idp access.OAuth2Provider, raw, nonce string) (string, error) {
	md := idp.Config.Resolved
	payload, e := s.o.Signatures.VerifySignature(ctx, raw, md.Issuer, md.JWKSURI, idp.Name)
	if e != nil {
		return "", fmt.Errorf("ID token: %w", e)
	}
	var c idClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("ID token claims: %w", err)
	}
	aud, err := audience(c.Audience)
	if err != nil {
		return "", err
	}
	if err := s.checkTimes(c); err != nil {
		return "", err
	}
	switch {
	case c.Subject == "" || len(c.Subject) > 255:
		return "", errors.New("ID token has no usable sub")
	case !slices.Contains(aud, idp.Config.ClientID):
		return "", errors.New("ID token was not issued to the portal's client")
	case len(aud) > 1 && c.AZP != idp.Config.ClientID || c.AZP != "" && c.AZP != idp.Config.ClientID:
		return "", errors.New("ID token azp is another client")
	case subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1:
		return "", errors.New("ID token nonce does not match the sign-in")
	}
	return wat.UserFromJWT(c.Issuer, c.Subject), nil
}

// audience reads aud, a string or an array of strings (RFC 7519 §4.1.3).
func audience(raw json.RawMessage) ([]string, error) {
	var aud []string
	if json.Unmarshal(raw, &aud) == nil {
		return aud, nil
	}
	var one string
	if json.Unmarshal(raw, &one) != nil {
		return nil, errors.New("ID token aud is neither a string nor an array")
	}
	return []string{one}, nil
}

// checkTimes requires exp in the future and iat not in it, within
// idTokenLeeway (OpenID Connect Core §3.1.3.7).
func (s *Server) checkTimes(c idClaims) error {
	now := s.o.Now()
	switch {
	case c.Expiry == 0 || now.After(time.Unix(int64(c.Expiry), 0).Add(idTokenLeeway)):
		return errors.New("ID token expired")
	case c.IssuedAt == 0 || time.Unix(int64(c.IssuedAt), 0).After(now.Add(idTokenLeeway)):
		return errors.New("ID token issued in the future")
	}
	return nil
}
