package gateway_test

// behalf's authorization server in a real browser (internal/testutil/
// browser): an MCP client's authorization request signs the user in at
// the dev IdP, shows behalf's consent page and, on Allow, sends the
// browser to the client's redirect URI with a code and iss (RFC 9207);
// the page's Content-Security-Policy stops inline scripts and framing
// (frame-ancestors, X-Frame-Options) as a browser applies them.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/browser"
)

func TestAuthorizationServerConsentInBrowser(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		// The client's redirect URI, served here so that the browser has
		// somewhere to land.
		client := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = fmt.Fprint(w, `<!doctype html><title>Browser App</title><p>Signed in.</p>`)
		}))
		t.Cleanup(client.Close)
		redirect := client.URL + "/callback"
		aw := newASWorld(t, b, func(_ *config.File, as *config.AuthorizationServerFile) {
			as.Clients = append(as.Clients, config.AuthServerClientFile{ClientID: "browser-app", ClientName: "Browser App", RedirectURIs: []string{redirect}})
		})
		p := browser.Start(t) // after the servers, so that it closes first
		cfg := &oauth2.Config{ClientID: "browser-app", RedirectURL: redirect, Scopes: []string{mcpScope},
			Endpoint: oauth2.Endpoint{AuthURL: aw.issuer + "/oauth2/authorize", TokenURL: aw.issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
		verifier := oauth2.GenerateVerifier()
		authURL := cfg.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", aw.resource))

		// Sign in at the dev IdP, behalf's login identity provider.
		p.Open(authURL)
		if u := p.URL(); !strings.HasPrefix(u, aw.idp.Issuer()+"/") || p.Title() != "behalf dev-idp: sign in" {
			t.Fatalf("the authorization request opened %s (%q), want the dev IdP's sign-in", u, p.Title())
		}
		p.Screenshot("dev-idp-sign-in")
		p.Fill("Sign in as", "alice")
		p.Click("Allow")

		// behalf's consent page names the client, the resource and the
		// scopes, and where the browser will be sent.
		consentURL := p.URL()
		if !strings.HasPrefix(consentURL, aw.issuer+"/oauth2/consent?") {
			t.Fatalf("after sign-in the browser is at %s, want behalf's consent page", consentURL)
		}
		if title := p.Title(); title != "Allow Browser App?" {
			t.Errorf("consent page title %q", title)
		}
		text := p.Text()
		for _, want := range []string{"Allow Browser App?", "Client id: browser-app", "Browser App asks to use " + aw.resource + " on your behalf", mcpScope,
			"You will be sent back to " + client.URL + "."} {
			if !strings.Contains(text, want) {
				t.Errorf("the consent page does not show %q:\n%s", want, text)
			}
		}
		p.Screenshot("consent")

		// Its headers hold in the browser: no inline script runs, and a
		// page of another origin cannot frame it (clickjacking).
		if p.InlineScriptRuns() {
			t.Error("an inline script ran on the consent page")
		}
		if p.Framed(consentURL) {
			t.Error("another origin showed the consent page in a frame")
		}

		// Back on the consent page (still waiting for an answer), Allow
		// sends the browser to the client with a code, the state and iss.
		if st := p.Open(consentURL); st != http.StatusOK {
			t.Fatalf("the consent page again: %d", st)
		}
		p.Click("Allow")
		back, err := url.Parse(p.URL())
		if err != nil || back.Scheme+"://"+back.Host+back.Path != redirect {
			t.Fatalf("after Allow the browser is at %s, want %s", p.URL(), redirect)
		}
		q := back.Query()
		if q.Get("code") == "" || q.Get("state") != "state-1" || q.Get("iss") != aw.issuer {
			t.Fatalf("the authorization response %v, want a code, state state-1 and iss %s", q, aw.issuer)
		}
		tok, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil || tok.AccessToken == "" {
			t.Fatalf("the code from the browser: %v", err)
		}
	})
}
