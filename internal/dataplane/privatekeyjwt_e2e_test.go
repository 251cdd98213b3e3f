package dataplane_test

// PRIVATE_KEY_JWT end to end: behalf's dev IdP registers a client whose
// keys are at the jwksUrl behalf publishes for the provider, and verifies
// every client assertion with them; behalf signs with a key AWS KMS holds
// (local-kms), or a PKCS#11 token's (SoftHSM2).

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/localkms"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// recordingIDP is a dev IdP whose token requests' forms are recorded.
type recordingIDP struct {
	*devidp.Server
	mu    sync.Mutex
	forms []url.Values
}

// startRecordingIDP runs the dev IdP with opts, recording token requests.
func startRecordingIDP(t *testing.T, opts devidp.Options) *recordingIDP {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	opts.Issuer = "http://" + hs.Listener.Addr().String()
	idp, err := devidp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &recordingIDP{Server: idp}
	hs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/token" {
			body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
			form, _ := url.ParseQuery(string(body))
			r.mu.Lock()
			r.forms = append(r.forms, form)
			r.mu.Unlock()
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		idp.Handler().ServeHTTP(w, req)
	})
	hs.Start()
	t.Cleanup(hs.Close)
	return r
}

// last is the last token request of grant.
func (r *recordingIDP) last(t *testing.T, grant string) url.Values {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.forms) - 1; i >= 0; i-- {
		if r.forms[i].Get("grant_type") == grant {
			return r.forms[i]
		}
	}
	t.Fatalf("no %s request", grant)
	return nil
}

// requests counts the token requests.
func (r *recordingIDP) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.forms)
}

// send posts a client_credentials request with a client assertion to the
// IdP and returns its error code ("" when it issued a token).
func (r *recordingIDP) send(t *testing.T, assertion string) string {
	t.Helper()
	res, err := http.PostForm(r.Issuer()+"/token", url.Values{"grant_type": {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	code, _ := m["error"].(string)
	return code
}

// TestE2EPrivateKeyJWT: on SQLite and PostgreSQL, a PRIVATE_KEY_JWT
// provider whose key is an ECC_NIST_P256 key of AWS KMS (local-kms) vends
// an M2M token, a user's token after her consent (authorization code),
// and a refreshed one, each request's client assertion verified by the
// IdP with the JWK set behalf publishes and carrying the additional header
// and payload claims; the IdP refuses the assertion replayed, altered, or
// signed by another key under its kid; with KMS down the vend fails with
// a 502.
func TestE2EPrivateKeyJWT(t *testing.T) {
	lk := localkms.Start(t, localkms.Options{})
	localkms.Env(t)
	keyARN := lk.CreateKey(t.Context(), kmstypes.KeySpecEccNistP256, kmstypes.KeyUsageTypeSignVerify)
	public := lk.PublicKey(t.Context(), keyARN)
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		s := behalftest.Start(t, b, behalftest.Options{Now: clock.Now, Edit: func(f *config.File) {
			f.Development = true
			f.Vault.AWSKMS = &config.AWSKMSFile{Region: localkms.Region, Endpoint: lk.URL}
		}})
		jwksURL := s.URL + "/identities/oauth2/jwks/idp-jwt"
		idp := startRecordingIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent-jwt", JWKSURI: jwksURL}}, HTTP: &http.Client{Timeout: 5 * time.Second},
			AccessTokenTTL: 10 * time.Minute, Now: clock.Now})
		c, data := s.Control(), s.Data()
		returnURL := s.URL + "/dev/complete"
		if _, err := c.CreateWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
			Name: aws.String("agent-w"), AllowedResourceOauth2ReturnUrls: []string{returnURL}}); err != nil {
			t.Fatal(err)
		}
		createJWTProvider(t, c, idp.Issuer(), keyARN, ctltypes.SigningAlgorithmEs256)

		// M2M: the dev IdP issued the token to agent-jwt.
		m2m, err := getM2M(ctx(t), data, mintPlain(t, data, "agent-w"), "idp-jwt")
		if err != nil {
			t.Fatal(err)
		}
		if claims := unverifiedClaims(t, aws.ToString(m2m.AccessToken)); claims["iss"] != idp.Issuer() || claims["sub"] != "agent-jwt" {
			t.Fatalf("M2M token claims %v", claims)
		}
		sent := idp.last(t, "client_credentials")
		checkAssertion(t, sent, jwksURL, idp.Issuer(), jose.ES256, public)

		// The IdP refuses the assertion again (its jti is used), altered,
		// and signed by another key under behalf's kid.
		genuine := sent.Get("client_assertion")
		if code := idp.send(t, genuine); code != "invalid_client" {
			t.Errorf("replayed assertion: %q", code)
		}
		parts := strings.Split(genuine, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)
		claims["jti"], claims["tenant"] = "fresh-jti", "t-2"
		altered, _ := json.Marshal(claims)
		if code := idp.send(t, parts[0]+"."+base64.RawURLEncoding.EncodeToString(altered)+"."+parts[2]); code != "invalid_client" {
			t.Errorf("altered assertion: %q", code)
		}
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tok, _ := jwt.ParseSigned(genuine, []jose.SignatureAlgorithm{jose.ES256})
		forger, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: tok.Headers[0].KeyID}}, nil)
		claims["jti"] = "forged-jti"
		forged, _ := jwt.Signed(forger).Claims(claims).Serialize()
		if code := idp.send(t, forged); code != "invalid_client" {
			t.Errorf("assertion by another key: %q", code)
		}

		// USER_FEDERATION: alice consents; the code is exchanged with an
		// assertion.
		in := &bedrockagentcore.GetResourceOauth2TokenInput{
			WorkloadIdentityToken: aws.String(mintForUser(t, data, "agent-w", "alice")), ResourceCredentialProviderName: aws.String("idp-jwt"),
			Oauth2Flow: types.Oauth2FlowTypeUserFederation, Scopes: []string{"openid"}, ResourceOauth2ReturnUrl: aws.String(returnURL),
		}
		fed, err := data.GetResourceOauth2Token(ctx(t), in)
		if err != nil || fed.AuthorizationUrl == nil {
			t.Fatalf("USER_FEDERATION: %+v, %v", fed, err)
		}
		if status, page := behalftest.Consent(t, *fed.AuthorizationUrl, "alice", true); status != http.StatusOK {
			t.Fatalf("consent: %d %s", status, page)
		}
		in.SessionUri = fed.SessionUri
		user, err := data.GetResourceOauth2Token(ctx(t), in)
		if err != nil || user.AccessToken == nil {
			t.Fatalf("after consent: %+v, %v", user, err)
		}
		if c := unverifiedClaims(t, aws.ToString(user.AccessToken)); c["sub"] != "alice" {
			t.Errorf("user token claims %v", c)
		}
		checkAssertion(t, idp.last(t, "authorization_code"), jwksURL, idp.Issuer(), jose.ES256, public)

		// Near expiry the token is refreshed, with an assertion too.
		clock.Advance(9*time.Minute + 45*time.Second)
		in.SessionUri = nil
		in.WorkloadIdentityToken = aws.String(mintForUser(t, data, "agent-w", "alice"))
		refreshed, err := data.GetResourceOauth2Token(ctx(t), in)
		if err != nil || refreshed.AccessToken == nil || aws.ToString(refreshed.AccessToken) == aws.ToString(user.AccessToken) {
			t.Fatalf("refresh: %+v, %v", refreshed, err)
		}
		checkAssertion(t, idp.last(t, "refresh_token"), jwksURL, idp.Issuer(), jose.ES256, public)

		// KMS down: the vend fails with a 502 that says the assertion could
		// not be signed, and the IdP is not asked.
		lk.Stop()
		defer lk.Restart()
		before := idp.requests()
		_, err = getM2M(ctx(t), data, mintPlain(t, data, "agent-w"), "idp-jwt", "openid")
		ise := wantAPIError[*types.InternalServerException](t, err)
		if httpStatus(err) != http.StatusBadGateway || !strings.Contains(ise.ErrorMessage(), "could not be signed") || idp.requests() != before {
			t.Errorf("backend down: %d %v", httpStatus(err), err)
		}
	})
}

// createJWTProvider creates idp-jwt, a PRIVATE_KEY_JWT provider at the
// dev IdP issuer for its client agent-jwt, signing with key and alg, with
// an additional header and payload claim.
func createJWTProvider(t *testing.T, c *bedrockagentcorecontrol.Client, issuer, key string, alg ctltypes.SigningAlgorithm) {
	t.Helper()
	_, err := c.CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String("idp-jwt"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String("agent-jwt"), ClientAuthenticationMethod: ctltypes.ClientAuthenticationMethodTypePrivateKeyJwt,
			PrivateKeyJwtConfig: &ctltypes.PrivateKeyJwtConfig{
				PrivateKeySource:       &ctltypes.PrivateKeySourceMemberKmsKeySource{Value: ctltypes.KmsKeySourceType{KmsKeyArn: aws.String(key)}},
				SigningAlgorithm:       alg,
				AdditionalHeaderClaims: map[string]string{"x5t#S256": "thumb-1"}, AdditionalPayloadClaims: map[string]string{"tenant": "t-1"}},
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: issuer + "/.well-known/openid-configuration"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkAssertion checks a token request's client authentication: a
// client assertion and no secret; its header names typ JWT, the key's
// thumbprint as kid and the additional header claim; it verifies with
// the published JWK set, whose one key is the backend's; its claims are
// RFC 7523 §3's for the IdP's issuer, with the additional payload claim.
func checkAssertion(t *testing.T, form url.Values, jwksURL, issuer string, alg jose.SignatureAlgorithm, public crypto.PublicKey) {
	t.Helper()
	if form.Has("client_secret") || form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Fatalf("%s request without a client assertion: %v", form.Get("grant_type"), form)
	}
	res, err := http.Get(jwksURL) //nolint:gosec // G107: the test server
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS: %v %+v", err, set)
	}
	if k, ok := set.Keys[0].Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(public) || set.Keys[0].Algorithm != string(alg) {
		t.Fatalf("the published key is not the backend's %s key", alg)
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatal(err)
	}
	h := tok.Headers[0]
	tp, _ := set.Keys[0].Thumbprint(crypto.SHA256)
	if h.KeyID != set.Keys[0].KeyID || h.KeyID != base64.RawURLEncoding.EncodeToString(tp) || h.ExtraHeaders["typ"] != "JWT" || h.ExtraHeaders["x5t#S256"] != "thumb-1" {
		t.Errorf("%s assertion header %+v", form.Get("grant_type"), h)
	}
	var claims map[string]any
	if err := tok.Claims(set.Keys[0].Key, &claims); err != nil {
		t.Fatalf("the assertion does not verify with the published key: %v", err)
	}
	if claims["iss"] != "agent-jwt" || claims["sub"] != "agent-jwt" || claims["aud"] != issuer || claims["tenant"] != "t-1" || claims["jti"] == nil {
		t.Errorf("%s assertion claims %v", form.Get("grant_type"), claims)
	}
}

// unverifiedClaims reads a JWT's claims without verifying it.
func unverifiedClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("not a JWT: %v", err)
	}
	var c map[string]any
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return c
}
