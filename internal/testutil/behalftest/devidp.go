package behalftest

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"testing"

	"github.com/behalf-dev/behalf/internal/devidp"
)

// DevIdP runs behalf's development identity provider on loopback for a
// test, with the given options (Issuer is set here).
func DevIdP(t testing.TB, opts devidp.Options) *devidp.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Issuer = "http://" + ln.Addr().String()
	idp, err := devidp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: idp.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return idp
}

var formToken = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

// Consent plays a user's browser: it opens authURL at the dev IdP, signs in
// as user and clicks Allow (or Deny), then follows every redirect — to
// behalf's callback and on to the return URL — and returns the last page.
func Consent(t testing.TB, authURL, user string, allow bool) (*http.Response, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	res, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := formToken.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no consent form at %s: %d %s", authURL, res.StatusCode, page)
	}
	action := "deny"
	if allow {
		action = "allow"
	}
	u, _ := url.Parse(authURL)
	res, err = browser.PostForm(u.Scheme+"://"+u.Host+"/consent", url.Values{"form_token": {string(m[1])}, "username": {user}, "action": {action}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}
