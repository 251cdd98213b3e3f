package cli

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/behalfapi"
)

func newMCPCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Inspect remote MCP servers behalf may call for agents",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "discover URL",
		Short: "Show how an MCP server is authorized: its resource metadata and authorization server",
		Long: `The behalf server probes the MCP server at URL without credentials, reads its
protected resource metadata (RFC 9728) and its authorization server's metadata
(RFC 8414), all through its egress policy, and checks what the MCP specification
requires: the metadata is the server's, the issuer is the one named, PKCE S256 is
supported. A server that answers 401 and serves no resource metadata is
discovered as MCP 2025-03-26 had it: the authorization server is its origin, with
the metadata there or else /authorize, /token and /register. It shows the scopes
a client would ask for. See docs/mcp-client.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out behalfapi.DiscoverMcpServerOutput
			if err := cf.call(cmd.Context(), "DiscoverMcpServer", behalfapi.DiscoverMcpServerInput{ServerURL: args[0]}, &out); err != nil {
				return err
			}
			as := out.AuthorizationServer
			return cf.print(cmd, out, fields(
				"serverUrl", out.ServerURL,
				"resource", out.Resource,
				"resourceMetadataUrl", out.ResourceMetadataURL+" ("+out.ResourceMetadataSource+")",
				"authorizationServers", list(out.AuthorizationServers),
				"authorizationServerSource", out.AuthorizationServerSource+sourceNote(out.AuthorizationServerSource),
				"scopes", list(out.Scopes)+scopeSource(out.ScopeSource),
				"issuer", as.Issuer,
				"metadataUrl", as.MetadataURL,
				"authorizationEndpoint", as.AuthorizationEndpoint,
				"tokenEndpoint", as.TokenEndpoint,
				"registrationEndpoint", as.RegistrationEndpoint,
				"revocationEndpoint", as.RevocationEndpoint,
				"scopesSupported", list(as.ScopesSupported),
				"grantTypes", list(as.GrantTypesSupported),
				"tokenEndpointAuthMethods", list(as.TokenEndpointAuthMethodsSupported),
				"codeChallengeMethods", list(as.CodeChallengeMethodsSupported),
				"clientIdMetadataDocuments", strconv.FormatBool(as.ClientIDMetadataDocumentSupported),
				"issParameter", strconv.FormatBool(as.AuthorizationResponseIssParameterSupported),
				"grantProfiles", list(as.AuthorizationGrantProfilesSupported),
			))
		},
	})
	return cmd
}

// sourceNote says how the authorization server was found when the server
// serves no protected resource metadata (MCP authorization 2025-03-26).
func sourceNote(s string) string {
	switch s {
	case "origin-metadata":
		return " (2025-03-26: no resource metadata; the metadata at the server's origin)"
	case "default-endpoints":
		return " (2025-03-26: no metadata; /authorize, /token, /register at the server's origin)"
	}
	return ""
}

// scopeSource says where the scopes to ask for come from (MCP
// authorization, "Scope Selection Strategy").
func scopeSource(s string) string {
	switch s {
	case "challenge":
		return " (the 401's challenge)"
	case "resource-metadata":
		return " (the resource's scopes_supported)"
	}
	return ""
}
