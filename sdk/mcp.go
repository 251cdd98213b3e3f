package sdk

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
)

// MCPServer says whose token to send to a remote MCP server: the token
// of an MCP server provider, the OAuth2 credential provider behalf makes
// from the server's URL (behalf provider mcp create).
type MCPServer struct {
	Provider string // the MCP server provider's name
	// Flow defaults to UserFederation.
	Flow types.Oauth2FlowType
	// Scopes default to none: behalf then asks for those it selected when
	// it discovered the server's authorization (the MCP authorization
	// specification's "Scope Selection Strategy").
	Scopes []string
	// MaxStepUps bounds the step-ups of one request (Transport.MaxStepUps):
	// default 2, negative for none.
	MaxStepUps int

	// WorkloadToken, ReturnURL and OnAuthURL are as in OAuth2.
	WorkloadToken string
	ReturnURL     string
	OnAuthURL     func(ctx context.Context, c *ConsentRequired) error

	// Base sends the requests; it defaults to http.DefaultTransport.
	Base http.RoundTripper
}

// defaultMaxStepUps is MCPServer.MaxStepUps when none is given: one
// step-up for a tool's scopes, and one more for a server that names them
// one at a time.
const defaultMaxStepUps = 2

// NewMCPClient returns an HTTP client for the MCP server s names, to give
// the MCP Go SDK's StreamableClientTransport as its HTTPClient: a
// Transport that sends the user's token for the server (RFC 6750 §2.1),
// gets a new one on a 401, and steps up on a 403 insufficient_scope
// (RFC 6750 §3.1; MCP authorization, "Scope Challenge Handling").
// The workload token and the return URL default to those of ctx's
// invocation, as for NewTokenSource.
//
// While the user has not consented, to the server or to the scopes of a
// step-up, the MCP call fails with an error wrapping the
// *ConsentRequired: show its URL, Wait, and call again (or set
// OnAuthURL). The client has no timeout: an MCP server's answer may be a
// stream; bound the calls with their context.
func NewMCPClient(ctx context.Context, api API, s MCPServer) (*http.Client, error) {
	o := OAuth2{Provider: s.Provider, Flow: s.Flow, Scopes: s.Scopes,
		WorkloadToken: s.WorkloadToken, ReturnURL: s.ReturnURL, OnAuthURL: s.OnAuthURL}
	if o.Flow == "" {
		o.Flow = UserFederation
	}
	if o.Scopes == nil {
		// GetResourceOauth2Token requires the member: an empty list has
		// behalf select the scopes.
		o.Scopes = []string{}
	}
	ts, err := NewTokenSource(ctx, api, o)
	if err != nil {
		return nil, err
	}
	switch {
	case s.MaxStepUps == 0:
		s.MaxStepUps = defaultMaxStepUps
	case s.MaxStepUps < 0:
		s.MaxStepUps = 0
	}
	return &http.Client{Transport: &Transport{Credential: ts, Base: s.Base, MaxStepUps: s.MaxStepUps}}, nil
}
