package server_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/localkms"
)

// ResetTokenVaultKeyMaterial with the vault under an AWS KMS key: refused
// while the key exists — enabled, disabled, or pending deletion — as
// AgentCore refuses it; once the key is gone (NotFoundException) a server
// restarted without it starts, and the reset puts the vault under the
// service key, the provider whose key was lost told to set it again.
func TestResetTokenVaultKeyMaterialWithKMS(t *testing.T) {
	localkms.Env(t)
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		cx := t.Context()
		lk := localkms.Start(t, localkms.Options{})
		key := lk.CreateSymmetricKey(cx)
		s := startWithKeyBackends(t, b, lk, nil, behalftest.Options{})
		setKey(t, s, key)
		f := newVendFixture(t, s, 1, false)
		if err := f.vendAPIKey(t, "api-00"); err != nil {
			t.Fatal(err)
		}
		reset := func(s *behalftest.Server) (*bedrockagentcorecontrol.ResetTokenVaultKeyMaterialOutput, error) {
			return s.Control().ResetTokenVaultKeyMaterial(cx, &bedrockagentcorecontrol.ResetTokenVaultKeyMaterialInput{TokenVaultId: aws.String("default")})
		}
		refused := func(state, want string) {
			t.Helper()
			_, err := reset(s)
			var ve *ctltypes.ValidationException
			if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.Message), want) {
				t.Errorf("reset with a key %s: %v, want a ValidationException saying %q", state, err, want)
			}
		}
		refused("that exists", "still exists;")
		if _, err := lk.Client().DisableKey(cx, &kms.DisableKeyInput{KeyId: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
		refused("disabled", "still exists but cannot be used now")
		if _, err := lk.Client().EnableKey(cx, &kms.EnableKeyInput{KeyId: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
		if _, err := lk.Client().ScheduleKeyDeletion(cx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(7)}); err != nil {
			t.Fatal(err)
		}
		refused("pending deletion", "still exists but cannot be used now")
		if v := rotationStatus(t, s); v.CurrentKeyID != key {
			t.Fatalf("a refused reset changed the vault: %+v", v)
		}

		lk.Wipe()
		s.Stop()
		s = startWithKeyBackends(t, b, lk, nil, behalftest.Options{DataDir: s.Config.DataDir, DSN: s.Config.Storage})
		f.data = s.Data()
		out, err := reset(s)
		if err != nil || out.KmsConfiguration.KeyType != ctltypes.KeyTypeServiceManagedKey || out.KmsConfiguration.KmsKeyArn != nil {
			t.Fatalf("reset once the KMS key is gone: %+v, %v", out, err)
		}
		err = f.vendAPIKey(t, "api-00")
		var ve *types.ValidationException
		if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.Message), "must set it again with UpdateApiKeyCredentialProvider") {
			t.Fatalf("vend of a key lost with the KMS key: %v", err)
		}
		if _, err := s.Control().UpdateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.UpdateApiKeyCredentialProviderInput{
			Name: aws.String("api-00"), ApiKey: aws.String(f.keys["api-00"])}); err != nil {
			t.Fatal(err)
		}
		if err := f.vendAPIKey(t, "api-00"); err != nil {
			t.Fatalf("vend once the key is set again: %v", err)
		}
	})
}
