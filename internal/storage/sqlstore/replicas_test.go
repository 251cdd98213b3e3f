package sqlstore_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/conformance"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
)

const replicas = 4

// TestPostgresConcurrentOpen starts several replicas at once on a fresh
// database: the migration lock must let every one of them come up.
func TestPostgresConcurrentOpen(t *testing.T) {
	openConcurrently(t, pgtest.NewDatabase(t))
}

// TestPostgresConcurrentUpgrade starts several replicas at once on a
// database that has the migration table but lacks every migration, as when
// a new release rolls out: without the migration lock they would all run
// the same migrations at the same time.
func TestPostgresConcurrentUpgrade(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s, err := sqlstore.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `
		DO $$ DECLARE r record; BEGIN
			FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version' LOOP
				EXECUTE 'DROP TABLE ' || quote_ident(r.tablename) || ' CASCADE';
			END LOOP;
		END $$;
		DELETE FROM goose_db_version WHERE version_id > 0;`); err != nil {
		t.Fatalf("roll the database back: %v", err)
	}
	openConcurrently(t, dsn)
}

// openConcurrently opens several stores on dsn at once; all must succeed.
func openConcurrently(t *testing.T, dsn string) {
	t.Helper()
	stores := make([]*sqlstore.Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { stores[i], errs[i] = sqlstore.Open(t.Context(), dsn, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: open: %v", i, err)
			continue
		}
		if err := stores[i].Ping(t.Context()); err != nil {
			t.Errorf("replica %d: ping: %v", i, err)
		}
		_ = stores[i].Close()
	}
}

func TestPostgresReplicas(t *testing.T) {
	testReplicas(t, pgtest.NewDatabase(t))
}

func TestSQLiteReplicas(t *testing.T) {
	testReplicas(t, filepath.Join(t.TempDir(), "behalf.db"))
}

// testReplicas runs separate stores, as separate processes would, on one
// database: bootstrap must have one winner across them and their updates
// must neither be lost nor fail on locks.
func testReplicas(t *testing.T, dsn string) {
	stores := make([]*sqlstore.Store, replicas)
	for i := range stores {
		stores[i] = openStore(t, dsn)
	}
	ctx := t.Context()

	var created atomic.Int32
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			ok, err := s.BootstrapPrincipal(ctx, storage.Principal{
				AccessKeyID: fmt.Sprintf("AKIAREPLICA%d", i),
				Role:        storage.RoleAdmin,
				Description: "0",
			})
			if err != nil {
				t.Errorf("replica %d: bootstrap: %v", i, err)
			}
			if ok {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if n := created.Load(); n != 1 {
		t.Fatalf("%d replicas bootstrapped a principal, want exactly 1", n)
	}
	list, err := stores[0].ListPrincipals(ctx, storage.Page{})
	if err != nil || len(list) != 1 {
		t.Fatalf("after bootstrap: %d principals, %v", len(list), err)
	}
	id := list[0].AccessKeyID

	const perReplica = 25
	for i, s := range stores {
		wg.Go(func() {
			for range perReplica {
				_, err := s.UpdatePrincipal(ctx, id, func(p storage.Principal) (storage.Principal, error) {
					n, err := strconv.Atoi(p.Description)
					p.Description = strconv.Itoa(n + 1)
					return p, err
				})
				if err != nil {
					t.Errorf("replica %d: update: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	p, err := stores[replicas-1].GetPrincipal(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(replicas * perReplica); p.Description != want {
		t.Errorf("counter = %s after %s increments across replicas", p.Description, want)
	}
}

func TestPostgresAuditReplicas(t *testing.T) {
	testAuditReplicas(t, pgtest.NewDatabase(t))
}

func TestSQLiteAuditReplicas(t *testing.T) {
	testAuditReplicas(t, filepath.Join(t.TempDir(), "behalf.db"))
}

// testAuditReplicas appends to one audit log from separate stores, as
// replicas would: the head row must serialise them into one chain.
func testAuditReplicas(t *testing.T, dsn string) {
	stores := make([]*sqlstore.Store, replicas)
	for i := range stores {
		stores[i] = openStore(t, dsn)
	}
	ctx := t.Context()
	chain := func(head storage.AuditHead, recs []storage.AuditRecord) error {
		prev := head.Hash
		for i := range recs {
			recs[i].Seq, recs[i].PrevHash = head.Seq+int64(i)+1, prev
			h := sha256.Sum256(fmt.Appendf(bytes.Clone(prev), "%d/%s", recs[i].Seq, recs[i].RequestID))
			recs[i].Hash, prev = h[:], h[:]
		}
		return nil
	}
	const goroutines, appends = 4, 25
	var wg sync.WaitGroup
	for i, s := range stores {
		for g := range goroutines {
			wg.Go(func() {
				for j := range appends {
					batch := make([]storage.AuditRecord, 1+(g+j)%5)
					for k := range batch {
						batch[k] = storage.AuditRecord{RequestID: fmt.Sprintf("r%d-%d-%d-%d", i, g, j, k), Outcome: "success"}
					}
					if err := s.AppendAudit(ctx, batch, chain); err != nil {
						t.Errorf("replica %d: append: %v", i, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()

	want := 0
	for range stores {
		for g := range goroutines {
			for j := range appends {
				want += 1 + (g+j)%5
			}
		}
	}
	var (
		prev []byte
		seq  int64
	)
	for {
		page, err := stores[0].ListAudit(ctx, storage.AuditFilter{AfterSeq: seq, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if r.Seq != seq+1 || !bytes.Equal(r.PrevHash, prev) {
				t.Fatalf("record %d follows %d and does not link to it: the chain forked", r.Seq, seq)
			}
			seq, prev = r.Seq, r.Hash
		}
	}
	if seq != int64(want) {
		t.Errorf("log holds %d records, want %d", seq, want)
	}
	head, err := stores[replicas-1].GetAuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head.Seq != seq || !bytes.Equal(head.Hash, prev) {
		t.Errorf("head is at %d, the last record at %d", head.Seq, seq)
	}
}

// TestPostgresLeaseReplicas races refresh leases across two stores on one
// database, as two replicas would: the row lock, not anything in-process,
// must give each round exactly one holder and fence out overtaken ones.
func TestPostgresLeaseReplicas(t *testing.T) {
	conformance.RunReplicaTests(t, func(t *testing.T) []storage.Storage {
		dsn := pgtest.NewDatabase(t)
		return []storage.Storage{openStore(t, dsn), openStore(t, dsn)}
	})
}

func TestSQLiteLeaseReplicas(t *testing.T) {
	conformance.RunReplicaTests(t, func(t *testing.T) []storage.Storage {
		dsn := filepath.Join(t.TempDir(), "behalf.db")
		return []storage.Storage{openStore(t, dsn), openStore(t, dsn)}
	})
}
