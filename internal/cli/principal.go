package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/behalfapi"
)

// principal renders the output of the /behalf/*Principal operations.
type principal behalfapi.Principal

func (p principal) table() table {
	t := fields("access key id", p.AccessKeyID, "role", p.Role, "workloads", list(p.Workloads), "description", p.Description,
		"created", p.CreatedTime.String(), "updated", p.LastUpdatedTime.String())
	if len(p.Operations) > 0 {
		t.rows = append(t.rows, []string{"operations", list(p.Operations)})
	}
	if p.SecretAccessKey != "" {
		t.rows = append(t.rows, []string{"secret access key", p.SecretAccessKey + "   (shown once; store it now)"})
	}
	return t
}

func newPrincipalCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "principal",
		Short: "Manage principals: the access keys that sign API requests",
		Long: `Principals are behalf's API callers. Each has an access key pair that signs
requests with AWS Signature Version 4, and a role:

  admin    every operation, control and data plane
  runtime  the data plane only, for the workload identities it is granted
           (use "*" to grant every workload); --operation limits it to some
           data-plane operations, e.g. to vend but not to complete users'
           sessions (CompleteResourceTokenAuth)`,
	}

	var role, description, keyID, secret string
	var workloads, operations []string
	create := &cobra.Command{
		Use:     "create --role admin|runtime [--workload NAME]... [--operation NAME]...",
		Short:   "Create a principal and print its secret access key (shown once)",
		Example: "  behalf principal create --role runtime --workload my-agent",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := behalfapi.CreatePrincipalInput{Role: role, Workloads: workloads, Operations: operations}
			if (keyID == "") != (secret == "") {
				return fmt.Errorf("--key-id and --secret go together (a key pair chosen by you, e.g. one a configuration file names)")
			}
			if keyID != "" {
				s, err := readSecret(cmd, "secret", secret)
				if err != nil {
					return err
				}
				in.AccessKeyID, in.SecretAccessKey = &keyID, &s
			}
			if description != "" {
				in.Description = &description
			}
			var out principal
			if err := cf.call(cmd.Context(), "CreatePrincipal", in, &out); err != nil {
				return err
			}
			return cf.print(cmd, out, out.table())
		},
	}
	create.Flags().StringVar(&role, "role", "runtime", "admin or runtime")
	create.Flags().StringArrayVar(&workloads, "workload", nil, "workload identity a runtime principal may act for (repeatable; * for all)")
	create.Flags().StringArrayVar(&operations, "operation", nil, "data-plane operation a runtime principal may call (repeatable; default all)")
	create.Flags().StringVar(&description, "description", "", "free-form description")
	create.Flags().StringVar(&keyID, "key-id", "", "the access key id to create, instead of a generated one (with --secret)")
	create.Flags().StringVar(&secret, "secret", "", "its secret: the value, - for standard input, or @FILE")

	get := &cobra.Command{
		Use:   "get ACCESS_KEY_ID",
		Short: "Show a principal",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out principal
			if err := cf.call(cmd.Context(), "GetPrincipal", behalfapi.PrincipalIDInput{AccessKeyID: args[0]}, &out); err != nil {
				return err
			}
			return cf.print(cmd, out, out.table())
		},
	}

	var setRole string
	var setWorkloads, setOperations []string
	var clearWorkloads, clearOperations bool
	update := &cobra.Command{
		Use:   "update ACCESS_KEY_ID",
		Short: "Change a principal's role or granted workloads",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := behalfapi.UpdatePrincipalInput{AccessKeyID: args[0]}
			if setRole != "" {
				in.Role = &setRole
			}
			var err error
			if in.Workloads, err = replaceOrClear(setWorkloads, clearWorkloads, "--workload or --clear-workloads"); err != nil {
				return err
			}
			if in.Operations, err = replaceOrClear(setOperations, clearOperations, "--operation or --all-operations"); err != nil {
				return err
			}
			if in.Role == nil && in.Workloads == nil && in.Operations == nil {
				return errors.New("nothing to update: give --role, --workload, --clear-workloads, --operation or --all-operations")
			}
			var out principal
			if err := cf.call(cmd.Context(), "UpdatePrincipal", in, &out); err != nil {
				return err
			}
			return cf.print(cmd, out, out.table())
		},
	}
	update.Flags().StringVar(&setRole, "role", "", "new role: admin or runtime")
	update.Flags().StringArrayVar(&setWorkloads, "workload", nil, "granted workload (repeatable; replaces the list)")
	update.Flags().BoolVar(&clearWorkloads, "clear-workloads", false, "remove every granted workload")
	update.Flags().StringArrayVar(&setOperations, "operation", nil, "data-plane operation the principal may call (repeatable; replaces the list)")
	update.Flags().BoolVar(&clearOperations, "all-operations", false, "allow every data-plane operation again")

	del := &cobra.Command{
		Use:   "delete ACCESS_KEY_ID",
		Short: "Delete a principal; its key stops working at once on this server and within seconds on others",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.call(cmd.Context(), "DeletePrincipal", behalfapi.PrincipalIDInput{AccessKeyID: args[0]}, nil); err != nil {
				return err
			}
			return cf.print(cmd, map[string]string{"deleted": args[0]}, fields("deleted", args[0]))
		},
	}

	ls := &cobra.Command{
		Use:   "list",
		Short: "List principals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listPrincipals(cmd, cf)
		},
	}
	cmd.AddCommand(create, get, update, del, ls)
	return cmd
}

// replaceOrClear turns a list flag and its clearing flag into an update's
// member: nil leaves the list alone, an empty list clears it.
func replaceOrClear(values []string, clearAll bool, flags string) (*[]string, error) {
	switch {
	case clearAll && len(values) > 0:
		return nil, fmt.Errorf("use %s, not both", flags)
	case clearAll:
		return &[]string{}, nil
	case len(values) > 0:
		return &values, nil
	}
	return nil, nil
}

// listPrincipals prints every principal, following ListPrincipals' pages.
func listPrincipals(cmd *cobra.Command, cf *clientFlags) error {
	all := []*behalfapi.Principal{}
	t := table{header: []string{"ACCESS KEY ID", "ROLE", "WORKLOADS", "DESCRIPTION"}}
	var next *string
	for {
		in := map[string]any{}
		if next != nil {
			in["nextToken"] = *next
		}
		var page behalfapi.ListPrincipalsOutput
		if err := cf.call(cmd.Context(), "ListPrincipals", in, &page); err != nil {
			return err
		}
		for _, p := range page.Principals {
			all = append(all, p)
			t.rows = append(t.rows, []string{p.AccessKeyID, p.Role, strings.Join(p.Workloads, ","), p.Description})
		}
		if next = page.NextToken; next == nil {
			return cf.print(cmd, all, t)
		}
	}
}
