package console_test

// The admin console in a real browser (internal/testutil/browser): bob,
// who is not an administrator, is refused; alice signs in at the dev
// IdP's page, every page shows the server's data, she sets corp's client
// secret, finds carol's connection by searching and revokes it with its
// button, and the audit log page, filtered, shows both under her name; a
// form another origin posts cannot revoke, and the pages hold their CSP,
// framing, keyboard and label checks on a desktop and a narrow viewport.

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	headless "github.com/behalf-dev/behalf/internal/testutil/browser"
)

// row is the text of each cell of the table row whose header cell reads
// header, on the page shown; nil when there is none.
func row(p *headless.Page, header string) []string {
	return headless.Eval[[]string](p, fmt.Sprintf(`(() => {
		const norm = (s) => s.replace(/\s+/g, " ").trim();
		for (const r of document.querySelectorAll("tbody tr")) {
			if (r.cells.length && norm(r.cells[0].innerText) === %q) return [...r.cells].map((c) => norm(c.innerText));
		}
		return null;
	})()`, header))
}

// checkPage checks the page shown: its heading, each datum in its text,
// no secret in its markup, no inline script running, every input
// labelled, and Tab reaching every button; and saves a screenshot.
func checkPage(t *testing.T, p *headless.Page, shot, heading string, data ...string) {
	t.Helper()
	if h := headless.Eval[string](p, `document.querySelector("h1") ? document.querySelector("h1").innerText : ""`); h != heading {
		t.Errorf("%s: heading %q, want %q", shot, h, heading)
	}
	text := p.Text()
	for _, d := range data {
		if !strings.Contains(text, d) {
			t.Errorf("%s: %q is not on the page:\n%s", shot, d, text)
		}
	}
	if strings.Contains(headless.Eval[string](p, `document.documentElement.outerHTML`), "console-secret") {
		t.Errorf("%s shows the provider's client secret", shot)
	}
	if p.InlineScriptRuns() {
		t.Errorf("%s: an inline script ran", shot)
	}
	if u := p.Unlabelled(); len(u) != 0 {
		t.Errorf("%s: inputs without a label: %q", shot, u)
	}
	for _, b := range p.TabMisses() {
		t.Errorf("%s: Tab does not reach the button %q", shot, b)
	}
	p.Screenshot(shot)
}

// signInAt opens the console, signs in as user at the dev IdP's page and
// returns the status of the page the browser ends at.
func signInAt(t *testing.T, p *headless.Page, w *consoleWorld, user string) int {
	t.Helper()
	p.Open(w.base)
	p.WaitURL(w.corp.Issuer() + "/")
	p.Fill("Sign in as", user)
	return p.Click("Allow")
}

func TestConsoleInBrowser(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newConsoleWorld(t, b)
		base, carol := w.base, w.carol
		p := headless.Start(t) // after the servers, so that it closes first

		// bob signs in but is not an administrator.
		if st := signInAt(t, p, w, "bob"); st != http.StatusForbidden {
			t.Errorf("bob's sign-in: %d", st)
		}
		checkPage(t, p, "not-admin", "You are not an administrator", "does not name you an administrator")

		// alice, an administrator, signs in at the dev IdP's page.
		p.Open(base)
		p.WaitURL(w.corp.Issuer() + "/")
		p.Screenshot("sign-in")
		p.Fill("Sign in as", "alice")
		if st := p.Click("Allow"); st != http.StatusOK || p.URL() != base {
			t.Fatalf("alice's sign-in ended at %s (%d)", p.URL(), st)
		}
		checkPage(t, p, "overview", "Overview", "What this server holds")
		if r := row(p, "Workload identities"); len(r) != 2 || r[1] != "1" {
			t.Errorf("overview's workload identities: %q", r)
		}

		// Every page, reached through the console's links.
		p.Click("Workload identities")
		checkPage(t, p, "workloads", "Workload identities")
		p.Click("support-agent")
		checkPage(t, p, "workload", "Workload identity support-agent", w.s.URL+"/dev/complete")
		if r := row(p, "corp"); !slices.Equal(r, []string{"corp", "tickets.read", "none", "none", "none"}) {
			t.Errorf("support-agent's allow-list: %q", r)
		}
		p.Click("Credential providers")
		checkPage(t, p, "providers", "Credential providers", "Secrets are never shown here")
		p.Click("corp")
		checkPage(t, p, "provider", "OAuth2 credential provider corp", "never shown", w.corp.Issuer()+"/.well-known/openid-configuration")
		// alice sets corp's client secret (the same one, which signs her in):
		// typed in a password field, never on the page after.
		p.Fill("New client secret (replaces the stored one; never shown again)", "console-secret")
		if st := p.Click("Set the client secret"); st != http.StatusOK {
			t.Fatalf("set the client secret: %d", st)
		}
		checkPage(t, p, "secret-set", "Client secret set", "The new client secret of corp was set")
		p.Click("Principals")
		checkPage(t, p, "principals", "Principals and their grants")
		if r := row(p, consoleKeyID); len(r) < 2 || r[1] != "admin" {
			t.Errorf("the console's principal: %q", r)
		}
		p.Click("Connections")
		p.Fill("User", carol)
		p.Click("Search")
		checkPage(t, p, "connections", "Users' connections")
		if r := row(p, carol); len(r) < 5 || r[1] != "corp" || r[2] != "support-agent" || r[4] != "tickets.read" {
			t.Errorf("carol's connection: %q", r)
		}
		searched := p.URL()
		p.Click("Audit log")
		checkPage(t, p, "audit", "Audit log", "Verified: no problem", "Audit records, newest first")
		seqs := headless.Eval[[]int](p, `[...document.querySelectorAll("tbody tr th")].map((th) => Number(th.innerText))`)
		if len(seqs) < 2 || !slices.IsSortedFunc(seqs, func(a, b int) int { return b - a }) || seqs[0] == seqs[1] {
			t.Errorf("audit records not newest first: %v", seqs)
		}

		// A narrow viewport: no page scrolls sideways.
		p.Viewport(375, 740, true)
		for shot, path := range map[string]string{"overview": "", "workloads": "workloads", "workload": "workloads/support-agent",
			"providers": "providers", "provider": "providers/corp", "principals": "principals",
			"connections": "connections?user=" + url.QueryEscape(carol), "audit": "audit"} {
			p.Open(base + path)
			if p.ScrollsSideways() {
				t.Errorf("%s scrolls sideways on a narrow viewport", shot)
			}
			p.Screenshot(shot + "-narrow")
		}
		p.Viewport(1024, 768, false)

		// CSRF: a form another origin's page posts cannot revoke carol's
		// connection.
		p.PostFromAnotherOrigin(base+"connections/revoke", url.Values{"provider": {"corp"}, "workload": {"support-agent"}, "user": {carol}, "csrf": {"guessed"}})
		p.WaitTrue(`document.title.startsWith("This form has expired")`)
		provider, err := w.s.Server.Store().GetOAuth2Provider(t.Context(), "corp")
		if err != nil {
			t.Fatal(err)
		}
		key := storage.ConnectionKey{ProviderID: provider.ID, Workload: "support-agent", User: carol}
		if _, err := w.s.Server.Store().GetConnection(t.Context(), key); err != nil {
			t.Errorf("another origin's form revoked carol's connection: %v", err)
		}

		// alice revokes carol's connection with its button; it is gone.
		p.Open(searched)
		if st := p.Click("Revoke " + carol + "'s connection to corp for support-agent"); st != http.StatusOK {
			t.Fatalf("revoke: %d", st)
		}
		checkPage(t, p, "revoked", "Connection revoked")
		p.Click("Back to " + carol + "'s connections")
		checkPage(t, p, "connections-after", "Users' connections", "No connections match.")
		if _, err := w.s.Server.Store().GetConnection(t.Context(), key); err == nil {
			t.Error("the connection survived its revocation")
		}

		// The audit log, filtered, names alice with the console's principal.
		alice := "console:" + consoleKeyID + "/jwt:" + w.corp.Issuer() + "#alice"
		newest := func(op string) []string {
			t.Helper()
			p.Click("Audit log")
			p.Fill("Operation", op)
			p.Click("Filter")
			var r []string
			for deadline := time.Now().Add(5 * time.Second); ; p.Open(p.URL()) {
				if r = headless.Eval[[]string](p, `[...(document.querySelector("tbody tr") || {cells: []}).cells].map((c) => c.innerText.trim())`); len(r) == 9 && r[3] == alice {
					break
				}
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			return r
		}
		if r := newest("UpdateOauth2CredentialProvider"); len(r) != 9 || r[2] != "UpdateOauth2CredentialProvider" || r[3] != alice || r[6] != "corp" || r[8] != "success" {
			t.Errorf("the new secret's audit record: %q", r)
		}
		if r := newest("RevokeConnection"); len(r) != 9 || r[2] != "RevokeConnection" || r[3] != alice || r[5] != carol || r[6] != "corp" || r[8] != "success" {
			t.Errorf("the revocation's audit record: %q", r)
		}
		checkPage(t, p, "audit-revoke", "Audit log", "Verified: no problem")

		// Framing by another origin is refused.
		if p.Framed(base + "audit") {
			t.Error("another origin framed the audit log")
		}

		// Sign out.
		p.Open(base)
		if st := p.Click("Sign out"); st != http.StatusOK || !strings.Contains(p.Text(), "You are signed out") {
			t.Errorf("sign-out: %d %q", st, p.Text())
		}
		p.Screenshot("signed-out")
	})
}
