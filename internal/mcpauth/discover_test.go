package mcpauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/mcpauth"
	"github.com/behalf-dev/behalf/internal/testutil/testsite"
)

// site is an MCP server, its resource metadata and its authorization
// server on one httptest server, each path's answer set by the test:
// well-behaved by default, misconfigured or hostile case by case.
type site struct{ *testsite.Site }

func newSite(t *testing.T) *site { return &site{testsite.New(t)} }

func (s *site) set(path string, h http.HandlerFunc) { s.Handle(path, h) }

func (s *site) hit(path string) int { return s.Hits(path) }

func (s *site) json(path string, doc any) {
	s.set(path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
}

func (s *site) raw(path, contentType, body string) {
	s.set(path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write([]byte(body))
	})
}

// challenge makes /mcp answer an unauthenticated POST with 401 and these
// WWW-Authenticate field lines.
func (s *site) challenge(values ...string) {
	s.set("/mcp", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "" || !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			http.Error(w, "unexpected probe", http.StatusBadRequest)
			return
		}
		for _, v := range values {
			w.Header().Add("WWW-Authenticate", v)
		}
		w.WriteHeader(http.StatusUnauthorized)
	})
}

const prmPath = "/.well-known/oauth-protected-resource/mcp"

func (s *site) prm(mutate func(map[string]any)) map[string]any {
	doc := map[string]any{"resource": s.URL + "/mcp", "authorization_servers": []string{s.URL + "/t1"},
		"scopes_supported": []string{"read", "write"}, "bearer_methods_supported": []string{"header"}}
	if mutate != nil {
		mutate(doc)
	}
	return doc
}

func (s *site) asMetadata(issuer string, mutate func(map[string]any)) map[string]any {
	doc := map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token",
		"registration_endpoint": issuer + "/register", "code_challenge_methods_supported": []string{"S256"},
		"grant_types_supported": []string{"authorization_code", "refresh_token"}, "client_id_metadata_document_supported": true,
		"token_endpoint_auth_methods_supported": []string{"none"}, "x_extension": map[string]any{"ignored": true}}
	if mutate != nil {
		mutate(doc)
	}
	return doc
}

// healthy sets a well-behaved server: the challenge names the metadata
// and a scope, the metadata names issuer <site>/t1, whose metadata is at
// RFC 8414's path-inserted URI.
func (s *site) healthy() {
	s.challenge(`Bearer error="invalid_request", resource_metadata="` + s.URL + prmPath + `", scope="read"`)
	s.json(prmPath, s.prm(nil))
	s.json("/.well-known/oauth-authorization-server/t1", s.asMetadata(s.URL+"/t1", nil))
}

func loopbackClient() *http.Client {
	return egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}, Timeout: 5 * time.Second})
}

func TestDiscoverHealthy(t *testing.T) {
	s := newSite(t)
	s.healthy()
	d, err := mcpauth.Discover(t.Context(), loopbackClient(), strings.Replace(s.URL, "http://", "HTTP://", 1)+"/mcp#fragment")
	if err != nil {
		t.Fatal(err)
	}
	as := d.AuthorizationServer
	if d.ServerURL != s.URL+"/mcp" || d.Resource != d.ServerURL || d.ResourceMetadataURL != s.URL+prmPath || d.ResourceMetadataSource != "challenge" ||
		!slices.Equal(d.Scopes, []string{"read"}) || d.ScopeSource != "challenge" ||
		!slices.Equal(d.ResourceMetadata.AuthorizationServers, []string{s.URL + "/t1"}) ||
		d.AuthorizationServerMetadataURL != s.URL+"/.well-known/oauth-authorization-server/t1" ||
		as.Issuer != s.URL+"/t1" || as.TokenEndpoint != s.URL+"/t1/token" || as.RegistrationEndpoint != s.URL+"/t1/register" ||
		!as.ClientIDMetadataDocumentSupported || !slices.Equal(as.GrantTypesSupported, []string{"authorization_code", "refresh_token"}) {
		t.Errorf("discovery: %+v", d)
	}
}

// TestDiscoverFallbacks: where the metadata is found when the challenge
// does not say, and which authorization server metadata URI wins.
func TestDiscoverFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name string
		// issuerPath is the issuer's path under the site.
		issuerPath string
		prmAt      string
		asAt       []string // where AS metadata is served; the first one is correct, the others claim another issuer
		wantPRM    string
		wantAS     string
		wantScopes []string
	}{
		{name: "path-inserted resource metadata", issuerPath: "/t1", prmAt: prmPath, asAt: []string{"/.well-known/oauth-authorization-server/t1"},
			wantPRM: "path", wantAS: "/.well-known/oauth-authorization-server/t1", wantScopes: []string{"read", "write"}},
		{name: "resource metadata only at the root", issuerPath: "/t1", prmAt: "/.well-known/oauth-protected-resource", asAt: []string{"/.well-known/oauth-authorization-server/t1"},
			wantPRM: "root", wantAS: "/.well-known/oauth-authorization-server/t1", wantScopes: []string{"read", "write"}},
		{name: "RFC 8414 path insertion before OIDC", issuerPath: "/t1", prmAt: prmPath,
			asAt:    []string{"/.well-known/oauth-authorization-server/t1", "/.well-known/openid-configuration/t1", "/t1/.well-known/openid-configuration"},
			wantPRM: "path", wantAS: "/.well-known/oauth-authorization-server/t1", wantScopes: []string{"read", "write"}},
		{name: "OIDC path insertion before appending", issuerPath: "/t1", prmAt: prmPath,
			asAt:    []string{"/.well-known/openid-configuration/t1", "/t1/.well-known/openid-configuration"},
			wantPRM: "path", wantAS: "/.well-known/openid-configuration/t1", wantScopes: []string{"read", "write"}},
		{name: "OIDC path appending last", issuerPath: "/t1", prmAt: prmPath, asAt: []string{"/t1/.well-known/openid-configuration"},
			wantPRM: "path", wantAS: "/t1/.well-known/openid-configuration", wantScopes: []string{"read", "write"}},
		{name: "issuer without a path: RFC 8414 first", issuerPath: "", prmAt: prmPath,
			asAt:    []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"},
			wantPRM: "path", wantAS: "/.well-known/oauth-authorization-server", wantScopes: []string{"read", "write"}},
		{name: "issuer without a path: OIDC", issuerPath: "", prmAt: prmPath, asAt: []string{"/.well-known/openid-configuration"},
			wantPRM: "path", wantAS: "/.well-known/openid-configuration", wantScopes: []string{"read", "write"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			s.challenge(`Bearer realm="mcp"`)
			issuer := s.URL + tc.issuerPath
			s.json(tc.prmAt, s.prm(func(m map[string]any) { m["authorization_servers"] = []string{issuer, "https://second.example"} }))
			for i, at := range tc.asAt {
				claimed := issuer
				if i > 0 {
					claimed = "https://wrong.example"
				}
				s.json(at, s.asMetadata(claimed, nil))
			}
			d, err := mcpauth.Discover(t.Context(), loopbackClient(), s.URL+"/mcp")
			if err != nil {
				t.Fatal(err)
			}
			if d.ResourceMetadataSource != tc.wantPRM || d.ResourceMetadataURL != s.URL+tc.prmAt || d.AuthorizationServerMetadataURL != s.URL+tc.wantAS ||
				d.AuthorizationServer.Issuer != issuer || !slices.Equal(d.Scopes, tc.wantScopes) || d.ScopeSource != "resource-metadata" ||
				len(d.ResourceMetadata.AuthorizationServers) != 2 {
				t.Errorf("discovery: %+v", d)
			}
		})
	}
}

// TestDiscoverResource: the resource tokens are for is the server's
// canonical URI, or its origin when the metadata at the root well-known
// URI names the origin (RFC 9728 §3.3); a server that answers the
// unauthenticated initialize and asks for a token only later is found
// through the well-known URIs.
func TestDiscoverResource(t *testing.T) {
	for _, tc := range []struct {
		name         string
		open         bool // the probe is answered 200
		prmAt        string
		resource     func(base string) string
		wantResource func(base string) string
		wantScopes   []string
	}{
		{name: "the server's URL", prmAt: prmPath, resource: func(b string) string { return b + "/mcp" },
			wantResource: func(b string) string { return b + "/mcp" }},
		{name: "the origin at the root URI", prmAt: "/.well-known/oauth-protected-resource", resource: func(b string) string { return b + "/" },
			wantResource: func(b string) string { return b }},
		{name: "the server's URL at the root URI", prmAt: "/.well-known/oauth-protected-resource", resource: func(b string) string { return b + "/mcp" },
			wantResource: func(b string) string { return b + "/mcp" }},
		{name: "initialize without a token", open: true, prmAt: prmPath, resource: func(b string) string { return b + "/mcp" },
			wantResource: func(b string) string { return b + "/mcp" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			s.challenge(`Bearer realm="mcp"`)
			if tc.open {
				s.set("/mcp", func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
				})
			}
			s.json(tc.prmAt, s.prm(func(m map[string]any) { m["resource"] = tc.resource(s.URL) }))
			s.json("/.well-known/oauth-authorization-server/t1", s.asMetadata(s.URL+"/t1", nil))
			d, err := mcpauth.Discover(t.Context(), loopbackClient(), s.URL+"/mcp")
			if err != nil {
				t.Fatal(err)
			}
			if d.ServerURL != s.URL+"/mcp" || d.Resource != tc.wantResource(s.URL) || d.ResourceMetadataURL != s.URL+tc.prmAt ||
				len(d.ChallengeScopes) != 0 || !slices.Equal(d.Scopes, []string{"read", "write"}) {
				t.Errorf("discovery: %+v", d)
			}
		})
	}
}

// TestDiscoverRefusals: every misconfigured or hostile server is refused
// with its own error, at its step.
func TestDiscoverRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(s *site)
		// client is loopbackClient unless set.
		client func(s *site) *http.Client
		// timeout bounds the call, when set.
		timeout time.Duration
		target  string // the server URL, default <site>/mcp
		want    error
		step    mcpauth.Step
		reason  string
		// never is a path the server must not have been asked for.
		never string
	}{
		{name: "no 401 and no resource metadata", setup: func(s *site) {
			s.set("/mcp", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
			s.set(prmPath, nil)
		}, want: mcpauth.ErrNotProtected, step: mcpauth.StepProbe, reason: "HTTP 200, not 401, and serves no protected resource metadata"},
		{name: "no 401 and invalid resource metadata", setup: func(s *site) {
			s.set("/mcp", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
			s.raw(prmPath, "application/json", `{"resource": [}`)
		}, want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata},
		{name: "403", setup: func(s *site) {
			s.set("/mcp", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) })
		}, want: mcpauth.ErrNotProtected, step: mcpauth.StepProbe, reason: "HTTP 403", never: prmPath},
		{name: "origin as the resource at the path-inserted URI", setup: func(s *site) {
			s.json(prmPath, s.prm(func(m map[string]any) { m["resource"] = s.URL }))
		}, want: mcpauth.ErrResourceMismatch, step: mcpauth.StepResourceMetadata},
		{name: "origin as the resource, from the challenge", setup: func(s *site) {
			s.json(prmPath, s.prm(func(m map[string]any) { m["resource"] = s.URL + "/" }))
		}, want: mcpauth.ErrResourceMismatch, step: mcpauth.StepResourceMetadata},
		{name: "another path as the resource at the root URI", setup: func(s *site) {
			s.challenge("Bearer")
			s.set(prmPath, nil)
			s.json("/.well-known/oauth-protected-resource", s.prm(func(m map[string]any) { m["resource"] = s.URL + "/other" }))
		}, want: mcpauth.ErrResourceMismatch, step: mcpauth.StepResourceMetadata},
		{name: "401 without a Bearer challenge", setup: func(s *site) { s.challenge(`Basic realm="x"`) },
			want: mcpauth.ErrNotProtected, step: mcpauth.StepProbe, reason: "no Bearer challenge"},
		{name: "malformed challenge", setup: func(s *site) { s.challenge(`Bearer resource_metadata="unterminated`) },
			want: mcpauth.ErrChallenge, step: mcpauth.StepProbe},
		{name: "challenge names a parameter twice", setup: func(s *site) {
			s.challenge(`Bearer resource_metadata="` + s.URL + prmPath + `", resource_metadata="https://elsewhere.example/"`)
		}, want: mcpauth.ErrChallenge, step: mcpauth.StepProbe},
		{name: "resource metadata missing", setup: func(s *site) {
			s.challenge("Bearer")
			s.set(prmPath, nil)
		}, want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata, reason: "HTTP 404"},
		{name: "resource mismatch", setup: func(s *site) {
			s.json(prmPath, s.prm(func(m map[string]any) { m["resource"] = s.URL + "/other" }))
		}, want: mcpauth.ErrResourceMismatch, step: mcpauth.StepResourceMetadata, never: "/.well-known/oauth-authorization-server/t1"},
		{name: "resource of another origin", setup: func(s *site) {
			s.json(prmPath, s.prm(func(m map[string]any) { m["resource"] = "https://victim.example/mcp" }))
		}, want: mcpauth.ErrResourceMismatch, step: mcpauth.StepResourceMetadata},
		{name: "no authorization server", setup: func(s *site) {
			s.json(prmPath, s.prm(func(m map[string]any) { m["authorization_servers"] = []string{} }))
		}, want: mcpauth.ErrNoAuthorizationServer, step: mcpauth.StepResourceMetadata},
		{name: "garbage resource metadata", setup: func(s *site) { s.raw(prmPath, "application/json", `{"resource": [}`) },
			want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata},
		{name: "resource metadata is not an object", setup: func(s *site) { s.raw(prmPath, "application/json", `["x"]`) },
			want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata},
		{name: "duplicate member", setup: func(s *site) {
			s.raw(prmPath, "application/json", `{"resource":"https://victim.example/mcp","resource":"`+s.URL+`/mcp","authorization_servers":["`+s.URL+`/t1"]}`)
		}, want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata, reason: "duplicate"},
		{name: "member in another case", setup: func(s *site) {
			s.raw(prmPath, "application/json", `{"resource":"`+s.URL+`/mcp","Authorization_Servers":["`+s.URL+`/t1"]}`)
		}, want: mcpauth.ErrNoAuthorizationServer, step: mcpauth.StepResourceMetadata},
		{name: "data after the object", setup: func(s *site) {
			s.raw(prmPath, "application/json", `{"resource":"`+s.URL+`/mcp","authorization_servers":["`+s.URL+`/t1"]} {}`)
		}, want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata},
		{name: "not JSON", setup: func(s *site) { s.raw(prmPath, "text/html", `<html></html>`) },
			want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata, reason: "content type"},
		{name: "authorization server metadata missing", setup: func(s *site) {
			s.set("/.well-known/oauth-authorization-server/t1", nil)
		}, want: mcpauth.ErrAuthorizationMetadata, step: mcpauth.StepAuthorizationMetadata, reason: "/t1/.well-known/openid-configuration answered HTTP 404"},
		{name: "garbage authorization server metadata", setup: func(s *site) {
			s.raw("/.well-known/oauth-authorization-server/t1", "application/json", `{"issuer":`)
		}, want: mcpauth.ErrAuthorizationMetadata, step: mcpauth.StepAuthorizationMetadata},
		{name: "issuer mismatch", setup: func(s *site) {
			s.json("/.well-known/oauth-authorization-server/t1", s.asMetadata("https://attacker.example/t1", nil))
		}, want: mcpauth.ErrIssuerMismatch, step: mcpauth.StepAuthorizationMetadata},
		{name: "issuer with a trailing slash", setup: func(s *site) {
			s.json("/.well-known/oauth-authorization-server/t1", s.asMetadata(s.URL+"/t1/", nil))
		}, want: mcpauth.ErrIssuerMismatch, step: mcpauth.StepAuthorizationMetadata},
		{name: "a wrong document is not skipped", setup: func(s *site) {
			s.json("/.well-known/oauth-authorization-server/t1", s.asMetadata("https://attacker.example/t1", nil))
			s.json("/t1/.well-known/openid-configuration", s.asMetadata(s.URL+"/t1", nil))
		}, want: mcpauth.ErrIssuerMismatch, step: mcpauth.StepAuthorizationMetadata, never: "/t1/.well-known/openid-configuration"},
		{name: "no PKCE", setup: func(s *site) {
			s.json("/.well-known/oauth-authorization-server/t1", s.asMetadata(s.URL+"/t1", func(m map[string]any) { delete(m, "code_challenge_methods_supported") }))
		}, want: mcpauth.ErrNoPKCE, step: mcpauth.StepAuthorizationMetadata},
		{name: "PKCE plain only", setup: func(s *site) {
			s.json("/.well-known/oauth-authorization-server/t1", s.asMetadata(s.URL+"/t1", func(m map[string]any) { m["code_challenge_methods_supported"] = []string{"plain"} }))
		}, want: mcpauth.ErrNoPKCE, step: mcpauth.StepAuthorizationMetadata},
		{name: "http token endpoint", setup: func(s *site) {
			s.json("/.well-known/oauth-authorization-server/t1", s.asMetadata(s.URL+"/t1", func(m map[string]any) { m["token_endpoint"] = "http://as.example/token" }))
		}, want: mcpauth.ErrAuthorizationMetadata, step: mcpauth.StepAuthorizationMetadata, reason: "token_endpoint"},
		{name: "redirect", setup: func(s *site) {
			s.set(prmPath, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) })
			s.json("/elsewhere", s.prm(nil))
		}, want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata, reason: "redirects are not followed", never: "/elsewhere"},
		{name: "redirect, with a client that would follow it", setup: func(s *site) {
			s.set(prmPath, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) })
			s.json("/elsewhere", s.prm(nil))
		}, client: func(*site) *http.Client { return &http.Client{} },
			want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata, reason: "redirects are not followed", never: "/elsewhere"},
		{name: "oversized body", setup: func(s *site) {
			s.raw(prmPath, "application/json", `{"resource_name":"`+strings.Repeat("a", mcpauth.MaxDocument)+`"}`)
		}, want: mcpauth.ErrTooLarge, step: mcpauth.StepResourceMetadata},
		{name: "slow server", setup: func(s *site) {
			s.set(prmPath, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		}, timeout: 300 * time.Millisecond, want: mcpauth.ErrTimeout, step: mcpauth.StepResourceMetadata},
		{name: "slow body", setup: func(s *site) {
			s.set(prmPath, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"resource":`))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			})
		}, timeout: 300 * time.Millisecond, want: mcpauth.ErrTimeout, step: mcpauth.StepResourceMetadata},
		{name: "resource metadata on a metadata address", setup: func(s *site) {
			s.challenge(`Bearer resource_metadata="https://169.254.169.254/latest/meta-data/"`)
		}, want: mcpauth.ErrUnreachable, step: mcpauth.StepResourceMetadata},
		{name: "resource metadata on a loopback host the policy denies", setup: func(s *site) {
			s.challenge(`Bearer resource_metadata="` + strings.Replace(s.URL, "127.0.0.1", "localhost", 1) + prmPath + `"`)
		}, client: func(*site) *http.Client {
			// Production's policy, with this one test server allowed by
			// its address: a host name the policy does not list stays
			// refused though it resolves to loopback.
			return egress.NewClient(egress.Options{Policy: egress.Policy{AllowHosts: []string{"127.0.0.1"}}, Timeout: 5 * time.Second})
		}, want: mcpauth.ErrUnreachable, step: mcpauth.StepResourceMetadata, never: prmPath},
		{name: "server on loopback under the production policy", client: func(*site) *http.Client {
			return egress.NewClient(egress.Options{Timeout: 5 * time.Second})
		}, want: mcpauth.ErrUnreachable, step: mcpauth.StepProbe, never: "/mcp"},
		{name: "resource metadata over http", setup: func(s *site) {
			s.challenge(`Bearer resource_metadata="http://mcp.example/.well-known/oauth-protected-resource"`)
		}, want: mcpauth.ErrInvalidURL, step: mcpauth.StepResourceMetadata},
		{name: "server URL over http", target: "http://mcp.example/mcp", want: mcpauth.ErrInvalidURL, step: mcpauth.StepInput},
		{name: "server URL with user information", target: "https://user:pass@mcp.example/mcp", want: mcpauth.ErrInvalidURL, step: mcpauth.StepInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			s.healthy()
			if tc.setup != nil {
				tc.setup(s)
			}
			client := loopbackClient()
			if tc.client != nil {
				client = tc.client(s)
			}
			ctx := t.Context()
			if tc.timeout != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			target := tc.target
			if target == "" {
				target = s.URL + "/mcp"
			}
			start := time.Now()
			_, err := mcpauth.Discover(ctx, client, target)
			var de *mcpauth.DiscoveryError
			if !errors.Is(err, tc.want) || !errors.As(err, &de) || de.Step != tc.step || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want %v at step %s with %q", err, tc.want, tc.step, tc.reason)
			}
			if tc.never != "" && s.hit(tc.never) != 0 {
				t.Errorf("%s was fetched", tc.never)
			}
			if tc.timeout != 0 && time.Since(start) > tc.timeout+2*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
		})
	}
}
