package gateway_test

// Enterprise-managed authorization (the MCP specification's extension,
// SEP-990): the official MCP Go SDK's extauth.EnterpriseHandler signs the
// user in at the enterprise IdP (a dev IdP), trades the ID token there
// for an ID-JAG whose audience is behalf (RFC 8693), and redeems it at
// behalf's token endpoint with the jwt-bearer grant (RFC 7523) for an
// access token to the mcp route: no browser, no consent page.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth/extauth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/wat"
)

// The MCP client's id and secret at the enterprise IdP, and its id at
// behalf, which the IdP's ID-JAG mapping names (the draft's cross-domain
// client_id); otherAgent is another client of behalf allowed the grant.
const (
	ssoClient  = "desktop-sso"
	ssoSecret  = "desktop-sso-secret"
	entAgent   = "enterprise-agent"
	entSecret  = "enterprise-agent-secret-0123456789"
	otherAgent = "other-agent"
	// otherAS is an authorization server other than behalf, for which
	// the enterprise IdP also issues ID-JAGs.
	otherAS = "http://127.0.0.1:1/as"
	// entAuthorizer is the inbound authorizer of the enterprise IdP's
	// ID tokens, issued to ssoClient.
	entAuthorizer = "enterprise"
)

// enterpriseWorld is an asWorld whose authorization server trusts the
// ID-JAGs of the enterprise IdP ent and not those of rogue, a dev IdP
// with the same clients.
type enterpriseWorld struct {
	*asWorld
	ent, rogue *devidp.Server
	// entClock is ent's, which a test may turn back for an expired ID-JAG.
	entClock *testclock.Clock
}

func newEnterpriseWorld(t *testing.T, b behalftest.Backend) *enterpriseWorld {
	t.Helper()
	ew := &enterpriseWorld{entClock: testclock.Running()}
	secret := filepath.Join(t.TempDir(), "agent-secret")
	if err := os.WriteFile(secret, []byte(entSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	ew.asWorld = newASWorld(t, b, func(f *config.File, as *config.AuthorizationServerFile) {
		clients := []devidp.Client{{ID: ssoClient, Secret: ssoSecret, IDJAG: []devidp.IDJAGGrant{
			{Audience: f.PublicURL, ClientID: entAgent}, {Audience: otherAS, ClientID: entAgent}}}}
		ew.ent = behalftest.DevIDP(t, devidp.Options{Clients: clients, Now: ew.entClock.Now})
		ew.rogue = behalftest.DevIDP(t, devidp.Options{Clients: clients})
		for _, id := range []string{entAgent, otherAgent} {
			as.Clients = append(as.Clients, config.AuthServerClientFile{ClientID: id, ClientSecretFile: secret,
				TokenEndpointAuthMethod: "client_secret_post", GrantTypes: []string{config.GrantJWTBearer}})
		}
		as.IDJag.Issuers = []config.AuthServerIDJagIssuerFile{{Issuer: ew.ent.Issuer()}}
		// Agents' users sign in at the enterprise IdP too: their ID tokens
		// mint workload access tokens (behalf as the MCP client's broker).
		f.InboundAuthorizers = append(f.InboundAuthorizers, config.InboundAuthorizerFile{Name: entAuthorizer,
			DiscoveryURL: ew.ent.Issuer() + "/.well-known/openid-configuration", AllowedAudience: []string{ssoClient}})
	})
	return ew
}

// TestMCPRouteEnterpriseManaged: on SQLite and PostgreSQL, the SDK's
// EnterpriseHandler reaches the mcp route as alice of the enterprise IdP
// without ever meeting behalf's authorization or consent endpoints; the
// grant is audited with her user key. ID-JAGs for another authorization
// server, from an untrusted issuer, redeemed twice, expired, redeemed by
// another client, or that are not ID-JAGs (typ) are refused with
// invalid_grant, each audited.
func TestMCPRouteEnterpriseManaged(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		ew := newEnterpriseWorld(t, b)
		seen := &requestLog{base: http.DefaultTransport}
		hc := &http.Client{Transport: seen, Timeout: 30 * time.Second}
		h, err := extauth.NewEnterpriseHandler(ew.handlerConfig(ew.ent, hc))
		if err != nil {
			t.Fatal(err)
		}
		ew.callTools(t, h, hc)
		alice := wat.UserFromJWT(ew.ent.Issuer(), "alice")
		ew.checkUser(t, alice)
		// Sign-in and exchange at the IdP, the grant at behalf's token
		// endpoint: never its authorization endpoint or consent page.
		urls := seen.urls()
		for _, u := range urls {
			if strings.HasPrefix(u, ew.issuer+"/oauth2/") && u != ew.issuer+"/oauth2/token" {
				t.Errorf("the enterprise flow went to %s", u)
			}
		}
		if !slices.Contains(urls, ew.ent.Issuer()+"/token") || !slices.Contains(urls, ew.issuer+"/oauth2/token") {
			t.Errorf("the enterprise flow's requests: %v", urls)
		}
		ew.checkRefusals(t)
		// Through the handler too, an untrusted IdP's ID-JAG is refused
		// (here with an error the SDK wraps) and no token is used.
		h, err = extauth.NewEnterpriseHandler(ew.handlerConfig(ew.rogue, nil))
		if err != nil {
			t.Fatal(err)
		}
		session, err := ew.connect(t, h, nil)
		if err == nil {
			_ = session.Close()
		}
		if oauthError(err) != "invalid_grant" {
			t.Errorf("EnterpriseHandler with an untrusted IdP: %v, want invalid_grant", err)
		}
		ew.checkLastRefusal(t, "EnterpriseHandler with an untrusted IdP", entAgent, "invalid_grant:issuer")

		// Alice's two grants: the handler's, for both scopes; the replay
		// case's first redemption, for mcp:use.
		var grants []string
		for _, r := range ew.auditRecords(t) {
			switch {
			case r.Operation == "OAuthAuthorize" || r.Operation == "OAuthConsent":
				t.Errorf("the enterprise flow was recorded at the authorization endpoint: %+v", r)
			case r.Operation == "OAuthToken" && r.Flow == config.GrantJWTBearer && r.Outcome == "success":
				grants = append(grants, strings.Join(r.Scopes, " "))
				if r.User != alice || r.Principal != "client:"+entAgent || r.Resource != ew.resource {
					t.Errorf("the ID-JAG's redemption: %+v, want alice's for %s", r, ew.resource)
				}
			}
		}
		if len(grants) != 2 || !sameScopes(grants[0], mcpScope+" "+mcpAdmin) || grants[1] != mcpScope {
			t.Errorf("ID-JAGs redeemed for scopes %q, want [%s %s] then %s", grants, mcpScope, mcpAdmin, mcpScope)
		}
	})
}

// handlerConfig is the EnterpriseHandler's configuration with idp as the
// enterprise IdP, for both of the route's scopes.
func (ew *enterpriseWorld) handlerConfig(idp *devidp.Server, hc *http.Client) *extauth.EnterpriseHandlerConfig {
	return &extauth.EnterpriseHandlerConfig{
		IdPIssuerURL:     idp.Issuer(),
		IdPCredentials:   &oauthex.ClientCredentials{ClientID: ssoClient, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: ssoSecret}},
		MCPAuthServerURL: ew.issuer,
		MCPResourceURI:   ew.resource,
		MCPCredentials:   &oauthex.ClientCredentials{ClientID: entAgent, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: entSecret}},
		MCPScopes:        []string{mcpScope, mcpAdmin},
		IDTokenFetcher: func(ctx context.Context) (*oauth2.Token, error) {
			// The user's sign-in at the IdP: the password grant stands
			// in for the browser login the SDK leaves to the application.
			if hc != nil {
				ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
			}
			return ssoConfig(idp).PasswordCredentialsToken(ctx, "alice", "pw")
		},
		HTTPClient: hc,
	}
}

func ssoConfig(idp *devidp.Server) *oauth2.Config {
	return &oauth2.Config{ClientID: ssoClient, ClientSecret: ssoSecret, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{TokenURL: idp.Issuer() + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
}

// checkRefusals redeems broken ID-JAGs at behalf as the SDK's handler
// does (client_secret_post, RFC 7523 §2.1), each refused with
// invalid_grant and a description naming the failing check.
func (ew *enterpriseWorld) checkRefusals(t *testing.T) {
	t.Helper()
	jag := func(idp *devidp.Server, audience string) string {
		return behalftest.DevIDJAG(t, idp, ssoClient, ssoSecret, "alice", audience, url.Values{"resource": {ew.resource}, "scope": {mcpScope}})
	}
	replayed := jag(ew.ent, ew.issuer)
	if err := ew.redeem(t, replayed, entAgent); err != nil {
		t.Fatalf("a fresh ID-JAG: %v", err)
	}
	ew.entClock.Advance(-10 * time.Minute) // past the ID-JAG's 5 minutes and behalf's 30s leeway
	expired := jag(ew.ent, ew.issuer)
	ew.entClock.Advance(10 * time.Minute)
	idToken, err := ssoConfig(ew.ent).PasswordCredentialsToken(t.Context(), "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, assertion, client, check, reason string
	}{
		{"wrong aud", jag(ew.ent, otherAS), entAgent, "aud", "aud"},
		{"untrusted issuer", jag(ew.rogue, ew.issuer), entAgent, "issuer is not trusted", "issuer"},
		{"replayed jti", replayed, entAgent, "already used", "replayed"},
		{"expired", expired, entAgent, "expired", "expired"},
		{"wrong client_id", jag(ew.ent, ew.issuer), otherAgent, "client_id", "client_id"},
		{"wrong typ", idToken.Extra("id_token").(string), entAgent, "typ", "typ"},
	} {
		err := ew.redeem(t, c.assertion, c.client)
		if re, ok := errors.AsType[*oauth2.RetrieveError](err); !ok || re.ErrorCode != "invalid_grant" || !strings.Contains(re.ErrorDescription, c.check) ||
			re.Response.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %v, want invalid_grant about %s", c.name, err, c.check)
		}
		ew.checkLastRefusal(t, c.name, c.client, "invalid_grant:"+c.reason)
	}
}

// checkLastRefusal: the last token request recorded is client's
// jwt-bearer grant refused as errorType says (invalid_grant and the check
// that failed).
func (ew *enterpriseWorld) checkLastRefusal(t *testing.T, name, client, errorType string) {
	t.Helper()
	recs := ew.auditRecords(t)
	for _, r := range slices.Backward(recs) {
		if r.Operation == "OAuthToken" {
			if r.Flow != config.GrantJWTBearer || r.Outcome != "failure" || r.ErrorType != errorType || r.Principal != "client:"+client || r.User != "" {
				t.Errorf("%s: recorded as %+v", name, r)
			}
			return
		}
	}
	t.Errorf("%s: no token request recorded", name)
}

// redeem is the jwt-bearer grant of the SDK's EnterpriseHandler: the
// assertion, and the client's id and secret in the form.
func (ew *enterpriseWorld) redeem(t *testing.T, assertion, client string) error {
	t.Helper()
	cfg := &oauth2.Config{ClientID: client, ClientSecret: entSecret,
		Endpoint: oauth2.Endpoint{TokenURL: ew.issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	_, err := cfg.Exchange(t.Context(), "", oauth2.SetAuthURLParam("grant_type", config.GrantJWTBearer), oauth2.SetAuthURLParam("assertion", assertion))
	return err
}

// oauthError is the OAuth error code in err's chain, if any.
func oauthError(err error) string {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		return re.ErrorCode
	}
	return ""
}

// requestLog is a transport that notes every URL it is asked for.
type requestLog struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	u := *r.URL
	u.RawQuery = ""
	l.seen = append(l.seen, u.String())
	l.mu.Unlock()
	return l.base.RoundTrip(r)
}

func (l *requestLog) urls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen)
}
