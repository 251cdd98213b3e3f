package sqlstore_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
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
