package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

func newConsentPortal(id, name string) storage.ConsentPortal {
	return storage.ConsentPortal{
		ID:               id,
		Name:             name,
		Description:      "portal " + name,
		ExecutionRoleARN: "arn:aws:iam::123456789012:role/portal",
		Provider:         "idp",
		Scopes:           []string{"openid", "profile"},
		Audience:         "https://api.example.com",
		Sources:          []storage.ConsentPortalSource{{Type: "agentcore-gateway", Identifier: "gw-abcdefghij"}},
		CreatedAt:        past(),
		UpdatedAt:        past(),
	}
}

func storedConsentPortal(p storage.ConsentPortal) storage.ConsentPortal {
	p.CreatedAt, p.UpdatedAt = asStored(p.CreatedAt), asStored(p.UpdatedAt)
	return p
}

func testConsentPortals(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a, b := newConsentPortal("a-0123456789", "a"), newConsentPortal("b-0123456789", "b")
	b.Audience, b.Description = "", ""
	mustOK(t, s.CreateConsentPortal(ctx, b, nil), "create portal b")
	mustOK(t, s.CreateConsentPortal(ctx, a, map[string]string{"team": "core"}), "create portal a with tags")

	wantErr(t, s.CreateConsentPortal(ctx, newConsentPortal("a-0123456789", "other"), nil), storage.ErrAlreadyExists, "create portal with a taken id")
	wantErr(t, s.CreateConsentPortal(ctx, newConsentPortal("a-9999999999", "a"), nil), storage.ErrAlreadyExists, "create portal with a taken name")

	got, err := s.GetConsentPortal(ctx, a.ID)
	mustOK(t, err, "get portal")
	wantDiff(t, "portal", storedConsentPortal(a), got)
	tags, err := s.ListTags(ctx, storage.Resource{Kind: storage.KindConsentPortal, Name: a.ID})
	mustOK(t, err, "list portal tags")
	wantDiff(t, "portal tags", map[string]string{"team": "core"}, tags)

	list, err := s.ListConsentPortals(ctx, storage.Page{})
	mustOK(t, err, "list portals")
	wantDiff(t, "portal list", []storage.ConsentPortal{storedConsentPortal(a), storedConsentPortal(b)}, list)

	mustOK(t, s.DeleteConsentPortal(ctx, a.ID), "delete portal")
	_, err = s.GetConsentPortal(ctx, a.ID)
	wantErr(t, err, storage.ErrNotFound, "get deleted portal")
	wantErr(t, s.DeleteConsentPortal(ctx, a.ID), storage.ErrNotFound, "delete portal twice")
	_, err = s.UpdateConsentPortal(ctx, a.ID, func(p storage.ConsentPortal) (storage.ConsentPortal, error) { return p, nil })
	wantErr(t, err, storage.ErrNotFound, "update deleted portal")
	_, err = s.ListTags(ctx, storage.Resource{Kind: storage.KindConsentPortal, Name: a.ID})
	wantErr(t, err, storage.ErrNotFound, "tags of deleted portal")

	// The name is free again, under another id.
	mustOK(t, s.CreateConsentPortal(ctx, newConsentPortal("a-abcdefghij", "a"), nil), "create portal again after delete")
}

func testConsentPortalUpdater(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	orig := newConsentPortal("p-0123456789", "p")
	mustOK(t, s.CreateConsentPortal(ctx, orig, nil), "create portal")
	want := storedConsentPortal(orig)

	_, err := s.UpdateConsentPortal(ctx, orig.ID, func(p storage.ConsentPortal) (storage.ConsentPortal, error) {
		p.Description = "must not be stored"
		return p, fmt.Errorf("wrapped: %w", errRefused)
	})
	wantErr(t, err, errRefused, "update with refusing updater")
	got, err := s.GetConsentPortal(ctx, orig.ID)
	mustOK(t, err, "get portal")
	wantDiff(t, "portal after aborted update", want, got)

	updated, err := s.UpdateConsentPortal(ctx, orig.ID, func(p storage.ConsentPortal) (storage.ConsentPortal, error) {
		wantDiff(t, "portal passed to updater", want, p)
		p.ID, p.Name, p.CreatedAt, p.UpdatedAt = "renamed-0123456789", "renamed", time.Now(), time.Time{}
		p.Sources = []storage.ConsentPortalSource{{Type: "agentcore-gateway", Identifier: "must-not-be-stored"}}
		p.Description, p.ExecutionRoleARN, p.Provider = "changed", "arn:aws:iam::123456789012:role/other", "idp2"
		p.Scopes, p.Audience = []string{"email"}, ""
		return p, nil
	})
	mustOK(t, err, "update portal")
	if updated.ID != orig.ID || updated.Name != orig.Name {
		t.Errorf("updater changed the id or name: %+v", updated)
	}
	wantDiff(t, "sources after update", orig.Sources, updated.Sources)
	checkStoredTime(t, "CreatedAt after update", updated.CreatedAt, orig.CreatedAt)
	checkUpdatedAt(t, "UpdatedAt after update", updated.UpdatedAt, want.UpdatedAt)
	if updated.Description != "changed" || updated.Provider != "idp2" || updated.Audience != "" || len(updated.Scopes) != 1 {
		t.Errorf("update did not store the updater's changes: %+v", updated)
	}
	got, err = s.GetConsentPortal(ctx, orig.ID)
	mustOK(t, err, "get updated portal")
	wantDiff(t, "stored portal vs. UpdateConsentPortal's result", updated, got)
	_, err = s.GetConsentPortal(ctx, "renamed-0123456789")
	wantErr(t, err, storage.ErrNotFound, "get portal under the updater's new id")
}

func testConsentPortalPagination(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	var ids []string
	for i := range 7 {
		p := newConsentPortal(fmt.Sprintf("portal%d-0123456789", i), fmt.Sprintf("portal%d", i))
		mustOK(t, s.CreateConsentPortal(ctx, p, nil), "create portal")
		ids = append(ids, p.ID)
	}
	var got []string
	after := ""
	for {
		page, err := s.ListConsentPortals(ctx, storage.Page{After: after, Limit: 3})
		mustOK(t, err, "list a page of portals")
		if len(page) > 3 {
			t.Fatalf("page of %d portals, want at most 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			got = append(got, p.ID)
		}
		after = page[len(page)-1].ID
	}
	wantDiff(t, "portal ids over every page", ids, got)
}
