package devidp

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// errJWKS is a jwks_uri that did not answer with a JWK set.
var errJWKS = errors.New("devidp: the jwks_uri did not answer 200 with at most 64 KiB")

const (
	// maxJWKSBytes bounds a client's JWK set.
	maxJWKSBytes = 64 << 10
	// jwksTimeout bounds fetching it.
	jwksTimeout = 5 * time.Second
)

// authenticate authenticates the client of a token or revocation request
// by the one method it uses (RFC 6749 §2.3): client_secret_basic or
// client_secret_post for a client with a secret, private_key_jwt (RFC
// 7523 §2.2) for one with a jwks_uri.
func (s *Server) authenticate(r *http.Request, form url.Values) (Client, *oauthwire.Error) {
	id, secret, basic := r.BasicAuth()
	if form.Has("client_assertion") {
		if basic || form.Has("client_secret") {
			return Client{}, oauthwire.Errorf("invalid_request", "use one client authentication method, not a client assertion and a secret both")
		}
		return s.authenticateAssertion(r.Context(), form)
	}
	if basic {
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		switch {
		case err1 != nil || err2 != nil:
			return Client{}, oauthwire.Errorf("invalid_client", "the Basic credentials are not form-urlencoded")
		case form.Has("client_secret"):
			return Client{}, oauthwire.Errorf("invalid_request", "use one client authentication method, not Basic and client_secret both")
		case form.Has("client_id") && form.Get("client_id") != id:
			return Client{}, oauthwire.Errorf("invalid_request", "client_id differs from the Basic credentials")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	c, ok := s.clients[id]
	if !ok || c.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return Client{}, oauthwire.Errorf("invalid_client", "client authentication failed")
	}
	return c, nil
}

// authenticateAssertion verifies a private_key_jwt client assertion with
// the keys at the client's jwks_uri, fetched for each request (RFC 7523
// §3, as oauthwire.ClientAssertion checks it; aud must name this issuer
// or its token endpoint), and uses its jti once.
func (s *Server) authenticateAssertion(ctx context.Context, form url.Values) (Client, *oauthwire.Error) {
	a, oe := oauthwire.ParseClientAssertion(form)
	if oe != nil {
		return Client{}, oe
	}
	c, ok := s.clients[a.ClientID]
	if !ok || c.JWKSURI == "" {
		return Client{}, oauthwire.Errorf("invalid_client", "client authentication failed")
	}
	keys, err := s.clientKeys(ctx, c.JWKSURI)
	if err != nil {
		return Client{}, oauthwire.Errorf("invalid_client", "the client's jwks_uri could not be fetched as a JWK set")
	}
	now := s.now()
	jti, until, oe := a.Verify(keys, []string{s.issuer, s.issuer + "/token"}, now)
	if oe != nil {
		return Client{}, oe
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	key := hash(c.ID + "#" + jti)
	if _, used := s.usedJTIs[key]; used {
		return Client{}, oauthwire.Errorf("invalid_client", "the client assertion's jti was already used")
	}
	s.usedJTIs[key] = until
	return c, nil
}

// clientKeys fetches the JWK set at a client's jwks_uri.
func (s *Server) clientKeys(ctx context.Context, jwksURI string) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURI, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil || res.StatusCode != http.StatusOK || len(body) > maxJWKSBytes {
		return nil, errJWKS
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, err
	}
	return set.Keys, nil
}
