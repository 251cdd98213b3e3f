package gateway_test

// An mcp route end to end with the official MCP TypeScript SDK's client
// (tools/node/mcp-client.mjs on the Node 22 that tools/node pins), which
// signs a user in headlessly and prints one JSON line per step.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// nodeTools is tools/node, with its packages installed. Without them the
// test is skipped, except in CI, where .ci/run installs them first.
func nodeTools(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "tools", "node"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join("node_modules", ".bin", "node"), filepath.Join("node_modules", "@modelcontextprotocol", "sdk", "package.json")} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			if os.Getenv("CI") == "" {
				t.Skipf("Node 22 and the MCP TypeScript SDK are not installed: run `npm ci --no-audit --no-fund` in %s (%v)", dir, err)
			}
			t.Fatalf("CI: tools/node is not installed (.ci/run installs it before the tests): %v", err)
		}
	}
	return dir
}

// tsStep is one line the client printed.
type tsStep map[string]any

func (s tsStep) str(k string) string {
	v, _ := s[k].(string)
	return v
}

func (s tsStep) strs(k string) []string {
	vs, _ := s[k].([]any)
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// runTSClient runs the TypeScript client with args and returns its steps.
func runTSClient(t *testing.T, dir string, args ...string) []tsStep {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "node_modules", ".bin", "node"), append([]string{filepath.Join(dir, "mcp-client.mjs"), "--timeout", "50"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var steps []tsStep
	for line := range strings.Lines(stdout.String()) {
		var s tsStep
		if json.Unmarshal([]byte(line), &s) != nil {
			t.Fatalf("not a JSON line: %q (stderr: %s)", line, stderr.String())
		}
		steps = append(steps, s)
	}
	if err != nil {
		t.Fatalf("the TypeScript client: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("the TypeScript client printed:\n%s", stdout.String())
	return steps
}

// TestMCPRouteTypeScriptClient: on SQLite and PostgreSQL, the TypeScript
// SDK's client, pre-registered at the dev IdP, reaches the mounted
// gateway's mcp route: it discovers the route's metadata and the dev IdP
// from the 401, signs alice in, calls echo, steps up to both scopes on
// secret's 403 insufficient_scope, refreshes its token and calls echo
// again, then revokes the refresh token (RFC 7009), after which refreshing
// fails.
func TestMCPRouteTypeScriptClient(t *testing.T) {
	dir := nodeTools(t)
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		mw := newMCPWorld(t, b, true)
		steps := runTSClient(t, dir, "--server", mw.resource, "--user", "alice", "--client-id", mcpClient, "--client-secret", mcpClientSecret,
			"--call", `echo={"text":"hello"}`, "--call", "secret", "--refresh", "--revoke")
		prm := mw.gateway + "/.well-known/oauth-protected-resource/mcp"
		consent := fmt.Sprintf("form %s/authorize -> /consent [action form_token username]", mw.idp.Issuer())
		want := []string{
			`challenge 401 Bearer resource_metadata="` + prm + `", scope="mcp:use"`,
			"discovered " + mw.resource + " at " + mw.idp.Issuer(),
			"authorize mcp:use for " + mw.resource + " as " + mcpClient,
			consent,
			"tokens mcp:use",
			"tools echo,secret",
			"call echo: hello",
			`challenge 403 Bearer error="insufficient_scope", scope="mcp:use mcp:admin", resource_metadata="` + prm + `"`,
			"authorize mcp:use mcp:admin for " + mw.resource + " as " + mcpClient,
			consent,
			"tokens mcp:use mcp:admin",
			"call secret: the secret",
			"tokens mcp:use mcp:admin",
			"refreshed AUTHORIZED, a new access token",
			"call echo: hello",
			"revoked 200",
			"refresh after revocation: invalid_grant",
			"done",
		}
		if got := summarize(steps); !slices.Equal(got, want) {
			t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// summarize is each step in a line that names what the test checks.
func summarize(steps []tsStep) []string {
	var out []string
	for _, s := range steps {
		var line string
		switch step := s.str("step"); step {
		case "challenge":
			line = fmt.Sprintf("challenge %v %s", s["status"], s.str("wwwAuthenticate"))
		case "discovered":
			line = fmt.Sprintf("discovered %s at %s", s.str("resource"), s.str("authorizationServer"))
		case "registered":
			line = fmt.Sprintf("registered %s %s", s.str("kind"), s.str("clientId"))
		case "authorize":
			line = fmt.Sprintf("authorize %s for %s as %s", s.str("scope"), s.str("resource"), s.str("clientId"))
		case "redirect":
			line = "redirect " + s.str("to")
		case "form":
			line = fmt.Sprintf("form %s -> %s %v", s.str("page"), s.str("action"), s.strs("fields"))
		case "tokens":
			line = "tokens " + s.str("scope")
		case "tools":
			line = "tools " + strings.Join(s.strs("names"), ",")
		case "call":
			line = fmt.Sprintf("call %s: %s", s.str("tool"), s.str("text"))
			if s["isError"] == true {
				line += " (error)"
			}
		case "refreshed":
			line = "refreshed " + s.str("result")
			if s["newAccessToken"] == true {
				line += ", a new access token"
			}
		case "revoked":
			line = fmt.Sprintf("revoked %v", s["status"])
		case "refresh-after-revocation":
			line = "refresh after revocation: " + s.str("error")
		case "error":
			line = "error: " + s.str("message")
		default:
			line = step
		}
		out = append(out, line)
	}
	return out
}

// The MCP client's id at behalf's authorization server, and the loopback
// redirect URI it is registered with (RFC 8252 §7.3).
const (
	tsClient   = "ts-mcp-client"
	tsRedirect = "http://127.0.0.1:8976/callback"
)

// withAuthorizationServer makes behalf the route's authorization server:
// users sign in at the dev IdP (as its client app), the route is its one
// resource, and edit may add clients and the like.
func withAuthorizationServer(t *testing.T, edit func(a *config.AuthorizationServerFile)) func(*config.File, *config.GatewayRouteFile) {
	return func(f *config.File, route *config.GatewayRouteFile) {
		secret := filepath.Join(t.TempDir(), "login-secret")
		if err := os.WriteFile(secret, []byte("app-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f.PublicURL = "http://" + f.Listen
		f.AuthorizationServer = &config.AuthorizationServerFile{
			Login:     config.AuthServerLoginFile{Authorizer: "dev", ClientID: "app", ClientSecretFile: secret},
			Resources: []config.AuthServerResourceFile{{Resource: route.Resource, Scopes: []string{mcpScope, mcpAdmin}}},
		}
		if edit != nil {
			edit(f.AuthorizationServer)
		}
		route.AuthorizationServers = []string{f.PublicURL}
	}
}

// TestMCPRouteBehalfAuthorizationServer: on SQLite and PostgreSQL, the
// TypeScript SDK's client, a public client pre-registered at behalf's
// authorization server, reaches the mounted gateway's mcp route: it
// discovers behalf from the 401, signs alice in at the dev IdP through
// behalf, consents on behalf's page, calls echo, consents again to the
// admin scope on secret's 403, refreshes, and revokes its refresh token at
// behalf (RFC 7009), after which refreshing fails.
func TestMCPRouteBehalfAuthorizationServer(t *testing.T) {
	dir := nodeTools(t)
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		mw := newMCPWorld(t, b, true, withAuthorizationServer(t, func(a *config.AuthorizationServerFile) {
			a.Clients = []config.AuthServerClientFile{{ClientID: tsClient, ClientName: "TypeScript MCP client", RedirectURIs: []string{tsRedirect}}}
		}))
		steps := runTSClient(t, dir, "--server", mw.resource, "--user", "alice", "--client-id", tsClient, "--redirect-uri", tsRedirect,
			"--call", `echo={"text":"hello"}`, "--call", "secret", "--refresh", "--revoke")
		issuer := mw.s.URL
		prm := mw.gateway + "/.well-known/oauth-protected-resource/mcp"
		signIn := []string{
			"redirect " + mw.idp.Issuer() + "/authorize",
			fmt.Sprintf("form %s/authorize -> /consent [action form_token username]", mw.idp.Issuer()),
			"redirect " + issuer + "/oauth2/login/callback",
			"redirect " + issuer + "/oauth2/consent",
		}
		consent := fmt.Sprintf("form %s/oauth2/consent -> /oauth2/consent [action csrf request]", issuer)
		want := []string{
			`challenge 401 Bearer resource_metadata="` + prm + `", scope="mcp:use"`,
			"discovered " + mw.resource + " at " + issuer,
			"authorize mcp:use for " + mw.resource + " as " + tsClient,
		}
		want = append(want, signIn...)
		want = append(want, consent, "tokens mcp:use", "tools echo,secret", "call echo: hello",
			`challenge 403 Bearer error="insufficient_scope", scope="mcp:use mcp:admin", resource_metadata="`+prm+`"`,
			"authorize mcp:use mcp:admin for "+mw.resource+" as "+tsClient)
		want = append(want, signIn...)
		want = append(want, consent, "tokens mcp:use mcp:admin", "call secret: the secret",
			"tokens mcp:use mcp:admin", "refreshed AUTHORIZED, a new access token", "call echo: hello",
			"revoked 200", "refresh after revocation: invalid_grant", "done")
		if got := summarize(steps); !slices.Equal(got, want) {
			t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
