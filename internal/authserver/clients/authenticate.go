package clients

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// maxJWKSBytes bounds a client's JWKS.
const maxJWKSBytes = 64 << 10

// Authenticate authenticates the client of a token, revocation or
// introspection request (RFC 6749 §2.3) by the one method it presents,
// which must be the client's registered method: a public client's
// client_id, client_secret_basic (RFC 6749 §2.3.1; id and secret are
// form-urlencoded inside the header), client_secret_post, or
// private_key_jwt (RFC 7523 §2.2). A failure is invalid_client (401),
// except a request presenting no or several methods, which is
// invalid_request. form is the request's parsed body.
func (r *Registry) Authenticate(ctx context.Context, req *http.Request, form url.Values) (Client, *oauthwire.Error) {
	basicID, basicSecret, basic := req.BasicAuth()
	_, post := form["client_secret"]
	_, jwtAuth := form["client_assertion"]
	n := 0
	for _, used := range []bool{basic, post, jwtAuth} {
		if used {
			n++
		}
	}
	if n > 1 {
		return Client{}, oauthwire.Errorf("invalid_request", "the request uses more than one client authentication method")
	}
	formID := form.Get("client_id")
	switch {
	case basic:
		id, err1 := url.QueryUnescape(basicID)
		secret, err2 := url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return Client{}, oauthwire.Errorf("invalid_client", "the Authorization header's client id or secret is not form-urlencoded (RFC 6749 §2.3.1)")
		}
		if formID != "" && formID != id {
			return Client{}, oauthwire.Errorf("invalid_request", "client_id differs from the client authenticated in the Authorization header")
		}
		return r.authenticateSecret(ctx, id, secret, AuthClientSecretBasic)
	case post:
		return r.authenticateSecret(ctx, formID, form.Get("client_secret"), AuthClientSecretPost)
	case jwtAuth:
		return r.authenticateAssertion(ctx, form)
	case formID == "":
		return Client{}, oauthwire.Errorf("invalid_client", "the request names no client: send client_id, or authenticate the client")
	}
	e, oe := r.lookupClient(ctx, formID)
	if oe != nil {
		return Client{}, oe
	}
	if !e.Public() {
		return Client{}, oauthwire.Errorf("invalid_client", "the client must authenticate with %s", e.TokenEndpointAuthMethod)
	}
	return e.Client, nil
}

// lookupClient is lookup for client authentication: an unknown or invalid
// client is invalid_client whatever lookup said.
func (r *Registry) lookupClient(ctx context.Context, id string) (entry, *oauthwire.Error) {
	e, oe := r.lookup(ctx, id)
	if oe != nil && oe.Code == "invalid_request" {
		oe = oauthwire.Errorf("invalid_client", "%s", oe.Description)
	}
	return e, oe
}

// authenticateSecret checks a client secret against the SHA-256 kept of
// it, in constant time.
func (r *Registry) authenticateSecret(ctx context.Context, id, secret, method string) (Client, *oauthwire.Error) {
	e, oe := r.lookupClient(ctx, id)
	if oe != nil {
		return Client{}, oe
	}
	if e.TokenEndpointAuthMethod != method {
		return Client{}, oauthwire.Errorf("invalid_client", "the client must authenticate with %s, not %s", e.TokenEndpointAuthMethod, method)
	}
	if len(e.secretHash) == 0 || subtle.ConstantTimeCompare(oauthwire.Hash(secret), e.secretHash) != 1 {
		return Client{}, oauthwire.Errorf("invalid_client", "client authentication failed")
	}
	return e.Client, nil
}

// authenticateAssertion verifies a private_key_jwt client assertion
// (oauthwire.ClientAssertion: RFC 7523 §3 with aud naming the issuer or
// the token endpoint) and uses its jti once.
func (r *Registry) authenticateAssertion(ctx context.Context, form url.Values) (Client, *oauthwire.Error) {
	a, oe := oauthwire.ParseClientAssertion(form)
	if oe != nil {
		return Client{}, oe
	}
	id := a.ClientID
	e, oe := r.lookupClient(ctx, id)
	if oe != nil {
		return Client{}, oe
	}
	if e.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
		return Client{}, oauthwire.Errorf("invalid_client", "the client must authenticate with %s, not private_key_jwt", e.TokenEndpointAuthMethod)
	}
	keys, oe := r.assertionKeys(ctx, e, a)
	if oe != nil {
		return Client{}, oe
	}
	jti, until, oe := a.Verify(keys, []string{r.o.Issuer, r.o.TokenEndpoint}, r.o.Now())
	if oe != nil {
		return Client{}, oe
	}
	// RFC 7523 §3 item 7: the jti is remembered as long as the assertion
	// is accepted, scoped by the client that made it.
	switch err := r.o.Store.UseTokenID(ctx, assertionKey(id, jti), until); {
	case errors.Is(err, storage.ErrAlreadyExists):
		return Client{}, oauthwire.Errorf("invalid_client", "the client assertion's jti was already used")
	case err != nil:
		r.o.Log.LogAttrs(ctx, slog.LevelError, "recording a client assertion's jti failed", logging.Err(err))
		return Client{}, oauthwire.Errorf("server_error", "the client assertion could not be recorded")
	}
	return e.Client, nil
}

// assertionKey is the one-time id of a client's assertion; the client id,
// which may be a 2000-byte URL, is hashed to keep the key short.
func assertionKey(clientID, jti string) string {
	return "client-assertion:" + base64.RawURLEncoding.EncodeToString(oauthwire.Hash(clientID)) + "#" + jti
}

// assertionKeys are the client's keys: its jwks, or those at its
// jwks_uri, fetched once more when none has the assertion's kid (the
// client may have rotated).
func (r *Registry) assertionKeys(ctx context.Context, e entry, a *oauthwire.ClientAssertion) ([]jose.JSONWebKey, *oauthwire.Error) {
	if e.jwksURI == "" {
		return e.jwks, nil
	}
	keys, oe := r.clientKeys(ctx, e.jwksURI)
	if oe != nil || a.HasKeyFor(keys) {
		return keys, oe
	}
	r.keys.drop(e.jwksURI)
	return r.clientKeys(ctx, e.jwksURI)
}

// clientKeys returns the keys at a client's jwks_uri, cached like
// metadata documents. Every client can make behalf fetch its own URL at
// most once per assertion; a document's URL is checked like a client's.
func (r *Registry) clientKeys(ctx context.Context, jwksURI string) ([]jose.JSONWebKey, *oauthwire.Error) {
	return r.keys.load(ctx, jwksURI, func(ctx context.Context) ([]jose.JSONWebKey, time.Duration, *oauthwire.Error) {
		body, ttl, err := r.fetch(ctx, jwksURI, maxJWKSBytes, telemetry.EndpointJWKS)
		if err != nil {
			return nil, 0, oauthwire.Errorf("invalid_client", "the client's jwks_uri could not be fetched: %s", err.Error())
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(body, &set); err != nil {
			return nil, 0, oauthwire.Errorf("invalid_client", "the client's jwks_uri is not a JWK set")
		}
		if err := checkKeys(set.Keys); err != nil {
			return nil, 0, oauthwire.Errorf("invalid_client", "the client's JWK set %s", err.Error())
		}
		return set.Keys, ttl, nil
	})
}
