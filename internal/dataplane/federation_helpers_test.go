package dataplane_test

// Fixtures for the USER_FEDERATION suites (issue 4): a world whose Dex
// also serves a three-legged client registered with behalf's callback URL,
// a browser that follows no redirects, an observer in front of Dex's token
// endpoint, and the official data-plane client recording every response
// body so that tests can look for secrets in them.

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/wat"
)

const (
	// fedProvider is the CustomOauth2 provider users consent to, backed
	// by Dex's client fedClientID.
	fedProvider     = "dex-3lo"
	fedClientID     = "agent-3lo"
	fedClientSecret = "fed-secret-TEST-0123456789abcdef"

	// fedReturnURL is W1's registered return URL: loopback http, with a
	// query of its own that the callback must keep.
	fedReturnURL = "http://127.0.0.1:9999/after-consent?app=demo"
	// fedReturnURL2 is a second registered return URL, https.
	fedReturnURL2 = "https://app.example.com/oauth/done"

	// userRedirect is where Dex sends the users' own logins (to get ID
	// tokens through the browser flow); nothing listens there.
	userRedirect = "http://127.0.0.1:9/user-login"
)

// fedScopes are the scopes the flows ask for: Dex grants offline_access
// with a refresh token.
var fedScopes = []string{"openid", "offline_access", "email"}

// fedWorld is a world set up for three-legged OAuth.
type fedWorld struct {
	*world
	providerID  string
	callbackURL string
	tokens      *tokenLog
	// rec records every response body of data, the runtime principal's
	// recording data-plane client.
	rec  *behalftest.Recorder
	data *bedrockagentcore.Client
	// aliceJWT is a Dex ID token for userClientID (sub PasswordSubject);
	// aliceJWTUser is behalf's key for that user.
	aliceJWT, aliceJWTUser string
}

type fedOptions struct {
	dex  dextest.Options
	edit func(*config.File)
	// extraProviders are added to W1's allowedCredentialProviders.
	extraProviders []string
	// log receives the server's log.
	log *slog.Logger
	// now is the server's clock; default time.Now.
	now func() time.Time
}

func newFedWorld(t *testing.T, b behalftest.Backend, o fedOptions) *fedWorld {
	t.Helper()
	o.dex.Clients = append(o.dex.Clients, dextest.Client{ID: fedClientID, Secret: fedClientSecret})
	w := newWorld(t, b, worldOptions{dex: o.dex, edit: o.edit, log: o.log, now: o.now, w1Policy: map[string]any{
		"allowedInboundAuthorizers":  []string{dexAuthorizer},
		"allowedCredentialProviders": grants(append([]string{apiKeyProvider, m2mProvider, fedProvider}, o.extraProviders...)...),
	}})
	fw := &fedWorld{world: w, tokens: &tokenLog{}}
	w.dex.SetTokenFault(fw.tokens.serve)

	_, err := w.s.Control().CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String(fedProvider), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String(fedClientID), ClientSecret: aws.String(fedClientSecret),
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: w.dex.DiscoveryURL},
		}},
	})
	if err != nil {
		t.Fatalf("CreateOauth2CredentialProvider %s: %v", fedProvider, err)
	}
	fw.callbackURL, fw.providerID = callbackOf(t, w.s, fedProvider)
	w.dex.SetRedirectURIs(t, fedClientID, fw.callbackURL)
	w.dex.SetRedirectURIs(t, userClientID, userRedirect)

	setReturnURLs(t, w.s, workloadW1, fedReturnURL, fedReturnURL2)

	fw.rec = &behalftest.Recorder{}
	fw.data = recordingClient(w.s, w.runtime, fw.rec)
	fw.aliceJWT = w.dex.PasswordLogin(t, userClientID, userClientSecret).IDToken
	fw.aliceJWTUser = wat.UserFromJWT(w.dex.Issuer, dextest.PasswordSubject)
	return fw
}

// callbackOf returns a provider's callbackUrl, as the control plane
// reports it, and the provider id it ends with.
func callbackOf(t *testing.T, s *behalftest.Server, name string) (string, string) {
	t.Helper()
	out, err := s.Control().GetOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("GetOauth2CredentialProvider %s: %v", name, err)
	}
	cb := aws.ToString(out.CallbackUrl)
	p, err := s.Server.Store().GetOAuth2Provider(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	if want := s.URL + "/identities/oauth2/callback/" + p.ID; cb != want {
		t.Fatalf("callbackUrl = %q, want %q", cb, want)
	}
	return cb, p.ID
}

func setReturnURLs(t *testing.T, s *behalftest.Server, workload string, urls ...string) {
	t.Helper()
	if urls == nil {
		urls = []string{}
	}
	if _, err := s.Control().UpdateWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.UpdateWorkloadIdentityInput{
		Name: aws.String(workload), AllowedResourceOauth2ReturnUrls: urls}); err != nil {
		t.Fatalf("UpdateWorkloadIdentity %s: %v", workload, err)
	}
}

// recordingClient is p's official data-plane client, recording response
// bodies in rec.
func recordingClient(s *behalftest.Server, p principal, rec *behalftest.Recorder) *bedrockagentcore.Client {
	return bedrockagentcore.NewFromConfig(behalftest.AWSConfig(p.ID, p.Secret), func(o *bedrockagentcore.Options) {
		o.BaseEndpoint, o.HTTPSignerV4 = aws.String(s.URL), s.Signer()
		o.HTTPClient = rec
	})
}

// oauth2Input is GetResourceOauth2Token's input.
type oauth2Input = bedrockagentcore.GetResourceOauth2TokenInput

// fedInput is a USER_FEDERATION request for the fed provider with the
// standard scopes and return URL; mods adjust it.
func fedInput(token string, mods ...func(*oauth2Input)) *oauth2Input {
	in := &oauth2Input{
		WorkloadIdentityToken: aws.String(token), ResourceCredentialProviderName: aws.String(fedProvider),
		Oauth2Flow: types.Oauth2FlowTypeUserFederation, Scopes: slices.Clone(fedScopes),
		ResourceOauth2ReturnUrl: aws.String(fedReturnURL),
	}
	for _, m := range mods {
		m(in)
	}
	return in
}

func withSession(uri string) func(*oauth2Input) {
	return func(in *oauth2Input) { in.SessionUri = aws.String(uri) }
}

func withScopes(scopes ...string) func(*oauth2Input) {
	return func(in *oauth2Input) { in.Scopes = scopes }
}

func forceAuthentication(in *oauth2Input) { in.ForceAuthentication = aws.Bool(true) }

func withoutReturnURL(in *oauth2Input) {
	in.ResourceOauth2ReturnUrl = nil
}

// fedSession is a started authorization.
type fedSession struct {
	uri, authURL string
	// state is the state behalf put in the authorization URL.
	state string
}

// start asks for a token and requires a new session.
func (fw *fedWorld) start(t *testing.T, in *oauth2Input) fedSession {
	t.Helper()
	out, err := fw.data.GetResourceOauth2Token(ctx(t), in)
	if err != nil {
		t.Fatalf("GetResourceOauth2Token: %v", err)
	}
	return wantSession(t, out)
}

func wantSession(t *testing.T, out *bedrockagentcore.GetResourceOauth2TokenOutput) fedSession {
	t.Helper()
	if out.AccessToken != nil || out.AuthorizationUrl == nil || out.SessionUri == nil || out.SessionStatus != types.SessionStatusInProgress {
		t.Fatalf("want a new session, got accessToken %v, authorizationUrl %v, sessionUri %v, status %q",
			out.AccessToken != nil, out.AuthorizationUrl != nil, aws.ToString(out.SessionUri), out.SessionStatus)
	}
	u, err := url.Parse(*out.AuthorizationUrl)
	if err != nil {
		t.Fatal(err)
	}
	return fedSession{uri: *out.SessionUri, authURL: *out.AuthorizationUrl, state: u.Query().Get("state")}
}

// token asks for a token and requires one.
func (fw *fedWorld) token(t *testing.T, in *oauth2Input) string {
	t.Helper()
	out, err := fw.data.GetResourceOauth2Token(ctx(t), in)
	if err != nil {
		t.Fatalf("GetResourceOauth2Token: %v", err)
	}
	if out.AccessToken == nil || out.AuthorizationUrl != nil || out.SessionStatus != "" {
		t.Fatalf("want a token, got authorizationUrl %v, sessionUri %v, status %q", out.AuthorizationUrl != nil, aws.ToString(out.SessionUri), out.SessionStatus)
	}
	return *out.AccessToken
}

// poll calls again with the session URI and returns the answer.
func (fw *fedWorld) poll(t *testing.T, token, uri string) *bedrockagentcore.GetResourceOauth2TokenOutput {
	t.Helper()
	out, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(token, withSession(uri)))
	if err != nil {
		t.Fatalf("poll %s: %v", uri, err)
	}
	return out
}

// consent plays the user at Dex and the browser at behalf's callback: it
// returns the callback's answer (a redirect to the return URL, normally).
func (fw *fedWorld) consent(t *testing.T, s fedSession) fedPage {
	t.Helper()
	toCallback := fw.dex.Authorize(t, s.authURL)
	if got := toCallback.Scheme + "://" + toCallback.Host + toCallback.Path; got != fw.callbackURL {
		t.Fatalf("Dex redirected to %s, want the callback %s", toCallback, fw.callbackURL)
	}
	return fedBrowse(t, toCallback.String())
}

// consentOK is consent, requiring the redirect to the return URL.
func (fw *fedWorld) consentOK(t *testing.T, s fedSession) *url.URL {
	t.Helper()
	p := fw.consent(t, s)
	if p.status != http.StatusFound {
		t.Fatalf("callback: %d %s", p.status, p.body)
	}
	return p.location(t)
}

func (fw *fedWorld) complete(t *testing.T, uri string, who types.UserIdentifier) error {
	t.Helper()
	_, err := fw.data.CompleteResourceTokenAuth(ctx(t), &bedrockagentcore.CompleteResourceTokenAuthInput{
		SessionUri: aws.String(uri), UserIdentifier: who})
	return err
}

// connect runs the whole flow for a user and returns the access token.
func (fw *fedWorld) connect(t *testing.T, token string, who types.UserIdentifier) string {
	t.Helper()
	s := fw.start(t, fedInput(token))
	fw.consentOK(t, s)
	if err := fw.complete(t, s.uri, who); err != nil {
		t.Fatalf("CompleteResourceTokenAuth: %v", err)
	}
	return fw.token(t, fedInput(token, withSession(s.uri)))
}

func asUserID(id string) types.UserIdentifier { return &types.UserIdentifierMemberUserId{Value: id} }

func asUserToken(jwt string) types.UserIdentifier {
	return &types.UserIdentifierMemberUserToken{Value: jwt}
}

// callbackSubjectJWT logs the Dex user in through the browser flow for
// userClientID and returns the ID token: the same person as aliceJWT at
// Dex, but another behalf user (sub CallbackSubject).
func (fw *fedWorld) callbackSubjectJWT(t *testing.T) string {
	t.Helper()
	conf := &oauth2.Config{ClientID: userClientID, ClientSecret: userClientSecret, RedirectURL: userRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: fw.dex.AuthURL, TokenURL: fw.dex.TokenURL}, Scopes: []string{"openid"}}
	loc := fw.dex.Authorize(t, conf.AuthCodeURL("login"))
	tok, err := conf.Exchange(ctx(t), loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		t.Fatal("no ID token")
	}
	return idToken
}

// connection reads a user's connection for workload W1 from storage.
func (fw *fedWorld) connection(t *testing.T, user string) (storage.Connection, error) {
	t.Helper()
	return fw.s.Server.Store().GetConnection(ctx(t), storage.ConnectionKey{ProviderID: fw.providerID, Workload: workloadW1, User: user})
}

func (fw *fedWorld) storedSession(t *testing.T, uri string) storage.OAuthSession {
	t.Helper()
	sess, err := fw.s.Server.Store().GetOAuthSession(ctx(t), strings.TrimPrefix(uri, "urn:ietf:params:oauth:request_uri:"))
	if err != nil {
		t.Fatalf("session %s: %v", uri, err)
	}
	return sess
}

// verifyAccessToken checks that token is a JWT Dex signed for clientID
// (go-oidc against Dex's discovery and JWKS) and returns its claims.
func verifyAccessToken(t *testing.T, d *dextest.Dex, clientID, token string) map[string]any {
	t.Helper()
	p, err := oidc.NewProvider(ctx(t), d.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx(t), token)
	if err != nil {
		t.Fatalf("not a Dex JWT for %s: %v", clientID, err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// execOne runs a statement that must change exactly one row.
func execOne(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	res, err := db.ExecContext(ctx(t), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s: %d rows", q, n)
	}
}

func pkceS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// tokenLog observes Dex's token endpoint (a dextest fault that reads the
// form and lets Dex answer), and can inject a fault of its own.
type tokenLog struct {
	mu    sync.Mutex
	forms []url.Values
	fault func(w http.ResponseWriter, form url.Values) bool
}

func (l *tokenLog) serve(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		return false
	}
	form := url.Values{}
	for k, v := range r.PostForm {
		form[k] = slices.Clone(v)
	}
	if id, _, ok := r.BasicAuth(); ok {
		form.Set("(basic client_id)", id)
	}
	l.mu.Lock()
	l.forms = append(l.forms, form)
	f := l.fault
	l.mu.Unlock()
	return f != nil && f(w, form)
}

// setFault installs f in front of Dex for the rest of the test, or until
// replaced; nil removes it.
func (l *tokenLog) setFault(f func(w http.ResponseWriter, form url.Values) bool) {
	l.mu.Lock()
	l.fault = f
	l.mu.Unlock()
}

// grant returns the forms of the requests with this grant_type.
func (l *tokenLog) grant(g string) []url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []url.Values
	for _, f := range l.forms {
		if f.Get("grant_type") == g {
			out = append(out, f)
		}
	}
	return out
}

// values returns every value of the named form member across requests.
func (l *tokenLog) values(name string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, f := range l.forms {
		out = append(out, f[name]...)
	}
	return out
}

func (l *tokenLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.forms)
}

// answerJSON is a fault answering status and body, for grant g only.
func tokenFault(g string, status int, contentType, body string) func(http.ResponseWriter, url.Values) bool {
	return func(w http.ResponseWriter, form url.Values) bool {
		if form.Get("grant_type") != g {
			return false
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write([]byte(body))
		return true
	}
}

// page is a browser's view of one response.
type fedPage struct {
	status int
	header http.Header
	body   string
}

func (p fedPage) location(t *testing.T) *url.URL {
	t.Helper()
	u, err := url.Parse(p.header.Get("Location"))
	if err != nil || p.header.Get("Location") == "" {
		t.Fatalf("no Location in %d %s", p.status, p.body)
	}
	return u
}

// browse GETs rawURL as a browser would, without following redirects.
func fedBrowse(t *testing.T, rawURL string) fedPage {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return fedPage{status: res.StatusCode, header: res.Header, body: string(body)}
}

// wantHTMLPage checks the headers every page behalf shows a person has.
func wantHTMLPage(t *testing.T, p fedPage, status int, phrases ...string) {
	t.Helper()
	if p.status != status {
		t.Errorf("page status %d, want %d: %s", p.status, status, p.body)
	}
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		p.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("Content-Security-Policy %q, X-Frame-Options %q: the page may be framed", csp, p.header.Get("X-Frame-Options"))
	}
	if cc := p.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	for _, ph := range phrases {
		if !strings.Contains(p.body, ph) {
			t.Errorf("page does not say %q:\n%s", ph, p.body)
		}
	}
}

// dumpTable reads every row of a table of the server's database, as text.
func dumpTable(t *testing.T, s *behalftest.Server, table string) []byte {
	t.Helper()
	db, _ := rawDB(t, s)
	rows, err := db.QueryContext(ctx(t), "SELECT * FROM "+table) //nolint:gosec // G202: the tests name the table
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out bytes.Buffer
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				out.Write(b)
			} else {
				fmt.Fprint(&out, v)
			}
			out.WriteByte('|')
		}
		out.WriteByte('\n')
	}
	if out.Len() == 0 {
		t.Fatalf("table %s is empty", table)
	}
	return out.Bytes()
}

// secretSet collects values that must never be shown.
type secretSet struct {
	mu   sync.Mutex
	vals map[string]string // value → what it is
}

func (s *secretSet) add(what string, vals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vals == nil {
		s.vals = map[string]string{}
	}
	for _, v := range vals {
		if len(v) >= 8 {
			s.vals[v] = what
		}
	}
}

// checkAbsent fails t for each secret found in any of bodies.
func (s *secretSet) checkAbsent(t *testing.T, where string, bodies ...[]byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, what := range s.vals {
		for _, b := range bodies {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s contains the %s", where, what)
				break
			}
		}
	}
}

// checkRecorder fails t for each secret in a body rec recorded.
func (s *secretSet) checkRecorder(t *testing.T, where string, rec *behalftest.Recorder) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, what := range s.vals {
		if rec.Contains(v) {
			t.Errorf("%s contains the %s", where, what)
		}
	}
}
