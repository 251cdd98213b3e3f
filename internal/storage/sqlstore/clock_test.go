package sqlstore_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// The times the store sets come from Options.Now, the server's clock, on
// both engines.
func TestStoreTimestampsFollowItsClock(t *testing.T) {
	for name, dsn := range map[string]func() string{
		"sqlite":   func() string { return filepath.Join(t.TempDir(), "behalf.db") },
		"postgres": func() string { return pgtest.NewDatabase(t) },
	} {
		t.Run(name, func(t *testing.T) {
			clock := testclock.New(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
			s, err := sqlstore.Open(t.Context(), dsn(), nil, sqlstore.Now(clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			created := clock.Now()
			p := storage.Principal{AccessKeyID: "AKIACLOCK", Secret: storage.Sealed{KeyID: "k", Blob: []byte("x")}, Role: storage.RoleAdmin}
			if err := s.CreatePrincipal(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			updated := clock.Advance(time.Hour)
			if _, err := s.UpdatePrincipal(t.Context(), p.AccessKeyID, func(p storage.Principal) (storage.Principal, error) {
				p.Description = "changed"
				return p, nil
			}); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetPrincipal(t.Context(), p.AccessKeyID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(updated) {
				t.Errorf("created %v updated %v, want %v and %v from the store's clock", got.CreatedAt, got.UpdatedAt, created, updated)
			}
		})
	}
}
