package behalftest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Browser plays a person's browser for server-rendered pages (consent
// portals, the admin console): a cookie jar, following redirects.
type Browser struct {
	t      testing.TB
	Client *http.Client
}

// NewBrowser is a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{t: t, Client: &http.Client{Jar: jar}}
}

// Page is what a browser was last shown.
type Page struct {
	Status int
	URL    string
	Body   string
}

// Send sends a request, a form when form is not nil.
func (b *Browser) Send(method, u string, form url.Values) Page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.Client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	raw, _ := io.ReadAll(res.Body)
	return Page{Status: res.StatusCode, URL: res.Request.URL.String(), Body: string(raw)}
}

// Get opens u.
func (b *Browser) Get(u string) Page { return b.Send(http.MethodGet, u, nil) }

// Consent answers a dev IdP's consent page as user, allowing.
func (b *Browser) Consent(p Page, user string) Page {
	b.t.Helper()
	m := formToken.FindStringSubmatch(p.Body)
	if m == nil {
		b.t.Fatalf("no dev IdP consent form at %s: %d %s", p.URL, p.Status, p.Body)
	}
	u, _ := url.Parse(p.URL)
	return b.Send(http.MethodPost, u.Scheme+"://"+u.Host+"/consent", url.Values{"form_token": {m[1]}, "username": {user}, "action": {"allow"}})
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// CSRF is the form token on a page.
func CSRF(t testing.TB, p Page) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no form token on %s", p.Body)
	}
	return m[1]
}

// T is the test the browser reports to.
func (b *Browser) T() testing.TB { return b.t }
