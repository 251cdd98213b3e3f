package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/behalfapi"
)

func newConnectionCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connection",
		Short: "List, revoke and delete users' connections (their stored OAuth tokens)",
		Long: `A connection is a user's grant to a workload at an OAuth2 provider: the tokens
behalf holds for them after three-legged consent. Users are named as in the audit
log: id:<user id> or jwt:<issuer>#<subject>.`,
	}

	var provider, workload, user string
	ls := &cobra.Command{
		Use:   "list",
		Short: "List connections",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listConnections(cmd, cf, map[string]string{"provider": provider, "workload": workload, "user": user})
		},
	}
	ls.Flags().StringVar(&provider, "provider", "", "only this OAuth2 credential provider")
	ls.Flags().StringVar(&workload, "workload", "", "only this workload identity")
	ls.Flags().StringVar(&user, "user", "", "only this user")

	target := func(c *cobra.Command) (*string, *string, *string) {
		var p, w, u string
		c.Flags().StringVar(&p, "provider", "", "OAuth2 credential provider (required)")
		c.Flags().StringVar(&w, "workload", "", "workload identity (required)")
		c.Flags().StringVar(&u, "user", "", "user, as id:<user id> or jwt:<issuer>#<subject> (required)")
		return &p, &w, &u
	}
	revoke := &cobra.Command{
		Use:   "revoke --provider P --workload W --user U",
		Short: "Revoke the user's tokens at the provider (RFC 7009, where offered) and delete the connection",
		Args:  cobra.NoArgs,
	}
	rp, rw, ru := target(revoke)
	revoke.RunE = func(cmd *cobra.Command, _ []string) error {
		if *rp == "" || *rw == "" || *ru == "" {
			return fmt.Errorf("--provider, --workload and --user are required")
		}
		var out behalfapi.RevokeConnectionOutput
		if err := cf.call(cmd.Context(), "RevokeConnection", behalfapi.ConnectionInput{Provider: *rp, Workload: *rw, User: *ru}, &out); err != nil {
			return err
		}
		return cf.print(cmd, out, fields("revoked at provider", fmt.Sprint(out.RevokedAtProvider), "result", out.Message))
	}
	del := &cobra.Command{
		Use:   "delete --provider P --workload W --user U",
		Short: "Delete the connection here without contacting the provider",
		Args:  cobra.NoArgs,
	}
	dp, dw, du := target(del)
	del.RunE = func(cmd *cobra.Command, _ []string) error {
		if *dp == "" || *dw == "" || *du == "" {
			return fmt.Errorf("--provider, --workload and --user are required")
		}
		if err := cf.call(cmd.Context(), "DeleteConnection", behalfapi.ConnectionInput{Provider: *dp, Workload: *dw, User: *du}, nil); err != nil {
			return err
		}
		what := strings.Join([]string{*dp, *dw, *du}, " / ")
		return cf.print(cmd, map[string]string{"deleted": what}, fields("deleted", what))
	}
	cmd.AddCommand(ls, revoke, del)
	return cmd
}

// listConnections prints every page of ListConnections, filtered by the
// non-empty members of filter.
func listConnections(cmd *cobra.Command, cf *clientFlags, filter map[string]string) error {
	all := []behalfapi.Connection{}
	t := table{header: []string{"PROVIDER", "WORKLOAD", "USER", "STATUS", "SCOPES", "LAST USED"}}
	var next *string
	for {
		in := map[string]any{}
		for k, v := range filter {
			if v != "" {
				in[k] = v
			}
		}
		if next != nil {
			in["nextToken"] = *next
		}
		var page behalfapi.ListConnectionsOutput
		if err := cf.call(cmd.Context(), "ListConnections", in, &page); err != nil {
			return err
		}
		for _, c := range page.Connections {
			all = append(all, c)
			t.rows = append(t.rows, []string{c.Provider, c.Workload, c.User, c.Status, list(c.Scopes), c.LastUsedTime.String()})
		}
		if next = page.NextToken; next == nil {
			return cf.print(cmd, all, t)
		}
	}
}
