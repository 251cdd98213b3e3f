package devidp

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// family is one grant's chain of refresh tokens (RFC 9700 §4.14.2).
type family struct {
	clientID, subject, scope string
	resource                 []string
	authTime                 time.Time // the ID tokens' auth_time
	current                  string    // hash of the one live refresh token
	revoked                  bool
}

// claims of access tokens (RFC 9068 §2.2) and ID tokens (OIDC Core §2).
type claims struct {
	jwt.Claims
	ClientID string `json:"client_id,omitempty"`
	AZP      string `json:"azp,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	Email    string `json:"email,omitempty"`
	Name     string `json:"name,omitempty"`
	// AuthTime is OIDC Core §2's auth_time, in ID tokens only.
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	// Act is RFC 8693 §4.1's actor, in exchanged access tokens only.
	Act *actor `json:"act,omitempty"`
}

// actor is RFC 8693 §4.1's act claim: the party acting for the subject,
// with the prior actors of a delegation chain nested in its own act.
type actor struct {
	Sub string `json:"sub"`
	Act *actor `json:"act,omitempty"`
}

// RFC 8693 §3 token type identifiers.
const (
	tokenTypeAccess = oauthwire.TokenTypeAccessToken
	tokenTypeID     = oauthwire.TokenTypeIDToken
	tokenTypeJWT    = "urn:ietf:params:oauth:token-type:jwt" //nolint:gosec // G101: a URN, not a credential
)

// token is the token endpoint (RFC 6749 §3.2).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	ev := Event{Endpoint: "token"}
	resp, e := s.tokenRequest(w, r, &ev)
	if e != nil {
		ev.Error = e.Code
		_, _, basic := r.BasicAuth()
		oauthwire.WriteError(w, e, basic, "behalf dev-idp")
	} else {
		oauthwire.WriteJSON(w, http.StatusOK, resp)
	}
	s.emit(ev)
}

func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request, ev *Event) (map[string]any, *oauthwire.Error) {
	form, e := oauthwire.PostForm(w, r)
	ev.GrantType = form.Get("grant_type")
	if e != nil {
		return nil, e
	}
	var c Client
	if !s.anonymousExchange(r, form) {
		if c, e = s.authenticate(r, form); e != nil {
			return nil, e
		}
	}
	ev.ClientID = c.ID
	scope, e := parseScope(form.Get("scope"))
	if e != nil {
		return nil, e
	}
	resource, e := parseResources(form["resource"])
	if e != nil {
		return nil, e
	}
	now := s.now()
	switch ev.GrantType {
	case "authorization_code":
		return s.redeemCode(c, form, resource, ev, now)
	case "refresh_token":
		return s.redeemRefresh(c, form, scope, resource, ev, now)
	case "client_credentials": // RFC 6749 §4.4: no refresh token
		ev.Subject = c.ID
		return s.issue(tokens{client: c.ID, subject: c.ID, scope: scope, resource: resource}, now)
	case "password": // RFC 6749 §4.3, with any non-empty password
		u := form.Get("username")
		if !usernamePattern.MatchString(u) || form.Get("password") == "" {
			return nil, oauthwire.Errorf("invalid_grant", "username must be 1 to 64 letters, digits, '.', '_' or '-', and password must not be empty")
		}
		ev.Subject = u
		rt := s.startFamily(&family{clientID: c.ID, subject: u, scope: scope, resource: resource, authTime: now})
		return s.issue(tokens{client: c.ID, subject: u, scope: scope, resource: resource, user: true, authTime: now, refresh: rt}, now)
	case grantTokenExchange:
		if form.Get("requested_token_type") == tokenTypeIDJAG {
			return s.exchangeIDJAG(c, form, scope, resource, ev, now)
		}
		return s.exchange(c, form, scope, resource, ev, now)
	case "":
		return nil, oauthwire.Errorf("invalid_request", "grant_type is required")
	}
	return nil, oauthwire.Errorf("unsupported_grant_type", "grant_type must be one of %s", strings.Join(grantTypes, ", "))
}

// anonymousExchange reports whether r is a token exchange for an access
// token that names no client (no Authorization header, client_id,
// client_secret or client_assertion), served without client authentication when
// Options.AnonymousTokenExchange allows it (RFC 8693 §2.1 leaves client
// authentication to the deployment). A request that names a client must
// authenticate it; ID-JAGs are issued to an authenticated client only.
func (s *Server) anonymousExchange(r *http.Request, form url.Values) bool {
	return s.anonymous && form.Get("grant_type") == grantTokenExchange && form.Get("requested_token_type") != tokenTypeIDJAG &&
		r.Header.Get("Authorization") == "" && !form.Has("client_id") && !form.Has("client_secret") && !form.Has("client_assertion")
}

// redeemCode is RFC 6749 §4.1.3 with the RFC 7636 §4.6 check.
func (s *Server) redeemCode(c Client, form url.Values, resource []string, ev *Event, now time.Time) (map[string]any, *oauthwire.Error) {
	verifier := form.Get("code_verifier")
	s.mu.Lock()
	k, e := s.useCodeLocked(c, form.Get("code"), form.Get("redirect_uri"), verifier, now)
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	if len(resource) == 0 {
		resource = k.resource
	}
	k.family = &family{clientID: c.ID, subject: k.subject, scope: k.scope, resource: resource, authTime: k.authTime}
	rt := s.nextRefreshLocked(k.family)
	s.mu.Unlock()
	ev.Subject = k.subject
	return s.issue(tokens{client: c.ID, subject: k.subject, scope: k.scope, nonce: k.nonce, resource: resource, user: true, authTime: k.authTime, refresh: rt}, now)
}

func (s *Server) useCodeLocked(c Client, raw, redirectURI, verifier string, now time.Time) (*code, *oauthwire.Error) {
	k := s.codes[hash(raw)]
	switch {
	case k == nil || now.After(k.exp):
		return nil, oauthwire.Errorf("invalid_grant", "the code is unknown or has expired")
	case k.clientID != c.ID:
		return nil, oauthwire.Errorf("invalid_grant", "the code was issued to another client")
	case k.redeemed:
		// RFC 6749 §4.1.2: a replayed code revokes what it produced.
		if k.family != nil {
			k.family.revoked = true
		}
		return nil, oauthwire.Errorf("invalid_grant", "the code was already used; the tokens issued for it are revoked")
	}
	k.redeemed = true // any attempt uses the code up
	switch {
	case redirectURI != k.redirectURI:
		return nil, oauthwire.Errorf("invalid_grant", "redirect_uri does not match the authorization request")
	case !oauthwire.VerifierMatches(verifier, k.challenge):
		return nil, oauthwire.Errorf("invalid_grant", "code_verifier does not match the code_challenge")
	}
	return k, nil
}

// redeemRefresh is RFC 6749 §6. With rotation, each refresh token works
// once; presenting a rotated-out one revokes the family, since either the
// client or an attacker holds a stolen token (RFC 9700 §4.14.2).
func (s *Server) redeemRefresh(c Client, form url.Values, scope string, resource []string, ev *Event, now time.Time) (map[string]any, *oauthwire.Error) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, oauthwire.Errorf("invalid_request", "refresh_token is required")
	}
	s.mu.Lock()
	f := s.refresh[hash(rt)]
	switch {
	case f == nil || f.revoked:
		s.mu.Unlock()
		return nil, oauthwire.Errorf("invalid_grant", "the refresh token is unknown or revoked")
	case f.clientID != c.ID:
		s.mu.Unlock()
		return nil, oauthwire.Errorf("invalid_grant", "the refresh token was issued to another client")
	case s.rotate && f.current != hash(rt):
		f.revoked = true
		s.mu.Unlock()
		return nil, oauthwire.Errorf("invalid_grant", "the refresh token was already used; its whole family is now revoked")
	}
	ev.Subject = f.subject
	granted := strings.Fields(f.scope)
	for _, t := range strings.Fields(scope) {
		if !slices.Contains(granted, t) {
			s.mu.Unlock()
			return nil, oauthwire.Errorf("invalid_scope", "scope %s was not granted", t)
		}
	}
	if scope == "" {
		scope = f.scope
	}
	if len(resource) == 0 {
		resource = f.resource
	}
	next := ""
	if s.rotate {
		next = s.nextRefreshLocked(f)
	}
	s.mu.Unlock()
	return s.issue(tokens{client: c.ID, subject: f.subject, scope: scope, resource: resource, user: true, authTime: f.authTime, refresh: next}, now)
}

// exchange is RFC 8693 §2: a JWT this server issued, unexpired and not
// revoked, becomes an access token for the same subject, for the requesting
// client. Any client may exchange any such token. With an actor token
// (§2.1), itself such a JWT, the issued token names its subject as the
// actor in act (§4.1), the subject token's own act nested in it as the
// prior actor; without one, the subject token's act is kept. RFC 8693
// §2.2.2 wants invalid_request for an unacceptable subject or actor token.
// c is the zero Client for an anonymous exchange (Options.
// AnonymousTokenExchange), whose token's aud is the resources and audience.
func (s *Server) exchange(c Client, form url.Values, scope string, resource []string, ev *Event, now time.Time) (map[string]any, *oauthwire.Error) {
	if e := exchangeRequest(form); e != nil {
		return nil, e
	}
	sc, ok := s.live(form.Get("subject_token"), now, "at+jwt", "JWT")
	if !ok {
		return nil, oauthwire.Errorf("invalid_request", "subject_token is not an unexpired, unrevoked token from this issuer")
	}
	ev.Subject = sc.Subject
	act := sc.Act
	if form.Has("actor_token") {
		ac, ok := s.live(form.Get("actor_token"), now, "at+jwt", "JWT")
		if !ok {
			return nil, oauthwire.Errorf("invalid_request", "actor_token is not an unexpired, unrevoked token from this issuer")
		}
		act, ev.Actor = &actor{Sub: ac.Subject, Act: sc.Act}, ac.Subject
	}
	if scope == "" {
		scope = sc.Scope
	}
	// RFC 8693 §2.1 audience is a logical name; it joins the resources in aud.
	if a := form.Get("audience"); a != "" {
		resource = append(slices.Clone(resource), a)
	}
	if c.ID == "" && len(resource) == 0 {
		return nil, oauthwire.Errorf("invalid_request", "a token exchange without client authentication must name a resource or audience: the issued token's aud")
	}
	resp, e := s.issue(tokens{client: c.ID, subject: sc.Subject, scope: scope, resource: resource, act: act}, now)
	if resp != nil {
		resp["issued_token_type"] = tokenTypeAccess
	}
	return resp, e
}

// exchangeRequest checks the request's shape (RFC 8693 §2.1).
func exchangeRequest(form url.Values) *oauthwire.Error {
	const types = "%s must be " + tokenTypeAccess + ", " + tokenTypeID + " or " + tokenTypeJWT
	switch rtt := form.Get("requested_token_type"); {
	case form.Get("subject_token") == "" || form.Get("subject_token_type") == "":
		return oauthwire.Errorf("invalid_request", "subject_token and subject_token_type are required")
	case !exchangeableType(form.Get("subject_token_type")):
		return oauthwire.Errorf("invalid_request", types, "subject_token_type")
	case form.Has("actor_token") != form.Has("actor_token_type"):
		return oauthwire.Errorf("invalid_request", "actor_token and actor_token_type must be given together")
	case form.Has("actor_token_type") && !exchangeableType(form.Get("actor_token_type")):
		return oauthwire.Errorf("invalid_request", types, "actor_token_type")
	case rtt != "" && rtt != tokenTypeAccess:
		return oauthwire.Errorf("invalid_request", "requested_token_type must be %s", tokenTypeAccess)
	}
	return nil
}

// exchangeableType reports whether a subject or actor token of this RFC
// 8693 §3 type can be exchanged: the JWTs this server issues.
func exchangeableType(t string) bool {
	return t == tokenTypeAccess || t == tokenTypeID || t == tokenTypeJWT
}

// revoke is RFC 7009 §2. Unknown, expired and already revoked tokens are
// answered 200 (§2.2); token_type_hint is unneeded, as both kinds are tried.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	ev := Event{Endpoint: "revoke"}
	if e := s.revokeRequest(w, r, &ev); e != nil {
		ev.Error = e.Code
		_, _, basic := r.BasicAuth()
		oauthwire.WriteError(w, e, basic, "behalf dev-idp")
	} else {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}
	s.emit(ev)
}

func (s *Server) revokeRequest(w http.ResponseWriter, r *http.Request, ev *Event) *oauthwire.Error {
	form, e := oauthwire.PostForm(w, r)
	if e != nil {
		return e
	}
	c, e := s.authenticate(r, form)
	if e != nil {
		return e
	}
	ev.ClientID = c.ID
	tok := form.Get("token")
	if tok == "" {
		return oauthwire.Errorf("invalid_request", "token is required")
	}
	// RFC 7009 §2.1: a client may revoke only its own tokens.
	const notYours = "the token was issued to another client"
	s.mu.Lock()
	if f := s.refresh[hash(tok)]; f != nil {
		defer s.mu.Unlock()
		if f.clientID != c.ID {
			return oauthwire.Errorf("unauthorized_client", notYours)
		}
		f.revoked, ev.Subject = true, f.subject
		return nil
	}
	s.mu.Unlock()
	if cl, ok := s.parse(tok, s.now()); ok {
		if cl.ClientID != c.ID {
			return oauthwire.Errorf("unauthorized_client", notYours)
		}
		s.mu.Lock()
		s.revoked[cl.ID] = cl.Expiry.Time()
		s.mu.Unlock()
		ev.Subject = cl.Subject
	}
	return nil
}

// tokens is what one grant issues.
type tokens struct {
	client, subject, scope, nonce string
	resource                      []string // the access token's aud; default the client
	user                          bool     // add an ID token
	authTime                      time.Time
	refresh                       string // "" for none
	act                           *actor // the access token's act (RFC 8693 §4.1)
}

func (s *Server) issue(t tokens, now time.Time) (map[string]any, *oauthwire.Error) {
	aud := t.resource
	if len(aud) == 0 {
		aud = []string{t.client}
	}
	c := claims{
		Claims: jwt.Claims{Issuer: s.issuer, Subject: t.subject, Audience: aud, ID: rand.Text(),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(s.ttl))},
		ClientID: t.client, AZP: t.client, Scope: t.scope, Act: t.act,
	}
	at, err := jwt.Signed(s.atSigner).Claims(c).Serialize()
	if err != nil {
		return nil, oauthwire.Errorf("server_error", "signing failed")
	}
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int64(s.ttl / time.Second)}
	if t.scope != "" {
		resp["scope"] = t.scope
	}
	if t.refresh != "" {
		resp["refresh_token"] = t.refresh
	}
	if t.user {
		c.Audience, c.ID, c.Nonce, c.Act = jwt.Audience{t.client}, rand.Text(), t.nonce, nil
		c.Email, c.Name = t.subject+"@example.com", strings.ToUpper(t.subject[:1])+t.subject[1:]
		if !s.omitAuthTime {
			c.AuthTime = jwt.NewNumericDate(t.authTime)
		}
		b := jwt.Signed(s.idSigner).Claims(c)
		if extra := s.userClaims[t.subject]; extra != nil {
			b = b.Claims(extra)
		}
		if resp["id_token"], err = b.Serialize(); err != nil {
			return nil, oauthwire.Errorf("server_error", "signing failed")
		}
	}
	return resp, nil
}

func (s *Server) startFamily(f *family) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextRefreshLocked(f)
}

// nextRefreshLocked issues f's next refresh token and makes it the only
// live one.
func (s *Server) nextRefreshLocked(f *family) string {
	rt := rand.Text()
	f.current = hash(rt)
	s.refresh[f.current] = f
	return rt
}

// parse verifies an access or ID token this server issued and checks that
// it is unexpired. ID-JAGs are refused: the IdP must not issue access tokens
// for them (draft-ietf-oauth-identity-assertion-authz-grant, "Cross-Domain
// Use").
func (s *Server) parse(token string, now time.Time) (*claims, bool) {
	return s.parseTyped(token, now, "at+jwt", "JWT")
}

// live is parseTyped for a token that has not been revoked either.
func (s *Server) live(token string, now time.Time, typs ...string) (*claims, bool) {
	c, ok := s.parseTyped(token, now, typs...)
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	_, revoked := s.revoked[c.ID]
	s.mu.Unlock()
	return c, !revoked
}

// parseTyped is parse for a JWT whose typ header is one of typs.
func (s *Server) parseTyped(token string, now time.Time, typs ...string) (*claims, bool) {
	t, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, false
	}
	if typ, _ := t.Headers[0].ExtraHeaders[jose.HeaderType].(string); !slices.Contains(typs, typ) {
		return nil, false
	}
	var c claims
	if t.Claims(s.public, &c) != nil || c.ID == "" ||
		c.ValidateWithLeeway(jwt.Expected{Issuer: s.issuer, Time: now}, 0) != nil {
		return nil, false
	}
	return &c, true
}
