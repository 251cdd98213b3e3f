package browser_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/testutil/browser"
)

// site serves a sign-in form (/form) whose POST redirects to /done, and a
// page with behalf's page headers (/strict) and one without (/open).
func site(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /form", func(w http.ResponseWriter, _ *http.Request) {
		oauthwire.WritePage(w, http.StatusOK, []byte(`<!doctype html><title>Sign in</title>
<form method="post" action="/form">
<p><label>Sign in as: <input type="text" name="username" value="someone"></label></p>
<p><input type="text" name="note"></p>
<p><button type="submit" name="action" value="allow">Allow</button><button type="submit" name="action" value="deny">Deny</button></p>
</form>`))
	})
	mux.HandleFunc("POST /form", func(w http.ResponseWriter, r *http.Request) {
		q := url.Values{r.PostFormValue("action"): {r.PostFormValue("username")}, "note": {r.PostFormValue("note")}}
		w.Header().Set("Location", "/done?"+q.Encode())
		w.WriteHeader(http.StatusSeeOther)
	})
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) {
		oauthwire.WritePage(w, http.StatusCreated, fmt.Appendf(nil, `<!doctype html><title>Done</title><p>%s</p>`, html.EscapeString(r.URL.RawQuery)))
	})
	mux.HandleFunc("GET /strict", func(w http.ResponseWriter, _ *http.Request) {
		oauthwire.WritePage(w, http.StatusOK, []byte(`<!doctype html><title>strict</title><p>strict</p>`))
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		oauthwire.WritePage(w, http.StatusOK, []byte(`<!doctype html><meta name="viewport" content="width=device-width"><title>keys</title><p><button>One</button><button tabindex="-1">Skipped</button><a href="/open">a link</a></p>`))
	})
	mux.HandleFunc("GET /wide", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><meta name="viewport" content="width=device-width"><title>wide</title><div style="width:800px">wide</div>`))
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		oauthwire.WritePage(w, http.StatusOK, fmt.Appendf(nil, `<!doctype html><title>echo</title><p>%s %s</p>`,
			html.EscapeString(r.Header.Get("Origin")), html.EscapeString(r.PostFormValue("csrf"))))
	})
	mux.HandleFunc("GET /open", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>open</title><p>open</p>`))
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestPage(t *testing.T) {
	s := site(t)
	p := browser.Start(t)

	if st := p.Open(s.URL + "/form"); st != http.StatusOK || p.Title() != "Sign in" {
		t.Fatalf("open: %d %q", st, p.Title())
	}
	if u := p.Unlabelled(); len(u) != 1 || u[0] != "note" {
		t.Errorf("unlabelled: %q, want the note", u)
	}
	if m := p.TabMisses(); len(m) != 0 {
		t.Errorf("Tab misses %q", m)
	}
	p.Fill("Sign in as", "alice")
	p.Fill("note", "hi")
	t.Setenv(browser.ScreenshotsEnv, t.TempDir())
	shot := p.Screenshot("form")
	if b, err := os.ReadFile(shot); err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	if st := p.Click("Allow"); st != http.StatusCreated {
		t.Errorf("click: status %d", st)
	}
	if u := p.URL(); u != s.URL+"/done?allow=alice&note=hi" {
		t.Errorf("after the click at %s", u)
	}
	if got := p.WaitURL(s.URL + "/done"); !strings.HasSuffix(got, "note=hi") {
		t.Errorf("WaitURL: %s", got)
	}
	if txt := p.Text(); txt != "allow=alice&note=hi" {
		t.Errorf("text %q", txt)
	}
	if n := browser.Eval[int](p, `1 + 2`); n != 3 {
		t.Errorf("eval: %d", n)
	}

	// The keyboard and layout checks, and their controls.
	p.Open(s.URL + "/keys")
	if m := p.TabMisses(); len(m) != 1 || m[0] != "Skipped" {
		t.Errorf("Tab misses %q, want the button out of the tab order", m)
	}
	p.Viewport(375, 740, true)
	if p.Open(s.URL + "/wide"); !p.ScrollsSideways() {
		t.Error("an 800px page does not scroll sideways on a 375px viewport")
	}
	if p.Open(s.URL + "/keys"); p.ScrollsSideways() {
		t.Error("a short page scrolls sideways on a 375px viewport")
	}
	p.Viewport(1024, 768, false)

	// A form another origin posts.
	p.PostFromAnotherOrigin(s.URL+"/echo", url.Values{"csrf": {`a "guess"`}})
	if origin, field, _ := strings.Cut(p.Text(), " "); !strings.HasPrefix(origin, "http://127.0.0.1:") || origin == s.URL || field != `a "guess"` {
		t.Errorf("the cross-origin post: %q", p.Text())
	}

	// The checks of the security headers, and their controls: a page
	// without the headers runs inline scripts and can be framed.
	p.Open(s.URL + "/open")
	if !p.InlineScriptRuns() {
		t.Error("an inline script did not run on a page without a Content-Security-Policy")
	}
	p.Open(s.URL + "/strict")
	if p.InlineScriptRuns() {
		t.Error("an inline script ran despite script-src (default-src 'none')")
	}
	if !p.Framed(s.URL + "/open") {
		t.Error("a page without frame-ancestors was not shown in a frame")
	}
	if p.Framed(s.URL + "/strict") {
		t.Error("a page with frame-ancestors 'none' was shown in a frame")
	}
}
