package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/behalfapi"
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
			for _, g := range *v.Providers {
				ps = append(ps, grantText(g))
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

// grantText shows a provider grant as the flags that would set it.
func grantText(g behalfapi.ProviderGrant) string {
	text := g.Provider
	if len(g.Scopes) > 0 {
		text += ":" + strings.Join(g.Scopes, ",")
	}
	for _, q := range []struct {
		name   string
		values []string
	}{{"resource", g.Resources}, {"audience", g.Audiences}, {"custom-parameter", g.CustomParameters}} {
		for _, v := range q.values {
			text += " " + q.name + "=" + v
		}
	}
	return text
}

// policyFlags set behalf's least-privilege extension members.
type policyFlags struct {
	authorizers   []string
	providers     []string
	resources     []string
	audiences     []string
	parameters    []string
	noAuthorizers bool
	noProviders   bool
}

func (f *policyFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.authorizers, "allow-authorizer", nil, "inbound JWT authorizer that may vouch for this agent's users (repeatable; * for any)")
	fl.StringArrayVar(&f.providers, "allow-provider", nil, "credential provider this agent may use, as NAME (any scope) or NAME:scope1,scope2 (repeatable; * for any provider, without limits)")
	fl.StringArrayVar(&f.resources, "allow-resource", nil, "resource (RFC 8707) the agent may request from an allowed provider, as PROVIDER=URI (repeatable; PROVIDER=* for any; none given allows none)")
	fl.StringArrayVar(&f.audiences, "allow-audience", nil, "audience the agent may request from an allowed provider, as PROVIDER=AUDIENCE (repeatable; PROVIDER=* for any; none given allows none)")
	fl.StringArrayVar(&f.parameters, "allow-custom-parameter", nil, "custom parameter the agent may send to an allowed provider, as PROVIDER=NAME (repeatable; PROVIDER=* for any; none given allows none)")
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
	qualified := len(f.resources)+len(f.audiences)+len(f.parameters) > 0
	switch {
	case f.noProviders && len(f.providers) > 0:
		return nil, fmt.Errorf("use --allow-provider or --no-providers, not both")
	case f.noProviders && qualified:
		return nil, fmt.Errorf("--allow-resource, --allow-audience and --allow-custom-parameter qualify an --allow-provider, not --no-providers")
	case f.noProviders:
		m["allowedCredentialProviders"] = []any{}
	case len(f.providers) > 0:
		grants, err := f.grants()
		if err != nil {
			return nil, err
		}
		m["allowedCredentialProviders"] = grants
	case qualified:
		return nil, fmt.Errorf("--allow-resource, --allow-audience and --allow-custom-parameter need the --allow-provider they qualify (the list given replaces the stored one)")
	}
	return m, nil
}

// grants builds allowedCredentialProviders from --allow-provider and its
// qualifiers.
func (f *policyFlags) grants() ([]behalfapi.ProviderGrant, error) {
	var grants []behalfapi.ProviderGrant
	index := map[string]int{}
	for _, p := range f.providers {
		name, scopes, _ := strings.Cut(p, ":")
		g := behalfapi.ProviderGrant{Provider: name}
		if scopes != "" {
			g.Scopes = strings.Split(scopes, ",")
		}
		index[name] = len(grants)
		grants = append(grants, g)
	}
	for _, q := range []struct {
		flag   string
		values []string
		add    func(*behalfapi.ProviderGrant, string)
	}{
		{"--allow-resource", f.resources, func(g *behalfapi.ProviderGrant, v string) { g.Resources = append(g.Resources, v) }},
		{"--allow-audience", f.audiences, func(g *behalfapi.ProviderGrant, v string) { g.Audiences = append(g.Audiences, v) }},
		{"--allow-custom-parameter", f.parameters, func(g *behalfapi.ProviderGrant, v string) { g.CustomParameters = append(g.CustomParameters, v) }},
	} {
		for _, arg := range q.values {
			// Provider names have no "=", so the first one ends the name;
			// the value (a URI, say) may hold more.
			name, value, ok := strings.Cut(arg, "=")
			if !ok || name == "" || value == "" {
				return nil, fmt.Errorf("%s %q is not PROVIDER=VALUE", q.flag, arg)
			}
			i, ok := index[name]
			if !ok {
				return nil, fmt.Errorf("%s %q names provider %s, which no --allow-provider allows", q.flag, arg, name)
			}
			q.add(&grants[i], value)
		}
	}
	return grants, nil
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
  behalf identity create reporter --allow-authorizer corp --allow-provider github:repo,read:org --allow-provider weather
  behalf identity create payer --allow-provider dev-idp:openid --allow-audience dev-idp=https://payments.example/ --allow-custom-parameter dev-idp=login_hint`,
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
not given are left as they are. Use * to lift a restriction (--allow-provider '*').

A provider grant limits scopes (none listed: any scope), resources, audiences and
custom parameter names (none listed: none; PROVIDER=* for any), which are given
with the --allow-provider they qualify:

  behalf identity update my-agent --allow-provider dev-idp:openid,profile \
      --allow-audience dev-idp=https://payments.example/ --allow-resource 'dev-idp=*'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			urls, err := returnURLUpdate(updateURLs, clearURLs)
			if err != nil {
				return err
			}
			in := &bedrockagentcorecontrol.UpdateWorkloadIdentityInput{Name: aws.String(args[0]), AllowedResourceOauth2ReturnUrls: urls}
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

	del := deleteCommand(cf, "Delete a workload identity", func(ctx context.Context, c *bedrockagentcorecontrol.Client, name string) error {
		_, err := c.DeleteWorkloadIdentity(ctx, &bedrockagentcorecontrol.DeleteWorkloadIdentityInput{Name: aws.String(name)})
		return err
	})
	ls := listCommand(cf, "List workload identities", []string{"NAME", "ARN"},
		func(c *bedrockagentcorecontrol.Client) pages[*bedrockagentcorecontrol.ListWorkloadIdentitiesOutput] {
			return bedrockagentcorecontrol.NewListWorkloadIdentitiesPaginator(c, &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{})
		},
		func(page *bedrockagentcorecontrol.ListWorkloadIdentitiesOutput) (views []identityView, rows [][]string) {
			for _, w := range page.WorkloadIdentities {
				views = append(views, identityView{Name: str(w.Name), Arn: str(w.WorkloadIdentityArn)})
				rows = append(rows, []string{str(w.Name), str(w.WorkloadIdentityArn)})
			}
			return views, rows
		})
	cmd.AddCommand(create, get, update, del, ls)
	return cmd
}

// returnURLUpdate is the list of return URLs an update sets: urls, or an
// empty list to clear them, or nil to leave them as they are.
func returnURLUpdate(urls []string, clearAll bool) ([]string, error) {
	switch {
	case clearAll && len(urls) > 0:
		return nil, errors.New("use --return-url or --clear-return-urls, not both")
	case clearAll:
		return []string{}, nil
	case len(urls) > 0:
		return urls, nil
	}
	return nil, nil
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
