package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/behalfapi"
)

func newOAuthConsentCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oauth-consent",
		Short: "List and revoke users' consents to the authorization server's clients",
		Long: `A consent is what a user allowed an MCP client at behalf's authorization server:
a client, a resource and scopes. Deleting it also revokes the refresh tokens granted
under it, and the user is asked again next time. Users are named as in the audit log:
jwt:<issuer>#<subject>.`,
	}
	var user string
	ls := &cobra.Command{
		Use:   "list --user U",
		Short: "List a user's consents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return errors.New("--user is required")
			}
			all := []behalfapi.OAuthConsent{}
			t := table{header: []string{"CLIENT", "RESOURCE", "SCOPES", "UPDATED"}}
			in := behalfapi.ListOAuthConsentsInput{User: user}
			for {
				var page behalfapi.ListOAuthConsentsOutput
				if err := cf.call(cmd.Context(), "ListOAuthConsents", in, &page); err != nil {
					return err
				}
				for _, c := range page.Consents {
					all = append(all, c)
					t.rows = append(t.rows, []string{c.ClientID, c.Resource, list(c.Scopes), c.UpdatedTime.String()})
				}
				if in.NextToken = page.NextToken; in.NextToken == nil {
					return cf.print(cmd, all, t)
				}
			}
		},
	}
	ls.Flags().StringVar(&user, "user", "", "the user, as jwt:<issuer>#<subject> (required)")

	var in behalfapi.DeleteOAuthConsentInput
	del := &cobra.Command{
		Use:   "delete --user U --client-id C --resource R",
		Short: "Revoke a consent and the refresh tokens granted under it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.User == "" || in.ClientID == "" || in.Resource == "" {
				return errors.New("--user, --client-id and --resource are required")
			}
			if err := cf.call(cmd.Context(), "DeleteOAuthConsent", in, nil); err != nil {
				return err
			}
			what := in.ClientID + " / " + in.Resource
			return cf.print(cmd, map[string]string{"deleted": what}, fields("deleted", what))
		},
	}
	del.Flags().StringVar(&in.User, "user", "", "the user, as jwt:<issuer>#<subject> (required)")
	del.Flags().StringVar(&in.ClientID, "client-id", "", "the client (required)")
	del.Flags().StringVar(&in.Resource, "resource", "", "the resource (required)")
	cmd.AddCommand(ls, del)
	return cmd
}
