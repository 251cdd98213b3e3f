package cli

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/spf13/cobra"
)

// deleteCommand builds "delete NAME" for one kind of control-plane
// resource; remove calls the resource's Delete operation.
func deleteCommand(cf *clientFlags, short string, remove func(ctx context.Context, c *bedrockagentcorecontrol.Client, name string) error) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			if err := remove(cmd.Context(), c, args[0]); err != nil {
				return cf.describe(err)
			}
			return cf.print(cmd, map[string]string{"deleted": args[0]}, fields("deleted", args[0]))
		},
	}
}

// pages is what the SDK's List… paginators have in common.
type pages[Page any] interface {
	HasMorePages() bool
	NextPage(ctx context.Context, optFns ...func(*bedrockagentcorecontrol.Options)) (Page, error)
}

// listCommand builds "list" for one kind of control-plane resource: it
// reads every page from the paginator that paginate makes, and prints the
// views and table rows that rows makes of each page under header.
func listCommand[Page, View any](cf *clientFlags, short string, header []string,
	paginate func(*bedrockagentcorecontrol.Client) pages[Page], rows func(Page) ([]View, [][]string)) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			views := []View{}
			t := table{header: header}
			for p := paginate(c); p.HasMorePages(); {
				page, err := p.NextPage(cmd.Context())
				if err != nil {
					return cf.describe(err)
				}
				v, r := rows(page)
				views = append(views, v...)
				t.rows = append(t.rows, r...)
			}
			return cf.print(cmd, views, t)
		},
	}
}
