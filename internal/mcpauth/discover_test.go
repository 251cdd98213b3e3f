package mcpauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
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
func (s *site) challenge(values ...string) { s.challengeAt("/mcp", values...) }

// challengeAt makes path answer as challenge makes /mcp answer.
func (s *site) challengeAt(path string, values ...string) {
	s.set(path, func(w http.ResponseWriter, r *http.Request) {
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
			s.json("/.well-known/oauth-authorization-server", s.asMetadata(s.URL, nil))
		}, want: mcpauth.ErrNotProtected, step: mcpauth.StepProbe, reason: "HTTP 200, not 401, and serves no protected resource metadata",
			never: "/.well-known/oauth-authorization-server"},
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
		{name: "resource metadata failing", setup: func(s *site) {
			s.challenge("Bearer")
			s.set(prmPath, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
		}, want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata, reason: "HTTP 500", never: "/.well-known/oauth-authorization-server"},
		{name: "resource metadata the challenge names missing", setup: func(s *site) {
			s.challenge(`Bearer resource_metadata="` + s.URL + `/prm"`)
		}, want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata, reason: "/prm answered HTTP 404", never: "/.well-known/oauth-authorization-server"},
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

// legacy makes the site a server of the 2025-03-26 revision at path: a
// 401 whose challenge names no metadata, and no protected resource
// metadata at either well-known URI.
func (s *site) legacy(path string) {
	s.challengeAt(path, `Bearer error="invalid_token", scope="read"`)
}

// recorder is the client's transport, recording each URL it is asked
// for: discovery's requests go through the client it is given.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	urls []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.String())
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// TestDiscover20250326: a server that answers 401 and serves no
// protected resource metadata is discovered as the 2025-03-26 revision
// had it, at its origin, its path discarded: the origin's RFC 8414
// metadata, whose issuer may have a path on that origin, or else the
// default endpoints. The tokens' resource is the server's canonical URI.
func TestDiscover20250326(t *testing.T) {
	for _, tc := range []struct {
		name       string
		target     string // the server's path
		issuerPath string // "" and no metadata: the default endpoints
		metadata   bool
		wantSource string
	}{
		{name: "metadata at the origin, issuer with a path", target: "/mcp", issuerPath: "/oauth", metadata: true, wantSource: mcpauth.SourceOriginMetadata},
		{name: "metadata at the origin, issuer the origin", target: "/mcp", metadata: true, wantSource: mcpauth.SourceOriginMetadata},
		{name: "metadata at the origin, server path discarded", target: "/a/b/mcp", issuerPath: "/oauth", metadata: true, wantSource: mcpauth.SourceOriginMetadata},
		{name: "default endpoints", target: "/mcp", wantSource: mcpauth.SourceDefaultEndpoints},
		{name: "default endpoints, server path discarded", target: "/a/b/mcp", wantSource: mcpauth.SourceDefaultEndpoints},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			s.legacy(tc.target)
			issuer := s.URL + tc.issuerPath
			if tc.metadata {
				s.json("/.well-known/oauth-authorization-server", s.asMetadata(issuer, func(m map[string]any) {
					m["authorization_response_iss_parameter_supported"] = true
				}))
			}
			rec := &recorder{next: loopbackClient().Transport}
			client := loopbackClient()
			client.Transport = rec
			d, err := mcpauth.Discover(t.Context(), client, s.URL+tc.target)
			if err != nil {
				t.Fatal(err)
			}
			as := d.AuthorizationServer
			if d.ServerURL != s.URL+tc.target || d.Resource != d.ServerURL || d.ResourceMetadataSource != "none" || d.ResourceMetadataURL != "" ||
				d.AuthorizationServerSource != tc.wantSource || as.Issuer != issuer ||
				as.AuthorizationEndpoint != issuer+"/authorize" || as.TokenEndpoint != issuer+"/token" || as.RegistrationEndpoint != issuer+"/register" ||
				!slices.Equal(d.Scopes, []string{"read"}) || d.ScopeSource != "challenge" || len(d.ResourceMetadata.AuthorizationServers) != 0 {
				t.Errorf("discovery: %+v", d)
			}
			if tc.metadata {
				// RFC 9207 stays on: the issuer compared is the metadata's.
				if d.AuthorizationServerMetadataURL != s.URL+"/.well-known/oauth-authorization-server" ||
					!as.AuthorizationResponseIssParameterSupported || !slices.Equal(as.CodeChallengeMethodsSupported, []string{"S256"}) {
					t.Errorf("metadata: %+v", d)
				}
			} else if d.AuthorizationServerMetadataURL != "" || as.CodeChallengeMethodsSupported != nil || as.AuthorizationResponseIssParameterSupported {
				// Nothing is made up: no metadata advertised PKCE nor iss.
				t.Errorf("default endpoints: %+v", d)
			}
			// Only RFC 8414's URI at the origin, through the client given.
			want := []string{s.URL + tc.target, s.URL + "/.well-known/oauth-protected-resource" + tc.target,
				s.URL + "/.well-known/oauth-protected-resource", s.URL + "/.well-known/oauth-authorization-server"}
			if !slices.Equal(rec.urls, want) {
				t.Errorf("requests:\n%s\nwant\n%s", strings.Join(rec.urls, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestDiscover20250326Refusals: the 2025-03-26 discovery refuses what
// the current one does, and more: metadata of an issuer off the server's
// origin, a redirect, any answer but the metadata or 404.
func TestDiscover20250326Refusals(t *testing.T) {
	const asPath = "/.well-known/oauth-authorization-server"
	for _, tc := range []struct {
		name   string
		setup  func(s *site)
		client func() *http.Client
		want   error
		step   mcpauth.Step
		reason string
		never  string
	}{
		{name: "issuer of another origin", setup: func(s *site) { s.json(asPath, s.asMetadata("https://attacker.example", nil)) },
			want: mcpauth.ErrIssuerMismatch, step: mcpauth.StepAuthorizationMetadata, reason: "not an issuer on the server's origin"},
		{name: "issuer on another port", setup: func(s *site) { s.json(asPath, s.asMetadata("http://127.0.0.1:1/oauth", nil)) },
			want: mcpauth.ErrIssuerMismatch, step: mcpauth.StepAuthorizationMetadata, reason: "2025-03-26 discovery"},
		{name: "issuer with a query", setup: func(s *site) { s.json(asPath, s.asMetadata(s.URL+"/oauth?x=1", nil)) },
			want: mcpauth.ErrIssuerMismatch, step: mcpauth.StepAuthorizationMetadata},
		{name: "no PKCE", setup: func(s *site) {
			s.json(asPath, s.asMetadata(s.URL, func(m map[string]any) { delete(m, "code_challenge_methods_supported") }))
		}, want: mcpauth.ErrNoPKCE, step: mcpauth.StepAuthorizationMetadata},
		{name: "garbage metadata", setup: func(s *site) { s.raw(asPath, "application/json", `{"issuer":`) },
			want: mcpauth.ErrAuthorizationMetadata, step: mcpauth.StepAuthorizationMetadata},
		{name: "server error", setup: func(s *site) {
			s.set(asPath, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		}, want: mcpauth.ErrAuthorizationMetadata, step: mcpauth.StepAuthorizationMetadata, reason: "HTTP 503, neither the metadata nor 404"},
		{name: "redirect", setup: func(s *site) {
			s.set(asPath, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) })
			s.json("/elsewhere", s.asMetadata(s.URL, nil))
		}, client: func() *http.Client { return &http.Client{} },
			want: mcpauth.ErrAuthorizationMetadata, step: mcpauth.StepAuthorizationMetadata, reason: "redirects are not followed", never: "/elsewhere"},
		{name: "oversized metadata", setup: func(s *site) {
			s.raw(asPath, "application/json", `{"issuer":"`+strings.Repeat("a", mcpauth.MaxDocument)+`"}`)
		}, want: mcpauth.ErrTooLarge, step: mcpauth.StepAuthorizationMetadata},
		{name: "resource metadata redirected", setup: func(s *site) {
			s.set("/.well-known/oauth-protected-resource", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) })
		}, want: mcpauth.ErrResourceMetadata, step: mcpauth.StepResourceMetadata, reason: "redirects are not followed", never: asPath},
		{name: "server on loopback under the production policy", client: func() *http.Client {
			return egress.NewClient(egress.Options{Timeout: 5 * time.Second})
		}, want: mcpauth.ErrUnreachable, step: mcpauth.StepProbe, never: asPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			s.legacy("/mcp")
			if tc.setup != nil {
				tc.setup(s)
			}
			client := loopbackClient()
			if tc.client != nil {
				client = tc.client()
			}
			_, err := mcpauth.Discover(t.Context(), client, s.URL+"/mcp")
			var de *mcpauth.DiscoveryError
			if !errors.Is(err, tc.want) || !errors.As(err, &de) || de.Step != tc.step || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want %v at step %s with %q", err, tc.want, tc.step, tc.reason)
			}
			if tc.never != "" && s.hit(tc.never) != 0 {
				t.Errorf("%s was fetched", tc.never)
			}
		})
	}
}
