package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/behalf-dev/behalf/internal/cli"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/localkms"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
)

// The README's data-plane walk-through, as a test: the dev IdP as the
// user's identity provider and as an OAuth2 provider, behalf configured to
// trust it, and this program exchanging a user's JWT for a workload access
// token, an API key and an M2M token.
func TestVend(t *testing.T) {
	s, userJWT, _ := vendWorld(t, nil)
	var out bytes.Buffer
	err := run(context.Background(), behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret), input{
		Endpoint: s.URL, Workload: "my-agent", UserJWT: userJWT, APIKey: "weather", OAuth2M2M: "dev-idp"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"workload access token for my-agent", "API key from weather: weather-… (19 characters)", "M2M access token from dev-idp: eyJ"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "weather-api-key-123") {
		t.Error("the example printed the whole API key")
	}
}

// TestVendOnBehalfOf is the README's on-behalf-of walk-through: the
// provider created with the CLI command the README (and dev-idp's banner)
// shows, then this program with -obo, whose token is alice's with the
// provider's client as the actor (RFC 8693 §4.1).
func TestVendOnBehalfOf(t *testing.T) {
	s, userJWT, issuer := vendWorld(t, nil)
	var stdout, stderr bytes.Buffer
	if code := cli.Execute(context.Background(), []string{"provider", "oauth2", "create", "dev-idp-obo", "--vendor", "CustomOauth2",
		"--discovery-url", issuer + "/.well-known/openid-configuration", "--client-id", "agent", "--client-secret", "-",
		"--on-behalf-of", "TOKEN_EXCHANGE", "--actor-token", "M2M",
		"--endpoint", s.URL, "--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret},
		strings.NewReader("agent-secret"), &stdout, &stderr); code != 0 {
		t.Fatalf("provider oauth2 create: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "on behalf of  TOKEN_EXCHANGE, actor token M2M") {
		t.Errorf("create table:\n%s", stdout.String())
	}
	var out bytes.Buffer
	err := run(context.Background(), behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret), input{
		Endpoint: s.URL, Workload: "my-agent", UserJWT: userJWT, APIKey: "weather", OAuth2M2M: "dev-idp", OnBehalfOf: "dev-idp-obo"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"M2M access token from dev-idp: eyJ", "on-behalf-of token from dev-idp-obo: eyJ", "\n  sub: alice, act.sub: agent\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestActors(t *testing.T) {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for token, want := range map[string]string{
		seg(`{"alg":"RS256"}`) + "." + seg(`{"sub":"alice","act":{"sub":"agent","act":{"sub":"gw"}}}`) + ".sig": "sub: alice, act.sub: agent",
		seg(`{"alg":"RS256"}`) + "." + seg(`{"sub":"alice"}`) + ".sig":                                          "sub: alice (no act claim: no actor)",
		"opaque-token": "(not a JWT: no claims to show)",
		"a.!!.c":       "(not a JWT: no claims to show)",
	} {
		if got := actors(token); got != want {
			t.Errorf("actors(%q) = %q, want %q", token, got, want)
		}
	}
}

// TestVendTraced is the README's observability walk-through: with an OTLP
// endpoint in the environment, the agent's calls carry its trace context,
// so that behalf's server span of GetResourceOauth2Token is the child of the
// agent's client span, and behalf's call to the token endpoint is under it;
// no secret is in anything exported.
func TestVendTraced(t *testing.T) {
	rcv := otlptest.New(t)
	s, userJWT, _ := vendWorld(t, func(f *config.File) {
		f.Telemetry.OTLP.Endpoint = rcv.URL
		f.Telemetry.Traces.Enabled = true
	})
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	cfg := behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret)
	ctx, finish, err := traceCalls(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = finish(run(ctx, cfg, input{Endpoint: s.URL, Workload: "my-agent", UserJWT: userJWT, APIKey: "weather", OAuth2M2M: "dev-idp"}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Server.Telemetry().ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}

	spans := rcv.Spans()
	var root, client *tracepb.Span
	for _, sp := range spans {
		switch {
		case sp.Name == "vend":
			root = sp
		case sp.Name == "GetResourceOauth2Token" && sp.Kind == tracepb.Span_SPAN_KIND_CLIENT:
			client = sp
		}
	}
	if root == nil || client == nil || !bytes.Equal(client.ParentSpanId, root.SpanId) {
		t.Fatalf("no agent span vend with the client span GetResourceOauth2Token under it in %d spans", len(spans))
	}
	children := map[string][]*tracepb.Span{} // the agent's trace; the set-up's calls have traces of their own
	for _, sp := range spans {
		if bytes.Equal(sp.TraceId, root.TraceId) {
			children[string(sp.ParentSpanId)] = append(children[string(sp.ParentSpanId)], sp)
		}
	}
	servers := children[string(client.SpanId)]
	if len(servers) != 1 || servers[0].Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("behalf's server span is not the child of the agent's call: %v", servers)
	}
	if len(children[string(servers[0].SpanId)]) == 0 {
		t.Errorf("behalf's span %s has no child: the call to the token endpoint is missing", servers[0].Name)
	}
	for _, body := range rcv.Bodies() {
		for _, secret := range []string{userJWT, "weather-api-key-123", "agent-secret"} {
			if bytes.Contains(body, []byte(secret)) {
				t.Fatalf("an export holds a secret (%.12s…)", secret)
			}
		}
	}
}

// vendWorld is the README's set-up: the dev IdP, behalf trusting it (with
// edit applied to its configuration), the workload identity and the two
// providers; it returns the server, a user's JWT and the dev IdP's issuer.
func vendWorld(t *testing.T, edit func(*config.File)) (s *behalftest.Server, userJWT, issuer string) {
	t.Helper()
	idp := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}}})
	s = behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: func(f *config.File) {
		f.InboundAuthorizers = []config.InboundAuthorizerFile{{Name: "dev-idp", DiscoveryURL: idp.Issuer() + "/.well-known/openid-configuration", AllowedAudience: []string{"agent"}}}
		if edit != nil {
			edit(f)
		}
	}})
	ctx := context.Background()
	c := s.Control()
	if _, err := c.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("my-agent")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{Name: aws.String("weather"), ApiKey: aws.String("weather-api-key-123")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String("dev-idp"), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
			ClientId: aws.String("agent"), ClientSecret: aws.String("agent-secret"),
			OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: idp.Issuer() + "/.well-known/openid-configuration"}}},
	}); err != nil {
		t.Fatal(err)
	}

	// The README's curl: a user's token by the password grant.
	req, _ := http.NewRequest("POST", idp.Issuer()+"/token", strings.NewReader(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}, "scope": {"openid"}}.Encode()))
	req.SetBasicAuth("agent", "agent-secret")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		IDToken string `json:"id_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()

	return s, tok.IDToken, idp.Issuer()
}

// TestVendPrivateKeyJWT is the README's walk-through of a client that
// signs with a KMS key: local-kms with the README's seed, behalf with AWS
// KMS on, a dev IdP whose client agent-jwt is verified by the JWK set
// behalf publishes for dev-idp-jwt, the provider created with the CLI
// command the README shows, and this program's M2M token from it.
func TestVendPrivateKeyJWT(t *testing.T) {
	seed, err := os.ReadFile("../local-kms/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lk := localkms.Start(t, localkms.Options{Seed: string(seed)})
	localkms.Env(t)
	s, userJWT, _ := vendWorld(t, func(f *config.File) {
		f.Vault.AWSKMS = &config.AWSKMSFile{Region: localkms.Region, Endpoint: lk.URL}
	})
	jwksURL := s.URL + "/identities/oauth2/jwks/dev-idp-jwt"
	jwtIDP := behalftest.DevIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent-jwt", JWKSURI: jwksURL}},
		HTTP: egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}})})
	var stdout, stderr bytes.Buffer
	if code := cli.Execute(context.Background(), []string{"provider", "oauth2", "create", "dev-idp-jwt", "--vendor", "CustomOauth2",
		"--discovery-url", jwtIDP.Issuer() + "/.well-known/openid-configuration", "--client-id", "agent-jwt",
		"--client-auth-method", "PRIVATE_KEY_JWT", "--signing-algorithm", "ES256",
		"--private-key-arn", "arn:aws:kms:us-east-1:111122223333:key/8013cb46-8507-42b9-b3bf-492b3cee67ed",
		"--endpoint", s.URL, "--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret},
		strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("provider oauth2 create: exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"client auth   PRIVATE_KEY_JWT\n", "signing key   arn:aws:kms:us-east-1:111122223333:key/8013cb46-8507-42b9-b3bf-492b3cee67ed (ES256)\n",
		"JWKS URL      " + jwksURL + "\n"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("create table lacks %q:\n%s", want, stdout.String())
		}
	}
	var out bytes.Buffer
	err = run(context.Background(), behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret), input{
		Endpoint: s.URL, Workload: "my-agent", UserJWT: userJWT, APIKey: "weather", OAuth2M2M: "dev-idp-jwt"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "M2M access token from dev-idp-jwt: eyJ") {
		t.Errorf("output:\n%s", out.String())
	}
}
