package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/behalfapi"
)

type vaultView struct {
	TokenVaultID     string     `json:"tokenVaultId"`
	KeyType          string     `json:"keyType"`
	KMSKeyARN        string     `json:"kmsKeyArn,omitempty"`
	LastModifiedDate *time.Time `json:"lastModifiedDate,omitempty"`
	// The re-wrap's progress, from GetKeyRotationStatus (vault get only).
	CurrentKeyID     string `json:"currentKeyId,omitempty"`
	StaleSecrets     *int   `json:"staleSecrets,omitempty"`
	StaleSecretsMore bool   `json:"staleSecretsMore,omitempty"`
}

func (v vaultView) table() table {
	t := fields("token vault", v.TokenVaultID, "key type", v.KeyType, "key ARN", v.KMSKeyARN, "last modified", when(v.LastModifiedDate))
	if v.StaleSecrets != nil {
		stale := fmt.Sprint(*v.StaleSecrets)
		if v.StaleSecretsMore {
			stale += "+"
		}
		t.rows = append(t.rows, []string{"current key id", v.CurrentKeyID}, []string{"awaiting re-wrap", stale})
	}
	return t
}

func vaultViewOf(id *string, k *types.KmsConfiguration, modified *time.Time) vaultView {
	v := vaultView{TokenVaultID: str(id), LastModifiedDate: modified}
	if k != nil {
		v.KeyType, v.KMSKeyARN = string(k.KeyType), str(k.KmsKeyArn)
	}
	return v
}

func newVaultCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "vault", Short: "Inspect and rotate the token vault's key-encryption key"}

	get := &cobra.Command{
		Use:   "get",
		Short: "Show which key seals new secrets, and how many secrets await re-wrap under it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			out, err := c.GetTokenVault(cmd.Context(), &bedrockagentcorecontrol.GetTokenVaultInput{})
			if err != nil {
				return cf.describe(err)
			}
			v := vaultViewOf(out.TokenVaultId, out.KmsConfiguration, out.LastModifiedDate)
			var status behalfapi.GetKeyRotationStatusOutput
			if err := cf.call(cmd.Context(), "GetKeyRotationStatus", struct{}{}, &status); err != nil {
				return err
			}
			v.CurrentKeyID, v.StaleSecrets, v.StaleSecretsMore = status.Vault.CurrentKeyID, &status.Vault.StaleSecrets, status.Vault.StaleSecretsMore
			return cf.print(cmd, v, v.table())
		},
	}

	createKey := &cobra.Command{
		Use:   "create-key",
		Short: "Add a new key to the server's local keyring and print its ARN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out behalfapi.CreateVaultKeyOutput
			if err := cf.call(cmd.Context(), "CreateVaultKey", struct{}{}, &out); err != nil {
				return err
			}
			return cf.print(cmd, out, fields("key ARN", out.KMSKeyARN))
		},
	}

	var keyARN string
	var serviceManaged bool
	setCMK := &cobra.Command{
		Use:   "set-key (--key-arn ARN | --service-managed)",
		Short: "Seal new secrets under another key and re-wrap existing ones in the background",
		Example: `  behalf vault set-key --key-arn "$(behalf vault create-key -o json | jq -r .kmsKeyArn)"
  behalf vault set-key --key-arn arn:aws:kms:us-east-1:111122223333:alias/behalf-kek
  behalf vault set-key --key-arn 'pkcs11:token=behalf;object=kek'
  behalf vault set-key --service-managed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k := &types.KmsConfiguration{}
			switch {
			case keyARN != "" && !serviceManaged:
				k.KeyType, k.KmsKeyArn = types.KeyTypeCustomerManagedKey, aws.String(keyARN)
			case keyARN == "" && serviceManaged:
				k.KeyType = types.KeyTypeServiceManagedKey
			default:
				return fmt.Errorf("give exactly one of --key-arn or --service-managed")
			}
			c, err := cf.control()
			if err != nil {
				return err
			}
			out, err := c.SetTokenVaultCMK(cmd.Context(), &bedrockagentcorecontrol.SetTokenVaultCMKInput{KmsConfiguration: k})
			if err != nil {
				return cf.describe(err)
			}
			v := vaultViewOf(out.TokenVaultId, out.KmsConfiguration, out.LastModifiedDate)
			return cf.print(cmd, v, v.table())
		},
	}
	setCMK.Flags().StringVar(&keyARN, "key-arn", "", "ARN of a key from `behalf vault create-key`, of an AWS KMS key or alias (vault.awsKms), or a PKCS#11 token's key URI (vault.pkcs11)")
	setCMK.Flags().BoolVar(&serviceManaged, "service-managed", false, "return to the keyring's service key")

	cmd.AddCommand(get, createKey, setCMK, newVaultResetCommand(cf))
	return cmd
}

// vaultResetView is a vault after ResetTokenVaultKeyMaterial, with what
// went with its deleted key.
type vaultResetView struct {
	vaultView
	Reset behalfapi.VaultReset `json:"keyMaterialReset"`
}

func newVaultResetCommand(cf *clientFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset-key-material --yes",
		Short: "Start the token vault afresh under the service key after its customer managed key was deleted (cannot be undone)",
		Long: `Once the token vault's customer managed key was deleted, what it sealed is lost. This
deletes, for good, the users' access and refresh tokens, the OAuth sessions and the cached
provider tokens sealed under it, and removes the client secrets and API keys sealed under
it: those providers stay, and report UPDATE_FAILED until their secret is set again. The
vault then uses the service key. A key that still exists, even disabled or pending
deletion, is refused: bring it back to use the vault again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !yes {
				return fmt.Errorf("reset-key-material permanently deletes the users' tokens sealed under the deleted key, " +
					"and the providers' secrets sealed under it must be set again; it cannot be undone. Pass --yes to go ahead")
			}
			c, err := cf.control()
			if err != nil {
				return err
			}
			ext := &extensions{}
			out, err := c.ResetTokenVaultKeyMaterial(cmd.Context(), &bedrockagentcorecontrol.ResetTokenVaultKeyMaterialInput{TokenVaultId: aws.String("default")}, ext.option)
			if err != nil {
				return cf.describe(err)
			}
			v := vaultResetView{vaultView: vaultViewOf(out.TokenVaultId, out.KmsConfiguration, out.LastModifiedDate), Reset: ext.vaultReset()}
			t := v.table()
			t.rows = append(t.rows, fields("deleted connections", strconv.Itoa(v.Reset.DeletedConnections),
				"deleted sessions", strconv.Itoa(v.Reset.DeletedSessions), "deleted cached tokens", strconv.Itoa(v.Reset.DeletedCachedTokens),
				"client secrets to set again", namesOrNone(v.Reset.LostClientSecrets), "API keys to set again", namesOrNone(v.Reset.LostAPIKeys)).rows...)
			return cf.print(cmd, v, t)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm: the deletion cannot be undone")
	return cmd
}

func namesOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func newTagCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "tag", Short: "Tag resources by ARN"}
	ls := &cobra.Command{
		Use:   "list ARN",
		Short: "List a resource's tags",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			out, err := c.ListTagsForResource(cmd.Context(), &bedrockagentcorecontrol.ListTagsForResourceInput{ResourceArn: aws.String(args[0])})
			if err != nil {
				return cf.describe(err)
			}
			keys := make([]string, 0, len(out.Tags))
			for k := range out.Tags {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			t := table{header: []string{"KEY", "VALUE"}}
			for _, k := range keys {
				t.rows = append(t.rows, []string{k, out.Tags[k]})
			}
			if out.Tags == nil {
				out.Tags = map[string]string{}
			}
			return cf.print(cmd, out.Tags, t)
		},
	}
	add := &cobra.Command{
		Use:   "add ARN KEY=VALUE...",
		Short: "Add or replace tags",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tags, err := parseTags(args[1:])
			if err != nil {
				return err
			}
			c, err := cf.control()
			if err != nil {
				return err
			}
			if _, err := c.TagResource(cmd.Context(), &bedrockagentcorecontrol.TagResourceInput{ResourceArn: aws.String(args[0]), Tags: tags}); err != nil {
				return cf.describe(err)
			}
			return cf.print(cmd, tags, fields("tagged", args[0]))
		},
	}
	remove := &cobra.Command{
		Use:   "remove ARN KEY...",
		Short: "Remove tags",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			if _, err := c.UntagResource(cmd.Context(), &bedrockagentcorecontrol.UntagResourceInput{ResourceArn: aws.String(args[0]), TagKeys: args[1:]}); err != nil {
				return cf.describe(err)
			}
			return cf.print(cmd, map[string]any{"untagged": args[0], "keys": args[1:]}, fields("untagged", args[0]))
		},
	}
	cmd.AddCommand(ls, add, remove)
	return cmd
}
