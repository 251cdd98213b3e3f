package federation

import (
	"slices"
	"testing"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/storage"
)

// An MCP server provider's new authorization asks for the union of what
// the connection was granted — less offline_access and what the
// workload's grant no longer allows — and what is requested; another
// provider's asks for what is requested.
func TestStepUp(t *testing.T) {
	mcp := access.OAuth2Provider{OAuth2Provider: storage.OAuth2Provider{Name: "notes"}, Config: provider.OAuth2{MCP: &provider.MCPServer{}}}
	other := access.OAuth2Provider{OAuth2Provider: storage.OAuth2Provider{Name: "notes"}}
	open := access.Verified{}
	narrowed := access.Verified{Workload: storage.WorkloadIdentity{Name: "w",
		AllowedProviders: []storage.ProviderGrant{{Provider: "notes", Scopes: []string{"read", "admin"}}}}}
	granted := []string{"read", "write", provider.OfflineAccess}
	for _, tt := range []struct {
		name    string
		v       access.Verified
		p       access.OAuth2Provider
		granted []string
		want    []string
	}{
		{"union", open, mcp, granted, []string{"admin", "read", "write"}},
		{"grant narrowed", narrowed, mcp, granted, []string{"admin", "read"}},
		{"no connection", open, mcp, nil, []string{"admin"}},
		{"not an MCP server", open, other, granted, []string{"admin"}},
	} {
		in := &tokenflow.Request{Scopes: []string{"admin"}}
		got := stepUp(tt.v, tt.p, in, tt.granted)
		if !slices.Equal(got.Scopes, tt.want) || !slices.Equal(in.Scopes, []string{"admin"}) {
			t.Errorf("%s: %v (request now %v), want %v", tt.name, got.Scopes, in.Scopes, tt.want)
		}
	}
}

// A connection covers a request for offline_access whether or not the
// server echoed it in the token response's scope.
func TestCoversWithoutOfflineAccess(t *testing.T) {
	conn := storage.Connection{Scopes: []string{"read"}}
	if !covers(conn, connectionDetails{}, &tokenflow.Request{Scopes: []string{"read", provider.OfflineAccess}}) {
		t.Error("offline_access required")
	}
	if covers(conn, connectionDetails{}, &tokenflow.Request{Scopes: []string{"read", "write"}}) {
		t.Error("write covered")
	}
}
