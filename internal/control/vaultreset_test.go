package control_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// A customer managed key that exists but cannot be checked now (here the
// keyring file has become readable by others, so behalf refuses to read
// it) is not a deleted key: ResetTokenVaultKeyMaterial refuses, without
// naming the file, and the vault keeps its key. (A key that exists and a
// deleted one are covered with the data plane, in
// TestResetTokenVaultKeyMaterial.)
func TestResetTokenVaultKeyMaterialRefusesAnUnavailableKey(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		c, cx := s.Control(), ctx(t)
		res := s.Do(t, behalftest.Raw{Path: "/behalf/CreateVaultKey", Body: []byte(`{}`)})
		if res.Status != http.StatusCreated {
			t.Fatalf("CreateVaultKey: %d %s", res.Status, res.Body)
		}
		arn := res.JSON(t)["kmsKeyArn"].(string)
		if _, err := c.SetTokenVaultCMK(cx, &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: &types.KmsConfiguration{
			KeyType: types.KeyTypeCustomerManagedKey, KmsKeyArn: aws.String(arn)}}); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(s.Config.Keyring, 0o644); err != nil { //nolint:gosec // G302: the point: a keyring others can read, which behalf refuses
			t.Fatal(err)
		}
		_, err := c.ResetTokenVaultKeyMaterial(cx, &bedrockagentcorecontrol.ResetTokenVaultKeyMaterialInput{TokenVaultId: aws.String("default")})
		msg := aws.ToString(wantAPIError[*types.ValidationException](t, err).Message)
		if !strings.Contains(msg, "cannot be used now") || strings.Contains(msg, s.Config.Keyring) {
			t.Errorf("reset with an unreadable keyring: %q", msg)
		}
		if err := os.Chmod(s.Config.Keyring, 0o600); err != nil {
			t.Fatal(err)
		}
		v, err := c.GetTokenVault(cx, &bedrockagentcorecontrol.GetTokenVaultInput{})
		if err != nil || v.KmsConfiguration.KeyType != types.KeyTypeCustomerManagedKey || aws.ToString(v.KmsConfiguration.KmsKeyArn) != arn {
			t.Fatalf("vault after a refused reset: %+v %v", v, err)
		}
		// A reset needs its vault id (required in the model).
		res = s.Do(t, behalftest.Raw{Path: "/identities/reset-token-vault-key-material", Body: []byte(`{}`)})
		if res.Status != http.StatusBadRequest || res.ErrType != "ValidationException" || !strings.Contains(string(res.Body), "tokenVaultId") {
			t.Errorf("reset without tokenVaultId: %d %s", res.Status, res.Body)
		}
	})
}
