package control

import (
	"context"
	"errors"
	"net/http"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/mcpauth"
	"github.com/behalf-dev/behalf/internal/wire"
)

// MCP servers behalf may call for agents (package mcpauth). The operation
// is a behalf extension and admin-only; it is audited, as it makes
// behalf call a URL the caller names (through the egress policy).

func (s *Service) mcpServerOperations() []wire.Operation {
	return wire.Audited(
		wire.JSON("DiscoverMcpServer", "/behalf/DiscoverMcpServer", http.StatusOK, s.discoverMCPServer),
	)
}

type discoverMCPServerInput behalfapi.DiscoverMcpServerInput

func (in *discoverMCPServerInput) Validate(c *wire.Checker) {
	c.String("serverUrl", in.ServerURL, 1, 2048, nil)
}

// discoverMCPServer discovers a server's authorization; the record names
// the server as mcp-server/<url>. A server discovery refuses is answered
// with 502 and the step and reason; a URL it cannot take, with 400.
func (s *Service) discoverMCPServer(ctx context.Context, c *wire.Call, in *discoverMCPServerInput) (*behalfapi.DiscoverMcpServerOutput, error) {
	c.Audit.Resource = "mcp-server/" + in.ServerURL
	d, err := mcpauth.Discover(ctx, s.HTTP, in.ServerURL)
	var de *mcpauth.DiscoveryError
	if errors.As(err, &de) && de.Step == mcpauth.StepInput {
		return nil, wire.Validation(err.Error(), wire.FieldError{Name: "serverUrl", Message: de.Reason})
	}
	if err != nil {
		return nil, wire.BadGateway("%s", err.Error())
	}
	as := d.AuthorizationServer
	return &behalfapi.DiscoverMcpServerOutput{
		ServerURL: d.ServerURL, Resource: d.Resource, ResourceName: d.ResourceMetadata.ResourceName,
		ResourceMetadataURL: d.ResourceMetadataURL, ResourceMetadataSource: d.ResourceMetadataSource, AuthorizationServerSource: d.AuthorizationServerSource,
		ResourceScopes: nonNil(d.ResourceMetadata.ScopesSupported), ChallengeScopes: nonNil(d.ChallengeScopes),
		Scopes: nonNil(d.Scopes), ScopeSource: d.ScopeSource, AuthorizationServers: nonNil(d.ResourceMetadata.AuthorizationServers),
		AuthorizationServer: behalfapi.McpAuthorizationServer{
			Issuer: as.Issuer, MetadataURL: d.AuthorizationServerMetadataURL,
			AuthorizationEndpoint: as.AuthorizationEndpoint, TokenEndpoint: as.TokenEndpoint,
			RegistrationEndpoint: as.RegistrationEndpoint, RevocationEndpoint: as.RevocationEndpoint,
			ScopesSupported: nonNil(as.ScopesSupported), GrantTypesSupported: nonNil(as.GrantTypesSupported),
			TokenEndpointAuthMethodsSupported:          nonNil(as.TokenEndpointAuthMethodsSupported),
			CodeChallengeMethodsSupported:              nonNil(as.CodeChallengeMethodsSupported),
			ClientIDMetadataDocumentSupported:          as.ClientIDMetadataDocumentSupported,
			AuthorizationResponseIssParameterSupported: as.AuthorizationResponseIssParameterSupported,
			AuthorizationGrantProfilesSupported:        nonNil(as.AuthorizationGrantProfilesSupported),
		},
	}, nil
}

// nonNil answers an absent list as [], not null.
func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}
