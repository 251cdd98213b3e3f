package secretsource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// SecretsManager reads secrets from AWS Secrets Manager with
// GetSecretValue: the secret's SecretString is the JSON object.
type SecretsManager struct {
	client *secretsmanager.Client
}

// SecretsManagerOptions configure the Secrets Manager source.
type SecretsManagerOptions struct {
	Region string
	// Endpoint replaces the regional endpoint (a VPC endpoint); empty
	// keeps it.
	Endpoint string
	// HTTP makes the calls to Secrets Manager: behalf's egress client.
	HTTP *http.Client
}

// NewSecretsManager returns the source. Credentials come from the default
// AWS chain (environment, shared files, web identity, container and
// instance roles), read when first needed; the chain's own calls (to the
// instance or container metadata service, STS, SSO) are the SDK's, since
// egress always refuses the link-local metadata addresses.
func NewSecretsManager(ctx context.Context, o SecretsManagerOptions) (*SecretsManager, error) {
	if o.Region == "" || o.HTTP == nil {
		return nil, errors.New("secretsource: Secrets Manager needs a region and an HTTP client")
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(o.Region))
	if err != nil {
		return nil, fmt.Errorf("secretsource: AWS configuration: %w", err)
	}
	client := secretsmanager.NewFromConfig(cfg, func(so *secretsmanager.Options) {
		so.HTTPClient = o.HTTP
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	return &SecretsManager{client: client}, nil
}

var (
	// secretARN is a Secrets Manager secret's ARN (its name ends with a
	// six-character suffix).
	secretARN = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$`)
	// secretName is a secret's name, as CreateSecret allows it.
	secretName = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
)

// Check refuses an id that is neither a secret's ARN nor a name.
func (s *SecretsManager) Check(secretID string) error {
	if !secretARN.MatchString(secretID) && !secretName.MatchString(secretID) {
		return fail(secretID, InvalidID, nil)
	}
	return nil
}

// Read returns the secret's current SecretString.
func (s *SecretsManager) Read(ctx context.Context, secretID string) ([]byte, error) {
	if err := s.Check(secretID); err != nil {
		return nil, err
	}
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		return nil, fail(secretID, apiReason(err), err)
	}
	if out.SecretString == nil {
		clear(out.SecretBinary)
		return nil, fail(secretID, NotJSONObject, errors.New("the secret is binary (SecretBinary)"))
	}
	if len(*out.SecretString) > MaxSecretBytes {
		return nil, fail(secretID, TooLarge, nil)
	}
	return []byte(*out.SecretString), nil
}

// deniedCodes are the refusals of behalf's own credentials or rights.
var deniedCodes = map[string]bool{
	"AccessDeniedException": true, "UnrecognizedClientException": true, "InvalidSignatureException": true,
	"ExpiredTokenException": true, "InvalidClientTokenId": true,
}

// apiReason classifies a GetSecretValue failure; anything but a refusal
// is the service failing.
func apiReason(err error) Reason {
	var notFound *types.ResourceNotFoundException
	var deleted *types.InvalidRequestException // marked for deletion, or disabled
	var decryption *types.DecryptionFailure
	var api smithy.APIError
	switch {
	case errors.As(err, &notFound), errors.As(err, &deleted):
		return NotFound
	case errors.As(err, &decryption):
		return Denied
	case errors.As(err, &api) && deniedCodes[api.ErrorCode()]:
		return Denied
	}
	return Unavailable
}
