package cli

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/spf13/cobra"
)

type portalSourceView struct {
	Identifier string `json:"identifier"`
	Type       string `json:"type"`
}

type portalIdpView struct {
	CredentialProviderArn string   `json:"credentialProviderArn"`
	Scopes                []string `json:"scopes"`
	Audience              string   `json:"audience,omitempty"`
}

type consentPortalView struct {
	ID               string             `json:"consentPortalId"`
	Arn              string             `json:"consentPortalArn"`
	Name             string             `json:"name"`
	Description      string             `json:"description,omitempty"`
	ExecutionRoleArn string             `json:"executionRoleArn,omitempty"`
	IdpConfig        *portalIdpView     `json:"idpConfig,omitempty"`
	Sources          []portalSourceView `json:"sources"`
	Status           string             `json:"status"`
	PortalURL        string             `json:"portalUrl,omitempty"`
	CreatedAt        *time.Time         `json:"createdAt,omitempty"`
	UpdatedAt        *time.Time         `json:"updatedAt,omitempty"`
}

func portalSourceViews(src []types.ConsentPortalSource) []portalSourceView {
	views := make([]portalSourceView, len(src))
	for i, s := range src {
		views[i] = portalSourceView{Identifier: str(s.Identifier), Type: string(s.Type)}
	}
	return views
}

// portalView is the view of what Create, Get and UpdateConsentPortal
// return; they share their members.
func portalView(id, arn, name, description, role *string, idp *types.ConsentPortalIdpConfig, src []types.ConsentPortalSource,
	status types.ConsentPortalStatus, url *string, created, updated *time.Time) consentPortalView {
	v := consentPortalView{ID: str(id), Arn: str(arn), Name: str(name), Description: str(description), ExecutionRoleArn: str(role),
		Sources: portalSourceViews(src), Status: string(status), PortalURL: str(url), CreatedAt: created, UpdatedAt: updated}
	if idp != nil {
		v.IdpConfig = &portalIdpView{CredentialProviderArn: str(idp.CredentialProviderArn), Scopes: idp.Scopes, Audience: str(idp.Audience)}
	}
	return v
}

func (v consentPortalView) table() table {
	var gateways []string
	for _, s := range v.Sources {
		gateways = append(gateways, s.Identifier)
	}
	t := fields("id", v.ID, "name", v.Name, "arn", v.Arn, "status", v.Status, "portal URL", v.PortalURL, "gateways", list(gateways))
	if v.Description != "" {
		t.rows = append(t.rows, []string{"description", v.Description})
	}
	if v.IdpConfig != nil {
		t.rows = append(t.rows, []string{"identity provider", v.IdpConfig.CredentialProviderArn}, []string{"scopes", list(v.IdpConfig.Scopes)})
		if v.IdpConfig.Audience != "" {
			t.rows = append(t.rows, []string{"audience", v.IdpConfig.Audience})
		}
	}
	if v.ExecutionRoleArn != "" {
		t.rows = append(t.rows, []string{"execution role", v.ExecutionRoleArn})
	}
	if v.CreatedAt != nil {
		t.rows = append(t.rows, []string{"created", when(v.CreatedAt)}, []string{"updated", when(v.UpdatedAt)})
	}
	return t
}

// idpFlags set a portal's idpConfig.
type idpFlags struct {
	provider string
	scopes   []string
	audience string
}

func (f *idpFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.provider, "provider", "", "OAuth2 credential provider users sign in with: its name or ARN")
	fl.StringArrayVar(&f.scopes, "scope", nil, "scope to request from the identity provider (repeatable)")
	fl.StringVar(&f.audience, "audience", "", "audience to request from the identity provider")
}

// config returns the idpConfig the flags give, naming the provider by
// its ARN; nil when no flag is set.
func (f *idpFlags) config(ctx context.Context, c *bedrockagentcorecontrol.Client) (*types.ConsentPortalIdpConfig, error) {
	if f.provider == "" && len(f.scopes) == 0 && f.audience == "" {
		return nil, nil
	}
	if f.provider == "" || len(f.scopes) == 0 {
		return nil, errors.New("the identity provider needs --provider and at least one --scope")
	}
	arn := f.provider
	if !strings.HasPrefix(arn, "arn:") {
		p, err := c.GetOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String(f.provider)})
		if err != nil {
			return nil, err
		}
		arn = str(p.CredentialProviderArn)
	}
	cfg := &types.ConsentPortalIdpConfig{CredentialProviderArn: aws.String(arn), Scopes: f.scopes}
	if f.audience != "" {
		cfg.Audience = aws.String(f.audience)
	}
	return cfg, nil
}

func newConsentPortalCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "consent-portal", Short: "Manage consent portals, where a gateway's users sign in and consent (docs/consent-portals.md)"}
	cmd.AddCommand(newConsentPortalCreate(cf), newConsentPortalGet(cf), newConsentPortalUpdate(cf),
		deleteCommand(cf, "Delete a consent portal, by id or ARN", func(ctx context.Context, c *bedrockagentcorecontrol.Client, ident string) error {
			_, err := c.DeleteConsentPortal(ctx, &bedrockagentcorecontrol.DeleteConsentPortalInput{ConsentPortalIdentifier: aws.String(ident)})
			return err
		}),
		listCommand(cf, "List consent portals", []string{"ID", "NAME", "STATUS", "GATEWAYS"},
			func(c *bedrockagentcorecontrol.Client) pages[*bedrockagentcorecontrol.ListConsentPortalsOutput] {
				return bedrockagentcorecontrol.NewListConsentPortalsPaginator(c, &bedrockagentcorecontrol.ListConsentPortalsInput{})
			},
			func(page *bedrockagentcorecontrol.ListConsentPortalsOutput) (views []consentPortalView, rows [][]string) {
				for _, p := range page.ConsentPortals {
					v := portalView(p.ConsentPortalId, p.ConsentPortalArn, p.Name, p.Description, nil, nil, p.Sources, p.Status, p.PortalUrl, p.CreatedAt, p.UpdatedAt)
					var gateways []string
					for _, s := range v.Sources {
						gateways = append(gateways, s.Identifier)
					}
					views = append(views, v)
					rows = append(rows, []string{v.ID, v.Name, v.Status, list(gateways)})
				}
				return views, rows
			}))
	return cmd
}

func newConsentPortalCreate(cf *clientFlags) *cobra.Command {
	var idp idpFlags
	var gateway, role, description string
	var tags map[string]string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a consent portal for a gateway",
		Example: `  behalf consent-portal create support --gateway support-gw-a1b2c3d4e5 \
      --provider corp-idp --scope openid --scope profile \
      --execution-role-arn arn:aws:iam::123456789012:role/consent-portal`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			cfg, err := idp.config(cmd.Context(), c)
			if err != nil {
				return cf.describe(err)
			}
			if cfg == nil {
				return errors.New("give the identity provider with --provider and --scope")
			}
			in := &bedrockagentcorecontrol.CreateConsentPortalInput{
				Name: aws.String(args[0]), ExecutionRoleArn: aws.String(role), IdpConfig: cfg, Tags: tags,
				Sources: []types.ConsentPortalSource{{Identifier: aws.String(gateway), Type: types.ConsentPortalSourceTypeAgentcoreGateway}},
			}
			if description != "" {
				in.Description = aws.String(description)
			}
			out, err := c.CreateConsentPortal(cmd.Context(), in)
			if err != nil {
				return cf.describe(err)
			}
			v := portalView(out.ConsentPortalId, out.ConsentPortalArn, out.Name, out.Description, out.ExecutionRoleArn, out.IdpConfig,
				out.Sources, out.Status, out.PortalUrl, out.CreatedAt, out.UpdatedAt)
			return cf.print(cmd, v, v.table())
		},
	}
	idp.register(create)
	fl := create.Flags()
	fl.StringVar(&gateway, "gateway", "", "the gateway the portal serves: its id or ARN")
	fl.StringVar(&role, "execution-role-arn", "", "IAM role ARN, stored and shown (behalf acts with its own authority and assumes no role)")
	fl.StringVar(&description, "description", "", "description")
	fl.StringToStringVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	return create
}

func newConsentPortalGet(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID|ARN",
		Short: "Show a consent portal",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			out, err := c.GetConsentPortal(cmd.Context(), &bedrockagentcorecontrol.GetConsentPortalInput{ConsentPortalIdentifier: aws.String(args[0])})
			if err != nil {
				return cf.describe(err)
			}
			v := portalView(out.ConsentPortalId, out.ConsentPortalArn, out.Name, out.Description, out.ExecutionRoleArn, out.IdpConfig,
				out.Sources, out.Status, out.PortalUrl, out.CreatedAt, out.UpdatedAt)
			return cf.print(cmd, v, v.table())
		},
	}
}

func newConsentPortalUpdate(cf *clientFlags) *cobra.Command {
	var idp idpFlags
	var role, description string
	update := &cobra.Command{
		Use:   "update ID|ARN",
		Short: "Change a consent portal's description, execution role or identity provider",
		Long: `Change a consent portal. The name and gateway are fixed at creation. The
identity provider (--provider, --scope, --audience) is replaced as a whole.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			cfg, err := idp.config(cmd.Context(), c)
			if err != nil {
				return cf.describe(err)
			}
			fl := cmd.Flags()
			in := &bedrockagentcorecontrol.UpdateConsentPortalInput{ConsentPortalIdentifier: aws.String(args[0]), IdpConfig: cfg}
			if fl.Changed("description") {
				in.Description = aws.String(description)
			}
			if fl.Changed("execution-role-arn") {
				in.ExecutionRoleArn = aws.String(role)
			}
			if in.IdpConfig == nil && in.Description == nil && in.ExecutionRoleArn == nil {
				return errors.New("nothing to update: give --description, --execution-role-arn or --provider with --scope")
			}
			out, err := c.UpdateConsentPortal(cmd.Context(), in)
			if err != nil {
				return cf.describe(err)
			}
			v := portalView(out.ConsentPortalId, out.ConsentPortalArn, out.Name, out.Description, out.ExecutionRoleArn, out.IdpConfig,
				out.Sources, out.Status, out.PortalUrl, out.CreatedAt, out.UpdatedAt)
			return cf.print(cmd, v, v.table())
		},
	}
	idp.register(update)
	update.Flags().StringVar(&role, "execution-role-arn", "", "IAM role ARN, stored and shown")
	update.Flags().StringVar(&description, "description", "", "description (empty to clear)")
	return update
}
