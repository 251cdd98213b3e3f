package cli

import (
	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/behalfapi"
)

// mcpClientFlags are a pre-registered client's, for an authorization
// server that takes neither metadata documents nor dynamic registration.
type mcpClientFlags struct{ clientID, clientSecret, secretMethod, privateKey, signingAlgorithm, identityProvider string }

func (f *mcpClientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.clientID, "client-id", "", "a client already registered at the MCP server's authorization server (else behalf registers one)")
	cmd.Flags().StringVar(&f.clientSecret, "client-secret", "", "that client's secret, if it has one: the value, - for standard input, or @FILE")
	cmd.Flags().StringVar(&f.secretMethod, "client-auth-method", "", "how that client sends its secret: client_secret_basic or client_secret_post\n(default: basic, unless the authorization server offers only post)")
	cmd.Flags().StringVar(&f.privateKey, "client-private-key", "", "that client's PEM private key instead of a secret (private_key_jwt): @FILE or - for standard input")
	cmd.Flags().StringVar(&f.signingAlgorithm, "signing-algorithm", "", "the private key's algorithm: RS256, PS256 or ES256 (default: ES256 for an EC key, RS256 for an RSA key)")
	cmd.Flags().StringVar(&f.identityProvider, "identity-provider", "", "the OAuth2 credential provider of the enterprise IdP whose ID-JAGs the server's authorization\nserver accepts: users' tokens are then obtained with their ID tokens, with no consent page")
}

// mcpClient is the pre-registered client the flags give.
type mcpClient struct{ id, secret, secretMethod, privateKey, signingAlgorithm, identityProvider *string }

func (f *mcpClientFlags) read(cmd *cobra.Command) (mcpClient, error) {
	c := mcpClient{id: nonEmpty(f.clientID), signingAlgorithm: nonEmpty(f.signingAlgorithm), secretMethod: nonEmpty(f.secretMethod)}
	if cmd.Flags().Changed("identity-provider") { // on update, "" turns it off
		c.identityProvider = &f.identityProvider
	}
	for _, s := range []struct {
		flag, value string
		to          **string
	}{{"client-secret", f.clientSecret, &c.secret}, {"client-private-key", f.privateKey, &c.privateKey}} {
		if s.value == "" {
			continue
		}
		v, err := readSecret(cmd, s.flag, s.value)
		if err != nil {
			return mcpClient{}, err
		}
		*s.to = &v
	}
	return c, nil
}

func newMCPProviderCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "mcp", Short: "Manage remote MCP servers as OAuth2 credential providers"}

	var cflags mcpClientFlags
	var serverURL string
	var scopes []string
	var tags map[string]string
	var documentURL string
	create := &cobra.Command{
		Use:   "create NAME --server-url URL",
		Short: "Create an OAuth2 credential provider for a remote MCP server from its URL",
		Long: `The behalf server discovers the MCP server's authorization (as behalf mcp discover
does, through its egress policy), then gives itself a client at the server's
authorization server: the one --client-id names; else a Client ID Metadata Document
behalf serves at <public URL>/mcp-clients/<provider id>; else one it registers
(RFC 7591). Agents then use the provider with GetResourceOauth2Token
(USER_FEDERATION), like any OAuth2 provider. With --identity-provider, the
enterprise IdP's provider, behalf obtains users' tokens with ID-JAGs instead of
their consent (enterprise-managed authorization). See docs/mcp-client.md.`,
		Example: `  behalf provider mcp create notes --server-url https://mcp.example.com/mcp
  behalf provider mcp create crm --server-url https://crm.example.com/mcp --client-id behalf --client-secret -
  behalf provider mcp create erp --server-url https://erp.example.com/mcp --client-id behalf --client-private-key @behalf-key.pem
  behalf provider mcp create wiki --server-url https://wiki.example.com/mcp --client-id behalf --client-secret - --identity-provider okta`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cflags.read(cmd)
			if err != nil {
				return err
			}
			var out behalfapi.McpServerCredentialProviderOutput
			in := behalfapi.CreateMcpServerCredentialProviderInput{Name: args[0], ServerURL: serverURL, Scopes: scopes, ClientID: c.id, ClientSecret: c.secret,
				ClientPrivateKey: c.privateKey, SigningAlgorithm: c.signingAlgorithm, TokenEndpointAuthMethod: c.secretMethod,
				ClientMetadataDocumentURL: nonEmpty(documentURL), IdentityProvider: c.identityProvider, Tags: tags}
			if err := cf.call(cmd.Context(), "CreateMcpServerCredentialProvider", in, &out); err != nil {
				return err
			}
			return cf.print(cmd, out, mcpProviderTable(out))
		},
	}
	create.Flags().StringVar(&serverURL, "server-url", "", "the MCP server's URL (required)")
	create.Flags().StringSliceVar(&scopes, "scope", nil, "a scope agents ask for (repeatable; default: those discovery selects)")
	create.Flags().StringToStringVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	create.Flags().StringVar(&documentURL, "client-metadata-document-url", "", "an https URL where you will serve behalf's Client ID Metadata Document (printed),\nfor an authorization server that cannot reach behalf's public URL")
	_ = create.MarkFlagRequired("server-url") // the flag is defined above
	cflags.register(create)

	var uflags mcpClientFlags
	update := &cobra.Command{
		Use:   "update NAME",
		Short: "Discover an MCP server provider's authorization again, registering a client anew if its authorization server changed",
		Long: `When the MCP server's authorization server has another issuer, behalf registers
a client there (or takes --client-id) and deletes the provider's sessions and
connections, whose tokens the old server issued.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := uflags.read(cmd)
			if err != nil {
				return err
			}
			var out behalfapi.McpServerCredentialProviderOutput
			in := behalfapi.UpdateMcpServerCredentialProviderInput{Name: args[0], ClientID: c.id, ClientSecret: c.secret,
				ClientPrivateKey: c.privateKey, SigningAlgorithm: c.signingAlgorithm, TokenEndpointAuthMethod: c.secretMethod, IdentityProvider: c.identityProvider}
			if err := cf.call(cmd.Context(), "UpdateMcpServerCredentialProvider", in, &out); err != nil {
				return err
			}
			return cf.print(cmd, out, mcpProviderTable(out))
		},
	}
	uflags.register(update)
	cmd.AddCommand(create, update)
	return cmd
}

// nonEmpty is s, or nil when it is empty (a flag not given).
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func mcpProviderTable(out behalfapi.McpServerCredentialProviderOutput) table {
	t := fields("name", out.Name, "arn", out.CredentialProviderArn, "callback URL", out.CallbackURL,
		"server URL", out.ServerURL, "resource", out.Resource, "issuer", out.Issuer,
		"discovery", out.AuthorizationServerSource, "scopes", list(out.Scopes),
		"registration", out.Registration, "client id", out.ClientID, "client auth", out.TokenEndpointAuthMethod, "registered", out.RegisteredTime.String())
	if len(out.ClientMetadataDocument) > 0 {
		t.rows = append(t.rows, []string{"serve at client id", string(out.ClientMetadataDocument)})
	}
	if out.IdentityProvider != "" {
		t.rows = append(t.rows, []string{"identity provider", out.IdentityProvider + " (ID-JAG: no consent page)"})
	}
	if out.Reregistered {
		t.rows = append(t.rows, []string{"reregistered", "yes: the authorization server changed; sessions and connections were deleted"})
	}
	return t
}
