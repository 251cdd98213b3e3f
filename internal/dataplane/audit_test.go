package dataplane_test

// The audit trail of issue 3: every data-plane call and control-plane
// change leaves a record with the expected fields and never a secret;
// ListAuditRecords filters; VerifyAuditLog detects a record edited or
// deleted directly in the database.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
	"github.com/behalf-dev/behalf/internal/wat"
)

func TestAuditTrail(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		var logs logBuffer
		clock := testclock.Running()
		w := newWorld(t, b, worldOptions{log: logs.debugLogger(), now: clock.Now, w1Policy: map[string]any{
			"allowedInboundAuthorizers":  []string{dexAuthorizer},
			"allowedCredentialProviders": grants(apiKeyProvider, m2mProvider+"=profile"),
		}})
		s, p1, rt1 := w.s, w.runtime, w.rt
		const apiKey2, apiKey2Value = "api-key-2", "sk-live-behalf-TEST-second-key-fedcba9876543210"
		createAPIKeyProvider(t, s, apiKey2, apiKey2Value)
		createWorkload(t, s, workloadW2, map[string]any{"allowedCredentialProviders": grants(apiKey2)})
		p2 := createPrincipal(t, s, workloadW2)
		rt2 := p2.data(s)

		// Every record so far is before mid, every later one a second after.
		mid := clock.Advance(time.Second)
		clock.Advance(time.Second)

		// The data-plane calls, each with the record it must leave.
		var secrets []string // everything that must never appear in the audit output
		secrets = append(secrets, apiKeyValue, apiKey2Value, m2mClientSecret, userClientSecret, p1.Secret, p2.Secret)
		want := map[string]auditRecord{} // by request id
		expect := func(md middleware.Metadata, err error, r auditRecord) {
			t.Helper()
			id := requestIDOf(md, err)
			if id == "" {
				t.Fatalf("%s: no request id (%v)", r.Operation, err)
			}
			r.RequestID = id
			if r.Outcome == "" {
				r.Outcome = "success"
			}
			want[id] = r
		}
		cx := ctx(t)
		jwtUser := wat.UserFromJWT(w.dex.Issuer, dextest.PasswordSubject)
		idToken := w.dex.PasswordLogin(t, userClientID, userClientSecret).IDToken
		secrets = append(secrets, idToken, idToken[strings.LastIndex(idToken, ".")+1:])

		jwtOut, err := rt1.GetWorkloadAccessTokenForJWT(cx, &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
			WorkloadName: aws.String(workloadW1), UserToken: aws.String(idToken)})
		if err != nil {
			t.Fatal(err)
		}
		expect(jwtOut.ResultMetadata, nil, auditRecord{Principal: p1.ID, Operation: "GetWorkloadAccessTokenForJWT", Workload: workloadW1, User: jwtUser})

		forged := idToken[:strings.LastIndex(idToken, ".")+1] + "c2lnbmF0dXJl"
		_, err = rt1.GetWorkloadAccessTokenForJWT(cx, &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
			WorkloadName: aws.String(workloadW1), UserToken: aws.String(forged)})
		expect(middleware.Metadata{}, err, auditRecord{Principal: p1.ID, Operation: "GetWorkloadAccessTokenForJWT", Workload: workloadW1,
			Outcome: "failure", ErrorType: "UnauthorizedException"})

		userOut, err := rt1.GetWorkloadAccessTokenForUserId(cx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
			WorkloadName: aws.String(workloadW1), UserId: aws.String("alice")})
		if err != nil {
			t.Fatal(err)
		}
		expect(userOut.ResultMetadata, nil, auditRecord{Principal: p1.ID, Operation: "GetWorkloadAccessTokenForUserId", Workload: workloadW1, User: "id:alice"})
		alice := aws.ToString(userOut.WorkloadAccessToken)
		secrets = append(secrets, alice, aws.ToString(jwtOut.WorkloadAccessToken))

		keyOut, err := getAPIKey(cx, rt1, alice, apiKeyProvider)
		if err != nil {
			t.Fatal(err)
		}
		expect(keyOut.ResultMetadata, nil, auditRecord{Principal: p1.ID, Operation: "GetResourceApiKey", Workload: workloadW1, User: "id:alice", Provider: apiKeyProvider})

		_, err = getAPIKey(cx, rt1, alice, apiKey2)
		expect(middleware.Metadata{}, err, auditRecord{Principal: p1.ID, Operation: "GetResourceApiKey", Workload: workloadW1, User: "id:alice", Provider: apiKey2,
			Outcome: "failure", ErrorType: "AccessDeniedException"})

		m2mOut, err := getM2M(cx, rt1, alice, m2mProvider, "profile")
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, aws.ToString(m2mOut.AccessToken))
		expect(m2mOut.ResultMetadata, nil, auditRecord{Principal: p1.ID, Operation: "GetResourceOauth2Token", Workload: workloadW1, User: "id:alice",
			Provider: m2mProvider, Scopes: []string{"profile"}, Flow: "M2M"})

		_, err = getM2M(cx, rt1, alice, m2mProvider, "email")
		expect(middleware.Metadata{}, err, auditRecord{Principal: p1.ID, Operation: "GetResourceOauth2Token", Workload: workloadW1, User: "id:alice",
			Provider: m2mProvider, Scopes: []string{"email"}, Flow: "M2M", Outcome: "failure", ErrorType: "AccessDeniedException"})

		tampered := alice[:len(alice)-10] + "AAAAAAAAAA"
		_, err = getM2M(cx, rt1, tampered, m2mProvider, "profile")
		expect(middleware.Metadata{}, err, auditRecord{Principal: p1.ID, Operation: "GetResourceOauth2Token",
			Provider: m2mProvider, Scopes: []string{"profile"}, Flow: "M2M", Outcome: "failure", ErrorType: "UnauthorizedException"})

		_, err = rt2.GetWorkloadAccessToken(cx, &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String(workloadW1)})
		expect(middleware.Metadata{}, err, auditRecord{Principal: p2.ID, Operation: "GetWorkloadAccessToken", Workload: workloadW1,
			Outcome: "failure", ErrorType: "AccessDeniedException"})

		bobOut, err := rt2.GetWorkloadAccessTokenForUserId(cx, &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
			WorkloadName: aws.String(workloadW2), UserId: aws.String("bob")})
		if err != nil {
			t.Fatal(err)
		}
		expect(bobOut.ResultMetadata, nil, auditRecord{Principal: p2.ID, Operation: "GetWorkloadAccessTokenForUserId", Workload: workloadW2, User: "id:bob"})
		secrets = append(secrets, aws.ToString(bobOut.WorkloadAccessToken))
		key2Out, err := getAPIKey(cx, rt2, aws.ToString(bobOut.WorkloadAccessToken), apiKey2)
		if err != nil {
			t.Fatal(err)
		}
		expect(key2Out.ResultMetadata, nil, auditRecord{Principal: p2.ID, Operation: "GetResourceApiKey", Workload: workloadW2, User: "id:bob", Provider: apiKey2})

		// A control-plane change after the calls.
		const newSecret = "rotated-secret-TEST-0011223344556677"
		secrets = append(secrets, newSecret)
		upOut, err := s.Control().UpdateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
			Name: aws.String(m2mProvider), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: dexProviderConfig(w.dex, newSecret),
		})
		if err != nil {
			t.Fatal(err)
		}
		expect(upOut.ResultMetadata, nil, auditRecord{Principal: behalftest.AdminKeyID, Operation: "UpdateOauth2CredentialProvider", Provider: m2mProvider})

		all, bodies := listAudit(t, s, nil)

		t.Run("every call has its record", func(t *testing.T) {
			byID := map[string]auditRecord{}
			for _, r := range all {
				if _, dup := byID[r.RequestID]; dup {
					t.Errorf("two records for request %s", r.RequestID)
				}
				byID[r.RequestID] = r
			}
			for id, wr := range want {
				got, ok := byID[id]
				if !ok {
					t.Errorf("no record of %s (request %s)", wr.Operation, id)
					continue
				}
				if diff := cmp.Diff(wr, got, ignoreChainFields); diff != "" {
					t.Errorf("%s (request %s) (-want +got):\n%s", wr.Operation, id, diff)
				}
				if got.Time < float64(mid.Unix()) || got.Time > float64(clock.Now().Unix()+1) {
					t.Errorf("%s: time %v", wr.Operation, got.Time)
				}
			}
		})

		t.Run("control-plane changes", func(t *testing.T) {
			admin := behalftest.AdminKeyID
			for _, wr := range []auditRecord{
				{Principal: admin, Operation: "CreateWorkloadIdentity", Workload: workloadW1},
				{Principal: admin, Operation: "CreateWorkloadIdentity", Workload: workloadW2},
				{Principal: admin, Operation: "CreateApiKeyCredentialProvider", Provider: apiKeyProvider},
				{Principal: admin, Operation: "CreateApiKeyCredentialProvider", Provider: apiKey2},
				{Principal: admin, Operation: "CreateOauth2CredentialProvider", Provider: m2mProvider},
				{Principal: admin, Operation: "CreatePrincipal", Resource: "principal/" + p1.ID},
				{Principal: admin, Operation: "CreatePrincipal", Resource: "principal/" + p2.ID},
			} {
				wr.Outcome = "success"
				i := slices.IndexFunc(all, func(r auditRecord) bool {
					r.Seq, r.Time, r.Hash, r.RequestID = 0, 0, "", ""
					return cmp.Equal(wr, r)
				})
				if i < 0 {
					t.Errorf("no record %+v", wr)
				} else if all[i].Time >= float64(mid.UnixMilli())/1000 {
					t.Errorf("%s recorded after the setup ended", wr.Operation)
				}
			}
		})

		t.Run("no secret", func(t *testing.T) {
			for _, body := range bodies {
				for _, secret := range secrets {
					if secret != "" && strings.Contains(string(body), secret) {
						t.Errorf("the audit list contains a secret (%.12s…)", secret)
					}
				}
			}
			// Nor does the server's log, at debug level.
			log := logs.String()
			if !strings.Contains(log, "GetResourceOauth2Token") {
				t.Fatalf("the log did not capture the calls: %.200s", log)
			}
			for _, secret := range secrets {
				if strings.Contains(log, secret) {
					t.Errorf("the server log contains a secret (%.12s…)", secret)
				}
			}
		})

		t.Run("filters", func(t *testing.T) {
			midSec := float64(mid.UnixMicro()) / 1e6
			for _, tc := range []struct {
				name   string
				filter map[string]any
				match  func(auditRecord) bool
				min    int
			}{
				{"workload", map[string]any{"workload": workloadW1}, func(r auditRecord) bool { return r.Workload == workloadW1 }, 8},
				{"user", map[string]any{"user": "id:alice"}, func(r auditRecord) bool { return r.User == "id:alice" }, 5},
				{"JWT user", map[string]any{"user": jwtUser}, func(r auditRecord) bool { return r.User == jwtUser }, 1},
				{"provider", map[string]any{"provider": m2mProvider}, func(r auditRecord) bool { return r.Provider == m2mProvider }, 5},
				{"operation", map[string]any{"operation": "GetResourceApiKey"}, func(r auditRecord) bool { return r.Operation == "GetResourceApiKey" }, 3},
				{"since", map[string]any{"since": midSec}, func(r auditRecord) bool { return r.Time >= midSec }, len(want)},
				{"until", map[string]any{"until": midSec}, func(r auditRecord) bool { return r.Time < midSec }, 7},
				{"workload and user", map[string]any{"workload": workloadW2, "user": "id:bob"}, func(r auditRecord) bool {
					return r.Workload == workloadW2 && r.User == "id:bob"
				}, 2},
				{"provider and time", map[string]any{"provider": m2mProvider, "since": midSec}, func(r auditRecord) bool {
					return r.Provider == m2mProvider && r.Time >= midSec
				}, 4},
			} {
				got, _ := listAudit(t, s, tc.filter)
				var wantSeqs, gotSeqs []int64
				for _, r := range all {
					if tc.match(r) {
						wantSeqs = append(wantSeqs, r.Seq)
					}
				}
				for _, r := range got {
					gotSeqs = append(gotSeqs, r.Seq)
				}
				if diff := cmp.Diff(wantSeqs, gotSeqs); diff != "" || len(gotSeqs) < tc.min {
					t.Errorf("%s: seqs (-want +got):\n%s (%d records, want at least %d)", tc.name, diff, len(gotSeqs), tc.min)
				}
			}
		})

		t.Run("verify, edit, restore, delete", func(t *testing.T) {
			rep := verifyAudit(t, s)
			last := all[len(all)-1]
			if !rep.OK || len(rep.Problems) != 0 || rep.Records != int64(len(all)) || rep.HeadSeq != last.Seq || rep.HeadHash != last.Hash {
				t.Fatalf("intact log: %+v (%d records, last %d %s)", rep, len(all), last.Seq, last.Hash)
			}

			db, ph := rawDB(t, s)
			seqOf := func(op string, pred func(auditRecord) bool) int64 {
				for id, r := range want {
					if r.Operation == op && pred(r) {
						for _, a := range all {
							if a.RequestID == id {
								return a.Seq
							}
						}
					}
				}
				t.Fatalf("no %s record", op)
				return 0
			}
			exec := func(q string, args ...any) { t.Helper(); execOne(t, db, q, args...) }
			problems := func() []string {
				rep := verifyAudit(t, s)
				var out []string
				for _, p := range rep.Problems {
					out = append(out, fmt.Sprintf("%d: %s", p.Seq, p.Reason))
				}
				if rep.OK != (len(out) == 0) {
					t.Errorf("ok = %v with problems %v", rep.OK, out)
				}
				return out
			}

			// Edit the M2M success: blame mallory instead of alice.
			edited := seqOf("GetResourceOauth2Token", func(r auditRecord) bool { return r.Outcome == "success" })
			exec(fmt.Sprintf(`UPDATE audit_records SET user_key = %s WHERE seq = %d`, ph(1), edited), "id:mallory")
			if got, _ := listAudit(t, s, map[string]any{"user": "id:mallory"}); len(got) != 1 || got[0].Seq != edited {
				t.Fatalf("the edit did not take: %+v", got)
			}
			got := problems()
			if len(got) != 1 || !strings.HasPrefix(got[0], fmt.Sprintf("%d: ", edited)) || !strings.Contains(got[0], "hash does not match") {
				t.Errorf("after editing seq %d: problems %v", edited, got)
			}

			// Put it back: the chain verifies again.
			exec(fmt.Sprintf(`UPDATE audit_records SET user_key = %s WHERE seq = %d`, ph(1), edited), "id:alice")
			if got := problems(); len(got) != 0 {
				t.Errorf("after restoring seq %d: problems %v", edited, got)
			}

			// Delete the API key success in the middle of the log.
			deleted := seqOf("GetResourceApiKey", func(r auditRecord) bool { return r.Outcome == "success" && r.User == "id:alice" })
			exec(fmt.Sprintf(`DELETE FROM audit_records WHERE seq = %d`, deleted))
			got = problems()
			if want := []string{fmt.Sprintf("%d: record %d is missing", deleted+1, deleted)}; !slices.Equal(got, want) {
				t.Errorf("after deleting seq %d: problems %v, want %v", deleted, got, want)
			}

			// And the newest record: the head names a record that is gone.
			exec(fmt.Sprintf(`DELETE FROM audit_records WHERE seq = %d`, last.Seq))
			got = problems()
			if len(got) != 2 || !strings.HasPrefix(got[1], fmt.Sprintf("%d: ", last.Seq)) || !strings.Contains(got[1], "deleted from the end") {
				t.Errorf("after deleting the newest seq %d: problems %v", last.Seq, got)
			}
		})
	})
}

// TestNoCredentialWithoutAuditRecord: when the audit record cannot be
// written, the call fails and its credential is withheld. A trigger in the
// database refuses audit inserts (as a full disk or a broken replica
// would); the chain is left intact, and once the trigger is gone the same
// calls succeed.
func TestNoCredentialWithoutAuditRecord(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		token := mintPlain(t, w.rt, workloadW1)
		db, _ := rawDB(t, w.s)
		block, unblock := []string{
			`CREATE TRIGGER block_audit BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'audit blocked by the test'); END`,
		}, []string{`DROP TRIGGER block_audit`}
		if b.Name == "postgres" {
			block = []string{
				`CREATE FUNCTION block_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit blocked by the test'; END $$`,
				`CREATE TRIGGER block_audit BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION block_audit()`,
			}
			unblock = []string{`DROP TRIGGER block_audit ON audit_records`, `DROP FUNCTION block_audit()`}
		}
		run := func(stmts []string) {
			for _, q := range stmts {
				if _, err := db.ExecContext(ctx(t), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
		before := verifyAudit(t, w.s)

		calls := map[string]func() (string, error){
			"GetWorkloadAccessToken": func() (string, error) {
				out, err := w.rt.GetWorkloadAccessToken(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String(workloadW1)})
				if out != nil {
					return aws.ToString(out.WorkloadAccessToken), err
				}
				return "", err
			},
			"GetResourceApiKey": func() (string, error) {
				out, err := getAPIKey(ctx(t), w.rt, token, apiKeyProvider)
				if out != nil {
					return aws.ToString(out.ApiKey), err
				}
				return "", err
			},
			"GetResourceOauth2Token": func() (string, error) {
				out, err := getM2M(ctx(t), w.rt, token, m2mProvider, "profile")
				if out != nil {
					return aws.ToString(out.AccessToken), err
				}
				return "", err
			},
		}
		run(block)
		for name, call := range calls {
			cred, err := call()
			wantAPIError[*types.InternalServerException](t, err)
			if cred != "" {
				t.Errorf("%s returned a credential without its audit record", name)
			}
		}
		run(unblock)
		for name, call := range calls {
			if cred, err := call(); err != nil || cred == "" {
				t.Errorf("%s after the audit log recovered: %v", name, err)
			}
		}
		after := verifyAudit(t, w.s)
		if !after.OK || after.Records != before.Records+int64(len(calls)) {
			t.Errorf("chain after the failed appends: %+v (before: %d records)", after, before.Records)
		}
	})
}
