package dataplane_test

// The development completion page (issue 4, item 7): with development:
// true, a return URL of <server>/dev/complete lets a newcomer run the
// whole flow without an application — for user-id sessions only.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

func TestFederationDevelopmentPage(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{edit: func(f *config.File) { f.Development = true }})
		devURL := fw.s.URL + "/dev/complete"
		setReturnURLs(t, fw.s, workloadW1, devURL)
		toDev := func(in *oauth2Input) { in.ResourceOauth2ReturnUrl = aws.String(devURL) }

		t.Run("user id session", func(t *testing.T) {
			alice := mintForUser(t, fw.rt, workloadW1, "alice")
			s := fw.start(t, fedInput(alice, toDev))
			loc := fw.consentOK(t, s)
			if base := loc.Scheme + "://" + loc.Host + loc.Path; base != devURL {
				t.Fatalf("the callback sent the browser to %s", loc)
			}
			p := fedBrowse(t, loc.String()) // the browser follows the redirect
			wantHTMLPage(t, p, http.StatusOK, "Connected", fedProvider, "alice", workloadW1)
			if strings.Contains(p.body, strings.TrimPrefix(s.uri, "urn:ietf:params:oauth:request_uri:")) {
				t.Error("the page shows the session id")
			}
			tok := fw.token(t, fedInput(alice, toDev, withSession(s.uri)))
			verifyAccessToken(t, fw.dex, fedClientID, tok)

			recs, _ := listAudit(t, fw.s, map[string]any{"operation": "CompleteResourceTokenAuth"})
			if len(recs) != 1 {
				t.Fatalf("%d completion records", len(recs))
			}
			want := auditRecord{RequestID: recs[0].RequestID, Principal: "development-page", Operation: "CompleteResourceTokenAuth",
				Workload: workloadW1, User: "id:alice", Provider: fedProvider, Outcome: "success"}
			if diff := cmp.Diff(want, recs[0], ignoreChainFields); diff != "" {
				t.Errorf("audit record (-want +got):\n%s", diff)
			}

			// The page is single-use like the API.
			p = fedBrowse(t, loc.String())
			wantHTMLPage(t, p, http.StatusConflict, "already used")
		})

		t.Run("JWT user session", func(t *testing.T) {
			token := mintForJWT(t, fw.rt, fw.aliceJWT)
			s := fw.start(t, fedInput(token, toDev))
			p := fedBrowse(t, fw.consentOK(t, s).String())
			wantHTMLPage(t, p, http.StatusForbidden, "GetWorkloadAccessTokenForUserId")
			if st := fw.storedSession(t, s.uri).Status; st != storage.SessionAuthorized {
				t.Errorf("session %s after the page refused it", st)
			}
			if err := fw.complete(t, s.uri, asUserToken(fw.aliceJWT)); err != nil {
				t.Fatalf("the application completes it: %v", err)
			}
		})

		t.Run("unknown session", func(t *testing.T) {
			for _, id := range []string{"", "urn:ietf:params:oauth:request_uri:nope", strings.Repeat("x", 300)} {
				wantHTMLPage(t, fedBrowse(t, devURL+"?session_id="+url.QueryEscape(id)), http.StatusNotFound, "Unknown session")
			}
		})

		t.Run("before the callback", func(t *testing.T) {
			bob := mintForUser(t, fw.rt, workloadW1, "bob")
			s := fw.start(t, fedInput(bob, toDev))
			p := fedBrowse(t, devURL+"?session_id="+url.QueryEscape(s.uri))
			if p.status == http.StatusOK || strings.Contains(p.body, "Connected") {
				t.Errorf("a session not yet consented was completed: %d %s", p.status, p.body)
			}
		})

		t.Run("development off", func(t *testing.T) {
			off := newFedWorld(t, b, fedOptions{})
			s := off.start(t, fedInput(mintForUser(t, off.rt, workloadW1, "alice")))
			off.consentOK(t, s)
			if p := fedBrowse(t, off.s.URL+"/dev/complete?session_id="+url.QueryEscape(s.uri)); p.status != http.StatusNotFound {
				t.Errorf("/dev/complete without development mode: %d %s", p.status, p.body)
			}
			if st := off.storedSession(t, s.uri).Status; st != storage.SessionAuthorized {
				t.Errorf("session %s", st)
			}
		})
	})
}
