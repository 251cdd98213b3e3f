package authserver

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wat"
)

// login is behalf's client at the login identity provider: authorization
// code with PKCE S256 and a nonce, both derived from the request id by
// HMAC so that nothing secret is stored.
type login struct {
	s            *Server
	discoveryURL string

	mu       sync.Mutex
	endpoint oauth2.Endpoint
	// issuer is the provider's, and issInResponse whether it sends it in
	// every authorization response (RFC 9207 §3).
	issuer        string
	issInResponse bool
	found         bool
	lastTry       time.Time
}

// maxDiscovery bounds a discovery document.
const maxDiscovery = 256 << 10

// config returns the oauth2 configuration, discovering the provider's
// endpoints on first use (retried at most every ten seconds).
func (l *login) config(ctx context.Context) (*oauth2.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.found {
		now := l.s.now()
		if now.Sub(l.lastTry) < 10*time.Second && !l.lastTry.IsZero() {
			return nil, errors.New("login identity provider discovery failed recently")
		}
		l.lastTry = now
		doc, err := l.discover(ctx)
		if err != nil {
			return nil, err
		}
		l.endpoint, l.issuer, l.issInResponse, l.found = doc.endpoint, doc.Issuer, doc.IssInResponse, true
	}
	c := l.s.cfg.Login
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: l.s.opts.LoginClientSecret, Endpoint: l.endpoint,
		RedirectURL: l.s.cfg.Issuer + PathLoginCallback, Scopes: c.Scopes}, nil
}

// loginProvider is what behalf reads of the login provider's discovery
// document.
type loginProvider struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	AuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
	IssInResponse         bool     `json:"authorization_response_iss_parameter_supported"`
	endpoint              oauth2.Endpoint
}

func (l *login) discover(ctx context.Context) (loginProvider, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.discoveryURL, nil)
	if err != nil {
		return loginProvider{}, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := l.s.opts.HTTP.Do(req)
	if err != nil {
		return loginProvider{}, fmt.Errorf("discover the login identity provider: %w", err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return loginProvider{}, fmt.Errorf("discover the login identity provider: HTTP %d", res.StatusCode)
	}
	var doc loginProvider
	if err := json.NewDecoder(io.LimitReader(res.Body, maxDiscovery)).Decode(&doc); err != nil {
		return loginProvider{}, fmt.Errorf("discover the login identity provider: %w", err)
	}
	for _, u := range []string{doc.AuthorizationEndpoint, doc.TokenEndpoint} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return loginProvider{}, errors.New("discover the login identity provider: its endpoints are not http(s) URLs")
		}
	}
	style := oauth2.AuthStyleInHeader
	if len(doc.AuthMethods) > 0 && !slices.Contains(doc.AuthMethods, "client_secret_basic") && slices.Contains(doc.AuthMethods, "client_secret_post") {
		style = oauth2.AuthStyleInParams
	}
	doc.endpoint = oauth2.Endpoint{AuthURL: doc.AuthorizationEndpoint, TokenURL: doc.TokenEndpoint, AuthStyle: style}
	return doc, nil
}

// fromIssuer applies RFC 9207 §2.4 to an authorization response: an iss
// sent must be the provider's, and one the provider promises must be
// sent.
func (l *login) fromIssuer(q url.Values) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	iss, sent := q["iss"]
	if !sent {
		return !l.issInResponse
	}
	return len(iss) == 1 && l.found && iss[0] == l.issuer
}

// authCodeURL is where the browser signs in for request id.
func (l *login) authCodeURL(ctx context.Context, id, state string) (string, error) {
	c, err := l.config(ctx)
	if err != nil {
		return "", err
	}
	verifier := l.s.mac("login-verifier", id)
	return c.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", l.s.mac("login-nonce", id))), nil
}

// loginCallback receives the browser back from the login identity
// provider (OpenID Connect Core §3.1.2.5).
func (s *Server) loginCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	ar, err := s.opts.Store.GetAuthRequestByLoginState(ctx, oauthwire.Hash(state))
	ok, err := s.live(r, ar, err, storage.AuthRequestLogin)
	if err != nil {
		s.internalError(ctx, w, "read an authorization request", err)
		return
	}
	if !ok || len(q["state"]) != 1 {
		// A replayed or forged state, or another browser's: never redirect.
		_ = s.record(ctx, storage.AuditRecord{Operation: opAuthorize, Principal: principal(ar.ClientID), Resource: ar.Resource,
			Flow: config.GrantAuthorizationCode}, "invalid_request")
		s.errorPage(w, http.StatusBadRequest, "This sign-in link is not valid here",
			"It was already used, has expired, or was started in another browser. Start again from the application.")
		return
	}
	rec := storage.AuditRecord{Operation: opAuthorize, Principal: principal(ar.ClientID), Resource: ar.Resource,
		Flow: config.GrantAuthorizationCode, Scopes: ar.Scopes}
	if !s.login.fromIssuer(q) {
		// A mix-up (RFC 9207): the answer names another provider than
		// the one the browser was sent to.
		s.endRequest(w, r, ar, rec, oauthwire.Errorf("server_error", "the sign-in answer came from another identity provider").Because("iss"))
		return
	}
	if q.Get("error") != "" || q.Get("code") == "" {
		e := oauthwire.Errorf("access_denied", "the user did not sign in")
		if q.Get("error") != "access_denied" {
			e = oauthwire.Errorf("server_error", "the sign-in service refused the sign-in")
		}
		s.endRequest(w, r, ar, rec, e)
		return
	}
	user, err := s.login.identify(ctx, ar.ID, q.Get("code"))
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "login refused", logging.Err(err))
		s.endRequest(w, r, ar, rec, oauthwire.Errorf("access_denied", "the sign-in could not be verified"))
		return
	}
	ar.User, rec.User = user, user
	s.afterLogin(w, r, ar, rec)
}

// afterLogin issues the code at once when a remembered consent covers
// the request, and otherwise sends the browser to the consent page.
func (s *Server) afterLogin(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, rec storage.AuditRecord) {
	ctx := r.Context()
	consent, err := s.opts.Store.GetConsent(ctx, ar.User, ar.ClientID, ar.Resource)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.internalError(ctx, w, "read a consent", err)
		return
	}
	if err == nil && containsAll(consent.Scopes, ar.Scopes) {
		s.issueCode(w, r, ar, rec)
		return
	}
	_, err = s.opts.Store.UpdateAuthRequest(ctx, ar.ID, func(cur storage.AuthRequest) (storage.AuthRequest, error) {
		if cur.Status != storage.AuthRequestLogin {
			return cur, errStale
		}
		cur.Status, cur.User, cur.ExpiresAt = storage.AuthRequestConsent, ar.User, s.now().Add(consentTTL)
		return cur, nil
	})
	if errors.Is(err, errStale) || errors.Is(err, storage.ErrConflict) {
		s.errorPage(w, http.StatusConflict, "This sign-in was already answered", "Start again from the application.")
		return
	}
	if err != nil {
		s.internalError(ctx, w, "store a sign-in", err)
		return
	}
	http.Redirect(w, r, s.cfg.Issuer+PathConsent+"?"+url.Values{"request": {ar.ID}}.Encode(), http.StatusSeeOther)
}

// identify redeems the login code and verifies the ID token with the
// login authorizer's rules, its nonce and that it was issued to behalf;
// it returns the user key.
func (l *login) identify(ctx context.Context, id, code string) (string, error) {
	c, err := l.config(ctx)
	if err != nil {
		return "", err
	}
	tok, err := c.Exchange(context.WithValue(ctx, oauth2.HTTPClient, l.s.opts.HTTP), code, oauth2.VerifierOption(l.s.mac("login-verifier", id)))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return "", fmt.Errorf("login code exchange refused: %s", re.ErrorCode)
		}
		return "", errors.New("login code exchange failed")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("the login identity provider returned no ID token")
	}
	ident, err := l.s.opts.Users.Verify(ctx, raw, []string{l.s.cfg.Login.Authorizer})
	if err != nil {
		return "", fmt.Errorf("ID token: %w", err)
	}
	if !slices.Contains(ident.Audience, l.s.cfg.Login.ClientID) {
		return "", errors.New("ID token was not issued to behalf's login client")
	}
	nonce, err := idTokenNonce(raw)
	if err != nil || subtle.ConstantTimeCompare([]byte(nonce), []byte(l.s.mac("login-nonce", id))) != 1 {
		return "", errors.New("ID token nonce does not match the sign-in")
	}
	return wat.UserFromJWT(ident.Issuer, ident.Subject), nil
}

// idTokenNonce reads the nonce of an ID token whose signature was
// verified.
func idTokenNonce(token string) (string, error) {
	raw, err := jwtPayload(token)
	if err != nil {
		return "", err
	}
	var c struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", err
	}
	return c.Nonce, nil
}

// jwtPayload decodes a compact JWS's payload, unverified.
func jwtPayload(token string) ([]byte, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	return base64.RawURLEncoding.DecodeString(parts[1])
}
