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
	policyMembers
}

func (v identityView) table() table {
	t := fields("name", v.Name, "arn", v.Arn, "return URLs", list(v.AllowedReturnURLs))
	if v.Name != "" && v.Arn != "" {
		authorizers := "any"
		if v.Authorizers != nil {
			authorizers = list(*v.Authorizers)
		}
		providers := "any"
		if v.Providers != nil {
			var ps []string
			for _, p := range *v.Providers {
				if len(p.Scopes) > 0 {
					ps = append(ps, p.Provider+":"+strings.Join(p.Scopes, ","))
				} else {
					ps = append(ps, p.Provider)
				}
			}
			providers = list(ps)
		}
		t.rows = append(t.rows, []string{"inbound authorizers", authorizers}, []string{"credential providers", providers})
	}
	if v.CreatedTime != nil {
		t.rows = append(t.rows, []string{"created", when(v.CreatedTime)}, []string{"updated", when(v.LastUpdatedTime)})
	}
	return t
}

// policyFlags set behalf's least-privilege extension members.
type policyFlags struct {
	authorizers   []string
	providers     []string
	noAuthorizers bool
	noProviders   bool
}

func (f *policyFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.authorizers, "allow-authorizer", nil, "inbound JWT authorizer that may vouch for this agent's users (repeatable; * for any)")
	fl.StringArrayVar(&f.providers, "allow-provider", nil, "credential provider this agent may use, as NAME or NAME:scope1,scope2 (repeatable; * for any)")
	fl.BoolVar(&f.noAuthorizers, "no-authorizers", false, "allow no inbound JWT authorizer")
	fl.BoolVar(&f.noProviders, "no-providers", false, "allow no credential provider")
}

// members returns the extension members to send.
func (f *policyFlags) members() (map[string]any, error) {
	m := map[string]any{}
	switch {
	case f.noAuthorizers && len(f.authorizers) > 0:
		return nil, fmt.Errorf("use --allow-authorizer or --no-authorizers, not both")
	case f.noAuthorizers:
		m["allowedInboundAuthorizers"] = []string{}
	case len(f.authorizers) > 0:
		m["allowedInboundAuthorizers"] = f.authorizers
	}
	switch {
	case f.noProviders && len(f.providers) > 0:
		return nil, fmt.Errorf("use --allow-provider or --no-providers, not both")
	case f.noProviders:
		m["allowedCredentialProviders"] = []any{}
	case len(f.providers) > 0:
		var grants []map[string]any
		for _, p := range f.providers {
			name, scopes, _ := strings.Cut(p, ":")
			g := map[string]any{"provider": name}
			if scopes != "" {
				g["scopes"] = strings.Split(scopes, ",")
			}
			grants = append(grants, g)
		}
		m["allowedCredentialProviders"] = grants
	}
	return m, nil
}

func newIdentityCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "identity", Short: "Manage workload identities (agent identities)"}

	var returnURLs []string
	var tags map[string]string
	var createPolicy policyFlags
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a workload identity",
		Example: `  behalf identity create my-agent --return-url http://127.0.0.1:9090/oauth/done
  behalf identity create reporter --allow-authorizer corp --allow-provider github:repo,read:org --allow-provider weather`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			add, err := createPolicy.members()
			if err != nil {
				return err
			}
			c, err := cf.control()
			if err != nil {
				return err
			}
			ext := &extensions{add: add}
			out, err := c.CreateWorkloadIdentity(cmd.Context(), &bedrockagentcorecontrol.CreateWorkloadIdentityInput{
				Name: aws.String(args[0]), AllowedResourceOauth2ReturnUrls: returnURLs, Tags: tags,
			}, ext.option)
			if err != nil {
				return cf.describe(err)
			}
			v := identityView{Name: str(out.Name), Arn: str(out.WorkloadIdentityArn), AllowedReturnURLs: out.AllowedResourceOauth2ReturnUrls, policyMembers: ext.policy()}
			return cf.print(cmd, v, v.table())
		},
	}
	create.Flags().StringArrayVar(&returnURLs, "return-url", nil, "allowed OAuth2 return URL (repeatable)")
	create.Flags().StringToStringVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	createPolicy.register(create)

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a workload identity",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			ext := &extensions{}
			out, err := c.GetWorkloadIdentity(cmd.Context(), &bedrockagentcorecontrol.GetWorkloadIdentityInput{Name: aws.String(args[0])}, ext.option)
			if err != nil {
				return cf.describe(err)
			}
			v := identityView{Name: str(out.Name), Arn: str(out.WorkloadIdentityArn), AllowedReturnURLs: out.AllowedResourceOauth2ReturnUrls,
				CreatedTime: out.CreatedTime, LastUpdatedTime: out.LastUpdatedTime, policyMembers: ext.policy()}
			return cf.print(cmd, v, v.table())
		},
	}

	var updateURLs []string
	var clearURLs bool
	var updatePolicy policyFlags
	update := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a workload identity's return URLs, allowed authorizers or allowed credential providers",
		Long: `Change a workload identity. Each list given replaces the stored one; lists
not given are left as they are. Use * to lift a restriction (--allow-provider '*').`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := &bedrockagentcorecontrol.UpdateWorkloadIdentityInput{Name: aws.String(args[0])}
			switch {
			case clearURLs && len(updateURLs) > 0:
				return fmt.Errorf("use --return-url or --clear-return-urls, not both")
			case clearURLs:
				in.AllowedResourceOauth2ReturnUrls = []string{}
			case len(updateURLs) > 0:
				in.AllowedResourceOauth2ReturnUrls = updateURLs
			}
			add, err := updatePolicy.members()
			if err != nil {
				return err
			}
			if in.AllowedResourceOauth2ReturnUrls == nil && len(add) == 0 {
				return fmt.Errorf("nothing to update: give --return-url, --clear-return-urls, --allow-authorizer, --allow-provider, --no-authorizers or --no-providers")
			}
			c, err := cf.control()
			if err != nil {
				return err
			}
			ext := &extensions{add: add}
			out, err := c.UpdateWorkloadIdentity(cmd.Context(), in, ext.option)
			if err != nil {
				return cf.describe(err)
			}
			v := identityView{Name: str(out.Name), Arn: str(out.WorkloadIdentityArn), AllowedReturnURLs: out.AllowedResourceOauth2ReturnUrls,
				CreatedTime: out.CreatedTime, LastUpdatedTime: out.LastUpdatedTime, policyMembers: ext.policy()}
			return cf.print(cmd, v, v.table())
		},
	}
	update.Flags().StringArrayVar(&updateURLs, "return-url", nil, "allowed OAuth2 return URL (repeatable); replaces the list")
	update.Flags().BoolVar(&clearURLs, "clear-return-urls", false, "remove every allowed return URL")
	updatePolicy.register(update)

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
