// Package devidp is a development-only OAuth 2.0 authorization server and
// OpenID provider, so that behalf can be tried on one machine with nothing
// else installed: `behalf dev-idp` runs it on loopback. It keeps everything
// in memory, accepts any username and any password, and must never face real
// users. It is still a correct implementation of the protocols below, and
// behalf talks to it exactly as to a real provider.
//
//   - Discovery: OpenID Connect Discovery 1.0 and RFC 8414, at both
//     well-known paths; a JWKS at /keys (one RSA-2048 key made at start).
//   - /authorize: RFC 6749 §4.1 with RFC 7636 PKCE, which is required and
//     must be S256 (RFC 9700 §2.1.1); the response carries iss (RFC 9207).
//     It shows a consent page where anyone may sign in as any username.
//   - /token: authorization_code, refresh_token (rotated by default: a reused
//     rotated-out token revokes its whole family, RFC 9700 §4.14.2),
//     client_credentials, password (any non-empty password: a development
//     shortcut) and RFC 8693 token exchange of a JWT this server issued.
//     Clients authenticate with client_secret_basic or client_secret_post,
//     or with private_key_jwt (RFC 7523 §2.2: RS256, PS256 or ES256
//     assertions whose aud is the issuer or the token endpoint, verified
//     with the JWK set at the client's jwks_uri, each jti used once).
//     RFC 8707 resource values become the access token's aud.
//   - Token exchange takes an optional actor token (RFC 8693 §2.1), also a
//     JWT this server issued, such as the client's own client_credentials
//     token: the issued token then names the actor in act (§4.1), with any
//     act of the subject token nested in it. Options.AnonymousTokenExchange
//     also serves exchanges that name no client, unauthenticated.
//   - Token exchange also issues Identity Assertion JWT Authorization Grants
//     (ID-JAGs, draft-ietf-oauth-identity-assertion-authz-grant): a client
//     trades a user's ID token that this server issued to it for a
//     short-lived JWT (typ oauth-id-jag+jwt) whose aud is another
//     authorization server's issuer, for the audiences its Client.IDJAG
//     lists. That server redeems it with RFC 7523's jwt-bearer grant: the
//     enterprise-managed authorization flow, on one machine. Discovery then
//     lists the id-jag token type in
//     identity_chaining_requested_token_types_supported.
//   - /revoke: RFC 7009, for refresh tokens (the whole family) and for
//     access and ID tokens (by jti, which token exchange then refuses).
//
// Access and ID tokens are RS256 JWTs with iss, sub (the username, or the
// client id for client_credentials), aud (the resources, else the client
// id), azp, client_id, scope, iat, exp and jti, and act when exchanged
// with an actor token or from a token with act; ID tokens add email
// (<user>@example.com), name, auth_time and the user's Options.UserClaims. Every grant with a user also returns an ID
// token, whether or not scope has openid. Refresh tokens are opaque and live
// until revoked, rotated out, or the process exits. ID-JAGs (5 minutes by
// default) have iss, sub, aud, client_id (the client's id at the target
// server), iat, exp and jti, and resource, scope and email when known; they
// are never accepted back.
//
// The server keeps no sign-in session of its own: every authorization shows
// the sign-in page, so any max_age (OpenID Connect Core §3.1.2.1, which must
// be a non-negative integer) is met, and auth_time is when the user signed
// in on that page (or made the password grant; refreshed ID tokens keep it).
//
// Non-goals: no userinfo endpoint, no introspection, no dynamic client
// registration, no implicit or hybrid flows, no public clients, no prompt
// handling, no may_act (RFC 8693 §4.4: any actor token may act for any
// subject), and revoking a refresh token does not revoke the access tokens
// it produced (they are self-contained JWTs).
//
// # The consent flow by hand
//
// The consent form is bound to a cookie (so that another site cannot submit
// it for the user): keep a cookie jar between the two steps. With the
// default client, and a redirect URI nothing needs to listen on:
//
//	V=$(openssl rand -hex 32)   # the PKCE code verifier
//	C=$(printf %s "$V" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d =)
//	CB=http://127.0.0.1:9090/cb
//	T=$(curl -s -c jar "http://127.0.0.1:9400/authorize?response_type=code&client_id=agent&scope=openid&state=s1&redirect_uri=$CB&code_challenge=$C&code_challenge_method=S256" \
//	  | sed -n 's/.*name="form_token" value="\([^"]*\)".*/\1/p')
//	LOC=$(curl -s -b jar -d form_token="$T" -d username=alice -d action=allow -o /dev/null -w '%{redirect_url}' http://127.0.0.1:9400/consent)
//	CODE=$(printf %s "$LOC" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
//	TOKENS=$(curl -s -u agent:agent-secret -d grant_type=authorization_code -d code="$CODE" -d redirect_uri=$CB -d code_verifier="$V" http://127.0.0.1:9400/token)
//	RT=$(printf %s "$TOKENS" | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')
//	curl -s -u agent:agent-secret -d grant_type=refresh_token -d refresh_token="$RT" http://127.0.0.1:9400/token  # new tokens and a new refresh token
//	curl -s -u agent:agent-secret -d grant_type=refresh_token -d refresh_token="$RT" http://127.0.0.1:9400/token  # invalid_grant: $RT was rotated out, and its family is now revoked
//	curl -s -u agent:agent-secret -d token="$RT" http://127.0.0.1:9400/revoke                                     # RFC 7009: always 200
//
// action=deny instead sends the browser back with error=access_denied.
//
// # An actor token by hand
//
// The client's own client_credentials token acts for alice (RFC 8693 §2.1):
//
//	AT=$(curl -s -u agent:agent-secret -d grant_type=password -d username=alice -d password=x http://127.0.0.1:9400/token \
//	  | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
//	ACTOR=$(curl -s -u agent:agent-secret -d grant_type=client_credentials http://127.0.0.1:9400/token \
//	  | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
//	curl -s -u agent:agent-secret -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
//	  -d subject_token="$AT" -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \
//	  -d actor_token="$ACTOR" -d actor_token_type=urn:ietf:params:oauth:token-type:access_token http://127.0.0.1:9400/token
//
// The answer's access token has sub alice and act {"sub":"agent"}. An actor
// token without actor_token_type, or the other way round, is refused with
// invalid_request, as is one that is not this server's, has expired or was
// revoked.
//
// # An ID-JAG by hand
//
// With a client allowed to request ID-JAGs for the target authorization
// server https://as.example/ (behalf dev-idp --id-jag agent=https://as.example/),
// trade the user's ID token for an ID-JAG; the answer's access_token is the
// ID-JAG, with token_type N_A (RFC 8693 §2.2.1):
//
//	ID=$(curl -s -u agent:agent-secret -d grant_type=password -d username=alice -d password=x -d scope=openid http://127.0.0.1:9400/token \
//	  | sed -n 's/.*"id_token":"\([^"]*\)".*/\1/p')
//	curl -s -u agent:agent-secret -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
//	  -d requested_token_type=urn:ietf:params:oauth:token-type:id-jag \
//	  -d subject_token="$ID" -d subject_token_type=urn:ietf:params:oauth:token-type:id_token \
//	  -d audience=https://as.example/ -d resource=https://mcp.example/mcp -d scope=tools.read http://127.0.0.1:9400/token
//
// An audience the client may not use is refused with invalid_target, and an
// ID token that is not this server's, has expired, was revoked or was issued
// to another client with invalid_grant.
package devidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// Client is a registered confidential client: it authenticates with its
// Secret, or with private_key_jwt and the keys at its JWKSURI.
type Client struct {
	ID, Secret string
	// JWKSURI, instead of a Secret, makes the client authenticate with
	// private_key_jwt (RFC 7523 §2.2): client assertions signed by a key
	// of the JWK set there, fetched with Options.HTTP for each request.
	JWKSURI string
	// RedirectURIs are compared exactly (RFC 9700 §4.1.3). Empty means any
	// https URI, or http URI on localhost, 127.0.0.1 or [::1]: a development
	// shortcut so that behalf's callback URL need not be registered first.
	RedirectURIs []string
	// IDJAG lists the target authorization servers this client may request
	// ID-JAGs for (draft-ietf-oauth-identity-assertion-authz-grant); empty
	// means none.
	IDJAG []IDJAGGrant
}

// Options configure New.
type Options struct {
	// Issuer is the server's base URL, e.g. http://127.0.0.1:9400, with no
	// path: the handler serves its endpoints at the root.
	Issuer  string
	Clients []Client
	// HTTP fetches the JWK sets of clients with a JWKSURI; it should come
	// from egress.NewClient. Required when a client has one.
	HTTP *http.Client
	// AccessTokenTTL is the lifetime of access and ID tokens; default 1h.
	AccessTokenTTL time.Duration
	// IDJAGTTL is the lifetime of ID-JAGs, which the draft wants short;
	// default 5m.
	IDJAGTTL time.Duration
	// UserClaims are added to the ID tokens of these usernames, e.g.
	// {"alice": {"groups": ["behalf-admins"]}}: a development stand-in for
	// the group claims a real IdP maps from its directory. The claims the
	// server sets itself (iss, sub, aud, ...) cannot be replaced.
	UserClaims map[string]map[string]any
	// OmitAuthTime leaves auth_time out of ID tokens, as a provider that
	// ignores max_age does: a fault for relying parties' tests.
	OmitAuthTime bool
	// AnonymousTokenExchange serves an RFC 8693 token exchange for an
	// access token that names no client (no Authorization header,
	// client_id or client_secret) without client authentication, which
	// §2.1 leaves to the deployment: a server that trusts the subject token
	// alone, as a credential provider with behalf's
	// onBehalfOfAuthenticationConfig NO_CLIENT expects. The issued token has
	// no client_id or azp, and its aud is the request's resources and
	// audience, which it must name. Off by default.
	AnonymousTokenExchange bool
	// DisableRefreshRotation keeps a refresh token valid after use; the
	// refresh response then has no refresh_token (RFC 6749 §6).
	DisableRefreshRotation bool
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Observe, if set, is called after every authorization decision, token
	// request and revocation, from the request's goroutine. Events hold no
	// secrets.
	Observe func(Event)
}

// Event describes one request's outcome.
type Event struct {
	Endpoint  string // "authorize", "token" or "revoke"
	GrantType string // the grant_type of a token request
	ClientID  string // the client, once known
	Subject   string // the user or client tokens were issued for
	Actor     string // the actor token's subject in a token exchange
	Error     string // the OAuth error code; "" on success
}

// Server is a development identity provider. It is safe for concurrent use.
type Server struct {
	issuer       string
	clients      map[string]Client
	ttl          time.Duration
	rotate       bool
	anonymous    bool // Options.AnonymousTokenExchange
	omitAuthTime bool
	now          func() time.Time
	observe      func(Event)
	atSigner     jose.Signer // typ at+jwt (RFC 9068)
	idSigner     jose.Signer // typ JWT
	// jagSigner signs ID-JAGs (typ oauth-id-jag+jwt), which parse refuses:
	// an IdP must not accept its own ID-JAGs.
	jagSigner   jose.Signer
	idJAGTTL    time.Duration
	issuesIDJAG bool // some client may request ID-JAGs
	userClaims  map[string]map[string]any
	http        *http.Client
	public      jose.JSONWebKey
	handler     http.Handler

	mu        sync.Mutex
	pending   map[string]*pending  // consent forms, by hash of the form token
	codes     map[string]*code     // authorization codes, by hash
	refresh   map[string]*family   // every refresh token issued, by hash
	revoked   map[string]time.Time // revoked jti → its exp
	usedJTIs  map[string]time.Time // hash of client and assertion jti → until when it is refused
	lastPrune time.Time
}

// reservedClaims are the ID token claims the server sets itself.
var reservedClaims = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"azp": true, "client_id": true, "scope": true, "nonce": true, "email": true, "name": true, "auth_time": true}

const (
	codeTTL    = 5 * time.Minute
	consentTTL = 10 * time.Minute
)

// New checks opts and makes a server with a fresh signing key.
func New(opts Options) (*Server, error) {
	issuer, err := parseIssuer(opts.Issuer)
	if err != nil {
		return nil, err
	}
	clients, err := clientTable(opts.Clients)
	if err != nil {
		return nil, err
	}
	s := &Server{
		issuer: issuer, clients: clients, ttl: opts.AccessTokenTTL, idJAGTTL: opts.IDJAGTTL, http: opts.HTTP,
		rotate: !opts.DisableRefreshRotation, anonymous: opts.AnonymousTokenExchange, omitAuthTime: opts.OmitAuthTime, now: opts.Now, observe: opts.Observe, userClaims: opts.UserClaims,
		pending: map[string]*pending{}, codes: map[string]*code{}, refresh: map[string]*family{}, revoked: map[string]time.Time{},
		usedJTIs: map[string]time.Time{},
	}
	if s.ttl <= 0 {
		s.ttl = time.Hour
	}
	for user, cl := range opts.UserClaims {
		for name := range cl {
			if reservedClaims[name] {
				return nil, fmt.Errorf("devidp: UserClaims[%q] sets %s, which the server sets itself", user, name)
			}
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.idJAGTTL <= 0 {
		s.idJAGTTL = 5 * time.Minute
	}
	for _, c := range clients {
		s.issuesIDJAG = s.issuesIDJAG || len(c.IDJAG) > 0
		if c.JWKSURI != "" && s.http == nil {
			return nil, fmt.Errorf("devidp: client %q has a JWKSURI: Options.HTTP is required to fetch it", c.ID)
		}
	}
	if err := s.newSigningKey(); err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.discovery)
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		oauthwire.WriteJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.public}})
	})
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /consent", s.consent)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /revoke", s.revoke)
	s.handler = mux
	return s, nil
}

// parseIssuer returns the issuer URL's scheme and host.
func parseIssuer(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("devidp: issuer %q must be an http(s) URL with a host and no path, query or fragment", issuer)
	}
	return u.Scheme + "://" + u.Host, nil
}

// clientTable checks the clients and indexes them by id.
func clientTable(list []Client) (map[string]Client, error) {
	if len(list) == 0 {
		return nil, errors.New("devidp: at least one client is required")
	}
	clients := make(map[string]Client, len(list))
	for _, c := range list {
		if c.ID == "" || (c.Secret == "") == (c.JWKSURI == "") {
			return nil, errors.New("devidp: every client needs an id, and a secret or a JWK set URI (not both)")
		}
		if u, err := url.Parse(c.JWKSURI); c.JWKSURI != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "") {
			return nil, fmt.Errorf("devidp: client %q: JWK set URI %q must be an absolute http(s) URL without a fragment", c.ID, c.JWKSURI)
		}
		if _, dup := clients[c.ID]; dup {
			return nil, fmt.Errorf("devidp: client %q is listed twice", c.ID)
		}
		for _, r := range c.RedirectURIs {
			if !validRedirect(r) {
				return nil, fmt.Errorf("devidp: client %q: redirect URI %q must be an absolute https URL, or http on a loopback host, without a fragment", c.ID, r)
			}
		}
		if err := checkIDJAGGrants(&c); err != nil {
			return nil, err
		}
		clients[c.ID] = c
	}
	return clients, nil
}

// newSigningKey makes the RS256 key that signs access and ID tokens.
func (s *Server) newSigningKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	jwk := jose.JSONWebKey{Key: key, Algorithm: string(jose.RS256), Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return err
	}
	jwk.KeyID = hex.EncodeToString(tp[:8])
	s.public = jwk.Public()
	for typ, dst := range map[jose.ContentType]*jose.Signer{"at+jwt": &s.atSigner, "JWT": &s.idSigner, typIDJAG: &s.jagSigner} {
		if *dst, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jwk}, (&jose.SignerOptions{}).WithType(typ)); err != nil {
			return err
		}
	}
	return nil
}

// Handler serves every endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

// Issuer is the iss of every token and the base of every endpoint.
func (s *Server) Issuer() string { return s.issuer }

// grantTypes are the grant types /token accepts.
var grantTypes = []string{"authorization_code", "refresh_token", "client_credentials", "password", grantTokenExchange}

const grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange" //nolint:gosec // G101: an RFC 8693 URN, not a credential

// discovery serves OpenID Connect Discovery 1.0 §3 / RFC 8414 §2 metadata.
func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	auth := []string{"client_secret_basic", "client_secret_post"}
	if s.http != nil {
		auth = append(auth, "private_key_jwt")
	}
	m := map[string]any{
		"issuer":                                         s.issuer,
		"authorization_endpoint":                         s.issuer + "/authorize",
		"token_endpoint":                                 s.issuer + "/token",
		"jwks_uri":                                       s.issuer + "/keys",
		"revocation_endpoint":                            s.issuer + "/revoke",
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          grantTypes,
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"token_endpoint_auth_methods_supported":          auth,
		"revocation_endpoint_auth_methods_supported":     auth,
		"code_challenge_methods_supported":               []string{"S256"},
		"claims_supported":                               []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "email", "name"},
		"authorization_response_iss_parameter_supported": true,
	}
	if s.http != nil {
		m["token_endpoint_auth_signing_alg_values_supported"] = oauthwire.ClientAssertionAlgNames()
		m["revocation_endpoint_auth_signing_alg_values_supported"] = oauthwire.ClientAssertionAlgNames()
	}
	s.idJAGMetadata(m)
	oauthwire.WriteJSON(w, http.StatusOK, m)
}

// hash is the map key of a bearer secret, so that the maps never hold one.
func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// pruneLocked drops expired consent forms, codes, revocations and used
// assertion ids, at most once a minute. Refresh token families are kept:
// a rotated-out token must stay recognisable.
func (s *Server) pruneLocked(now time.Time) {
	if now.Sub(s.lastPrune) < time.Minute {
		return
	}
	s.lastPrune = now
	for k, p := range s.pending {
		if now.After(p.exp) {
			delete(s.pending, k)
		}
	}
	for k, c := range s.codes {
		if now.After(c.exp) {
			delete(s.codes, k)
		}
	}
	for k, exp := range s.revoked {
		if now.After(exp) {
			delete(s.revoked, k)
		}
	}
	for k, until := range s.usedJTIs {
		if now.After(until) {
			delete(s.usedJTIs, k)
		}
	}
}

func (s *Server) emit(ev Event) {
	if s.observe != nil {
		s.observe(ev)
	}
}
