// Package browser drives a real headless browser, Debian's chromium, for
// tests of behalf's HTML pages (the dev IdP's sign-in, the authorization
// server's consent page, the federation pages, the consent portal, the
// admin console): a test opens a page, fills its form, clicks its buttons
// and reads where the browser ended up, as a user would, and checks the
// pages' security headers the way a browser applies them, their keyboard
// reach, labels and narrow layout, and a form another origin posts.
//
// Each test gets its own browser (Start), closed when the test ends.
// Every step is bounded by a timeout and fails the test with the page's
// URL and the start of its text. Screenshots go to the directory named by
// BEHALF_TEST_SCREENSHOTS, or else to a temporary directory of the test.
//
// chromium must be on PATH: without it the test is skipped, except in CI
// (CI set), where .ci/run installs it before the tests and its absence
// fails the test.
package browser

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const (
	// startTimeout bounds the browser's start; stepTimeout every step
	// after it (a navigation with its redirects, a click and the page it
	// loads, a query).
	startTimeout = 30 * time.Second
	stepTimeout  = 15 * time.Second
	// excerpt is how much of a page's text a failure quotes.
	excerpt = 300
)

// ScreenshotsEnv names the directory, an absolute path, screenshots are
// written to; unset, they go to a temporary directory removed with the
// test.
const ScreenshotsEnv = "BEHALF_TEST_SCREENSHOTS"

// Page is a browser with one tab, for one test.
type Page struct {
	t   testing.TB
	ctx context.Context
	// shots is the screenshot directory, made at the first screenshot.
	shots string
}

// Start starts a headless chromium for t, closed when t ends. Start it
// after the servers it visits: cleanups run last-in first-out, and a
// server's graceful shutdown waits up to 5 s for the connections the
// browser opened ahead of need (net/http counts a new connection as idle
// only after 5 s without a request).
func Start(t testing.TB) *Page {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("browser: chromium is not installed (apt-get install --no-install-recommends chromium): %v", err)
		}
		t.Fatalf("browser: CI: chromium is not installed (.ci/run installs it before the tests): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1024, 768))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf), chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit and removes its profile
	})
	// The first action starts the browser, which lives as long as the
	// context of that action: ctx, not one with a timeout.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("browser: start %s: %v", path, err)
		}
	case <-time.After(startTimeout):
		cancel()
		t.Fatalf("browser: %s did not start within %s", path, startTimeout)
	}
	return &Page{t: t, ctx: ctx}
}

// Context is the tab's context, for chromedp actions this package has no
// helper for; bound them with a timeout.
func (p *Page) Context() context.Context { return p.ctx }

// run runs a step with a timeout; on failure it fails the test, naming
// the step, the page's URL and the start of its text.
func run[T any](p *Page, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("browser: %s: %v%s", what, err, p.where())
	}
	return v
}

// where describes the page for an error message: its URL and the start
// of its text, each read with a short timeout of its own.
func (p *Page) where() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return " (the page is unreadable: " + err.Error() + ")"
	}
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return fmt.Sprintf("\n  at %s\n  page text: %q", u, clip(text))
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= excerpt {
		return s
	}
	cut := excerpt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Open navigates to url and waits for the page (the last of its
// redirects) to load; it returns the page's HTTP status.
func (p *Page) Open(url string) int {
	p.t.Helper()
	res := run(p, "open "+url, chromedp.NavigateResponse(url))
	return int(res.Status)
}

// URL is the address of the page shown.
func (p *Page) URL() string {
	p.t.Helper()
	return run(p, "read the URL", chromedp.Location())
}

// Title is the page's title.
func (p *Page) Title() string {
	p.t.Helper()
	return run(p, "read the title", chromedp.Title())
}

// Text is the page's text as the user sees it (innerText of the body).
func (p *Page) Text() string {
	p.t.Helper()
	return Eval[string](p, `document.body ? document.body.innerText : ""`)
}

// Eval evaluates a JavaScript expression in the page (in DevTools' own
// world, which the page's Content-Security-Policy does not restrict) and
// decodes its value into T.
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	return run(p, "evaluate "+strconv.Quote(clip(expr)), chromedp.Evaluate[T](expr))
}

// field finds a form control by its label's text (the label's own text,
// before the control, trimmed, with or without a final colon) or else by
// its name.
const field = `((key) => {
	const norm = (s) => s.replace(/\s+/g, " ").trim().replace(/:$/, "");
	for (const l of document.querySelectorAll("label")) {
		const c = l.control;
		if (!c) continue;
		let own = "";
		for (const n of l.childNodes) if (n.nodeType === Node.TEXT_NODE) own += n.textContent;
		if (norm(own) === norm(key) || norm(l.innerText) === norm(key)) return c;
	}
	return document.getElementsByName(key)[0] || null;
})(%s)`

// button finds a button (or submit input, or link) by its visible text,
// or else by its aria-label (a page with one "Connect" per row names each
// for its row).
const button = `((text) => {
	const norm = (s) => (s || "").replace(/\s+/g, " ").trim();
	const all = [...document.querySelectorAll("button, input[type=submit], input[type=button], a[href]")];
	return all.find((b) => norm(b.innerText || b.value) === text) || all.find((b) => norm(b.getAttribute("aria-label")) === text) || null;
})(%s)`

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string { return strconv.Quote(s) } // a Go quoted string is a valid JS string literal

// Fill types value into the form control labelled key (or named key),
// replacing what it held.
func (p *Page) Fill(key, value string) {
	p.t.Helper()
	sel := chromedp.JSPath(fmt.Sprintf(field, jsString(key)))
	run(p, "fill "+strconv.Quote(key), chromedp.Steps(
		chromedp.WaitVisible(sel),
		chromedp.Clear(sel),
		chromedp.SendKeys(sel, value),
	))
}

// Click clicks the button (or link) whose text (or else aria-label) is
// text, waits for the navigation it starts to load (through its
// redirects) and returns the HTTP status of the page it ends at.
func (p *Page) Click(text string) int {
	p.t.Helper()
	sel := chromedp.JSPath(fmt.Sprintf(button, jsString(text)))
	run(p, "find the button "+strconv.Quote(text), chromedp.WaitVisible(sel))
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
	if err != nil {
		p.t.Fatalf("browser: click %q: %v%s", text, err, p.where())
	}
	return int(res.Status)
}

// WaitURL waits until the page's URL starts with prefix and returns it.
func (p *Page) WaitURL(prefix string) string {
	p.t.Helper()
	var u string
	p.until("a URL starting with "+prefix, func(ctx context.Context) (bool, error) {
		var err error
		u, err = chromedp.Run(ctx, chromedp.Location())
		return strings.HasPrefix(u, prefix), err
	})
	return u
}

// WaitTrue waits until the JavaScript expression is true in the page.
func (p *Page) WaitTrue(expr string) {
	p.t.Helper()
	p.until(strconv.Quote(clip(expr)), func(ctx context.Context) (bool, error) {
		return chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
	})
}

// until polls cond until it holds, for at most stepTimeout. (chromedp's
// Poll compiles its predicate in the page, which a Content-Security-Policy
// without 'unsafe-eval' forbids; Runtime.evaluate is not restricted.)
func (p *Page) until(what string, cond func(context.Context) (bool, error)) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	for {
		ok, err := cond(ctx)
		if ok && err == nil {
			return
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("browser: wait for %s: %v%s", what, errors.Join(err, ctx.Err()), p.where())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves a full-page PNG of the page as <test>-<name>.png in
// the screenshot directory (BEHALF_TEST_SCREENSHOTS, or a temporary
// directory of the test) and returns its path.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	if p.shots == "" {
		dir := os.Getenv(ScreenshotsEnv)
		switch {
		case dir == "":
			dir = p.t.TempDir()
		case !filepath.IsAbs(dir):
			// go test runs in each package's directory: a relative path
			// would scatter screenshots through the source tree.
			p.t.Fatalf("browser: %s=%s: give an absolute path", ScreenshotsEnv, dir)
		}
		if err := os.MkdirAll(dir, 0o750); err != nil { //nolint:gosec // G703: the directory the tester chose
			p.t.Fatalf("browser: screenshot directory: %v", err)
		}
		p.shots = dir
	}
	dir := p.shots
	png := run(p, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(dir, unsafeName.ReplaceAllString(p.t.Name()+"-"+name, "_")+".png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		p.t.Fatalf("browser: save a screenshot: %v", err)
	}
	p.t.Logf("browser: screenshot %s", path)
	return path
}

// InlineScriptRuns reports whether an inline script added to the page
// runs: it must not where the Content-Security-Policy forbids inline
// scripts (CSP Level 3, script-src, falling back to default-src).
func (p *Page) InlineScriptRuns() bool {
	p.t.Helper()
	return Eval[bool](p, `(() => {
		delete window.__behalfInline;
		const s = document.createElement("script");
		s.textContent = "window.__behalfInline = true";
		document.documentElement.appendChild(s);
		return window.__behalfInline === true;
	})()`)
}

// Framed reports whether a page of another origin can show url in an
// iframe: it must not where the response forbids framing (CSP
// frame-ancestors, X-Frame-Options). The framing page is served by the
// test on another port (another origin, the same site, so the tab's
// cookies go with the framed request); the frame counts as shown when
// its document, read through DevTools, is at url.
func (p *Page) Framed(url string) bool {
	p.t.Helper()
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, `<!doctype html><title>framing</title><iframe id="victim" src="%s" width="800" height="600" onload="this.dataset.loaded = '1'"></iframe>`, htmlAttr(url))
	}))
	defer attacker.Close()
	p.Open(attacker.URL)
	// The iframe's load event fires whether it was shown or blocked;
	// wait for it, then read the frame tree.
	p.WaitTrue(`document.getElementById("victim").dataset.loaded === "1"`)
	tree := run(p, "read the frame tree", chromedp.Action[page.GetFrameTreeResult](func(ctx context.Context, t *chromedp.Target) (page.GetFrameTreeResult, error) {
		return cdp.Call(ctx, t, page.GetFrameTree, cdp.Empty{})
	}))
	for _, c := range tree.FrameTree.ChildFrames {
		if c.Frame.URL == url && c.Frame.UnreachableURL == "" {
			return true
		}
	}
	return false
}

func htmlAttr(s string) string {
	return strings.NewReplacer(`&`, "&amp;", `"`, "&quot;", `<`, "&lt;", `>`, "&gt;").Replace(s)
}

// Unlabelled lists the form controls shown (inputs other than hidden
// ones, selects, text areas) that have neither a label nor an
// aria-label, by name (WCAG 2.2 SC 1.3.1, 3.3.2).
func (p *Page) Unlabelled() []string {
	p.t.Helper()
	return Eval[[]string](p, `[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
		.filter((e) => e.labels.length === 0 && !e.getAttribute("aria-label")).map((e) => e.name || e.id || e.outerHTML)`)
}

// TabMisses presses Tab through the page, once per element that can take
// the focus and twice more, and lists the buttons (by aria-label, else
// text) it never focused (WCAG 2.2 SC 2.1.1).
func (p *Page) TabMisses() []string {
	p.t.Helper()
	name := `((e) => e ? (e.getAttribute("aria-label") || e.innerText || e.value || "").replace(/\s+/g, " ").trim() : "")`
	buttons := Eval[[]string](p, `[...document.querySelectorAll("button, input[type=submit], input[type=button]")].map(`+name+`)`)
	stops := Eval[int](p, `document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, [tabindex]").length`)
	reached := map[string]bool{}
	for range stops + 2 {
		run(p, "press Tab", chromedp.KeyEvent(kb.Tab))
		reached[Eval[string](p, name+`(document.activeElement)`)] = true
	}
	var missed []string
	for _, b := range buttons {
		if !reached[b] {
			missed = append(missed, b)
		}
	}
	return missed
}

// Viewport sets the tab's viewport to width×height CSS pixels, a phone's
// (touch, portrait) when mobile; it applies to the pages opened after.
func (p *Page) Viewport(width, height int64, mobile bool) {
	p.t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait)
	}
	run(p, fmt.Sprintf("set a %d×%d viewport", width, height), chromedp.EmulateViewport(width, height, opts...))
}

// ScrollsSideways reports whether the page is wider than its viewport.
func (p *Page) ScrollsSideways() bool {
	p.t.Helper()
	return Eval[bool](p, `document.documentElement.scrollWidth > document.documentElement.clientWidth`)
}

// PostFromAnotherOrigin opens a page of another origin, served by the
// test on another port (the same site, so the tab's cookies go with the
// post), that posts a form of fields to action as it loads, and waits
// until the browser is at action. Its script is a file: the page has no
// Content-Security-Policy, but a file is how such pages are built.
func (p *Page) PostFromAnotherOrigin(action string, fields url.Values) {
	p.t.Helper()
	var inputs strings.Builder
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		for _, v := range fields[k] {
			fmt.Fprintf(&inputs, `<input type="hidden" name="%s" value="%s">`, htmlAttr(k), htmlAttr(v))
		}
	}
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/submit.js" {
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write([]byte(`document.getElementById("f").submit();`))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, `<!doctype html><title>win a prize</title><form id="f" method="post" action="%s">%s</form><script src="/submit.js"></script>`,
			htmlAttr(action), inputs.String())
	}))
	defer attacker.Close()
	p.Open(attacker.URL)
	p.WaitURL(action)
}
