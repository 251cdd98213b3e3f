package control

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// DefaultTokenVault is the only token vault, as in AgentCore.
const DefaultTokenVault = "default"

const (
	serviceManagedKey  = "ServiceManagedKey"
	customerManagedKey = "CustomerManagedKey"
)

var (
	tokenVaultIDPattern = wire.Pattern(`[a-zA-Z0-9\-_]+`)
	// kmsKeyARNPattern is AgentCore's, and, as behalf extensions, an
	// alias ARN, which SetTokenVaultCMK resolves to its key's ARN, and a
	// PKCS#11 token's key id (an RFC 7512 URI), which its backend parses.
	kmsKeyARNPattern = wire.Pattern(`arn:aws(|-cn|-us-gov):kms:[a-zA-Z0-9-]*:[0-9]{12}:(key/[a-zA-Z0-9-]{36}|alias/[a-zA-Z0-9/_-]{1,250})|pkcs11:[!-~]+`)
)

// EnsureTokenVault creates the token vault record on first start, sealing
// under the keyring's service key, and returns it.
func EnsureTokenVault(ctx context.Context, st storage.Storage, serviceKeyID string) (storage.TokenVault, error) {
	return st.UpdateTokenVault(ctx, DefaultTokenVault, func(v storage.TokenVault) (storage.TokenVault, error) {
		if v.KeyID == "" {
			v.KeyType, v.KeyID = serviceManagedKey, serviceKeyID
		}
		return v, nil
	})
}

type tokenVaultInput struct {
	TokenVaultID *string `json:"tokenVaultId,omitempty"`
}

func (in *tokenVaultInput) Validate(c *wire.Checker) {
	c.OptString("tokenVaultId", in.TokenVaultID, 1, 64, tokenVaultIDPattern)
}

type kmsConfiguration struct {
	KeyType   string  `json:"keyType"`
	KMSKeyARN *string `json:"kmsKeyArn,omitempty"`
}

type tokenVaultOutput struct {
	TokenVaultID     string           `json:"tokenVaultId"`
	KMSConfiguration kmsConfiguration `json:"kmsConfiguration"`
	LastModifiedDate wire.Time        `json:"lastModifiedDate"`
}

func vaultOut(v storage.TokenVault) *tokenVaultOutput {
	out := &tokenVaultOutput{TokenVaultID: v.ID, KMSConfiguration: kmsConfiguration{KeyType: v.KeyType}, LastModifiedDate: epoch(v.LastModified)}
	if v.KMSKeyARN != "" {
		arn := v.KMSKeyARN
		out.KMSConfiguration.KMSKeyARN = &arn
	}
	return out
}

func vaultID(id *string) (string, error) {
	if id != nil && *id != DefaultTokenVault {
		return "", wire.NotFound("token vault %s does not exist; behalf has one token vault, %q", *id, DefaultTokenVault)
	}
	return DefaultTokenVault, nil
}

func (s *Service) getTokenVault(ctx context.Context, _ *wire.Call, in *tokenVaultInput) (*tokenVaultOutput, error) {
	id, err := vaultID(in.TokenVaultID)
	if err != nil {
		return nil, err
	}
	v, err := s.store.GetTokenVault(ctx, id)
	if err != nil {
		return nil, wire.StorageError(err, "token vault", id)
	}
	return vaultOut(v), nil
}

type setTokenVaultCMKInput struct {
	TokenVaultID     *string           `json:"tokenVaultId,omitempty"`
	KMSConfiguration *kmsConfiguration `json:"kmsConfiguration"`
}

func (in *setTokenVaultCMKInput) Validate(c *wire.Checker) {
	c.OptString("tokenVaultId", in.TokenVaultID, 1, 64, tokenVaultIDPattern)
	if in.KMSConfiguration == nil {
		c.Failf("kmsConfiguration", "is required")
		return
	}
	k := in.KMSConfiguration
	c.Enum("kmsConfiguration.keyType", k.KeyType, true, customerManagedKey, serviceManagedKey)
	c.OptString("kmsConfiguration.kmsKeyArn", k.KMSKeyARN, 1, 2048, kmsKeyARNPattern)
	switch {
	case k.KeyType == customerManagedKey && k.KMSKeyARN == nil:
		c.Failf("kmsConfiguration.kmsKeyArn", "is required with CustomerManagedKey")
	case k.KeyType == serviceManagedKey && k.KMSKeyARN != nil:
		c.Failf("kmsConfiguration.kmsKeyArn", "must be absent with ServiceManagedKey")
	}
}

// setTokenVaultCMK switches the key that seals new secrets and starts
// re-wrapping existing data keys in the background. Reads keep working
// throughout: a record opens under whichever key its id names.
func (s *Service) setTokenVaultCMK(ctx context.Context, c *wire.Call, in *setTokenVaultCMKInput) (*tokenVaultOutput, error) {
	c.Audit.Resource = s.cfg.ARNs.Resource(storage.Resource{Kind: storage.KindTokenVault, Name: DefaultTokenVault})
	id, err := vaultID(in.TokenVaultID)
	if err != nil {
		return nil, err
	}
	keyID := s.Keyring.ServiceKeyID()
	arn := ""
	if in.KMSConfiguration.KeyType == customerManagedKey {
		keyID, arn, err = s.resolveKeyARN(ctx, *in.KMSConfiguration.KMSKeyARN)
		if err != nil {
			return nil, err
		}
	}
	v, err := c.Change(s.store).UpdateTokenVault(ctx, id, func(v storage.TokenVault) (storage.TokenVault, error) {
		v.KeyType, v.KMSKeyARN, v.KeyID = in.KMSConfiguration.KeyType, arn, keyID
		return v, nil
	})
	if err != nil {
		return nil, wire.StorageError(err, "token vault", id)
	}
	if err := s.Vault.SetCurrent(ctx, keyID); err != nil {
		return nil, fmt.Errorf("use key %s: %w", keyID, err)
	}
	s.Rewrap()
	return vaultOut(v), nil
}

// resolveKeyARN resolves a customer managed key's ARN to the id of the
// key that will seal new secrets, and the ARN the token vault reports: a
// key of the local keyring (an ARN of this server's region and account
// that names one), or else a key of the backend that owns the ARN (AWS
// KMS: a key ARN, or an alias ARN, reported as its key's ARN; a PKCS#11
// token: its key's URI), which must be able to wrap data keys now.
func (s *Service) resolveKeyARN(ctx context.Context, arn string) (keyID, keyARN string, err error) {
	fail := func(msg string) (string, string, error) {
		return "", "", wire.Validation("kmsConfiguration.kmsKeyArn "+msg, wire.FieldError{Name: "kmsConfiguration.kmsKeyArn", Message: msg})
	}
	uuid := arn[strings.LastIndex(arn, "/")+1:]
	local := arn == s.cfg.ARNs.KMSKeyARN(uuid)
	if id := vault.LocalPrefix + uuid; local && s.Keyring.Has(ctx, id) {
		return id, arn, nil
	}
	if _, err := s.Keys.Backend(arn); errors.Is(err, vault.ErrUnknownKey) {
		switch {
		case local:
			return fail("names no key in the local keyring; create one with `behalf vault create-key`, or configure AWS KMS (vault.awsKms) for a KMS key")
		case strings.HasPrefix(arn, "pkcs11:"):
			return fail("names a key of a PKCS#11 token, and behalf has no token configured; set vault.pkcs11 (module, tokenLabel, pinFile) in behalf's configuration")
		}
		region := strings.SplitN(arn, ":", 5)[3]
		return fail(fmt.Sprintf("names an AWS KMS key of region %s, and behalf has no AWS KMS configured for that region; "+
			"set vault.awsKms.region: %s in behalf's configuration (and vault.awsKms.endpoint for a VPC endpoint)", region, region))
	}
	id, err := s.Keys.ResolveWrappingKey(ctx, arn)
	switch {
	case errors.Is(err, vault.ErrKeyGone):
		return fail("names no key that exists: " + reason(err, vault.ErrKeyGone))
	case errors.Is(err, vault.ErrNotWrappingKey):
		return fail("names a key that cannot seal the token vault: " + reason(err, vault.ErrNotWrappingKey))
	case errors.Is(err, vault.ErrKeyUnavailable):
		return "", "", wire.BadGateway("kmsConfiguration.kmsKeyArn %s could not be checked now; try again: %s", arn, reason(err, vault.ErrKeyUnavailable)).WithCause(err)
	case err != nil:
		return "", "", fmt.Errorf("check key %s: %w", arn, err)
	}
	return id, id, nil
}

// reason is err's text without the sentinel's that opens it.
func reason(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}

func (s *Service) createVaultKey(_ context.Context, c *wire.Call, _ *struct{}) (*behalfapi.CreateVaultKeyOutput, error) {
	id, err := s.Keyring.Create()
	if err != nil {
		return nil, fmt.Errorf("create a vault key: %w", err)
	}
	arn := s.cfg.ARNs.KMSKeyARN(strings.TrimPrefix(id, vault.LocalPrefix))
	c.Audit.Resource = arn
	return &behalfapi.CreateVaultKeyOutput{KMSKeyARN: arn}, nil
}
