package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// atIDP checks that p is corp's sign-in page, asked with max_age=600 (the
// world's portals.reauthenticateAfter, OpenID Connect Core §3.1.2.1).
func atIDP(t *testing.T, w *world, p page) {
	t.Helper()
	u, err := url.Parse(p.URL)
	if err != nil || p.Status != http.StatusOK || u.Scheme+"://"+u.Host != w.corp.Issuer() || u.Path != "/authorize" || u.Query().Get("max_age") != "600" ||
		u.Query().Has("prompt") {
		t.Fatalf("want corp's sign-in with max_age=600, got %d at %s: %s", p.Status, p.URL, p.Body)
	}
}

// TestPortalReauthentication: with portals.reauthenticateAfter, Connect
// and Disconnect with an older sign-in do nothing but send the user to
// sign in again at the IdP with max_age; back on the connections page
// the user repeats the action, which then works. The sign-in replaced is
// spent, and another user signing in gets their own session, with no
// action carried over.
func TestPortalReauthentication(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		w := newWorldWith(t, b, worldOptions{reauthenticateAfter: 10 * time.Minute, clock: clock})
		alice := newBrowser(t)
		home := alice.signIn(w.portal, "alice")

		// A fresh sign-in connects without being asked again.
		form := url.Values{"provider": {"tools"}, "workload": {workload}, "csrf": {csrf(t, home)}}
		done := alice.Consent(alice.Send(http.MethodPost, w.portal+"connect", form), "alice")
		if done.URL != w.portal || status(t, done) != "Connected" {
			t.Fatalf("after connecting: %d at %s: %s", done.Status, done.URL, done.Body)
		}

		// Eleven minutes on: Disconnect sends alice to sign in again, and
		// the connection stays.
		clock.Advance(11 * time.Minute)
		u, _ := url.Parse(w.portal)
		stale := alice.Client.Jar.Cookies(u)
		form.Set("csrf", csrf(t, done))
		at := alice.Send(http.MethodPost, w.portal+"disconnect", form)
		atIDP(t, w, at)
		if tok, _ := w.agentToken(t, "alice"); tok == "" {
			t.Fatal("the connection went before alice signed in again")
		}

		// Signed in again, alice is back on her page and repeats it.
		back := alice.Consent(at, "alice")
		if back.URL != w.portal || status(t, back) != "Connected" {
			t.Fatalf("after signing in again: %d at %s: %s", back.Status, back.URL, back.Body)
		}
		form.Set("csrf", csrf(t, back))
		after := alice.Send(http.MethodPost, w.portal+"disconnect", form)
		if after.URL != w.portal || status(t, after) != "Needs consent" {
			t.Fatalf("disconnect after signing in again: %d at %s: %s", after.Status, after.URL, after.Body)
		}
		if tok, authURL := w.agentToken(t, "alice"); tok != "" || authURL == "" {
			t.Error("the agent still got a token after alice disconnected")
		}

		// The session signed in again replaced is spent.
		replay := newBrowser(t)
		replay.Client.Jar.SetCookies(u, stale)
		replay.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		if got := replay.Get(w.portal); got.Status != http.StatusSeeOther {
			t.Errorf("the session replaced by signing in again, replayed: %d", got.Status)
		}

		// Connect is asked again too; bob signing in instead gets his own
		// session and page, and nothing is started for either.
		clock.Advance(11 * time.Minute)
		form.Set("csrf", csrf(t, after))
		at = alice.Send(http.MethodPost, w.portal+"connect", form)
		atIDP(t, w, at)
		bobs := alice.Consent(at, "bob")
		if bobs.URL != w.portal || status(t, bobs) != "Needs consent" {
			t.Fatalf("bob signing in instead: %d at %s: %s", bobs.Status, bobs.URL, bobs.Body)
		}
		if got := alice.Send(http.MethodPost, w.portal+"connect", form); got.Status != http.StatusForbidden {
			t.Errorf("alice's form after bob signed in: %d", got.Status)
		}
	})
}

// TestPortalReauthenticationNeedsAuthTime: after a request with max_age,
// an ID token without auth_time is refused with a page saying why, and
// the action is not performed.
func TestPortalReauthenticationNeedsAuthTime(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		w := newWorldWith(t, b, worldOptions{reauthenticateAfter: 10 * time.Minute, clock: clock, omitAuthTime: true})
		alice := newBrowser(t)
		home := alice.signIn(w.portal, "alice") // no max_age asked: auth_time is the callback's time
		form := url.Values{"provider": {"tools"}, "workload": {workload}, "csrf": {csrf(t, home)}}
		done := alice.Consent(alice.Send(http.MethodPost, w.portal+"connect", form), "alice")
		if status(t, done) != "Connected" {
			t.Fatalf("after connecting: %s", done.Body)
		}

		clock.Advance(11 * time.Minute)
		form.Set("csrf", csrf(t, done))
		at := alice.Send(http.MethodPost, w.portal+"disconnect", form)
		atIDP(t, w, at)
		refused := alice.Consent(at, "alice")
		if refused.Status != http.StatusForbidden || !strings.Contains(refused.Body, "could not be confirmed as recent") || !strings.Contains(refused.Body, "max_age") {
			t.Fatalf("an ID token without auth_time: %d %s", refused.Status, refused.Body)
		}
		if tok, _ := w.agentToken(t, "alice"); tok == "" {
			t.Error("the connection went after a refused sign-in")
		}
	})
}
