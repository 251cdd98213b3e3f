package conformance

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// lister adapts one entity's Create and List methods to names only.
type lister struct {
	entity string
	create func(ctx context.Context, s storage.Storage, name string) error
	list   func(ctx context.Context, s storage.Storage, page storage.Page) ([]string, error)
}

func listers() []lister {
	return []lister{
		{
			entity: "principals",
			create: func(ctx context.Context, s storage.Storage, name string) error {
				return s.CreatePrincipal(ctx, newPrincipal(name))
			},
			list: func(ctx context.Context, s storage.Storage, page storage.Page) ([]string, error) {
				items, err := s.ListPrincipals(ctx, page)
				return namesOf(items, func(p storage.Principal) string { return p.AccessKeyID }), err
			},
		},
		{
			entity: "workload identities",
			create: func(ctx context.Context, s storage.Storage, name string) error {
				return s.CreateWorkloadIdentity(ctx, newWorkload(name), nil)
			},
			list: func(ctx context.Context, s storage.Storage, page storage.Page) ([]string, error) {
				items, err := s.ListWorkloadIdentities(ctx, page)
				return namesOf(items, func(w storage.WorkloadIdentity) string { return w.Name }), err
			},
		},
		{
			entity: "oauth2 providers",
			create: func(ctx context.Context, s storage.Storage, name string) error {
				return s.CreateOAuth2Provider(ctx, newOAuth2Provider(name, "id-"+name), nil)
			},
			list: func(ctx context.Context, s storage.Storage, page storage.Page) ([]string, error) {
				items, err := s.ListOAuth2Providers(ctx, page)
				return namesOf(items, func(p storage.OAuth2Provider) string { return p.Name }), err
			},
		},
		{
			entity: "api key providers",
			create: func(ctx context.Context, s storage.Storage, name string) error {
				return s.CreateAPIKeyProvider(ctx, newAPIKeyProvider(name, "id-"+name), nil)
			},
			list: func(ctx context.Context, s storage.Storage, page storage.Page) ([]string, error) {
				items, err := s.ListAPIKeyProviders(ctx, page)
				return namesOf(items, func(p storage.APIKeyProvider) string { return p.Name }), err
			},
		},
	}
}

func namesOf[T any](items []T, name func(T) string) []string {
	names := make([]string, 0, len(items))
	for _, it := range items {
		names = append(names, name(it))
	}
	return names
}

// testPagination checks ordering and the exclusive cursor. Listings are
// ordered bytewise: upper case before lower case, "-" before "_".
func testPagination(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	created := []string{"b", "a_1", "c", "B", "a", "a-1"}
	sorted := []string{"B", "a", "a-1", "a_1", "b", "c"}
	for _, l := range listers() {
		t.Run(l.entity, func(t *testing.T) {
			list := func(after string, limit int) []string {
				t.Helper()
				names, err := l.list(ctx, s, storage.Page{After: after, Limit: limit})
				mustOK(t, err, fmt.Sprintf("list after %q limit %d", after, limit))
				return names
			}
			if names := list("", 0); len(names) != 0 {
				t.Errorf("empty store lists %q", names)
			}
			for _, name := range created {
				mustOK(t, l.create(ctx, s, name), "create "+name)
			}
			for _, c := range []struct {
				after string
				limit int
				want  []string
			}{
				{"", 0, sorted},
				{"", -1, sorted},
				{"", 2, []string{"B", "a"}},
				{"a", 2, []string{"a-1", "a_1"}},
				{"a_1", 10, []string{"b", "c"}},
				{"aa", 10, []string{"b", "c"}}, // a cursor need not name an item
				{"A", 1, []string{"B"}},
				{"c", 10, []string{}},
				{"zzz", 0, []string{}},
			} {
				wantDiff(t, fmt.Sprintf("names after %q limit %d", c.after, c.limit), c.want, list(c.after, c.limit))
			}

			// Walking page by page visits every item once, in order.
			var walked []string
			for after := ""; ; {
				page := list(after, 4)
				walked = append(walked, page...)
				if len(page) < 4 {
					break
				}
				after = page[len(page)-1]
			}
			wantDiff(t, "names walked in pages of 4", sorted, walked)
		})
	}
}

// testPageLimits checks the default page size and the hard cap.
func testPageLimits(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	l := listers()[1] // workload identities
	var names []string
	for i := range maxPageLimit + 1 {
		name := fmt.Sprintf("agent-%04d", i)
		names = append(names, name)
		mustOK(t, l.create(ctx, s, name), "create "+name)
	}
	slices.Sort(names)
	for _, c := range []struct {
		limit int
		want  []string
	}{
		{0, names[:defaultPageLimit]},
		{-5, names[:defaultPageLimit]},
		{maxPageLimit, names[:maxPageLimit]},
		{maxPageLimit + 1, names[:maxPageLimit]},
		{1 << 30, names[:maxPageLimit]},
	} {
		got, err := l.list(ctx, s, storage.Page{Limit: c.limit})
		mustOK(t, err, fmt.Sprintf("list limit %d", c.limit))
		wantDiff(t, fmt.Sprintf("names with limit %d", c.limit), c.want, got)
	}
	got, err := l.list(ctx, s, storage.Page{After: names[maxPageLimit-1], Limit: maxPageLimit})
	mustOK(t, err, "list the last page")
	wantDiff(t, "last page", names[maxPageLimit:], got)
}

// testNotFound checks that every Get, Update and Delete of a missing record
// fails with ErrNotFound, and that no updater runs for it.
func testNotFound(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	// Records of other kinds under the same names must not be found instead.
	mustOK(t, s.CreatePrincipal(ctx, newPrincipal("present")), "create principal")
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("present"), nil), "create workload identity")
	mustOK(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("present", "present"), nil), "create oauth2 provider")
	mustOK(t, s.CreateAPIKeyProvider(ctx, newAPIKeyProvider("present", "present"), nil), "create api key provider")

	// A connection under a present provider id and workload, and another
	// user's connection beside the missing one.
	missing := storage.ConnectionKey{ProviderID: "present", Workload: "present", User: "missing"}
	connect(t, s, newConnection(storage.ConnectionKey{ProviderID: "present", Workload: "present", User: "present"}))

	updaterRan := func(what string) {
		t.Errorf("%s: updater ran for a missing record", what)
	}
	for _, c := range []struct {
		what string
		call func() error
	}{
		{"GetPrincipal", func() error { _, err := s.GetPrincipal(ctx, "missing"); return err }},
		{"UpdatePrincipal", func() error {
			_, err := s.UpdatePrincipal(ctx, "missing", func(p storage.Principal) (storage.Principal, error) {
				updaterRan("UpdatePrincipal")
				return p, nil
			})
			return err
		}},
		{"DeletePrincipal", func() error { return s.DeletePrincipal(ctx, "missing") }},
		{"GetWorkloadIdentity", func() error { _, err := s.GetWorkloadIdentity(ctx, "missing"); return err }},
		{"UpdateWorkloadIdentity", func() error {
			_, err := s.UpdateWorkloadIdentity(ctx, "missing", func(w storage.WorkloadIdentity) (storage.WorkloadIdentity, error) {
				updaterRan("UpdateWorkloadIdentity")
				return w, nil
			})
			return err
		}},
		{"DeleteWorkloadIdentity", func() error { return s.DeleteWorkloadIdentity(ctx, "missing") }},
		{"GetOAuth2Provider", func() error { _, err := s.GetOAuth2Provider(ctx, "missing"); return err }},
		{"GetOAuth2ProviderByID", func() error { _, err := s.GetOAuth2ProviderByID(ctx, "missing"); return err }},
		{"UpdateOAuth2Provider", func() error {
			_, err := s.UpdateOAuth2Provider(ctx, "missing", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) {
				updaterRan("UpdateOAuth2Provider")
				return p, nil
			})
			return err
		}},
		{"DeleteOAuth2Provider", func() error { return s.DeleteOAuth2Provider(ctx, "missing") }},
		{"GetAPIKeyProvider", func() error { _, err := s.GetAPIKeyProvider(ctx, "missing"); return err }},
		{"UpdateAPIKeyProvider", func() error {
			_, err := s.UpdateAPIKeyProvider(ctx, "missing", func(p storage.APIKeyProvider) (storage.APIKeyProvider, error) {
				updaterRan("UpdateAPIKeyProvider")
				return p, nil
			})
			return err
		}},
		{"DeleteAPIKeyProvider", func() error { return s.DeleteAPIKeyProvider(ctx, "missing") }},
		{"GetTokenVault", func() error { _, err := s.GetTokenVault(ctx, "missing"); return err }},
		{"GetOAuthSession", func() error { _, err := s.GetOAuthSession(ctx, "missing"); return err }},
		{"GetOAuthSessionByState", func() error { _, err := s.GetOAuthSessionByState(ctx, stateHash("missing")); return err }},
		{"UpdateOAuthSession", func() error {
			_, err := s.UpdateOAuthSession(ctx, "missing", func(sess storage.OAuthSession) (storage.OAuthSession, error) {
				updaterRan("UpdateOAuthSession")
				return sess, nil
			})
			return err
		}},
		{"CompleteOAuthSession", func() error { return s.CompleteOAuthSession(ctx, "missing", newConnection(missing)) }},
		{"GetConnection", func() error { _, err := s.GetConnection(ctx, missing); return err }},
		{"UpdateConnection", func() error {
			_, err := s.UpdateConnection(ctx, missing, func(c storage.Connection) (storage.Connection, error) {
				updaterRan("UpdateConnection")
				return c, nil
			})
			return err
		}},
		{"DeleteConnection", func() error { return s.DeleteConnection(ctx, missing) }},
		{"AcquireRefreshLease", func() error {
			_, err := s.AcquireRefreshLease(ctx, missing, "owner", time.Now().Add(time.Minute))
			return err
		}},
		{"RenewRefreshLease", func() error { return s.RenewRefreshLease(ctx, missing, "owner", 1, time.Now().Add(time.Minute)) }},
		{"FinishRefresh", func() error {
			_, err := s.FinishRefresh(ctx, missing, "owner", 1, func(c storage.Connection) (storage.Connection, error) {
				updaterRan("FinishRefresh")
				return c, nil
			})
			return err
		}},
	} {
		wantErr(t, c.call(), storage.ErrNotFound, c.what)
	}
}
