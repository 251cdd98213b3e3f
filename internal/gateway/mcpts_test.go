package gateway_test

// Two remote MCP servers behind behalf's own front door: the official Go
// SDK's server (route mcp) and the official TypeScript SDK's
// (tools/node/mcp-server.mjs, route ts), each a gateway mcp route whose
// authorization server is behalf's. behalf, as the agents' credential
// broker, holds alice's and bob's tokens for both.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
)

// TestMCPServerProvidersTwoServers: on SQLite and PostgreSQL, behalf
// creates a provider for each server; alice and bob each consent to each,
// and every one of the four tokens is its user's and its server's (aud is
// the server's resource: a token of one is refused at the other); the TS
// server sees the route's API key and never a user's token. alice steps
// up on the TS server's admin tool to the union of scopes; her token is
// refreshed twice, behalf presenting each time the refresh token the
// last refresh returned; the rotated-out one, replayed, is refused and
// ends the family (RFC 9700 §4.14.2), after which her agent is asked for
// consent again, not failed. RevokeConnection of bob's TS connection
// revokes it at behalf's authorization server (RFC 7009) and his agent
// must ask him again, while his Go server token stays.
func TestMCPServerProvidersTwoServers(t *testing.T) {
	dir := nodeTools(t)
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		ctx := t.Context()
		tsServer := startTSServer(t, dir)
		front := newTokenFront(t)
		var tsResource string
		aw := newASWorld(t, b, func(f *config.File, as *config.AuthorizationServerFile) {
			tsResource = "http://" + f.Gateway.Listen + "/ts"
			as.Resources = append(as.Resources, config.AuthServerResourceFile{Resource: tsResource, Scopes: []string{mcpScope, mcpAdmin}})
			// Registered clients (RFC 7591) are public here, so that the
			// test can replay a refresh token as the client; behalf's
			// metadata document clients use private_key_jwt.
			as.DynamicRegistration.Enabled, as.ClientIDMetadataDocuments = true, aws.Bool(false)
			route := f.Gateway.Routes[len(f.Gateway.Routes)-1] // mcp
			route.Name, route.Path, route.Upstream = "ts", "/ts", tsServer
			route.Resource, route.ToolScopes = tsResource, map[string][]string{"tools/call:admin": {mcpAdmin}}
			f.Gateway.Routes = append(f.Gateway.Routes, route)
			front.fronting(t, f)
		})
		aw.issuer = front.URL
		goOut := aw.createMCPProvider(t, "go-notes", aw.resource, nil)
		tsOut := aw.createMCPProvider(t, "ts-notes", tsResource, nil)
		if tsOut.Registration != "DYNAMIC" || tsOut.Resource != tsResource || tsOut.Issuer != front.URL || !slices.Equal(tsOut.Scopes, []string{mcpScope}) || tsOut.ClientID == goOut.ClientID {
			t.Fatalf("created: %+v and %+v", goOut, tsOut)
		}

		// Each user consents to each server.
		resources := map[string]string{"go-notes": aw.resource, "ts-notes": tsResource}
		reqs := map[string]*bedrockagentcore.GetResourceOauth2TokenInput{}
		tokens := map[string]string{}
		for _, user := range []string{"alice", "bob"} {
			for _, p := range []string{"go-notes", "ts-notes"} {
				req := aw.federationRequest(t, p, user, []string{})
				first, err := aw.s.Data().GetResourceOauth2Token(ctx, req)
				if err != nil || first.AuthorizationUrl == nil {
					t.Fatalf("%s to %s: %v, want consent", user, p, err)
				}
				u, _ := url.Parse(*first.AuthorizationUrl)
				if u.Query().Get("resource") != resources[p] || u.Query().Get("code_challenge_method") != "S256" {
					t.Fatalf("%s to %s: authorization URL %s", user, p, *first.AuthorizationUrl)
				}
				aw.consentFor(t, *first.AuthorizationUrl, aws.ToString(first.SessionUri), user)
				reqs[user+" "+p], tokens[user+" "+p] = req, aw.accessToken(t, req)
			}
		}
		subjects := map[string][]any{}
		for k, tok := range tokens {
			user, p, _ := strings.Cut(k, " ")
			claims := jwtClaims(t, tok)
			if claims["aud"] != resources[p] {
				t.Errorf("%s's token for %s has aud %v", user, p, claims["aud"])
			}
			subjects[user] = append(subjects[user], claims["sub"])
			if again := aw.accessToken(t, reqs[k]); again != tok {
				t.Errorf("%s to %s: another token on the next request", user, p)
			}
		}
		if a, b := subjects["alice"], subjects["bob"]; len(a) != 2 || a[0] != a[1] || len(b) != 2 || b[0] != b[1] || a[0] == b[0] {
			t.Errorf("the tokens' subjects: alice %v, bob %v", a, b)
		}
		for _, user := range []string{"alice", "bob"} {
			aw.callWithToken(t, tokens[user+" go-notes"])
			if got := callTool(t, tsResource, tokens[user+" ts-notes"], "hello"); got != "hello from TypeScript" {
				t.Errorf("%s: hello: %q", user, got)
			}
			if got := callTool(t, tsResource, tokens[user+" ts-notes"], "seen"); got != `{"apiKey":"`+weatherKey+`","authorization":false}` {
				t.Errorf("%s: the TS server saw %s", user, got)
			}
			// Each server's token is refused at the other.
			if status, _ := callToolRaw(t, tsResource, tokens[user+" go-notes"], "hello"); status != http.StatusUnauthorized {
				t.Errorf("%s's Go server token at the TS server: %d", user, status)
			}
			if status, _ := callToolRaw(t, aw.resource, tokens[user+" ts-notes"], "echo"); status != http.StatusUnauthorized {
				t.Errorf("%s's TS server token at the Go server: %d", user, status)
			}
		}

		// Step-up: admin needs mcp:admin.
		alice := reqs["alice ts-notes"]
		status, challenge := callToolRaw(t, tsResource, tokens["alice ts-notes"], "admin")
		if status != http.StatusForbidden || !strings.Contains(challenge, `error="insufficient_scope"`) || !strings.Contains(challenge, mcpAdmin) {
			t.Fatalf("admin before the step-up: %d %q", status, challenge)
		}
		alice.Scopes = []string{mcpAdmin}
		more, err := aw.s.Data().GetResourceOauth2Token(ctx, alice)
		if err != nil || more.AuthorizationUrl == nil {
			t.Fatalf("step-up: %v", err)
		}
		if got := scopeParam(t, *more.AuthorizationUrl); !slices.Equal(got, sorted(mcpScope, mcpAdmin)) {
			t.Errorf("step-up consent for %v", got)
		}
		aw.consentFor(t, *more.AuthorizationUrl, aws.ToString(more.SessionUri), "alice")
		aliceTS := aw.accessToken(t, alice)
		if got := callTool(t, tsResource, aliceTS, "admin"); got != "the admin tool" {
			t.Errorf("admin after the step-up: %q", got)
		}

		// Refresh, twice, rotating.
		presented := func() []string {
			var rts []string
			for _, f := range front.grant("refresh_token") {
				if f.Get("client_id") == tsOut.ClientID {
					rts = append(rts, f.Get("refresh_token"))
				}
			}
			return rts
		}
		for range 2 {
			aw.clock.Advance(6 * time.Minute)
			aw.idpClock.Advance(6 * time.Minute)
			next := aw.accessToken(t, alice)
			if next == aliceTS {
				t.Fatal("the same access token after it expired")
			}
			aliceTS = next
			if got := callTool(t, tsResource, aliceTS, "admin"); got != "the admin tool" {
				t.Errorf("admin after a refresh: %q", got)
			}
		}
		rts := presented()
		if len(rts) != 2 || rts[0] == rts[1] || rts[0] == "" {
			t.Fatalf("behalf presented %d refresh tokens for alice's TS connection, distinct: %v", len(rts), len(rts) == 2 && rts[0] != rts[1])
		}
		res, err := http.PostForm(front.URL+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rts[0]},
			"client_id": {tsOut.ClientID}, "resource": {tsResource}})
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, res); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_grant") {
			t.Errorf("a rotated-out refresh token replayed: %d %s", res.StatusCode, body)
		}
		aw.clock.Advance(6 * time.Minute)
		aw.idpClock.Advance(6 * time.Minute)
		// The workload access tokens have expired too: the agents get new
		// ones.
		alice = aw.federationRequest(t, "ts-notes", "alice", []string{})
		after, err := aw.s.Data().GetResourceOauth2Token(ctx, alice)
		if err != nil || after.AuthorizationUrl == nil || aws.ToString(after.AccessToken) != "" {
			t.Errorf("alice's agent once the family was revoked: %v, want consent", err)
		}

		// Revocation by the admin.
		rev := aw.revokeConnectionOf(t, "ts-notes", "bob")
		if !rev.RevokedAtProvider {
			t.Errorf("RevokeConnection: %+v", rev)
		}
		bob := aw.federationRequest(t, "ts-notes", "bob", []string{})
		again, err := aw.s.Data().GetResourceOauth2Token(ctx, bob)
		if err != nil || again.AuthorizationUrl == nil || aws.ToString(again.AccessToken) != "" {
			t.Errorf("bob's agent after the revocation: %v, want consent", err)
		}
		// Bob's Go server connection stays (refreshed, as the clock moved).
		aw.callWithToken(t, aw.accessToken(t, aw.federationRequest(t, "go-notes", "bob", []string{})))
	})
}

// startTSServer runs tools/node/mcp-server.mjs on a free loopback address
// until the test ends, and returns its MCP endpoint.
func startTSServer(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(dir, "node_modules", ".bin", "node"), filepath.Join(dir, "mcp-server.mjs"), "--listen", testnet.FreeAddr(t))
	cmd.Stderr = &strings.Builder{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// t.Context is cancelled before cleanups run, which kills the server.
	t.Cleanup(func() { _ = cmd.Wait() })
	listening := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			var l struct {
				Listening string `json:"listening"`
			}
			if json.Unmarshal(lines.Bytes(), &l) == nil && l.Listening != "" {
				listening <- l.Listening
			}
		}
		close(listening)
	}()
	select {
	case u, ok := <-listening:
		if !ok {
			t.Fatalf("the TypeScript server ended: %s", cmd.Stderr)
		}
		return u
	case <-time.After(30 * time.Second):
		t.Fatalf("the TypeScript server did not listen within 30s: %s", cmd.Stderr)
	}
	return ""
}

// consentFor plays user's browser through the authorization URL, signing
// in at the dev IdP and consenting at behalf's authorization server, back
// to the agent's return URL, and completes the session for user.
func (aw *asWorld) consentFor(t *testing.T, authURL, session, user string) {
	t.Helper()
	p, _ := asBrowse(t.Context(), t, authURL, devSignInAs(aw.idp.Issuer(), user), aw.issuer, aw.returnURL)
	loc, _ := url.Parse(p.header.Get("Location"))
	if loc == nil || loc.Query().Get("session_id") != session {
		t.Fatalf("%s was not sent back to the agent: %d %s %s", user, p.status, p.header.Get("Location"), p.body)
	}
	aw.completeFor(t, session, user)
}

// jwtClaims is a JWT's payload, unverified: the servers verify it.
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	var claims map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(parts[min(1, len(parts)-1)])
	if len(parts) != 3 || err != nil || json.Unmarshal(raw, &claims) != nil {
		t.Fatalf("not a JWT (%d parts)", len(parts))
	}
	return claims
}
