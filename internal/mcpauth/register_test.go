package mcpauth

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// registrar is an RFC 7591 registration endpoint answering status,
// content type and body, and keeping the request it received.
func registrar(t testing.TB, status int, contentType, body string) (*httptest.Server, *ClientMetadata) {
	t.Helper()
	var got ClientMetadata
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &got)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s, &got
}

func TestRegister(t *testing.T) {
	md := ClientMetadata{ClientName: "behalf: notes", RedirectURIs: []string{"https://behalf.example/cb/1"},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: "none", ApplicationType: "web"}
	s, got := registrar(t, http.StatusCreated, "application/json", `{"client_id":"c-1","client_secret":"s3cr3t","token_endpoint_auth_method":"client_secret_post"}`)
	rc, err := Register(t.Context(), s.Client(), s.URL+"/register", md)
	if err != nil || rc.ClientID != "c-1" || rc.ClientSecret != "s3cr3t" || rc.TokenEndpointAuthMethod != "client_secret_post" {
		t.Fatalf("Register: %+v %v", rc, err)
	}
	if got.ClientName != md.ClientName || got.RedirectURIs[0] != md.RedirectURIs[0] || got.ApplicationType != "web" {
		t.Errorf("request: %+v", got)
	}

	for _, c := range []struct {
		name, contentType, body, want string
		status                        int
	}{
		{"error response", "application/json", `{"error":"invalid_redirect_uri","error_description":"no"}`, "HTTP 400 invalid_redirect_uri no", 400},
		{"no client id", "application/json", `{"client_secret":"s3cr3t"}`, "no client_id", 201},
		{"not JSON", "text/html", `<p>s3cr3t</p>`, "not application/json", 201},
		{"duplicate member", "application/json", `{"client_id":"a","client_id":"b"}`, "not a registered client", 201},
		{"control characters", "application/json", `{"client_id":"a\u0000b"}`, "printable", 201},
	} {
		s, _ := registrar(t, c.status, c.contentType, c.body)
		_, err := Register(t.Context(), s.Client(), s.URL+"/register", md)
		if !errors.Is(err, ErrRegistration) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := Register(t.Context(), http.DefaultClient, "http://example.com/register", md); !errors.Is(err, ErrRegistration) {
		t.Errorf("http registration endpoint: %v", err)
	}
}

func FuzzRegisterResponse(f *testing.F) {
	for _, seed := range []string{`{"client_id":"c"}`, `{"client_id":"c","client_secret":"s"}`, `{"error":"x"}`, `[]`, `{"client_id":1}`, ``} {
		f.Add(seed, 201)
	}
	var body string
	var status int
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	defer s.Close()
	f.Fuzz(func(t *testing.T, b string, st int) {
		if st < 200 || st > 599 {
			return
		}
		body, status = b, st
		rc, err := Register(t.Context(), s.Client(), s.URL, ClientMetadata{ClientName: "x"})
		if err == nil && (rc.ClientID == "" || len(rc.ClientID) > maxClientID) {
			t.Fatalf("accepted %q", b)
		}
	})
}
