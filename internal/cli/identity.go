package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/spf13/cobra"
)

type identityView struct {
	Name              string     `json:"name"`
	Arn               string     `json:"workloadIdentityArn"`
	AllowedReturnURLs []string   `json:"allowedResourceOauth2ReturnUrls"`
	CreatedTime       *time.Time `json:"createdTime,omitempty"`
	LastUpdatedTime   *time.Time `json:"lastUpdatedTime,omitempty"`
}

func (v identityView) table() table {
	t := fields("name", v.Name, "arn", v.Arn, "return URLs", list(v.AllowedReturnURLs))
	if v.CreatedTime != nil {
		t.rows = append(t.rows, []string{"created", when(v.CreatedTime)}, []string{"updated", when(v.LastUpdatedTime)})
	}
	return t
}

func newIdentityCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "identity", Short: "Manage workload identities (agent identities)"}

	var returnURLs []string
	var tags map[string]string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a workload identity",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			out, err := c.CreateWorkloadIdentity(cmd.Context(), &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
				Name: aws.String(args[0]), AllowedResourceOauth2ReturnUrls: returnURLs, Tags: tags,
			})
			if err != nil {
				return cf.describe(err)
			}
			v := identityView{Name: str(out.Name), Arn: str(out.WorkloadIdentityArn), AllowedReturnURLs: out.AllowedResourceOauth2ReturnUrls}
			return cf.print(cmd, v, v.table())
		},
	}
	create.Flags().StringArrayVar(&returnURLs, "return-url", nil, "allowed OAuth2 return URL (repeatable)")
	create.Flags().StringToStringVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a workload identity",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			out, err := c.GetWorkloadIdentity(cmd.Context(), &bedrockagentcorecontrol.GetWorkloadIdentityInput{Name: aws.String(args[0])})
			if err != nil {
				return cf.describe(err)
			}
			v := identityView{Name: str(out.Name), Arn: str(out.WorkloadIdentityArn), AllowedReturnURLs: out.AllowedResourceOauth2ReturnUrls,
				CreatedTime: out.CreatedTime, LastUpdatedTime: out.LastUpdatedTime}
			return cf.print(cmd, v, v.table())
		},
	}

	var updateURLs []string
	var clearURLs bool
	update := &cobra.Command{
		Use:   "update NAME",
		Short: "Replace a workload identity's allowed return URLs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := &bedrockagentcorecontrol.UpdateWorkloadIdentityInput{Name: aws.String(args[0])}
			switch {
			case clearURLs && len(updateURLs) > 0:
				return fmt.Errorf("use --return-url or --clear-return-urls, not both")
			case clearURLs:
				in.AllowedResourceOauth2ReturnUrls = []string{}
			case len(updateURLs) > 0:
				in.AllowedResourceOauth2ReturnUrls = updateURLs
			default:
				return fmt.Errorf("nothing to update: give --return-url (repeatable) or --clear-return-urls")
			}
			c, err := cf.control()
			if err != nil {
				return err
			}
			out, err := c.UpdateWorkloadIdentity(cmd.Context(), in)
			if err != nil {
				return cf.describe(err)
			}
			v := identityView{Name: str(out.Name), Arn: str(out.WorkloadIdentityArn), AllowedReturnURLs: out.AllowedResourceOauth2ReturnUrls,
				CreatedTime: out.CreatedTime, LastUpdatedTime: out.LastUpdatedTime}
			return cf.print(cmd, v, v.table())
		},
	}
	update.Flags().StringArrayVar(&updateURLs, "return-url", nil, "allowed OAuth2 return URL (repeatable); replaces the list")
	update.Flags().BoolVar(&clearURLs, "clear-return-urls", false, "remove every allowed return URL")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a workload identity",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			if _, err := c.DeleteWorkloadIdentity(cmd.Context(), &bedrockagentcorecontrol.DeleteWorkloadIdentityInput{Name: aws.String(args[0])}); err != nil {
				return cf.describe(err)
			}
			return cf.print(cmd, map[string]string{"deleted": args[0]}, fields("deleted", args[0]))
		},
	}

	ls := &cobra.Command{
		Use:   "list",
		Short: "List workload identities",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			views := []identityView{}
			t := table{header: []string{"NAME", "ARN"}}
			p := bedrockagentcorecontrol.NewListWorkloadIdentitiesPaginator(c, &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{})
			for p.HasMorePages() {
				page, err := p.NextPage(cmd.Context())
				if err != nil {
					return cf.describe(err)
				}
				for _, w := range page.WorkloadIdentities {
					views = append(views, identityView{Name: str(w.Name), Arn: str(w.WorkloadIdentityArn)})
					t.rows = append(t.rows, []string{str(w.Name), str(w.WorkloadIdentityArn)})
				}
			}
			return cf.print(cmd, views, t)
		},
	}
	cmd.AddCommand(create, get, update, del, ls)
	return cmd
}

// parseTags turns KEY=VALUE arguments into a map.
func parseTags(args []string) (map[string]string, error) {
	tags := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("tag %q is not KEY=VALUE", a)
		}
		tags[k] = v
	}
	return tags, nil
}
