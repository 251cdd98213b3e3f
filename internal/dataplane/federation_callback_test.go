package dataplane_test

// behalf's callback as a browser meets it (issue 4, item 2): the provider's
// refusal, a failed code exchange, and links that are unknown, reused or
// meant for another provider each end on a page for a person — HTML, with
// a strict CSP and nothing secret on it — and leave the session FAILED
// where the flow cannot go on.

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// callbackWith is the callback URL a provider would send the browser to.
func (fw *fedWorld) callbackWith(params url.Values) string {
	return fw.callbackURL + "?" + params.Encode()
}

// wantFailed checks that a session ended FAILED for everyone who asks.
func (fw *fedWorld) wantFailed(t *testing.T, token, user string, s fedSession, reason string) {
	t.Helper()
	if st := fw.storedSession(t, s.uri).Status; st != storage.SessionFailed {
		t.Errorf("session status %s, want FAILED", st)
	}
	if out := fw.poll(t, token, s.uri); out.SessionStatus != types.SessionStatusFailed || out.AccessToken != nil || out.AuthorizationUrl != nil {
		t.Errorf("poll: status %q, token %v, URL %v", out.SessionStatus, out.AccessToken != nil, out.AuthorizationUrl != nil)
	}
	wantAccessDenied(t, fw.complete(t, s.uri, asUserID(user)), reason)
}

// TestFederationProviderDenial: the provider sends the browser back with
// error=access_denied and the state, as RFC 6749 §4.1.2.1 has it.
func TestFederationProviderDenial(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		s := fw.start(t, fedInput(alice, func(in *oauth2Input) { in.CustomState = aws.String("csrf-TEST-custom-state") }))
		denied := fw.callbackWith(url.Values{"error": {"access_denied"}, "error_description": {"The user denied the request"}, "state": {s.state}})

		p := fedBrowse(t, denied)
		wantHTMLPage(t, p, http.StatusOK, "You declined access", "access_denied", "The user denied the request")
		for what, v := range map[string]string{"state": s.state, "session id": strings.TrimPrefix(s.uri, "urn:ietf:params:oauth:request_uri:"),
			"custom state": "csrf-TEST-custom-state", "client secret": fedClientSecret} {
			if strings.Contains(p.body, v) {
				t.Errorf("the page shows the %s", what)
			}
		}
		if p.header.Get("Location") != "" {
			t.Errorf("a denial redirected to %s", p.header.Get("Location"))
		}
		fw.wantFailed(t, alice, "alice", s, "access_denied")
		if n := len(fw.tokens.grant("authorization_code")); n != 0 {
			t.Errorf("%d code exchanges after a denial", n)
		}

		// The same link again: already used.
		wantHTMLPage(t, fedBrowse(t, denied), http.StatusConflict, "already used")
		// The next request starts a new session.
		if again := fw.start(t, fedInput(alice)); again.uri == s.uri {
			t.Error("the failed session was offered again")
		}
	})
}

// TestFederationCallbackPages: links that are not valid, and what a
// provider may put on the page.
func TestFederationCallbackPages(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		_, m2mID := callbackOf(t, fw.s, m2mProvider)

		t.Run("unknown or missing state", func(t *testing.T) {
			for _, q := range []url.Values{
				{"code": {"some-code"}, "state": {"no-such-state-0123456789abcdefghijklmnop"}},
				{"code": {"some-code"}},
				{"error": {"access_denied"}},
				{"code": {"some-code"}, "state": {strings.Repeat("s", 600)}},
			} {
				wantHTMLPage(t, fedBrowse(t, fw.callbackWith(q)), http.StatusBadRequest, "not valid")
			}
			if n := len(fw.tokens.grant("authorization_code")); n != 0 {
				t.Errorf("an unknown state made %d code exchanges", n)
			}
		})

		t.Run("another provider's callback", func(t *testing.T) {
			s := fw.start(t, fedInput(alice))
			toCallback := fw.dex.Authorize(t, s.authURL)
			wrong := *toCallback
			wrong.Path = strings.TrimSuffix(wrong.Path, fw.providerID) + m2mID
			wantHTMLPage(t, fedBrowse(t, wrong.String()), http.StatusBadRequest, "not valid")
			if st := fw.storedSession(t, s.uri).Status; st != storage.SessionInProgress {
				t.Errorf("session %s after a wrong-provider callback", st)
			}
			// The right callback still works.
			if p := fedBrowse(t, toCallback.String()); p.status != http.StatusFound {
				t.Errorf("right callback: %d %s", p.status, p.body)
			}
		})

		t.Run("markup in the provider's description", func(t *testing.T) {
			s := fw.start(t, fedInput(mintForUser(t, fw.rt, workloadW1, "bob")))
			p := fedBrowse(t, fw.callbackWith(url.Values{"state": {s.state}, "error": {"server_error"},
				"error_description": {`<script>alert(1)</script><img src=x onerror=alert(2)>`}}))
			wantHTMLPage(t, p, http.StatusOK, "Sign-in did not complete", "server_error", "&lt;script&gt;")
			if strings.Contains(p.body, "<script") || strings.Contains(p.body, "<img") {
				t.Errorf("the provider's markup is on the page:\n%s", p.body)
			}
		})

		t.Run("neither code nor error", func(t *testing.T) {
			s := fw.start(t, fedInput(mintForUser(t, fw.rt, workloadW1, "carol")))
			wantHTMLPage(t, fedBrowse(t, fw.callbackWith(url.Values{"state": {s.state}})), http.StatusBadRequest, "no authorization code")
			fw.wantFailed(t, mintForUser(t, fw.rt, workloadW1, "carol"), "carol", s, "no authorization code")
		})
	})
}

// TestFederationCodeExchangeFailure: the provider refuses the code; the
// page quotes it, the session fails, and nothing secret is shown.
func TestFederationCodeExchangeFailure(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		for i, tc := range []struct {
			name   string
			fault  func(http.ResponseWriter, url.Values) bool
			quotes []string
		}{
			{"invalid_grant", tokenFault("authorization_code", 400, "application/json",
				`{"error":"invalid_grant","error_description":"The authorization code has expired"}`),
				[]string{"invalid_grant", "The authorization code has expired"}},
			{"503", tokenFault("authorization_code", 503, "text/html", "<h1>down</h1>"), []string{"HTTP 503"}},
			// A provider that echoes what it was sent must not make behalf
			// show the code, the PKCE verifier or the client secret.
			{"description echoing the request", func(w http.ResponseWriter, form url.Values) bool {
				if form.Get("grant_type") != "authorization_code" {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(400)
				w.Write([]byte(`{"error":"invalid_grant","error_description":"code ` + form.Get("code") + ` does not match verifier ` +
					form.Get("code_verifier") + ` for secret ` + fedClientSecret + `"}`))
				return true
			}, []string{"invalid_grant", "does not match"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				user := []string{"alice", "bob", "carol"}[i]
				token := mintForUser(t, fw.rt, workloadW1, user)
				s := fw.start(t, fedInput(token))
				fw.tokens.setFault(tc.fault)
				defer fw.tokens.setFault(nil)
				toCallback := fw.dex.Authorize(t, s.authURL)
				p := fedBrowse(t, toCallback.String())
				wantHTMLPage(t, p, http.StatusBadGateway, append([]string{"Sign-in did not complete"}, tc.quotes...)...)

				ex := fw.tokens.grant("authorization_code")
				sent := ex[len(ex)-1]
				var secrets secretSet
				secrets.add("authorization code", sent.Get("code"), toCallback.Query().Get("code"))
				secrets.add("PKCE verifier", sent.Get("code_verifier"))
				secrets.add("client secret", fedClientSecret)
				// The state is in the authorization URL the agent gets, by
				// design, but not on the page.
				secrets.checkAbsent(t, "the callback page", []byte(p.body+p.header.Get("Location")))
				if strings.Contains(p.body, s.state) {
					t.Error("the callback page shows the state")
				}

				fw.tokens.setFault(nil)
				fw.wantFailed(t, token, user, s, tc.quotes[0])
				secrets.checkRecorder(t, "a data-plane response", fw.rec)
			})
		}
	})
}

// TestFederationCallbackTwiceAtOnce: the same callback URL requested twice
// while the first request is still exchanging the code — a double click, a
// browser retrying, a link scanner — must redeem the code once. A second
// redemption is a replay to the provider, and RFC 6749 §4.1.2 has it revoke
// what the code produced: here internal/devidp does, so the connection
// that gets bound would hold a dead refresh token.
func TestFederationCallbackTwiceAtOnce(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		const provider = "devidp"
		fw := newFedWorld(t, b, fedOptions{extraProviders: []string{provider}})
		d := startDevIDP(t)
		providerID, devInput := fw.addDevIDP(t, d, provider)

		var exchanges atomic.Int32
		arrived, release := make(chan struct{}), make(chan struct{})
		d.setHold(func(form url.Values) {
			if form.Get("grant_type") == "authorization_code" && exchanges.Add(1) == 1 {
				close(arrived)
				select {
				case <-release:
				case <-time.After(20 * time.Second):
				}
			}
		})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		s := fw.start(t, devInput(alice))
		toCallback := d.consent(t, s.authURL, "alice")

		first := make(chan fedPage, 1)
		go func() { first <- fedBrowseAsync(toCallback.String()) }()
		select {
		case <-arrived:
		case <-time.After(20 * time.Second):
			t.Fatal("the first callback never exchanged the code")
		}
		second := fedBrowse(t, toCallback.String()) // while the first is at the provider
		close(release)
		pages := []fedPage{<-first, second}
		d.setHold(nil)

		if n := exchanges.Load(); n != 1 {
			t.Errorf("the code was redeemed %d times, want once", n)
		}
		statuses := []int{pages[0].status, pages[1].status}
		if !slices.Contains(statuses, http.StatusFound) || !slices.Contains(statuses, http.StatusConflict) {
			t.Errorf("callback pages %v, want one redirect (302) and one \"already used\" (409)", statuses)
		}

		// The consequence: the connection must survive its first refresh.
		if err := fw.complete(t, s.uri, asUserID("alice")); err != nil {
			t.Fatalf("complete: %v", err)
		}
		fw.token(t, devInput(alice, withSession(s.uri)))
		k := storage.ConnectionKey{ProviderID: providerID, Workload: workloadW1, User: "id:alice"}
		if _, err := fw.s.Server.Store().UpdateConnection(ctx(t), k, func(c storage.Connection) (storage.Connection, error) {
			c.ExpiresAt = time.Now().Add(-time.Second)
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}
		out, err := fw.data.GetResourceOauth2Token(ctx(t), devInput(alice))
		if err != nil || out.AccessToken == nil {
			conn, _ := fw.s.Server.Store().GetConnection(ctx(t), k)
			t.Errorf("first refresh after the double callback: error %v, new session %v, connection %s — the provider revoked the refresh token when the code was replayed",
				err, out != nil && out.AuthorizationUrl != nil, conn.Status)
		}
	})
}

// browseAsync is browse for another goroutine: it reports failures as a
// page with status 0.
func fedBrowseAsync(rawURL string) fedPage {
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(rawURL)
	if err != nil {
		return fedPage{body: err.Error()}
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return fedPage{status: res.StatusCode, header: res.Header, body: string(body)}
}
