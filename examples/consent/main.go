// Command consent is an agent that acts with a user's own OAuth token
// (AgentCore's USER_FEDERATION flow), written with the unmodified AWS SDK
// for Go v2. The first time, behalf answers with an authorization URL for
// the user to open; the agent polls with the session URI until the user
// has consented and been bound, then gets the token. Later calls get the
// stored token at once, refreshed by behalf when it nears expiry.
//
//	export AWS_SHARED_CREDENTIALS_FILE=$PWD/behalf-data/admin-credentials AWS_REGION=us-east-1
//	go run ./examples/consent -watch 3m
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
)

type input struct {
	Endpoint, Workload, User, Provider, ReturnURL string
	Scopes                                        []string
	Poll, Watch, Every                            time.Duration
}

func main() {
	log.SetFlags(0)
	endpoint := env("BEHALF_ENDPOINT", "http://127.0.0.1:8787")
	in := input{Endpoint: endpoint, Scopes: []string{"openid", "profile"}}
	flag.StringVar(&in.Workload, "workload", "my-agent", "workload identity")
	flag.StringVar(&in.User, "user", "alice", "the user the agent acts for")
	flag.StringVar(&in.Provider, "provider", "dev-idp", "OAuth2 credential provider")
	flag.StringVar(&in.ReturnURL, "return-url", endpoint+"/dev/complete", "where the browser goes after consent; one of the workload's allowed return URLs")
	flag.DurationVar(&in.Poll, "poll", 2*time.Second, "how often to ask while the user consents")
	flag.DurationVar(&in.Watch, "watch", 0, "keep asking for the token this long, to see behalf refresh it")
	flag.DurationVar(&in.Every, "every", 15*time.Second, "how often to ask while watching")
	flag.Parse()

	cfg := loadConfig(context.Background())
	if err := run(context.Background(), cfg, in, os.Stdout); err != nil {
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

func run(ctx context.Context, cfg aws.Config, in input, out io.Writer) error {
	agentcore := bedrockagentcore.NewFromConfig(cfg, func(o *bedrockagentcore.Options) {
		o.BaseEndpoint = aws.String(in.Endpoint)
	})
	wat, err := agentcore.GetWorkloadAccessTokenForUserId(ctx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String(in.Workload), UserId: aws.String(in.User),
	})
	if err != nil {
		return fmt.Errorf("workload access token: %w", err)
	}
	req := &bedrockagentcore.GetResourceOauth2TokenInput{
		WorkloadIdentityToken:          wat.WorkloadAccessToken,
		ResourceCredentialProviderName: aws.String(in.Provider),
		Oauth2Flow:                     types.Oauth2FlowTypeUserFederation,
		Scopes:                         in.Scopes,
		ResourceOauth2ReturnUrl:        aws.String(in.ReturnURL),
	}

	token, err := waitForToken(ctx, agentcore, req, in.Poll, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "access token for %s at %s: %s\n", in.User, in.Provider, redact(token))

	for deadline := time.Now().Add(in.Watch); time.Now().Before(deadline); {
		time.Sleep(in.Every)
		next, err := waitForToken(ctx, agentcore, req, in.Poll, out)
		if err != nil {
			return err
		}
		if next != token {
			fmt.Fprintf(out, "%s: behalf refreshed the token: %s\n", time.Now().Format(time.TimeOnly), redact(next))
			token = next
		} else {
			fmt.Fprintf(out, "%s: same token, still fresh\n", time.Now().Format(time.TimeOnly))
		}
	}
	return nil
}

// waitForToken asks for the token, and while the user has yet to consent,
// shows the authorization URL once and polls with the session URI.
func waitForToken(ctx context.Context, c *bedrockagentcore.Client, req *bedrockagentcore.GetResourceOauth2TokenInput, poll time.Duration, out io.Writer) (string, error) {
	in := *req
	shown := false
	for {
		res, err := c.GetResourceOauth2Token(ctx, &in)
		if err != nil {
			return "", err
		}
		switch {
		case res.AccessToken != nil:
			return *res.AccessToken, nil
		case res.SessionStatus == types.SessionStatusFailed:
			return "", errors.New("the authorization failed: the user declined, or the link expired")
		case !shown && res.AuthorizationUrl != nil:
			fmt.Fprintf(out, "The user must consent. Open this URL in a browser:\n\n  %s\n\n", *res.AuthorizationUrl)
			shown = true
		}
		in.SessionUri = res.SessionUri
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(poll):
		}
	}
}

func redact(s string) string {
	if len(s) <= 12 {
		return "…"
	}
	return fmt.Sprintf("%s… (%d characters)", s[:8], len(s))
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
