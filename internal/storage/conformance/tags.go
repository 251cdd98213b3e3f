package conformance

import (
	"context"
	"fmt"
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
)

// taggable adapts one taggable resource kind.
type taggable struct {
	kind storage.ResourceKind
	// create makes the resource with initial tags.
	create func(ctx context.Context, s storage.Storage, name string, tags map[string]string) error
	// delete removes the resource; nil for kinds that cannot be deleted.
	delete func(ctx context.Context, s storage.Storage, name string) error
}

func taggables() []taggable {
	return []taggable{
		{
			kind: storage.KindWorkloadIdentity,
			create: func(ctx context.Context, s storage.Storage, name string, tags map[string]string) error {
				return s.CreateWorkloadIdentity(ctx, newWorkload(name), tags)
			},
			delete: func(ctx context.Context, s storage.Storage, name string) error {
				return s.DeleteWorkloadIdentity(ctx, name)
			},
		},
		{
			kind: storage.KindOAuth2Provider,
			create: func(ctx context.Context, s storage.Storage, name string, tags map[string]string) error {
				return s.CreateOAuth2Provider(ctx, newOAuth2Provider(name, "id-"+name), tags)
			},
			delete: func(ctx context.Context, s storage.Storage, name string) error {
				return s.DeleteOAuth2Provider(ctx, name)
			},
		},
		{
			kind: storage.KindAPIKeyProvider,
			create: func(ctx context.Context, s storage.Storage, name string, tags map[string]string) error {
				return s.CreateAPIKeyProvider(ctx, newAPIKeyProvider(name, "id-"+name), tags)
			},
			delete: func(ctx context.Context, s storage.Storage, name string) error {
				return s.DeleteAPIKeyProvider(ctx, name)
			},
		},
		{
			// A consent portal is tagged by its id.
			kind: storage.KindConsentPortal,
			create: func(ctx context.Context, s storage.Storage, name string, tags map[string]string) error {
				return s.CreateConsentPortal(ctx, newConsentPortal(name, "portal-"+name), tags)
			},
			delete: func(ctx context.Context, s storage.Storage, name string) error {
				return s.DeleteConsentPortal(ctx, name)
			},
		},
		{
			// A token vault exists once it has been updated.
			kind: storage.KindTokenVault,
			create: func(ctx context.Context, s storage.Storage, name string, tags map[string]string) error {
				if _, err := s.UpdateTokenVault(ctx, name, func(v storage.TokenVault) (storage.TokenVault, error) {
					v.KeyType = "ServiceManagedKey"
					return v, nil
				}); err != nil {
					return err
				}
				if len(tags) == 0 {
					return nil
				}
				return s.TagResource(ctx, storage.Resource{Kind: storage.KindTokenVault, Name: name}, tags)
			},
		},
	}
}

func testTags(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, k := range taggables() {
		t.Run(string(k.kind), func(t *testing.T) {
			r := storage.Resource{Kind: k.kind, Name: "res"}
			listTags := func(what string) map[string]string {
				t.Helper()
				tags, err := s.ListTags(ctx, r)
				mustOK(t, err, what)
				return tags
			}

			_, err := s.ListTags(ctx, r)
			wantErr(t, err, storage.ErrNotFound, "list tags of a missing resource")
			wantErr(t, s.TagResource(ctx, r, map[string]string{"a": "1"}), storage.ErrNotFound, "tag a missing resource")
			wantErr(t, s.UntagResource(ctx, r, []string{"a"}), storage.ErrNotFound, "untag a missing resource")

			mustOK(t, k.create(ctx, s, "res", map[string]string{"a": "1", "b": "2"}), "create resource with tags")
			wantDiff(t, "initial tags", map[string]string{"a": "1", "b": "2"}, listTags("list initial tags"))

			mustOK(t, s.TagResource(ctx, r, map[string]string{"b": "20", "c": "3", "empty": ""}), "tag resource")
			wantDiff(t, "merged tags", map[string]string{"a": "1", "b": "20", "c": "3", "empty": ""}, listTags("list merged tags"))
			mustOK(t, s.TagResource(ctx, r, nil), "tag with no tags")
			mustOK(t, s.UntagResource(ctx, r, []string{"a", "empty", "never-set"}), "untag resource")
			wantDiff(t, "tags after untag", map[string]string{"b": "20", "c": "3"}, listTags("list tags after untag"))
			mustOK(t, s.UntagResource(ctx, r, nil), "untag no keys")
			mustOK(t, s.UntagResource(ctx, r, []string{"b", "c"}), "untag all")
			if tags := listTags("list tags after untagging all"); len(tags) != 0 {
				t.Errorf("tags after untagging all = %v, want none", tags)
			}

			if k.delete == nil {
				return
			}
			mustOK(t, s.TagResource(ctx, r, map[string]string{"old": "yes"}), "tag resource")
			mustOK(t, k.delete(ctx, s, "res"), "delete resource")
			_, err = s.ListTags(ctx, r)
			wantErr(t, err, storage.ErrNotFound, "list tags of a deleted resource")
			wantErr(t, s.TagResource(ctx, r, map[string]string{"a": "1"}), storage.ErrNotFound, "tag a deleted resource")
			// Deleting the resource deleted its tags: a new resource of the
			// same name starts bare.
			mustOK(t, k.create(ctx, s, "res", nil), "re-create resource")
			if tags := listTags("list tags of the re-created resource"); len(tags) != 0 {
				t.Errorf("re-created resource inherited tags %v", tags)
			}
		})
	}
}

// testTagsAreScopedByKind checks that resources of different kinds sharing
// a name keep separate tags.
func testTagsAreScopedByKind(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, k := range taggables() {
		mustOK(t, k.create(ctx, s, "shared", map[string]string{"kind": string(k.kind)}), "create "+string(k.kind))
	}
	wl := taggables()[0]
	mustOK(t, wl.delete(ctx, s, "shared"), "delete the workload identity")
	for _, k := range taggables()[1:] {
		tags, err := s.ListTags(ctx, storage.Resource{Kind: k.kind, Name: "shared"})
		mustOK(t, err, "list tags of "+string(k.kind))
		wantDiff(t, "tags of "+string(k.kind), map[string]string{"kind": string(k.kind)}, tags)
	}
}

func manyTags(prefix string, n int) map[string]string {
	tags := make(map[string]string, n)
	for i := range n {
		tags[fmt.Sprintf("%s%02d", prefix, i)] = "v"
	}
	return tags
}

// testTagLimit checks that no change leaves a resource with more than
// storage.MaxTags tags, and that a refused change is not half applied.
func testTagLimit(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, k := range taggables() {
		t.Run(string(k.kind), func(t *testing.T) {
			r := storage.Resource{Kind: k.kind, Name: "full"}
			if k.kind != storage.KindTokenVault {
				err := k.create(ctx, s, "full", manyTags("k", storage.MaxTags+1))
				wantErr(t, err, storage.ErrTooManyTags, "create with too many tags")
				_, err = s.ListTags(ctx, r)
				wantErr(t, err, storage.ErrNotFound, "resource whose creation had too many tags")
			}

			mustOK(t, k.create(ctx, s, "full", manyTags("k", storage.MaxTags)), "create with MaxTags tags")
			want := manyTags("k", storage.MaxTags)
			check := func(what string) {
				t.Helper()
				tags, err := s.ListTags(ctx, r)
				mustOK(t, err, what)
				wantDiff(t, what, want, tags)
			}
			check("tags at the limit")

			mustOK(t, s.TagResource(ctx, r, map[string]string{"k00": "changed"}), "overwrite a tag at the limit")
			want["k00"] = "changed"
			check("tags after overwriting at the limit")

			err := s.TagResource(ctx, r, map[string]string{"k01": "must not be stored", "new": "v"})
			wantErr(t, err, storage.ErrTooManyTags, "add a tag past the limit")
			check("tags after a refused change")

			err = s.TagResource(ctx, r, manyTags("x", storage.MaxTags+1))
			wantErr(t, err, storage.ErrTooManyTags, "tag with more than MaxTags at once")
			check("tags after a refused oversized change")

			mustOK(t, s.UntagResource(ctx, r, []string{"k49"}), "untag one")
			mustOK(t, s.TagResource(ctx, r, map[string]string{"new": "v"}), "tag after making room")
			delete(want, "k49")
			want["new"] = "v"
			check("tags after making room")
		})
	}
}
