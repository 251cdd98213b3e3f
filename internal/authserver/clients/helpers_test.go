package clients_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/testutil/testsite"
)

const (
	issuer        = "https://as.example"
	tokenEndpoint = issuer + "/oauth2/token"
)

// forEachBackend runs f on a fresh SQLite and PostgreSQL store.
func forEachBackend(t *testing.T, f func(t *testing.T, st storage.Storage)) {
	for _, b := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "behalf.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			st, err := sqlstore.Open(t.Context(), b.dsn(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			f(t, st)
		})
	}
}

// sqliteStore is a store for tests that use it only in passing.
func sqliteStore(t *testing.T) storage.Storage {
	st, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "behalf.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// site is a real HTTP server on loopback serving documents by path,
// counting the requests for each.
type site struct{ *testsite.Site }

func newSite(t *testing.T) *site { return &site{testsite.New(t)} }

func (s *site) handle(path string, h http.HandlerFunc) string { return s.Handle(path, h) }

// serveJSON serves v (a string is served as it is) at path and returns
// its URL.
func (s *site) serveJSON(path string, v any) string { return s.serveJSONCached(path, v, "") }

// serveJSONCached is serveJSON with a Cache-Control header.
func (s *site) serveJSONCached(path string, v any, cacheControl string) string {
	return s.handle(path, jsonHandler(v, cacheControl))
}

func jsonHandler(v any, cacheControl string) http.HandlerFunc {
	body, ok := v.(string)
	if !ok {
		b, _ := json.Marshal(v)
		body = string(b)
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		_, _ = io.WriteString(w, body)
	}
}

func (s *site) hitsOf(path string) int { return s.Hits(path) }

// loopbackHTTP is the egress client of a development server that allows
// loopback addresses.
func loopbackHTTP() *http.Client {
	return egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}})
}

type env struct {
	reg   *clients.Registry
	store storage.Storage
	audit *audit.Log
	clock *testclock.Clock
}

// newEnv builds a registry on st with edit applied to its options.
func newEnv(t *testing.T, st storage.Storage, edit func(*clients.Options)) *env {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	log := audit.New(st, key, audit.Options{})
	t.Cleanup(func() { _ = log.Close() })
	// The store keeps its own time, the real one: one-time ids expire by it.
	clock := testclock.New(time.Now().Truncate(time.Second))
	o := clients.Options{
		Store: st, HTTP: loopbackHTTP(), Issuer: issuer, TokenEndpoint: tokenEndpoint,
		RegistrationEndpoint: issuer + "/oauth2/register", MetadataDocuments: true, DynamicRegistration: true,
		Audit: log, Now: clock.Now,
	}
	if edit != nil {
		edit(&o)
	}
	reg, err := clients.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &env{reg: reg, store: st, audit: log, clock: clock}
}

func code(e *oauthwire.Error) string {
	if e == nil {
		return ""
	}
	return e.Code
}

func wantInvalidClient(t *testing.T, what string, e *oauthwire.Error) {
	t.Helper()
	if code(e) != "invalid_client" {
		t.Errorf("%s: got %v, want invalid_client", what, e)
	}
}

// tokenRequest is a token endpoint request with form, and HTTP Basic
// credentials when id is set.
func tokenRequest(form map[string]string, id, secret string) (*http.Request, map[string][]string) {
	vals := map[string][]string{}
	var parts []string
	for k, v := range form {
		vals[k] = []string{v}
		parts = append(parts, k+"="+v)
	}
	r := httptest.NewRequest(http.MethodPost, tokenEndpoint, strings.NewReader(strings.Join(parts, "&")))
	if id != "" {
		r.SetBasicAuth(id, secret)
	}
	return r, vals
}
