package dataplane_test

// USER_FEDERATION's changes commit with their audit records (issue 8,
// item 7; docs/audit.md, "Durability"): with the database refusing audit
// records, as a full disk would, no session is started, no connection is
// bound, no callback keeps tokens and no refresh stores new ones.

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// refuseAuditRecords makes the database refuse every new audit record; the
// returned func lifts the refusal.
func refuseAuditRecords(t *testing.T, s *behalftest.Server, b behalftest.Backend) func() {
	t.Helper()
	db, _ := rawDB(t, s)
	stmts := []string{`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'refused'); END`}
	undo := `DROP TRIGGER refuse_audit`
	if b.Name == "postgres" {
		stmts = []string{
			`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$`,
			`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION refuse_audit()`,
		}
		undo = `DROP TRIGGER refuse_audit ON audit_records`
	}
	exec := func(q string) {
		if _, err := db.ExecContext(ctx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, q := range stmts {
		exec(q)
	}
	return func() { exec(undo) }
}

func countSessions(t *testing.T, s *behalftest.Server) int {
	t.Helper()
	db, _ := rawDB(t, s)
	var n int
	if err := db.QueryRowContext(ctx(t), `SELECT COUNT(*) FROM oauth_sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFederationStartStoresNoSessionWithoutRecord: a call that would start
// a consent session fails, and stores none, when its record cannot be
// written; once records can be written it starts one, recorded once.
func TestFederationStartStoresNoSessionWithoutRecord(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		allow := refuseAuditRecords(t, fw.s, b)

		for _, in := range []*oauth2Input{fedInput(alice), fedInput(alice, forceAuthentication)} {
			_, err := fw.data.GetResourceOauth2Token(ctx(t), in)
			wantAPIError[*types.InternalServerException](t, err)
		}
		if n := countSessions(t, fw.s); n != 0 {
			t.Fatalf("%d sessions stored without their records", n)
		}

		allow()
		out, err := fw.data.GetResourceOauth2Token(ctx(t), fedInput(alice))
		if err != nil {
			t.Fatal(err)
		}
		wantSession(t, out)
		if n := countSessions(t, fw.s); n != 1 {
			t.Fatalf("%d sessions, want 1", n)
		}
		id := requestIDOf(out.ResultMetadata, nil)
		recs, _ := listAudit(t, fw.s, nil)
		if n := len(slices.DeleteFunc(recs, func(r auditRecord) bool { return r.RequestID != id })); n != 1 {
			t.Errorf("%d records of the call that started the session, want 1", n)
		}
	})
}

// TestFederationCompletionBindsNothingWithoutRecord: a completion whose
// record cannot be written binds no connection and leaves the session
// AUTHORIZED; once records can be written it binds. A completion for
// another user leaves one record, a failure, committed with the end of
// the session.
func TestFederationCompletionBindsNothingWithoutRecord(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		s := fw.start(t, fedInput(alice))
		fw.consentOK(t, s)
		allow := refuseAuditRecords(t, fw.s, b)

		wantAPIError[*types.InternalServerException](t, fw.complete(t, s.uri, asUserID("alice")))
		if _, err := fw.connection(t, "id:alice"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("connection after a completion without its record: %v, want none", err)
		}
		if st := fw.storedSession(t, s.uri).Status; st != storage.SessionAuthorized {
			t.Fatalf("session %s, want AUTHORIZED", st)
		}

		allow()
		if err := fw.complete(t, s.uri, asUserID("alice")); err != nil {
			t.Fatal(err)
		}
		if _, err := fw.connection(t, "id:alice"); err != nil {
			t.Fatalf("connection after the completion: %v", err)
		}

		bob := mintForUser(t, fw.rt, workloadW1, "bob")
		s = fw.start(t, fedInput(bob))
		fw.consentOK(t, s)
		err := fw.complete(t, s.uri, asUserID("mallory"))
		wantAccessDenied(t, err, "different user")
		id := requestIDOf(middleware.Metadata{}, err)
		recs, _ := listAudit(t, fw.s, nil)
		recs = slices.DeleteFunc(recs, func(r auditRecord) bool { return r.RequestID != id })
		if len(recs) != 1 || recs[0].Outcome != "failure" || recs[0].ErrorType != "AccessDeniedException" {
			t.Errorf("records of the wrong-user completion: %+v, want one AccessDeniedException failure", recs)
		}
		if st := fw.storedSession(t, s.uri).Status; st != storage.SessionFailed {
			t.Errorf("session %s after the wrong-user completion, want FAILED", st)
		}
	})
}

// TestFederationCallbackKeepsNoTokensWithoutRecord: a callback whose record
// cannot be written keeps no tokens in the session.
func TestFederationCallbackKeepsNoTokensWithoutRecord(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		s := fw.start(t, fedInput(alice))
		refuseAuditRecords(t, fw.s, b)

		if p := fw.consent(t, s); p.status != http.StatusInternalServerError {
			t.Fatalf("callback without its record: %d %s, want 500", p.status, p.body)
		}
		if st := fw.storedSession(t, s.uri).Status; st == storage.SessionAuthorized {
			t.Fatal("the session holds tokens whose callback left no record")
		}
		if err := fw.complete(t, s.uri, asUserID("alice")); err == nil {
			t.Fatal("a session whose callback left no record was completed")
		}
	})
}

// TestFederationRefreshStoresNothingWithoutRecord: a refresh whose record
// cannot be written stores no new token: the call fails and the
// connection keeps its old tokens.
func TestFederationRefreshStoresNothingWithoutRecord(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		alice := mintForUser(t, fw.rt, workloadW1, "alice")
		fw.connect(t, alice, asUserID("alice"))
		fw.expire(t, "id:alice")
		before, err := fw.connection(t, "id:alice")
		if err != nil {
			t.Fatal(err)
		}
		refuseAuditRecords(t, fw.s, b)

		_, err = fw.data.GetResourceOauth2Token(ctx(t), fedInput(alice))
		wantAPIError[*types.InternalServerException](t, err)
		if n := len(fw.tokens.grant("refresh_token")); n != 1 {
			t.Fatalf("%d refreshes at the provider, want 1", n)
		}
		after, err := fw.connection(t, "id:alice")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after.Tokens.Blob, before.Tokens.Blob) || !after.ExpiresAt.Equal(before.ExpiresAt) {
			t.Fatal("the refresh stored new tokens without its record")
		}
	})
}

// TestFederationRevokeDeletesNothingWithoutRecord: RevokeConnection keeps
// the connection when its record cannot be written.
func TestFederationRevokeDeletesNothingWithoutRecord(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		fw := newFedWorld(t, b, fedOptions{})
		fw.connect(t, mintForUser(t, fw.rt, workloadW1, "alice"), asUserID("alice"))
		allow := refuseAuditRecords(t, fw.s, b)

		target := map[string]any{"provider": fedProvider, "workload": workloadW1, "user": "id:alice"}
		do(t, fw.s, "/behalf/RevokeConnection", target, http.StatusInternalServerError)
		if _, err := fw.connection(t, "id:alice"); err != nil {
			t.Fatalf("connection after a revocation without its record: %v", err)
		}

		allow()
		do(t, fw.s, "/behalf/RevokeConnection", target, http.StatusOK)
		if _, err := fw.connection(t, "id:alice"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("connection after the revocation: %v", err)
		}
	})
}
