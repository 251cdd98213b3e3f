package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/behalf-dev/behalf/internal/control"
	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/vault/awskms"
	"github.com/behalf-dev/behalf/internal/vault/pkcs11"
)

// openKeyring loads the local keyring at path. A new one is created only
// for a database that has never sealed anything: a new keyring cannot open
// secrets sealed under a lost one, so writing it would only hide the loss.
func openKeyring(ctx context.Context, path string, st storage.Storage) (*vault.LocalKeyring, error) {
	kr, err := vault.LoadLocalKeyring(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return kr, err
	}
	used, err := holdsSealedData(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("keyring %s is missing; checking whether the database needs it: %w", path, err)
	}
	if used {
		// Another replica sharing the file may have created it after the
		// first look and then sealed its first record.
		if kr, err := vault.LoadLocalKeyring(path); !errors.Is(err, fs.ErrNotExist) {
			return kr, err
		}
		return nil, fmt.Errorf("keyring %s is missing, but the database holds secrets sealed under it; restore the file (a new keyring could not open them)", path)
	}
	return vault.OpenLocalKeyring(path)
}

// holdsSealedData reports whether the database has a token vault record or
// any sealed secret.
func holdsSealedData(ctx context.Context, st storage.Storage) (bool, error) {
	_, err := st.GetTokenVault(ctx, control.DefaultTokenVault)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, storage.ErrNotFound):
		return false, err
	}
	// Every sealed secret has a key id, so none is sealed under "".
	sealed, err := st.ListStaleSecrets(ctx, storage.AllUnder(""), 1)
	return len(sealed) > 0, err
}

// awsKMSAttemptTimeout bounds each HTTP attempt to AWS KMS;
// awskms.DefaultTimeout bounds an operation, its retries included.
const awsKMSAttemptTimeout = 2 * time.Second

// keyBackends are the key-management backends besides the local keyring:
// AWS KMS and a PKCS#11 token, when they are configured. KMS is an
// endpoint the operator configures, so it is dialled under the egress
// policy, as the OTLP collector is. Its credentials come from the default
// AWS credential chain, whose own endpoints (STS, SSO, the ECS and EC2
// metadata services) are the platform's, reached by the SDK's client: the
// egress policy refuses the link-local metadata address whatever it
// allows. Nothing is called, and no token opened, until a key is used.
func (s *Server) keyBackends(ctx context.Context) ([]vault.Backend, error) {
	var backends []vault.Backend
	if c := s.cfg.AWSKMS; c != nil {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(c.Region))
		if err != nil {
			return nil, fmt.Errorf("vault.awsKms: load the AWS configuration: %w", err)
		}
		backends = append(backends, awskms.New(awsCfg, awskms.Options{
			Region: c.Region, Endpoint: c.Endpoint, Metrics: s.tel.Metrics,
			HTTPClient: egress.NewClient(egress.Options{Policy: s.cfg.Egress, Timeout: awsKMSAttemptTimeout, Log: s.log}),
		}))
	}
	if c := s.cfg.PKCS11; c != nil {
		token, err := pkcs11.New(*c)
		if err != nil {
			return nil, fmt.Errorf("vault.pkcs11: %w", err)
		}
		token.Metrics = s.tel.Metrics
		s.token = token
		backends = append(backends, token)
	}
	return backends, nil
}

// closeToken closes the PKCS#11 token, if one is configured.
func (s *Server) closeToken() error {
	if s.token == nil {
		return nil
	}
	return s.token.Close()
}
