// Command vend is an agent's side of behalf's data plane, written with the
// unmodified AWS SDK for Go v2: it exchanges a user's JWT for a workload
// access token, then that token for an API key and a machine-to-machine
// OAuth2 token. The agent never holds a long-lived secret.
//
// With -obo PROVIDER it also asks that provider for a token on the user's
// behalf (ON_BEHALF_OF_TOKEN_EXCHANGE: behalf exchanges the user's JWT at
// the provider's token endpoint) and shows the token's sub and, when an
// actor token went along, act.sub (RFC 8693 §4.1).
//
// With OTEL_EXPORTER_OTLP_ENDPOINT set, it traces its calls and sends
// their trace context, so that behalf's spans continue the agent's trace.
//
//	export AWS_SHARED_CREDENTIALS_FILE=$PWD/behalf-data/admin-credentials AWS_REGION=us-east-1
//	USER_JWT=… go run ./examples/vend [-obo dev-idp-obo]
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
)

func main() {
	log.SetFlags(0)
	obo := flag.String("obo", "", "also get a token on the user's behalf from this OAuth2 provider (ON_BEHALF_OF_TOKEN_EXCHANGE)")
	flag.Parse()
	ctx := context.Background()
	cfg := loadConfig(ctx)
	in := input{
		Endpoint:   env("BEHALF_ENDPOINT", "http://127.0.0.1:8787"),
		Workload:   env("WORKLOAD", "my-agent"),
		UserJWT:    os.Getenv("USER_JWT"),
		APIKey:     env("API_KEY_PROVIDER", "weather"),
		OAuth2M2M:  env("OAUTH2_PROVIDER", "dev-idp"),
		OnBehalfOf: *obo,
	}
	if in.UserJWT == "" {
		log.Fatal("set USER_JWT to a JWT from your identity provider (see the README)")
	}
	ctx, finish, err := traceCalls(ctx, &cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := finish(run(ctx, cfg, in, os.Stdout)); err != nil {
		log.Fatal(err)
	}
}

// loadConfig loads the SDK's usual configuration and says how to point it at
// behalf when it finds no credentials or region, rather than the SDK's error
// about EC2 instance metadata.
func loadConfig(ctx context.Context) aws.Config {
	const hint = "export AWS_SHARED_CREDENTIALS_FILE=$PWD/behalf-data/admin-credentials AWS_REGION=us-east-1 (in the directory behalf serves from)"
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if cfg.Region == "" {
		log.Fatal("no AWS region set: " + hint)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		log.Fatal("no AWS credentials found: " + hint)
	}
	return cfg
}

type input struct {
	Endpoint, Workload, UserJWT, APIKey, OAuth2M2M string
	// OnBehalfOf, if set, is the provider of the on-behalf-of token.
	OnBehalfOf string
}

func run(ctx context.Context, cfg aws.Config, in input, out io.Writer) error {
	agentcore := bedrockagentcore.NewFromConfig(cfg, func(o *bedrockagentcore.Options) {
		o.BaseEndpoint = aws.String(in.Endpoint)
	})

	wat, err := agentcore.GetWorkloadAccessTokenForJWT(ctx, &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
		WorkloadName: aws.String(in.Workload),
		UserToken:    aws.String(in.UserJWT),
	})
	if err != nil {
		return fmt.Errorf("workload access token: %w", explain(err))
	}
	token := wat.WorkloadAccessToken
	fmt.Fprintf(out, "workload access token for %s and the JWT's user: %s\n", in.Workload, redact(*token))

	key, err := agentcore.GetResourceApiKey(ctx, &bedrockagentcore.GetResourceApiKeyInput{
		WorkloadIdentityToken:          token,
		ResourceCredentialProviderName: aws.String(in.APIKey),
	})
	if err != nil {
		return fmt.Errorf("API key: %w", explain(err))
	}
	fmt.Fprintf(out, "API key from %s: %s\n", in.APIKey, redact(*key.ApiKey))

	m2m, err := agentcore.GetResourceOauth2Token(ctx, &bedrockagentcore.GetResourceOauth2TokenInput{
		WorkloadIdentityToken:          token,
		ResourceCredentialProviderName: aws.String(in.OAuth2M2M),
		Oauth2Flow:                     types.Oauth2FlowTypeM2m,
		Scopes:                         []string{},
	})
	if err != nil {
		return fmt.Errorf("M2M token: %w", explain(err))
	}
	fmt.Fprintf(out, "M2M access token from %s: %s\n", in.OAuth2M2M, redact(*m2m.AccessToken))
	if in.OnBehalfOf == "" {
		return nil
	}

	obo, err := agentcore.GetResourceOauth2Token(ctx, &bedrockagentcore.GetResourceOauth2TokenInput{
		WorkloadIdentityToken:          token,
		ResourceCredentialProviderName: aws.String(in.OnBehalfOf),
		Oauth2Flow:                     types.Oauth2FlowTypeOnBehalfOfTokenExchange,
		Scopes:                         []string{},
	})
	if err != nil {
		return fmt.Errorf("on-behalf-of token: %w", explain(err))
	}
	fmt.Fprintf(out, "on-behalf-of token from %s: %s\n", in.OnBehalfOf, redact(*obo.AccessToken))
	fmt.Fprintf(out, "  %s\n", actors(*obo.AccessToken))
	return nil
}

// actors shows whom a JWT access token is for (sub) and who acts for them
// (act.sub, RFC 8693 §4.1). The claims are read, not verified: this is for
// display, and the token is the provider's to check.
func actors(token string) string {
	const opaque = "(not a JWT: no claims to show)"
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return opaque
	}
	var claims struct {
		Sub string `json:"sub"`
		Act *struct {
			Sub string `json:"sub"`
		} `json:"act"`
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		return opaque
	}
	if claims.Act == nil {
		return fmt.Sprintf("sub: %s (no act claim: no actor)", claims.Sub)
	}
	return fmt.Sprintf("sub: %s, act.sub: %s", claims.Sub, claims.Act.Sub)
}

// redact shows enough of a credential to recognise it, not to use it.
func redact(s string) string {
	if len(s) <= 12 {
		return "…"
	}
	return fmt.Sprintf("%s… (%d characters)", s[:8], len(s))
}

// explain keeps the service's own words: the SDK's typed errors carry them.
func explain(err error) error {
	var denied *types.AccessDeniedException
	var invalid *types.ValidationException
	var unauthorized *types.UnauthorizedException
	switch {
	case errors.As(err, &denied):
		return fmt.Errorf("access denied: %s", aws.ToString(denied.Message))
	case errors.As(err, &invalid):
		return fmt.Errorf("invalid request: %s", aws.ToString(invalid.Message))
	case errors.As(err, &unauthorized):
		return fmt.Errorf("unauthorized: %s", aws.ToString(unauthorized.Message))
	}
	return err
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
