package cli_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lastAnchor is the anchor of the last "audit chain head" line logged.
func (b *lockedBuffer) lastAnchor(t *testing.T) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	anchor := ""
	for line := range strings.Lines(b.buf.String()) {
		var l struct{ Msg, Anchor string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "audit chain head" {
			anchor = l.Anchor
		}
	}
	if anchor == "" {
		t.Fatalf("no audit chain head was logged:\n%s", b.buf.String())
	}
	return anchor
}

// TestAuditVerifyAnchor: a published head catches a truncation that the
// chain alone cannot, the head row moved back to the last record kept.
func TestAuditVerifyAnchor(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		var logs lockedBuffer
		s := behalftest.Start(t, b, behalftest.Options{Log: slog.New(slog.NewJSONHandler(&logs, nil))})
		r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
		for _, name := range []string{"agent-1", "agent-2", "agent-3"} {
			r.ok("", cmd("identity create "+name)...)
		}
		s.Server.PublishAnchor(t.Context())
		anchor := logs.lastAnchor(t)
		if !strings.HasPrefix(anchor, "3:") || len(anchor) != 2+64 {
			t.Fatalf("anchor %q, want 3:<64 hex digits>", anchor)
		}
		r.ok("", cmd("identity create agent-4")...)
		out := r.ok("", cmd("audit verify --full --anchor "+anchor)...)
		if !strings.Contains(out, "records  4") {
			t.Fatalf("verify with a good anchor:\n%s", out)
		}

		// Someone with the database deletes the newest records and moves
		// the head back to the last record kept: the chain verifies.
		driver := map[string]string{"sqlite": "sqlite", "postgres": "pgx"}[b.Name]
		db, err := sql.Open(driver, s.Config.Storage)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range []string{
			`DELETE FROM audit_records WHERE seq > 2`,
			`UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_records WHERE seq = 2)`,
		} {
			if _, err := db.ExecContext(t.Context(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		r.ok("", cmd("audit verify --full")...)
		out, errs, code := r.do("", cmd("audit verify --full --anchor "+anchor)...)
		if code == 0 || !strings.Contains(out, "seq 3: the anchored record 3 is gone, the head is at seq 2: the log was truncated") ||
			!strings.Contains(errs, "failed verification") {
			t.Fatalf("verify a truncated log against its anchor: exit %d\n%s\n%s", code, out, errs)
		}

		// A rewritten record at the anchor's seq fails too.
		r.ok("", cmd("identity create agent-5")...)
		out, _, code = r.do("", cmd("audit verify --full --anchor "+anchor)...)
		if code == 0 || !strings.Contains(out, "record 3's hash is not the anchor's: the log was rewritten") {
			t.Fatalf("verify a rewritten log against its anchor: exit %d\n%s", code, out)
		}
		if _, errs, code := r.do("", cmd("audit verify --anchor 3")...); code == 0 || !strings.Contains(errs, "--anchor must be SEQ:HASH") {
			t.Fatalf("a malformed anchor: exit %d: %s", code, errs)
		}
	})
}
