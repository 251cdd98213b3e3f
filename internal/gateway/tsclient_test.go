package gateway_test

// An mcp route end to end with the official MCP TypeScript SDK's client
// (tools/node/mcp-client.mjs on the Node 22 that tools/node pins), which
// signs a user in headlessly and prints one JSON line per step.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/nodetools"
	"github.com/behalf-dev/behalf/internal/testutil/testnet"
	"github.com/behalf-dev/behalf/internal/wat"
)

// nodeTools is tools/node with what the test runs (nodetools.Dir).
func nodeTools(t *testing.T) string {
	return nodetools.Dir(t, filepath.Join("node_modules", "@modelcontextprotocol", "sdk", "package.json"))
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
// When browser is set, it is called with each step as the client prints
// it, while the client waits: the user's browser, for the "open" steps.
func runTSClient(t *testing.T, dir string, browser func(tsStep), args ...string) []tsStep {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "node_modules", ".bin", "node"), append([]string{filepath.Join(dir, "mcp-client.mjs"), "--timeout", "80"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited { // the test failed while the client ran
			cancel()
			_ = cmd.Wait()
		}
	}()
	var steps []tsStep
	var printed strings.Builder
	bad := ""
	for lines := bufio.NewScanner(stdout); lines.Scan(); {
		printed.WriteString(lines.Text() + "\n")
		var s tsStep
		if json.Unmarshal(lines.Bytes(), &s) != nil {
			bad = lines.Text()
			cancel()
			continue
		}
		steps = append(steps, s)
		if browser != nil && bad == "" {
			browser(s)
		}
	}
	waited, err = true, cmd.Wait()
	if err != nil || bad != "" {
		t.Fatalf("the TypeScript client: %v (a line not JSON: %q)\nstdout:\n%s\nstderr:\n%s", err, bad, printed.String(), stderr.String())
	}
	t.Logf("the TypeScript client printed:\n%s", printed.String())
	// No secret is printed: no JWT (access token, ID token, ID-JAG), no
	// authorization code, no client secret it was given.
	out := printed.String() + stderr.String()
	if strings.Contains(out, "eyJ") || authorizationCode.MatchString(out) {
		t.Errorf("the client printed a token or a code")
	}
	for i, a := range args[:len(args)-1] {
		if strings.HasSuffix(a, "-secret") && strings.Contains(out, args[i+1]) {
			t.Errorf("the client printed its %s", a)
		}
	}
	return steps
}

var authorizationCode = regexp.MustCompile(`[?&]code=`)

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
		steps := runTSClient(t, dir, nil, "--server", mw.resource, "--user", "alice", "--client-id", mcpClient, "--client-secret", mcpClientSecret,
			"--call", `echo={"text":"hello"}`, "--call", "secret", "--refresh", "--revoke")
		prm := mw.gateway + "/.well-known/oauth-protected-resource/mcp"
		consent := fmt.Sprintf("form %s/authorize %q -> /consent [action form_token username]", mw.idp.Issuer(), devIDPTitle)
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

// devIDPTitle is the title of the dev IdP's sign-in page.
const devIDPTitle = "behalf dev-idp: sign in"

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
		case "open":
			u, _ := url.Parse(s.str("url"))
			line = fmt.Sprintf("open %s://%s%s", u.Scheme, u.Host, u.Path)
		case "callback":
			line = "callback " + s.str("redirectUri")
		case "redirect":
			line = "redirect " + s.str("to")
		case "form":
			line = fmt.Sprintf("form %s %q -> %s %v", s.str("page"), s.str("title"), s.str("action"), s.strs("fields"))
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
		case "idp-authorize":
			line = fmt.Sprintf("idp-authorize %s as %s", s.str("scope"), s.str("clientId"))
		case "id-jag":
			line = fmt.Sprintf("id-jag %s for %s at %s", s.str("scope"), s.str("resource"), s.str("audience"))
		case "replayed":
			line = fmt.Sprintf("replayed %v %s", s["status"], s.str("error"))
		case "error":
			line = "error: " + s.str("message")
		default:
			line = step
		}
		out = append(out, line)
	}
	return out
}

// tsClient is the TypeScript client's id as a client pre-registered at
// behalf's authorization server.
const tsClient = "ts-mcp-client"

// tsEnv is what the TypeScript client meets in one variant of
// TestMCPRouteTypeScriptClientWithBehalf, and what the variant's client
// needs besides.
type tsEnv struct {
	aw       *asWorld // route mcp, behalf its authorization server
	prm      string   // the route's protected resource metadata URL
	redirect string   // the client's loopback redirect URI, on a free port
	doc      *clientDocument
	docURL   string           // a metadata document the client serves itself
	ent      *enterpriseWorld // the ID-JAG variant's
}

// clientDocument serves a client's metadata document on loopback, its URL
// the client_id, and notes every request for it.
type clientDocument struct {
	URL      string
	mu       sync.Mutex
	requests []string
}

func newClientDocument(t *testing.T, name, redirect string) *clientDocument {
	t.Helper()
	d := &clientDocument{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.requests = append(d.requests, r.Method+" "+r.URL.Path)
		d.mu.Unlock()
		if r.URL.Path != "/client.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"client_id": d.URL, "client_name": name, "redirect_uris": []string{redirect},
			"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"}, "token_endpoint_auth_method": "none"})
	}))
	d.URL = "http://" + srv.Listener.Addr().String() + "/client.json"
	srv.Start()
	t.Cleanup(srv.Close)
	return d
}

func (d *clientDocument) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.requests)
}

// codeSteps is what the client prints when it signs alice in through
// behalf as clientID (registering first as registered says, when it
// does): the tools, a step-up on secret's 403 with consent again, a
// refresh, and the refresh token revoked. signIn is how each sign-in looks.
func (e *tsEnv) codeSteps(clientID, registered string, signIn []string) []string {
	want := []string{`challenge 401 Bearer resource_metadata="` + e.prm + `", scope="mcp:use"`, "discovered " + e.aw.resource + " at " + e.aw.issuer}
	if registered != "" {
		want = append(want, registered)
	}
	want = append(want, "authorize mcp:use for "+e.aw.resource+" as "+clientID)
	want = append(want, signIn...)
	want = append(want, "tokens mcp:use", "tools echo,secret", "call echo: hello",
		`challenge 403 Bearer error="insufficient_scope", scope="mcp:use mcp:admin", resource_metadata="`+e.prm+`"`,
		"authorize mcp:use mcp:admin for "+e.aw.resource+" as "+clientID)
	want = append(want, signIn...)
	return append(want, "tokens mcp:use mcp:admin", "call secret: the secret",
		"tokens mcp:use mcp:admin", "refreshed AUTHORIZED, a new access token", "call echo: hello",
		"revoked 200", "refresh after revocation: invalid_grant", "done")
}

// headlessSignIn is a sign-in the client plays itself as alice: the dev
// IdP's page, back to behalf, and behalf's consent page naming the client.
func (e *tsEnv) headlessSignIn(clientName string) []string {
	return []string{
		"redirect " + e.aw.idp.Issuer() + "/authorize",
		fmt.Sprintf("form %s/authorize %q -> /consent [action form_token username]", e.aw.idp.Issuer(), devIDPTitle),
		"redirect " + e.aw.issuer + "/oauth2/login/callback",
		"redirect " + e.aw.issuer + "/oauth2/consent",
		fmt.Sprintf("form %s/oauth2/consent %q -> /oauth2/consent [action csrf request]", e.aw.issuer, "Allow "+clientName+"?"),
	}
}

// tsVariant is one way the client meets behalf's authorization server.
type tsVariant struct {
	name string
	// world is the world it meets; default newASWorld's.
	world func(t *testing.T, b behalftest.Backend, e *tsEnv) *asWorld
	// args are the client's, besides --server.
	args func(t *testing.T, e *tsEnv) []string
	// inBrowser: the client prints the authorization URL, and the test
	// plays alice's browser, which the client's redirect URI answers.
	inBrowser bool
	// check checks the steps the client printed, summarized, and what
	// behalf saw.
	check func(t *testing.T, e *tsEnv, steps []tsStep, got []string)
}

// TestMCPRouteTypeScriptClientWithBehalf: on SQLite and PostgreSQL, the
// TypeScript SDK's client reaches the mounted gateway's mcp route, whose
// authorization server is behalf, with nothing registered beforehand (a
// Client ID Metadata Document, or RFC 7591 registration) or as a
// pre-registered client whose user signs in in a browser: it discovers
// behalf from the 401, signs alice in at the dev IdP through behalf,
// consents on behalf's page, calls echo, consents again to the admin scope
// on secret's 403, refreshes, and revokes its refresh token at behalf (RFC
// 7009), after which refreshing fails. With ID-JAGs from the enterprise
// IdP of enterprise_test.go instead, no consent page is shown, the 403
// brings an ID-JAG for both scopes, and the same ID-JAG twice is refused.
func TestMCPRouteTypeScriptClientWithBehalf(t *testing.T) {
	dir := nodeTools(t)
	calls := []string{"--call", `echo={"text":"hello"}`, "--call", "secret"}
	variants := []tsVariant{{
		name: "client ID metadata document",
		args: func(t *testing.T, e *tsEnv) []string {
			e.doc = newClientDocument(t, "TS Client", e.redirect)
			return append([]string{"--user", "alice", "--client-metadata-url", e.doc.URL, "--redirect-uri", e.redirect, "--refresh", "--revoke"}, calls...)
		},
		check: func(t *testing.T, e *tsEnv, _ []tsStep, got []string) {
			want := e.codeSteps(e.doc.URL, "registered cimd "+e.doc.URL, e.headlessSignIn("TS Client"))
			if !slices.Equal(got, want) {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// Fetched once, then cached.
			if seen := e.doc.seen(); !slices.Equal(seen, []string{"GET /client.json"}) {
				t.Errorf("behalf's requests for the metadata document: %v", seen)
			}
		},
	}, {
		// How the README has a newcomer's client name itself: it serves
		// its own metadata document on loopback.
		name: "client ID metadata document the client serves",
		args: func(t *testing.T, e *tsEnv) []string {
			e.docURL = "http://" + testnet.FreeAddr(t) + "/client.json"
			return append([]string{"--user", "alice", "--client-metadata-url", e.docURL, "--serve-client-metadata", "--redirect-uri", e.redirect, "--refresh", "--revoke"}, calls...)
		},
		check: func(t *testing.T, e *tsEnv, _ []tsStep, got []string) {
			want := append([]string{"serving-metadata"}, e.codeSteps(e.docURL, "registered cimd "+e.docURL, e.headlessSignIn("behalf MCP client"))...)
			if !slices.Equal(got, want) {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		},
	}, {
		name: "dynamic registration",
		world: func(t *testing.T, b behalftest.Backend, _ *tsEnv) *asWorld {
			return newASWorld(t, b, func(_ *config.File, as *config.AuthorizationServerFile) { as.DynamicRegistration.Enabled = true })
		},
		args: func(_ *testing.T, e *tsEnv) []string {
			return append([]string{"--user", "alice", "--redirect-uri", e.redirect, "--refresh", "--revoke"}, calls...)
		},
		check: func(t *testing.T, e *tsEnv, steps []tsStep, got []string) {
			i := slices.IndexFunc(steps, func(s tsStep) bool { return s.str("step") == "registered" })
			if i < 0 || steps[i].str("kind") != "dcr" || len(steps[i].str("clientId")) != 24 {
				t.Fatalf("no client registered: %v", got)
			}
			id := steps[i].str("clientId")
			// The name the client registered is the consent page's.
			want := e.codeSteps(id, "registered dcr "+id, e.headlessSignIn("behalf MCP client"))
			if !slices.Equal(got, want) {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			recs, _ := e.aw.records(t, "OAuthRegisterClient")
			if len(recs) != 1 || recs[0].Outcome != "success" || recs[0].Resource != id {
				t.Errorf("registrations recorded: %+v", recs)
			}
		},
	}, {
		name: "pre-registered, in a browser",
		world: func(t *testing.T, b behalftest.Backend, e *tsEnv) *asWorld {
			return newASWorld(t, b, func(_ *config.File, as *config.AuthorizationServerFile) {
				as.Clients = append(as.Clients, config.AuthServerClientFile{ClientID: tsClient, ClientName: "TypeScript MCP client", RedirectURIs: []string{e.redirect}})
			})
		},
		args: func(_ *testing.T, e *tsEnv) []string {
			return append([]string{"--client-id", tsClient, "--redirect-uri", e.redirect, "--refresh", "--revoke"}, calls...)
		},
		inBrowser: true,
		check: func(t *testing.T, e *tsEnv, _ []tsStep, got []string) {
			want := e.codeSteps(tsClient, "", []string{"open " + e.aw.issuer + "/oauth2/authorize", "callback " + e.redirect})
			if !slices.Equal(got, want) {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		},
	}, {
		name: "ID-JAG",
		// The enterprise IdP maps its client ssoClient to behalf's
		// client entAgent, which authenticates with client_secret_post.
		world: func(t *testing.T, b behalftest.Backend, e *tsEnv) *asWorld {
			e.ent = newEnterpriseWorld(t, b)
			return e.ent.asWorld
		},
		args: func(_ *testing.T, e *tsEnv) []string {
			return append([]string{"--user", "alice", "--id-jag", "--idp", e.ent.ent.Issuer(), "--idp-client-id", ssoClient, "--idp-client-secret", ssoSecret,
				"--client-id", entAgent, "--client-secret", entSecret, "--client-auth-method", "client_secret_post", "--redirect-uri", e.redirect, "--replay"}, calls...)
		},
		check: func(t *testing.T, e *tsEnv, _ []tsStep, got []string) {
			// alice signs in at her IdP only; behalf shows no consent page:
			// each ID-JAG's scope, the one challenged for, is what she is
			// granted. The 403 brings a new ID-JAG for both scopes.
			idp := e.ent.ent.Issuer()
			want := []string{
				"idp-authorize openid as " + ssoClient,
				fmt.Sprintf("form %s/authorize %q -> /consent [action form_token username]", idp, devIDPTitle),
				"idp-login",
				`challenge 401 Bearer resource_metadata="` + e.prm + `", scope="mcp:use"`,
				"discovered " + e.aw.resource + " at " + e.aw.issuer,
				"id-jag mcp:use for " + e.aw.resource + " at " + e.aw.issuer,
				"tokens mcp:use",
				"tools echo,secret",
				"call echo: hello",
				`challenge 403 Bearer error="insufficient_scope", scope="mcp:use mcp:admin", resource_metadata="` + e.prm + `"`,
				"id-jag mcp:use mcp:admin for " + e.aw.resource + " at " + e.aw.issuer,
				"tokens mcp:use mcp:admin",
				"call secret: the secret",
				// Single use: the same ID-JAG again is refused.
				"replayed 400 invalid_grant",
				"done",
			}
			if !slices.Equal(got, want) {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			var granted, refused int
			for _, r := range e.aw.auditRecords(t) {
				switch {
				case r.Operation == "OAuthConsent" || r.Operation == "OAuthAuthorize":
					t.Errorf("an ID-JAG led to %s: %+v", r.Operation, r)
				case r.Operation == "OAuthToken" && r.Flow == config.GrantJWTBearer && r.Outcome == "success":
					granted++
					if r.User != wat.UserFromJWT(idp, "alice") || r.Principal != "client:"+entAgent || r.Resource != e.aw.resource {
						t.Errorf("an ID-JAG redeemed: %+v", r)
					}
				case r.Operation == "OAuthToken" && r.Flow == config.GrantJWTBearer:
					refused++
					if r.ErrorType != "invalid_grant:replayed" {
						t.Errorf("an ID-JAG refused: %+v", r)
					}
				}
			}
			if granted != 2 || refused != 1 {
				t.Errorf("ID-JAGs redeemed %d times and refused %d times, want 2 and 1", granted, refused)
			}
			e.aw.checkUser(t, wat.UserFromJWT(idp, "alice"))
		},
	}}
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				e := &tsEnv{redirect: "http://" + testnet.FreeAddr(t) + "/callback"}
				if v.world != nil {
					e.aw = v.world(t, b, e)
				} else {
					e.aw = newASWorld(t, b, nil)
				}
				e.prm = e.aw.gateway + "/.well-known/oauth-protected-resource/mcp"
				var browser func(tsStep)
				var consents []bool
				if v.inBrowser {
					browser = func(s tsStep) {
						if s.str("step") == "open" {
							consents = append(consents, e.browse(t, s.str("url")))
						}
					}
				}
				steps := runTSClient(t, dir, browser, append([]string{"--server", e.aw.resource}, v.args(t, e)...)...)
				if v.inBrowser && !slices.Equal(consents, []bool{true, true}) {
					t.Errorf("consent pages shown: %v, want one per authorization", consents)
				}
				v.check(t, e, steps, summarize(steps))
			})
		}
	})
}

// browse is alice's browser at authURL, which the client printed: she
// signs in and allows, and is sent back to the client's redirect URI,
// which the client serves. It reports whether behalf asked for consent.
// Before her, another page's request to the redirect URI with a code and
// a forged state is refused, and the client goes on waiting.
func (e *tsEnv) browse(t *testing.T, authURL string) bool {
	t.Helper()
	for target, want := range map[string]int{e.redirect + "?code=forged&state=forged": http.StatusBadRequest, strings.TrimSuffix(e.redirect, "/callback") + "/favicon.ico": http.StatusNotFound} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if page := readAll(t, res); res.StatusCode != want {
			t.Errorf("%s at the client: %d %s, want %d", target, res.StatusCode, page, want)
		}
	}
	p, consented := asBrowse(t.Context(), t, authURL, devSignIn(e.aw.idp.Issuer()), e.aw.issuer, "")
	if p.status != http.StatusOK || !strings.Contains(p.body, "You may close this tab") {
		t.Fatalf("the client's page at its redirect URI: %d %s", p.status, p.body)
	}
	return consented
}
