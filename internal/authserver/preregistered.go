package authserver

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"

	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// Preregistered is the registry of the configured clients alone: public
// clients and client_secret_basic or client_secret_post ones. It serves
// until package clients' Registry (metadata documents, dynamic
// registration, private_key_jwt) is wired in its place.
type Preregistered struct {
	clients map[string]clients.Client
	secrets map[string][]byte // client id → SHA-256 of the secret
}

// NewPreregistered builds the registry; secrets maps a client id to its
// secret, read from its clientSecretFile.
func NewPreregistered(cfg []config.AuthServerClientFile, secrets map[string]string) *Preregistered {
	p := &Preregistered{clients: map[string]clients.Client{}, secrets: map[string][]byte{}}
	for _, c := range cfg {
		app := "web"
		if !config.ValidRedirectURI(c.RedirectURIs[0]) || localOnly(c.RedirectURIs) {
			app = "native"
		}
		p.clients[c.ClientID] = clients.Client{ID: c.ClientID, Name: c.ClientName, Kind: clients.Preregistered, RedirectURIs: c.RedirectURIs,
			GrantTypes: c.GrantTypes, ApplicationType: app, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod}
		if s, ok := secrets[c.ClientID]; ok {
			p.secrets[c.ClientID] = oauthwire.Hash(s)
		}
	}
	return p
}

// Resolve finds a configured client.
func (p *Preregistered) Resolve(_ context.Context, clientID string) (clients.Client, *oauthwire.Error) {
	c, ok := p.clients[clientID]
	if !ok {
		return clients.Client{}, oauthwire.Errorf("invalid_client", "unknown client")
	}
	return c, nil
}

// Authenticate authenticates a client by its registered method (RFC 6749
// §2.3.1); a public client only names itself.
func (p *Preregistered) Authenticate(ctx context.Context, r *http.Request, form url.Values) (clients.Client, *oauthwire.Error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || form.Has("client_secret") || (form.Has("client_id") && form.Get("client_id") != id) {
			return clients.Client{}, oauthwire.Errorf("invalid_client", "client authentication failed")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	c, e := p.Resolve(ctx, id)
	if e != nil {
		return clients.Client{}, e
	}
	want := config.AuthMethodNone
	switch {
	case basic:
		want = config.AuthMethodSecretBasic
	case form.Has("client_secret"):
		want = config.AuthMethodSecretPost
	}
	if want != c.TokenEndpointAuthMethod || want != config.AuthMethodNone &&
		subtle.ConstantTimeCompare(oauthwire.Hash(secret), p.secrets[c.ID]) != 1 {
		return clients.Client{}, oauthwire.Errorf("invalid_client", "client authentication failed")
	}
	return c, nil
}

// Register refuses: there is no dynamic registration without package
// clients.
func (p *Preregistered) Register(w http.ResponseWriter, _ *http.Request) {
	oauthwire.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "invalid_request", "error_description": "dynamic client registration is not enabled"})
}

// Metadata names the authentication methods.
func (p *Preregistered) Metadata(m map[string]any) {
	m["token_endpoint_auth_methods_supported"] = []string{config.AuthMethodNone, config.AuthMethodSecretBasic, config.AuthMethodSecretPost}
}
