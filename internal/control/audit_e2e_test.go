package control_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// rawDB opens the server's database directly, to break it under the server.
func rawDB(t *testing.T, s *behalftest.Server, b behalftest.Backend) *sql.DB {
	t.Helper()
	driver := "sqlite"
	if b.Name == "postgres" {
		driver = "pgx"
	}
	db, err := sql.Open(driver, s.Config.Storage)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// refuseAuditRecords makes the database refuse every new audit record, as a
// full disk or a broken index would; the returned func lifts the refusal.
func refuseAuditRecords(t *testing.T, db *sql.DB, postgres bool) func() {
	t.Helper()
	stmts := []string{`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'refused'); END`}
	undo := `DROP TRIGGER refuse_audit`
	if postgres {
		stmts = []string{
			`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$`,
			`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION refuse_audit()`,
		}
		undo = `DROP TRIGGER refuse_audit ON audit_records`
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func() {
		if _, err := db.ExecContext(t.Context(), undo); err != nil {
			t.Fatalf("%s: %v", undo, err)
		}
	}
}

func auditRecords(t *testing.T, st storage.Storage) []storage.AuditRecord {
	t.Helper()
	var all []storage.AuditRecord
	for {
		f := storage.AuditFilter{Limit: 1000}
		if len(all) > 0 {
			f.AfterSeq = all[len(all)-1].Seq
		}
		page, err := st.ListAudit(ctx(t), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

// TestChangeAndRecordCommitTogether: when the audit record of a change
// cannot be written, the change is not stored either.
func TestChangeAndRecordCommitTogether(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		c, cx := s.Control(), ctx(t)
		allow := refuseAuditRecords(t, rawDB(t, s, b), b.Name == "postgres")

		_, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("unrecorded")})
		var internal *types.InternalServerException
		if !errors.As(err, &internal) {
			t.Fatalf("create with the audit log refusing records: %v, want InternalServerException", err)
		}
		_, err = c.GetWorkloadIdentity(cx, &bedrockagentcorecontrol.GetWorkloadIdentityInput{Name: aws.String("unrecorded")})
		var notFound *types.ResourceNotFoundException
		if !errors.As(err, &notFound) {
			t.Fatalf("the change whose record failed was stored: %v", err)
		}

		allow()
		if _, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("recorded")}); err != nil {
			t.Fatal(err)
		}
		var creates []storage.AuditRecord
		for _, r := range auditRecords(t, s.Server.Store()) {
			if r.Operation == "CreateWorkloadIdentity" {
				creates = append(creates, r)
			}
		}
		if len(creates) != 1 || creates[0].Workload != "recorded" || creates[0].Outcome != audit.OutcomeSuccess {
			t.Fatalf("records of CreateWorkloadIdentity: %+v, want one success for recorded", creates)
		}
	})
}

// incompressible returns n random letters.
func incompressible(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}

// TestOversizedInputPoisonsNoBatch: a request with a ~9 KB workload name,
// rightly refused, amid concurrent API-key vends and workload creations.
// Every vend succeeds, every created workload has its record, and no
// record carries the oversized name.
func TestOversizedInputPoisonsNoBatch(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		c, cx := s.Control(), ctx(t)
		if _, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("vendor")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
			Name: aws.String("openai"), ApiKey: aws.String("sk-test-0123456789abcdef"),
		}); err != nil {
			t.Fatal(err)
		}
		d := s.Data()
		wat, err := d.GetWorkloadAccessToken(cx, &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String("vendor")})
		if err != nil {
			t.Fatal(err)
		}
		huge := incompressible(9 * 1024) // a repeated letter would compress below PostgreSQL's index limit
		body := fmt.Appendf(nil, `{"name":%q}`, huge)

		const vendors, vends, creators, creates, oversized = 8, 25, 4, 10, 6
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			failures []error
			created  []string
		)
		fail := func(err error) {
			mu.Lock()
			failures = append(failures, err)
			mu.Unlock()
		}
		for range vendors {
			wg.Go(func() {
				for range vends {
					if _, err := d.GetResourceApiKey(cx, &bedrockagentcore.GetResourceApiKeyInput{
						ResourceCredentialProviderName: aws.String("openai"), WorkloadIdentityToken: wat.WorkloadAccessToken,
					}); err != nil {
						fail(fmt.Errorf("vend: %w", err))
					}
				}
			})
		}
		for i := range creators {
			wg.Go(func() {
				for j := range creates {
					name := fmt.Sprintf("created-%d-%d", i, j)
					_, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String(name)})
					if err != nil {
						fail(fmt.Errorf("create %s: %w", name, err))
						continue
					}
					mu.Lock()
					created = append(created, name)
					mu.Unlock()
				}
			})
		}
		wg.Go(func() {
			for range oversized {
				r := s.Do(t, behalftest.Raw{Path: "/identities/CreateWorkloadIdentity", Body: body})
				if r.Status != http.StatusBadRequest {
					fail(fmt.Errorf("oversized name: HTTP %d %s, want 400", r.Status, r.ErrType))
				}
			}
		})
		wg.Wait()
		for _, err := range failures {
			t.Error(err)
		}

		recorded := map[string]bool{}
		for _, r := range auditRecords(t, s.Server.Store()) {
			if r.Operation == "CreateWorkloadIdentity" && r.Outcome == audit.OutcomeSuccess {
				recorded[r.Workload] = true
			}
			for _, f := range []string{r.Workload, r.Resource, r.User, r.Provider} {
				if strings.Contains(f, huge[:1024]) {
					t.Fatalf("record %d carries the oversized input", r.Seq)
				}
			}
		}
		stored, err := s.Server.Store().ListWorkloadIdentities(cx, storage.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range stored {
			if !recorded[w.Name] {
				t.Errorf("workload %s was committed without its audit record", w.Name)
			}
		}
		if len(created) != creators*creates {
			t.Errorf("created %d workloads, want %d", len(created), creators*creates)
		}
	})
}

// TestListAuditRecordsPagesAtTheMaximum: maxResults 1000, the documented
// maximum, returns a nextToken while records remain, in both orders.
func TestListAuditRecordsPagesAtTheMaximum(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	const n = 2500
	recs := make([]storage.AuditRecord, n)
	for i := range recs {
		recs[i] = storage.AuditRecord{RequestID: fmt.Sprint("bulk-", i), Operation: "GetResourceApiKey", Outcome: audit.OutcomeSuccess}
	}
	// Listing does not check hashes: a stand-in chain will do.
	chain := func(head storage.AuditHead, recs []storage.AuditRecord) error {
		for i := range recs {
			recs[i].Seq, recs[i].PrevHash, recs[i].Hash = head.Seq+int64(i)+1, head.Hash, []byte{1}
			head.Hash = recs[i].Hash
		}
		return nil
	}
	if err := s.Server.Store().AppendAudit(ctx(t), recs, chain); err != nil {
		t.Fatal(err)
	}
	for _, newest := range []bool{false, true} {
		var seqs []int64
		var token *string
		for pages := 1; ; pages++ {
			in := map[string]any{"maxResults": 1000}
			if newest {
				in["newestFirst"] = true
			}
			if token != nil {
				in["nextToken"] = *token
			}
			body, _ := json.Marshal(in)
			r := s.Do(t, behalftest.Raw{Path: "/behalf/ListAuditRecords", Body: body})
			var out behalfapi.ListAuditRecordsOutput
			if r.Status != http.StatusOK || json.Unmarshal(r.Body, &out) != nil {
				t.Fatalf("page %d: HTTP %d %s", pages, r.Status, r.Body)
			}
			for _, rec := range out.Records {
				seqs = append(seqs, rec.Seq)
			}
			if token = out.NextToken; token == nil {
				if pages != 3 {
					t.Errorf("newest first %v: %d pages, want 3", newest, pages)
				}
				break
			}
		}
		if len(seqs) != n || (seqs[0] == 1) == newest || !slices.IsSortedFunc(seqs, func(a, b int64) int {
			if newest {
				return int(b - a)
			}
			return int(a - b)
		}) {
			t.Errorf("newest first %v: listed %d records from %d to %d", newest, len(seqs), seqs[0], seqs[len(seqs)-1])
		}
	}
}
