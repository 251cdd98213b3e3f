package clients_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/egress"
)

// doc is a valid metadata document of the client at id.
func doc(id string) map[string]any {
	return map[string]any{
		"client_id": id, "client_name": "Example MCP Client", "client_uri": "https://client.example",
		"redirect_uris": []string{"http://127.0.0.1:33418/callback", "https://client.example/callback"},
		"grant_types":   []string{"authorization_code", "refresh_token"},
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	m[k] = v
	return m
}

func without(m map[string]any, k string) map[string]any {
	delete(m, k)
	return m
}

func TestMetadataDocumentResolves(t *testing.T) {
	s := newSite(t)
	e := newEnv(t, sqliteStore(t), nil)
	id := s.URL + "/client.json"
	s.serveJSON("/client.json", doc(id))
	c, oe := e.reg.Resolve(t.Context(), id)
	if oe != nil {
		t.Fatal(oe)
	}
	if c.ID != id || c.Name != "Example MCP Client" || c.Kind != clients.MetadataDocument || !c.Public() ||
		!c.AllowsRedirect("http://127.0.0.1:33418/callback") || !c.AllowsGrant("refresh_token") || c.ApplicationType != "web" {
		t.Fatalf("client %+v", c)
	}
	// Cached: no second fetch, until it expires (default 10 minutes).
	if _, oe := e.reg.Resolve(t.Context(), id); oe != nil || s.hitsOf("/client.json") != 1 {
		t.Fatalf("second resolve: %v, %d fetches", oe, s.hitsOf("/client.json"))
	}
	e.clock.Advance(11 * time.Minute)
	if _, oe := e.reg.Resolve(t.Context(), id); oe != nil || s.hitsOf("/client.json") != 2 {
		t.Fatalf("after expiry: %v, %d fetches", oe, s.hitsOf("/client.json"))
	}
}

func TestMetadataDocumentCacheControl(t *testing.T) {
	s := newSite(t)
	e := newEnv(t, sqliteStore(t), nil)
	for path, c := range map[string]struct{ cacheControl string }{
		"/short.json": {"max-age=10"},      // kept 5 minutes, the least
		"/long.json":  {"max-age=7200"},    // kept 2 hours, as asked
		"/huge.json":  {"max-age=9999999"}, // kept a day, the most
	} {
		id := s.serveJSONCached(path, doc(s.URL+path), c.cacheControl)
		if _, oe := e.reg.Resolve(t.Context(), id); oe != nil {
			t.Fatal(oe)
		}
	}
	e.clock.Advance(5*time.Minute - time.Second)
	for _, p := range []string{"/short.json", "/long.json", "/huge.json"} {
		_, _ = e.reg.Resolve(t.Context(), s.URL+p)
	}
	if s.hitsOf("/short.json") != 1 {
		t.Fatal("short max-age not kept 5 minutes")
	}
	e.clock.Advance(2 * time.Second)
	_, _ = e.reg.Resolve(t.Context(), s.URL+"/short.json")
	e.clock.Advance(2 * time.Hour)
	_, _ = e.reg.Resolve(t.Context(), s.URL+"/long.json")
	_, _ = e.reg.Resolve(t.Context(), s.URL+"/huge.json")
	if s.hitsOf("/short.json") != 2 || s.hitsOf("/long.json") != 2 || s.hitsOf("/huge.json") != 1 {
		t.Fatalf("fetches short %d long %d huge %d", s.hitsOf("/short.json"), s.hitsOf("/long.json"), s.hitsOf("/huge.json"))
	}
}

func TestMetadataDocumentRefusals(t *testing.T) {
	s := newSite(t)
	e := newEnv(t, sqliteStore(t), nil)
	url := func(p string) string { return s.URL + p }
	// path → the reason the refusal must give
	cases := map[string]string{
		"/other-id.json":     "client_id is not exactly its URL",
		"/redirect.json":     "HTTP status 302",
		"/missing.json":      "HTTP status 404",
		"/large.json":        "larger than 5120 bytes",
		"/not-json.json":     "not a JSON object",
		"/array.json":        "not a JSON object",
		"/duplicate.json":    "distinct members",
		"/trailing.json":     "not a JSON object",
		"/secret.json":       "must not contain client_secret",
		"/basic.json":        "needs a shared secret",
		"/post.json":         "needs a shared secret",
		"/no-name.json":      "client_name is required",
		"/no-redirect.json":  "redirect_uris is required",
		"/bad-redirect.json": "not loopback",
		"/fragment.json":     "has a fragment",
		"/custom-web.json":   "only native clients",
		"/jwt-no-keys.json":  "needs jwks_uri or jwks",
		"/wrong-type.json":   "wrong type",
	}
	s.serveJSON("/not-json.json", "<html>hello</html>")
	s.serveJSON("/array.json", `[{"client_id":"x"}]`)
	s.serveJSON("/duplicate.json", `{"client_id":"`+url("/duplicate.json")+`","client_name":"a","client_name":"b","redirect_uris":["https://c.example/cb"]}`)
	s.serveJSON("/trailing.json", `{"client_id":"`+url("/trailing.json")+`","client_name":"a","redirect_uris":["https://c.example/cb"]} {}`)
	s.serveJSON("/other-id.json", doc(url("/elsewhere.json")))
	s.handle("/redirect.json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/other-id.json", http.StatusFound)
	})
	s.serveJSON("/large.json", with(doc(url("/large.json")), "padding", strings.Repeat("x", 5<<10)))
	s.serveJSON("/secret.json", with(doc(url("/secret.json")), "client_secret", "s3cr3t"))
	s.serveJSON("/basic.json", with(doc(url("/basic.json")), "token_endpoint_auth_method", "client_secret_basic"))
	s.serveJSON("/post.json", with(doc(url("/post.json")), "token_endpoint_auth_method", "client_secret_post"))
	s.serveJSON("/no-name.json", without(doc(url("/no-name.json")), "client_name"))
	s.serveJSON("/no-redirect.json", without(doc(url("/no-redirect.json")), "redirect_uris"))
	s.serveJSON("/bad-redirect.json", with(doc(url("/bad-redirect.json")), "redirect_uris", []string{"http://attacker.example/cb"}))
	s.serveJSON("/fragment.json", with(doc(url("/fragment.json")), "redirect_uris", []string{"https://c.example/cb#x"}))
	s.serveJSON("/custom-web.json", with(doc(url("/custom-web.json")), "redirect_uris", []string{"com.example.app:/cb"}))
	s.serveJSON("/jwt-no-keys.json", with(doc(url("/jwt-no-keys.json")), "token_endpoint_auth_method", "private_key_jwt"))
	s.serveJSON("/wrong-type.json", with(doc(url("/wrong-type.json")), "redirect_uris", "https://c.example/cb"))
	for p, reason := range cases {
		_, oe := e.reg.Resolve(t.Context(), url(p))
		wantInvalidClient(t, p, oe)
		if oe != nil && !strings.Contains(oe.Description, reason) {
			t.Errorf("%s: %q does not say %q", p, oe.Description, reason)
		}
		if oe != nil && strings.Contains(oe.Description, "s3cr3t") {
			t.Errorf("%s: the description repeats the document: %s", p, oe.Description)
		}
		// Errors are not cached: each resolve fetches again.
		hits := s.hitsOf(p)
		_, _ = e.reg.Resolve(t.Context(), url(p))
		if s.hitsOf(p) != hits+1 {
			t.Errorf("%s: a refused document was cached", p)
		}
	}
	if s.hitsOf("/other-id.json") != 2 {
		t.Errorf("the redirect was followed: %d fetches of its target", s.hitsOf("/other-id.json"))
	}
	// A native client may use a private-use scheme in reverse domain form.
	native := url("/native.json")
	s.serveJSON("/native.json", with(with(doc(native), "application_type", "native"), "redirect_uris", []string{"com.example.app:/cb"}))
	if c, oe := e.reg.Resolve(t.Context(), native); oe != nil || c.ApplicationType != "native" {
		t.Fatalf("native client: %+v %v", c, oe)
	}
}

func TestMetadataDocumentURLRules(t *testing.T) {
	e := newEnv(t, sqliteStore(t), nil)
	for _, id := range []string{
		"http://client.example/doc.json",    // http off loopback
		"https://client.example",            // no path
		"https://client.example/",           // no path
		"https://client.example/a/../b",     // dot segment
		"https://client.example/a/./b",      // dot segment
		"https://client.example/a/%2e%2e/b", // encoded dot segment
		"https://client.example/doc#frag",   // fragment
		"https://user:pw@client.example/d",  // user information
		"https://client.example/doc?x=1",    // query
		"https://" + strings.Repeat("a", 2000) + ".example/doc",
	} {
		_, oe := e.reg.Resolve(t.Context(), id)
		wantInvalidClient(t, id, oe)
	}
}

func TestMetadataDocumentEgressDenied(t *testing.T) {
	s := newSite(t)
	id := s.URL + "/client.json"
	s.serveJSON("/client.json", doc(id))
	// The production default: loopback addresses are refused.
	e := newEnv(t, sqliteStore(t), func(o *clients.Options) { o.HTTP = egress.NewClient(egress.Options{}) })
	_, oe := e.reg.Resolve(t.Context(), id)
	wantInvalidClient(t, "loopback denied", oe)
	if oe == nil || !strings.Contains(oe.Description, "could not reach") || s.hitsOf("/client.json") != 0 {
		t.Fatalf("got %v, %d fetches", oe, s.hitsOf("/client.json"))
	}
}

func TestMetadataDocumentsDisabled(t *testing.T) {
	s := newSite(t)
	id := s.serveJSON("/client.json", "{}")
	e := newEnv(t, sqliteStore(t), func(o *clients.Options) { o.MetadataDocuments = false })
	_, oe := e.reg.Resolve(t.Context(), id)
	wantInvalidClient(t, "disabled", oe)
	if s.hitsOf("/client.json") != 0 {
		t.Fatal("fetched while disabled")
	}
	m := map[string]any{}
	e.reg.Metadata(m)
	if m["client_id_metadata_document_supported"] != false {
		t.Fatalf("metadata %v", m)
	}
}

func TestMetadataDocumentConcurrentFetchesMerge(t *testing.T) {
	s := newSite(t)
	e := newEnv(t, sqliteStore(t), nil)
	id := s.URL + "/slow.json"
	release := make(chan struct{})
	serve := jsonHandler(doc(id), "")
	s.handle("/slow.json", func(w http.ResponseWriter, r *http.Request) {
		<-release
		serve(w, r)
	})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			if _, oe := e.reg.Resolve(t.Context(), id); oe != nil {
				errs <- oe
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // let every caller join the flight
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.hitsOf("/slow.json"); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}
