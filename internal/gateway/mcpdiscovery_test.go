package gateway_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/authserver/idjag"
	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/mcpauth"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestDiscoverMCPRoute: on SQLite and PostgreSQL, discovery finds what an
// mcp route publishes, with behalf as its authorization server (trusting
// ID-JAGs): through mcpauth directly, and through behalf's own
// DiscoverMcpServer, which calls its gateway under its egress policy.
func TestDiscoverMCPRoute(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		ew := newEnterpriseWorld(t, b)
		client := egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}, Timeout: 5 * time.Second})
		d, err := mcpauth.Discover(t.Context(), client, ew.resource)
		if err != nil {
			t.Fatal(err)
		}
		as := d.AuthorizationServer
		if d.ServerURL != ew.resource || d.ResourceMetadata.Resource != ew.resource || d.ResourceMetadataSource != "challenge" ||
			!slices.Equal(d.ResourceMetadata.AuthorizationServers, []string{ew.issuer}) ||
			!slices.Equal(d.Scopes, []string{mcpScope}) || d.ScopeSource != "challenge" ||
			!slices.Contains(d.ResourceMetadata.ScopesSupported, mcpAdmin) ||
			d.AuthorizationServerMetadataURL != ew.issuer+"/.well-known/oauth-authorization-server" ||
			as.Issuer != ew.issuer || as.TokenEndpoint == "" || as.AuthorizationEndpoint == "" ||
			!slices.Contains(as.CodeChallengeMethodsSupported, "S256") || !as.AuthorizationResponseIssParameterSupported ||
			!slices.Equal(as.AuthorizationGrantProfilesSupported, []string{idjag.Profile}) ||
			!slices.Contains(as.GrantTypesSupported, "authorization_code") {
			t.Errorf("discovery: %+v", d)
		}

		body, _ := json.Marshal(behalfapi.DiscoverMcpServerInput{ServerURL: ew.resource})
		res := ew.s.Do(t, behalftest.Raw{Path: "/behalf/DiscoverMcpServer", Body: body})
		var out behalfapi.DiscoverMcpServerOutput
		if res.Status != http.StatusOK || json.Unmarshal(res.Body, &out) != nil {
			t.Fatalf("DiscoverMcpServer: %d %s", res.Status, res.Body)
		}
		if out.ServerURL != d.ServerURL || out.AuthorizationServer.Issuer != ew.issuer || !slices.Equal(out.Scopes, d.Scopes) ||
			out.AuthorizationServer.MetadataURL != d.AuthorizationServerMetadataURL ||
			!slices.Equal(out.AuthorizationServer.AuthorizationGrantProfilesSupported, []string{idjag.Profile}) {
			t.Errorf("DiscoverMcpServer: %s", res.Body)
		}
		// A runtime principal may not make behalf fetch URLs.
		if res := ew.s.Do(t, behalftest.Raw{Path: "/behalf/DiscoverMcpServer", Body: body, KeyID: gatewayKeyID, Secret: gatewaySecret}); res.Status != http.StatusForbidden {
			t.Errorf("DiscoverMcpServer as a runtime principal: %d %s", res.Status, res.Body)
		}
	})
}
