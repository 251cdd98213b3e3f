// Command agentcore-sdk is an ordinary AWS SDK for Go v2 program, with no
// behalf code in it, pointed at a behalf server. It creates a workload
// identity, a GitHub OAuth2 credential provider and an API-key credential
// provider, then lists what exists.
//
//	export AWS_SHARED_CREDENTIALS_FILE=$PWD/behalf-data/admin-credentials AWS_REGION=us-east-1
//	go run ./examples/agentcore-sdk
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
)

func main() {
	log.SetFlags(0)
	cfg := loadConfig(context.Background())
	endpoint := os.Getenv("BEHALF_ENDPOINT")
	if endpoint == "" {
		endpoint = "http://127.0.0.1:8787"
	}
	if err := run(context.Background(), cfg, endpoint, os.Stdout); err != nil {
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

func run(ctx context.Context, cfg aws.Config, endpoint string, out io.Writer) error {
	control := bedrockagentcorecontrol.NewFromConfig(cfg, func(o *bedrockagentcorecontrol.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})

	identity, err := control.CreateWorkloadIdentity(ctx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
		Name:                            aws.String("sdk-agent"),
		AllowedResourceOauth2ReturnUrls: []string{"http://127.0.0.1:9090/oauth/done"},
	})
	if err != nil && !alreadyExists(err) {
		return fmt.Errorf("create workload identity: %w", err)
	}
	if err == nil {
		fmt.Fprintln(out, "workload identity:", aws.ToString(identity.WorkloadIdentityArn))
	}

	github, err := control.CreateOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name:                     aws.String("sdk-github"),
		CredentialProviderVendor: types.CredentialProviderVendorTypeGithubOauth2,
		Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{
			Value: types.GithubOauth2ProviderConfigInput{
				ClientId:     aws.String("Iv1.example-client-id"),
				ClientSecret: aws.String("example-github-client-secret"),
			},
		},
	})
	if err != nil && !alreadyExists(err) {
		return fmt.Errorf("create GitHub provider: %w", err)
	}
	if err == nil {
		fmt.Fprintln(out, "GitHub provider:", aws.ToString(github.CredentialProviderArn))
		fmt.Fprintln(out, "  register this callback URL with GitHub:", aws.ToString(github.CallbackUrl))
	}

	apiKey, err := control.CreateApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
		Name:   aws.String("sdk-weather-api"),
		ApiKey: aws.String("example-weather-api-key"),
	})
	if err != nil && !alreadyExists(err) {
		return fmt.Errorf("create API-key provider: %w", err)
	}
	if err == nil {
		fmt.Fprintln(out, "API-key provider:", aws.ToString(apiKey.CredentialProviderArn))
	}

	identities, err := control.ListWorkloadIdentities(ctx, &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{})
	if err != nil {
		return err
	}
	providers, err := control.ListOauth2CredentialProviders(ctx, &bedrockagentcorecontrol.ListOauth2CredentialProvidersInput{})
	if err != nil {
		return err
	}
	keys, err := control.ListApiKeyCredentialProviders(ctx, &bedrockagentcorecontrol.ListApiKeyCredentialProvidersInput{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "now: %d workload identities, %d OAuth2 providers, %d API-key providers\n",
		len(identities.WorkloadIdentities), len(providers.CredentialProviders), len(keys.CredentialProviders))
	return nil
}

func alreadyExists(err error) bool {
	var conflict *types.ConflictException
	return errors.As(err, &conflict)
}
