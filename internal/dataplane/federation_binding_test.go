package dataplane_test

// Session binding (issue 4, item 3; docs/user-federation.md):
// CompleteResourceTokenAuth binds a session's tokens only to the user the
// session was started for, once, before it expires — so that a session URI
// that reaches someone else binds nothing.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/inbound/inboundtest"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// wantDenied asserts an AccessDeniedException whose message says want.
func wantAccessDenied(t *testing.T, err error, want string) {
	t.Helper()
	ade := wantAPIError[*types.AccessDeniedException](t, err)
	if msg := aws.ToString(ade.Message); !strings.Contains(msg, want) {
		t.Errorf("message %q does not say %q", msg, want)
	}
}

// TestFederationBindingWrongUser: a session refuses every other user, by
// user id or by user token, and a completion naming another user ends it
// (issue 8, item 7): it is FAILED, holds no tokens, and its own user can
// no longer complete it either.
func TestFederationBindingWrongUser(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		otherJWT := fw.callbackSubjectJWT(t) // the same person at Dex, another behalf user
		for _, tc := range []struct {
			name   string
			token  string
			right  types.UserIdentifier
			others map[string]types.UserIdentifier
		}{
			{"userId session", mintForUser(t, fw.rt, workloadW1, "alice"), asUserID("alice"), map[string]types.UserIdentifier{
				"another userId":         asUserID("mallory"),
				"a userId in other case": asUserID("Alice"),
				"a user token":           asUserToken(fw.aliceJWT),
				"the user key as userId": asUserID("id:alice"),
			}},
			{"JWT session", mintForJWT(t, fw.rt, fw.aliceJWT), asUserToken(fw.aliceJWT), map[string]types.UserIdentifier{
				"another user's token":       asUserToken(otherJWT),
				"the JWT's sub as userId":    asUserID(dextest.PasswordSubject),
				"the JWT user key as userId": asUserID(fw.aliceJWTUser),
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, err := fw.s.Server.Store().ListConnections(ctx(t), storage.ConnectionFilter{})
				if err != nil {
					t.Fatal(err)
				}
				for name, who := range tc.others {
					s := fw.start(t, fedInput(tc.token, forceAuthentication))
					fw.consentOK(t, s)
					err := fw.complete(t, s.uri, who)
					if err == nil {
						t.Fatalf("%s completed the session", name)
					}
					wantAccessDenied(t, err, "different user")
					if out := fw.poll(t, tc.token, s.uri); out.AccessToken != nil || out.SessionStatus != types.SessionStatusFailed {
						t.Fatalf("after %s: token %v, status %q", name, out.AccessToken != nil, out.SessionStatus)
					}
					if sess := fw.storedSession(t, s.uri); !sess.Secrets.IsZero() {
						t.Errorf("after %s: the session still holds its tokens", name)
					}
					wantAccessDenied(t, fw.complete(t, s.uri, tc.right), "failed")
				}
				if conns, err := fw.s.Server.Store().ListConnections(ctx(t), storage.ConnectionFilter{}); err != nil || len(conns) != len(before) {
					t.Fatalf("connections after wrong-user completions: %d %v", len(conns), err)
				}
				fw.connect(t, tc.token, tc.right) // a new session works
			})
		}
	})
}

// TestFederationStolenSessionURI is the "done when": Alice's
// authorization URL reaches Mallory, who consents and whose application
// completes the session as Mallory. Nothing is bound — not to Alice, not
// to Mallory — the attempt is audited, and the session ends: Mallory's
// tokens must not be bound to Alice either (issue 8, item 7). Alice
// starts again.
func TestFederationStolenSessionURI(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice, mallory := mintForUser(t, fw.rt, workloadW1, "alice"), mintForUser(t, fw.rt, workloadW1, "mallory")

		s := fw.start(t, fedInput(alice))
		// Mallory opens the URL, consents, and lands on the return URL with
		// the session id, where her application completes it as her.
		loc := fw.consentOK(t, s)
		stolen := loc.Query().Get("session_id")
		if stolen != s.uri {
			t.Fatalf("session_id %q", stolen)
		}
		_, err := fw.data.CompleteResourceTokenAuth(ctx(t), &bedrockagentcore.CompleteResourceTokenAuthInput{
			SessionUri: aws.String(stolen), UserIdentifier: asUserID("mallory")})
		wantAccessDenied(t, err, "different user")
		rec := auditByRequest(t, fw.s, requestIDOf(middleware.Metadata{}, err))
		want := auditRecord{RequestID: rec.RequestID, Principal: fw.runtime.ID, Operation: "CompleteResourceTokenAuth",
			Workload: workloadW1, User: "id:mallory", Provider: fedProvider, Outcome: "failure", ErrorType: "AccessDeniedException"}
		if diff := cmp.Diff(want, rec, ignoreChainFields); diff != "" {
			t.Errorf("audit record of the attempt (-want +got):\n%s", diff)
		}

		// Nothing was bound, and the session is over.
		conns, err := fw.s.Server.Store().ListConnections(ctx(t), storage.ConnectionFilter{})
		if err != nil || len(conns) != 0 {
			t.Fatalf("connections after the stolen completion: %d %v", len(conns), err)
		}
		if out := fw.poll(t, alice, s.uri); out.AccessToken != nil || out.SessionStatus != types.SessionStatusFailed {
			t.Fatalf("Alice's poll: token %v, status %q", out.AccessToken != nil, out.SessionStatus)
		}
		// Mallory's agent cannot poll Alice's session, and gets nothing of
		// her own either: only a session of her own.
		_, err = fw.data.GetResourceOauth2Token(ctx(t), fedInput(mallory, withSession(s.uri)))
		wantAccessDenied(t, err, "belongs to another user")
		if own := fw.start(t, fedInput(mallory)); own.uri == s.uri {
			t.Fatal("Mallory was given Alice's session")
		}

		// Alice cannot bind what Mallory consented to; she starts again.
		wantAccessDenied(t, fw.complete(t, s.uri, asUserID("alice")), "failed")
		fw.connect(t, alice, asUserID("alice"))
		fw.start(t, fedInput(mallory)) // still nothing for Mallory
	})
}

// TestFederationSessionSingleUse: a session binds once; a second
// completion, by anyone, is "already used", and the session cannot be
// re-entered through the callback either.
func TestFederationSessionSingleUse(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		s := fw.start(t, fedInput(alice))
		toCallback := fw.dex.Authorize(t, s.authURL)
		if p := fedBrowse(t, toCallback.String()); p.status != http.StatusFound {
			t.Fatalf("callback: %d %s", p.status, p.body)
		}
		if err := fw.complete(t, s.uri, asUserID("alice")); err != nil {
			t.Fatal(err)
		}
		first := fw.token(t, fedInput(alice))
		conn, _ := fw.connection(t, "id:alice")
		for _, who := range []types.UserIdentifier{asUserID("alice"), asUserID("mallory")} {
			wantAccessDenied(t, fw.complete(t, s.uri, who), "already used")
		}
		wantHTMLPage(t, fedBrowse(t, toCallback.String()), http.StatusConflict, "already used")
		if again, _ := fw.connection(t, "id:alice"); again.Version != conn.Version {
			t.Error("a second completion changed the connection")
		}
		if fw.token(t, fedInput(alice, withSession(s.uri))) != first {
			t.Error("polling the used session changed the token")
		}
	})
}

// TestFederationSessionExpiry: with userFederation.sessionTtl 5m, a
// session not bound in time is "expired" for completion, FAILED for
// polling, and its callback shows an expired page. The default TTL is 10
// minutes. The server's clock is advanced past the expiry.
func TestFederationSessionExpiry(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		fw := newFedWorld(t, b, fedOptions{now: clock.Now, edit: func(f *config.File) { f.UserFederation.SessionTTL = 5 * time.Minute }})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")

		authorized := fw.start(t, fedInput(alice)) // consented in time, never bound
		fw.consentOK(t, authorized)
		pending := fw.start(t, fedInput(alice)) // the user is too slow at the provider
		toCallback := fw.dex.Authorize(t, pending.authURL)
		sess := fw.storedSession(t, authorized.uri)
		if ttl := sess.ExpiresAt.Sub(sess.CreatedAt); ttl != 5*time.Minute {
			t.Errorf("session lifetime %v, want the configured 5m", ttl)
		}

		clock.AdvanceTo(sess.ExpiresAt.Add(time.Second))
		wantAccessDenied(t, fw.complete(t, authorized.uri, asUserID("alice")), "expired")
		for _, s := range []fedSession{authorized, pending} {
			if out := fw.poll(t, alice, s.uri); out.SessionStatus != types.SessionStatusFailed || out.AccessToken != nil || out.AuthorizationUrl != nil {
				t.Errorf("poll of an expired session: status %q, token %v, URL %v", out.SessionStatus, out.AccessToken != nil, out.AuthorizationUrl != nil)
			}
		}
		exchanges := len(fw.tokens.grant("authorization_code"))
		wantHTMLPage(t, fedBrowse(t, toCallback.String()), http.StatusGone, "expired")
		if len(fw.tokens.grant("authorization_code")) != exchanges {
			t.Error("the callback of an expired session exchanged its code")
		}
		if _, err := fw.connection(t, "id:alice"); err == nil {
			t.Error("an expired session left a connection")
		}
		// A new session works.
		fw.connect(t, alice, asUserID("alice"))

		// The default.
		fw2 := newFedWorld(t, b, fedOptions{})
		s := fw2.start(t, fedInput(mintForUser(t, fw2.rt, workloadW1, "alice")))
		sess = fw2.storedSession(t, s.uri)
		if ttl := sess.ExpiresAt.Sub(sess.CreatedAt); ttl != 10*time.Minute {
			t.Errorf("default session lifetime %v, want 10m", ttl)
		}
	})
}

// TestFederationCompletionRefused: the other ways CompleteResourceTokenAuth
// says no, each with its own error.
func TestFederationCompletionRefused(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		partner := inboundtest.NewIDP(t)
		fw := newFedWorld(t, b, fedOptions{edit: func(f *config.File) {
			f.InboundAuthorizers = append(f.InboundAuthorizers, authorizerFile(partner.Config("partner")))
		}})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")

		t.Run("before the callback", func(t *testing.T) {
			s := fw.start(t, fedInput(alice))
			err := fw.complete(t, s.uri, asUserID("alice"))
			ve := wantAPIError[*types.ValidationException](t, err)
			if msg := aws.ToString(ve.Message); !strings.Contains(msg, "IN_PROGRESS") {
				t.Errorf("message %q does not say the session is in progress", msg)
			}
			fw.consentOK(t, s) // and it is still usable
			if err := fw.complete(t, s.uri, asUserID("alice")); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("unknown session", func(t *testing.T) {
			unknown := "urn:ietf:params:oauth:request_uri:no-such-session"
			wantAPIError[*types.ResourceNotFoundException](t, fw.complete(t, unknown, asUserID("alice")))
			_, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(alice, withSession(unknown)))
			wantAPIError[*types.ResourceNotFoundException](t, err)
			// Not a request_uri at all.
			wantAPIError[*types.ValidationException](t, fw.complete(t, "https://example.com/session", asUserID("alice")))
		})

		t.Run("principal not granted the workload", func(t *testing.T) {
			s := fw.start(t, fedInput(mintForUser(t, fw.rt, workloadW1, "bob")))
			fw.consentOK(t, s)
			other := createPrincipal(t, fw.s, workloadW2)
			_, err := other.data(fw.s).CompleteResourceTokenAuth(ctx(t), &bedrockagentcore.CompleteResourceTokenAuthInput{
				SessionUri: aws.String(s.uri), UserIdentifier: asUserID("bob")})
			wantAccessDenied(t, err, "not granted workload identity "+workloadW1)
			if err := fw.complete(t, s.uri, asUserID("bob")); err != nil {
				t.Fatalf("the granted principal, afterwards: %v", err)
			}
		})

		t.Run("user token of an authorizer the workload does not allow", func(t *testing.T) {
			jwtWAT := mintForJWT(t, fw.rt, fw.aliceJWT)
			s := fw.start(t, fedInput(jwtWAT))
			fw.consentOK(t, s)
			// A token of the partner authorizer, which W1 does not allow.
			partnerJWT := partner.Sign(partner.ValidClaims(time.Now()))
			if err := fw.complete(t, s.uri, asUserToken(partnerJWT)); err == nil {
				t.Fatal("a token of an authorizer W1 does not allow completed the session")
			} else {
				wantAPIError[*types.UnauthorizedException](t, err)
			}
			// W1 now allows only the partner: Alice's own Dex token is no
			// longer accepted for it.
			updateWorkloadPolicy(t, fw.s, workloadW1, map[string]any{"allowedInboundAuthorizers": []string{"partner"}})
			if err := fw.complete(t, s.uri, asUserToken(fw.aliceJWT)); err == nil {
				t.Fatal("a token of an authorizer W1 no longer allows completed the session")
			} else {
				wantAPIError[*types.UnauthorizedException](t, err)
			}
			// A forged token that claims Alice's issuer and subject.
			forged := partner.ValidClaims(time.Now())
			forged["iss"], forged["sub"] = fw.dex.Issuer, dextest.PasswordSubject
			if err := fw.complete(t, s.uri, asUserToken(partner.Sign(forged))); err == nil {
				t.Fatal("a token signed by another issuer's key completed the session")
			}
			updateWorkloadPolicy(t, fw.s, workloadW1, map[string]any{"allowedInboundAuthorizers": []string{dexAuthorizer}})
			if err := fw.complete(t, s.uri, asUserToken(fw.aliceJWT)); err != nil {
				t.Fatalf("allowed again: %v", err)
			}
			fw.token(t, fedInput(jwtWAT, withSession(s.uri)))
		})
	})
}

// updateWorkload changes W's behalf extension members.
func updateWorkloadPolicy(t *testing.T, s *behalftest.Server, name string, policy map[string]any) {
	t.Helper()
	body := map[string]any{"name": name}
	for k, v := range policy {
		body[k] = v
	}
	do(t, s, "/identities/UpdateWorkloadIdentity", body, http.StatusOK)
}

// TestFederationTamperedSessionRow: storage is untrusted (STYLE.md §7;
// rawDB plays an attacker with write access to the database, as in the
// audit suite). A session's sealed tokens must stay bound to the user,
// workload and provider the session was started for, as a connection's
// are: re-pointing the row at Mallory must not hand her Alice's consent.
// And a session whose secrets do not decrypt ends in a page that shows no
// internals.
func TestFederationTamperedSessionRow(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		db, ph := rawDB(t, fw.s)
		exec := func(q string, args ...any) { t.Helper(); execOne(t, db, q, args...) }
		idOf := func(s fedSession) string { return strings.TrimPrefix(s.uri, "urn:ietf:params:oauth:request_uri:") }

		t.Run("user changed in the database", func(t *testing.T) {
			alice, mallory := mintForUser(t, fw.rt, workloadW1, "alice"), mintForUser(t, fw.rt, workloadW1, "mallory")
			s := fw.start(t, fedInput(alice))
			fw.consentOK(t, s) // Alice's tokens are in the session now
			exec("UPDATE oauth_sessions SET user_key = "+ph(1)+" WHERE id = "+ph(2), "id:mallory", idOf(s))

			err := fw.complete(t, s.uri, asUserID("mallory"))
			out, gerr := fw.data.GetResourceOauth2Token(ctx(t), fedInput(mallory, withSession(s.uri)))
			if err == nil && gerr == nil && out.AccessToken != nil {
				t.Error("after the session row was re-pointed at Mallory, Mallory completed it and got Alice's token: " +
					"a session's sealed tokens are bound to the session id only, not to its user, workload and provider")
			}
			if conn, err := fw.connection(t, "id:mallory"); err == nil {
				t.Errorf("a connection for Mallory exists (%s)", conn.Status)
			}
		})

		t.Run("secrets that do not decrypt", func(t *testing.T) {
			bob := mintForUser(t, fw.rt, workloadW1, "bob")
			s := fw.start(t, fedInput(bob))
			var blob []byte
			if err := db.QueryRowContext(ctx(t), "SELECT secrets FROM oauth_sessions WHERE id = "+ph(1), idOf(s)).Scan(&blob); err != nil {
				t.Fatal(err)
			}
			blob[len(blob)-1] ^= 0x01
			exec("UPDATE oauth_sessions SET secrets = "+ph(1)+" WHERE id = "+ph(2), blob, idOf(s))
			n := len(fw.tokens.grant("authorization_code"))
			p := fw.consent(t, s)
			if p.status == http.StatusFound || len(fw.tokens.grant("authorization_code")) != n {
				t.Fatalf("a session that does not decrypt went on: %d", p.status)
			}
			for _, internal := range []string{"InternalServerException", "vault", "decrypt", "open session"} {
				if strings.Contains(p.body, internal) {
					t.Errorf("the page shows internals (%q):\n%s", internal, p.body)
				}
			}
			err := fw.complete(t, s.uri, asUserID("bob"))
			if err == nil {
				t.Fatal("the session completed")
			}
			for _, internal := range []string{"vault", "decrypt", "open session"} {
				if strings.Contains(err.Error(), internal) {
					t.Errorf("CompleteResourceTokenAuth shows internals (%q): %v", internal, err)
				}
			}
		})
	})
}
