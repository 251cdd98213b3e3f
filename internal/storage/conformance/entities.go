package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

func newPrincipal(id string) storage.Principal {
	return storage.Principal{
		AccessKeyID: id,
		Secret:      storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:" + id)},
		Role:        storage.RoleRuntime,
		Workloads:   []string{"agent-a", "agent-b"},
		Operations:  []string{"GetResourceOauth2Token"},
		Description: "principal " + id,
		CreatedAt:   past(),
		UpdatedAt:   past(),
	}
}

func storedPrincipal(p storage.Principal) storage.Principal {
	p.CreatedAt, p.UpdatedAt = asStored(p.CreatedAt), asStored(p.UpdatedAt)
	return p
}

func testPrincipals(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	admin := newPrincipal("AKIAADMIN")
	admin.Role, admin.Workloads, admin.Operations = storage.RoleAdmin, nil, nil
	runtime := newPrincipal("AKIARUNTIME")
	mustOK(t, s.CreatePrincipal(ctx, runtime), "create runtime principal")
	mustOK(t, s.CreatePrincipal(ctx, admin), "create admin principal")

	dup := newPrincipal("AKIARUNTIME")
	dup.Description = "duplicate"
	wantErr(t, s.CreatePrincipal(ctx, dup), storage.ErrAlreadyExists, "create duplicate principal")

	got, err := s.GetPrincipal(ctx, "AKIARUNTIME")
	mustOK(t, err, "get principal")
	wantDiff(t, "principal", storedPrincipal(runtime), got)

	list, err := s.ListPrincipals(ctx, storage.Page{})
	mustOK(t, err, "list principals")
	wantDiff(t, "principal list", []storage.Principal{storedPrincipal(admin), storedPrincipal(runtime)}, list)

	mustOK(t, s.DeletePrincipal(ctx, "AKIAADMIN"), "delete principal")
	_, err = s.GetPrincipal(ctx, "AKIAADMIN")
	wantErr(t, err, storage.ErrNotFound, "get deleted principal")
	wantErr(t, s.DeletePrincipal(ctx, "AKIAADMIN"), storage.ErrNotFound, "delete principal twice")

	// The name is free again.
	mustOK(t, s.CreatePrincipal(ctx, admin), "create principal again after delete")
}

func testPrincipalUpdater(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	orig := newPrincipal("AKIA1")
	mustOK(t, s.CreatePrincipal(ctx, orig), "create principal")
	want := storedPrincipal(orig)

	_, err := s.UpdatePrincipal(ctx, "AKIA1", func(p storage.Principal) (storage.Principal, error) {
		p.Description = "must not be stored"
		return p, fmt.Errorf("wrapped: %w", errRefused)
	})
	wantErr(t, err, errRefused, "update with refusing updater")
	got, err := s.GetPrincipal(ctx, "AKIA1")
	mustOK(t, err, "get principal")
	wantDiff(t, "principal after aborted update", want, got)

	updated, err := s.UpdatePrincipal(ctx, "AKIA1", func(p storage.Principal) (storage.Principal, error) {
		wantDiff(t, "principal passed to updater", want, p)
		p.AccessKeyID = "AKIA-RENAMED"
		p.CreatedAt = time.Now()
		p.UpdatedAt = time.Time{}
		p.Secret = storage.Sealed{KeyID: "key-2", Blob: []byte("new secret")}
		p.Role = storage.RoleAdmin
		p.Workloads = []string{"agent-c"}
		p.Description = "changed"
		return p, nil
	})
	mustOK(t, err, "update principal")
	if updated.AccessKeyID != "AKIA1" {
		t.Errorf("updater changed AccessKeyID to %q", updated.AccessKeyID)
	}
	checkStoredTime(t, "CreatedAt after update", updated.CreatedAt, orig.CreatedAt)
	checkUpdatedAt(t, "UpdatedAt after update", updated.UpdatedAt, want.UpdatedAt)
	if updated.Description != "changed" || updated.Role != storage.RoleAdmin || updated.Secret.KeyID != "key-2" {
		t.Errorf("update did not store the updater's changes: %+v", updated)
	}
	got, err = s.GetPrincipal(ctx, "AKIA1")
	mustOK(t, err, "get updated principal")
	wantDiff(t, "stored principal vs. UpdatePrincipal's result", updated, got)
	_, err = s.GetPrincipal(ctx, "AKIA-RENAMED")
	wantErr(t, err, storage.ErrNotFound, "get principal under the updater's new id")

	// A second update sees the first one's result.
	_, err = s.UpdatePrincipal(ctx, "AKIA1", func(p storage.Principal) (storage.Principal, error) {
		wantDiff(t, "principal passed to second updater", updated, p)
		return p, nil
	})
	mustOK(t, err, "second update")
}

func testBootstrapPrincipal(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	first := newPrincipal("AKIAFIRST")
	created, err := s.BootstrapPrincipal(ctx, first)
	mustOK(t, err, "bootstrap on empty store")
	if !created {
		t.Fatal("bootstrap on an empty store reported false")
	}
	created, err = s.BootstrapPrincipal(ctx, newPrincipal("AKIASECOND"))
	mustOK(t, err, "second bootstrap")
	if created {
		t.Error("second bootstrap reported true")
	}
	_, err = s.GetPrincipal(ctx, "AKIASECOND")
	wantErr(t, err, storage.ErrNotFound, "get principal of the losing bootstrap")
	got, err := s.GetPrincipal(ctx, "AKIAFIRST")
	mustOK(t, err, "get bootstrapped principal")
	wantDiff(t, "bootstrapped principal", storedPrincipal(first), got)

	// Any principal, however created, blocks bootstrap.
	mustOK(t, s.DeletePrincipal(ctx, "AKIAFIRST"), "delete bootstrapped principal")
	mustOK(t, s.CreatePrincipal(ctx, newPrincipal("AKIAOTHER")), "create principal")
	created, err = s.BootstrapPrincipal(ctx, newPrincipal("AKIATHIRD"))
	mustOK(t, err, "bootstrap with a principal present")
	if created {
		t.Error("bootstrap reported true although a principal exists")
	}
}

func newWorkload(name string) storage.WorkloadIdentity {
	return storage.WorkloadIdentity{
		Name:               name,
		AllowedReturnURLs:  []string{"https://app.example.com/callback"},
		AllowedAuthorizers: []string{"corp-idp"},
		AllowedProviders: []storage.ProviderGrant{
			{Provider: "github", Scopes: []string{"repo", "read:user"}},
			{Provider: "slack"},
		},
		CreatedAt: past(),
		UpdatedAt: past(),
	}
}

func storedWorkload(w storage.WorkloadIdentity) storage.WorkloadIdentity {
	w.CreatedAt, w.UpdatedAt = asStored(w.CreatedAt), asStored(w.UpdatedAt)
	return w
}

func testWorkloadIdentities(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a, b := newWorkload("agent-a"), newWorkload("agent-b")
	b.AllowedReturnURLs = nil
	mustOK(t, s.CreateWorkloadIdentity(ctx, b, nil), "create agent-b")
	mustOK(t, s.CreateWorkloadIdentity(ctx, a, map[string]string{"team": "infra"}), "create agent-a")
	wantErr(t, s.CreateWorkloadIdentity(ctx, newWorkload("agent-a"), nil), storage.ErrAlreadyExists, "create duplicate workload identity")

	got, err := s.GetWorkloadIdentity(ctx, "agent-a")
	mustOK(t, err, "get workload identity")
	wantDiff(t, "workload identity", storedWorkload(a), got)
	tags, err := s.ListTags(ctx, storage.Resource{Kind: storage.KindWorkloadIdentity, Name: "agent-a"})
	mustOK(t, err, "list tags")
	wantDiff(t, "tags given at creation", map[string]string{"team": "infra"}, tags)

	list, err := s.ListWorkloadIdentities(ctx, storage.Page{})
	mustOK(t, err, "list workload identities")
	wantDiff(t, "workload identity list", []storage.WorkloadIdentity{storedWorkload(a), storedWorkload(b)}, list)

	mustOK(t, s.DeleteWorkloadIdentity(ctx, "agent-a"), "delete workload identity")
	_, err = s.GetWorkloadIdentity(ctx, "agent-a")
	wantErr(t, err, storage.ErrNotFound, "get deleted workload identity")
	wantErr(t, s.DeleteWorkloadIdentity(ctx, "agent-a"), storage.ErrNotFound, "delete workload identity twice")
	mustOK(t, s.CreateWorkloadIdentity(ctx, a, nil), "create workload identity again after delete")
}

func testWorkloadIdentityUpdater(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	orig := newWorkload("agent")
	mustOK(t, s.CreateWorkloadIdentity(ctx, orig, nil), "create workload identity")
	want := storedWorkload(orig)

	_, err := s.UpdateWorkloadIdentity(ctx, "agent", func(w storage.WorkloadIdentity) (storage.WorkloadIdentity, error) {
		w.AllowedReturnURLs = []string{"https://evil.example"}
		return w, fmt.Errorf("wrapped: %w", errRefused)
	})
	wantErr(t, err, errRefused, "update with refusing updater")
	got, err := s.GetWorkloadIdentity(ctx, "agent")
	mustOK(t, err, "get workload identity")
	wantDiff(t, "workload identity after aborted update", want, got)

	updated, err := s.UpdateWorkloadIdentity(ctx, "agent", func(w storage.WorkloadIdentity) (storage.WorkloadIdentity, error) {
		wantDiff(t, "workload identity passed to updater", want, w)
		w.Name = "renamed"
		w.CreatedAt = time.Now()
		w.AllowedReturnURLs = []string{"https://new.example.com/cb"}
		w.AllowedProviders = []storage.ProviderGrant{{Provider: "google", Scopes: []string{"email"}}}
		return w, nil
	})
	mustOK(t, err, "update workload identity")
	if updated.Name != "agent" {
		t.Errorf("updater changed Name to %q", updated.Name)
	}
	checkStoredTime(t, "CreatedAt after update", updated.CreatedAt, orig.CreatedAt)
	checkUpdatedAt(t, "UpdatedAt after update", updated.UpdatedAt, want.UpdatedAt)
	got, err = s.GetWorkloadIdentity(ctx, "agent")
	mustOK(t, err, "get updated workload identity")
	wantDiff(t, "stored workload identity vs. UpdateWorkloadIdentity's result", updated, got)
	wantDiff(t, "updated return URLs", []string{"https://new.example.com/cb"}, got.AllowedReturnURLs)
	_, err = s.GetWorkloadIdentity(ctx, "renamed")
	wantErr(t, err, storage.ErrNotFound, "get workload identity under the updater's new name")
}

// testWorkloadIdentityNilVersusEmpty checks that nil ("unrestricted") and
// empty ("none allowed") lists survive every path through the store.
func testWorkloadIdentityNilVersusEmpty(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	cases := []struct {
		name        string
		authorizers []string
		providers   []storage.ProviderGrant
	}{
		{"nil-nil", nil, nil},
		{"empty-empty", []string{}, []storage.ProviderGrant{}},
		{"nil-empty", nil, []storage.ProviderGrant{}},
		{"empty-nil", []string{}, nil},
	}
	check := func(what string, got storage.WorkloadIdentity, authorizers []string, providers []storage.ProviderGrant) {
		t.Helper()
		if (got.AllowedAuthorizers == nil) != (authorizers == nil) || len(got.AllowedAuthorizers) != len(authorizers) {
			t.Errorf("%s: AllowedAuthorizers = %#v, want %#v", what, got.AllowedAuthorizers, authorizers)
		}
		if (got.AllowedProviders == nil) != (providers == nil) || len(got.AllowedProviders) != len(providers) {
			t.Errorf("%s: AllowedProviders = %#v, want %#v", what, got.AllowedProviders, providers)
		}
	}
	for _, c := range cases {
		w := newWorkload(c.name)
		w.AllowedAuthorizers, w.AllowedProviders = c.authorizers, c.providers
		mustOK(t, s.CreateWorkloadIdentity(ctx, w, nil), "create "+c.name)
		got, err := s.GetWorkloadIdentity(ctx, c.name)
		mustOK(t, err, "get "+c.name)
		check("get "+c.name, got, c.authorizers, c.providers)
	}
	list, err := s.ListWorkloadIdentities(ctx, storage.Page{})
	mustOK(t, err, "list")
	if len(list) != len(cases) {
		t.Fatalf("listed %d workload identities, want %d", len(list), len(cases))
	}
	for _, got := range list {
		for _, c := range cases {
			if c.name == got.Name {
				check("list "+c.name, got, c.authorizers, c.providers)
			}
		}
	}

	// Flip each one through an update.
	for _, c := range cases {
		flip := func(v []string) []string {
			if v == nil {
				return []string{}
			}
			return nil
		}
		flipGrants := func(v []storage.ProviderGrant) []storage.ProviderGrant {
			if v == nil {
				return []storage.ProviderGrant{}
			}
			return nil
		}
		authorizers, providers := flip(c.authorizers), flipGrants(c.providers)
		updated, err := s.UpdateWorkloadIdentity(ctx, c.name, func(w storage.WorkloadIdentity) (storage.WorkloadIdentity, error) {
			w.AllowedAuthorizers, w.AllowedProviders = authorizers, providers
			return w, nil
		})
		mustOK(t, err, "update "+c.name)
		check("update result "+c.name, updated, authorizers, providers)
		got, err := s.GetWorkloadIdentity(ctx, c.name)
		mustOK(t, err, "get updated "+c.name)
		check("get updated "+c.name, got, authorizers, providers)
	}
}

func newOAuth2Provider(name, id string) storage.OAuth2Provider {
	return storage.OAuth2Provider{
		ID:           id,
		Name:         name,
		Vendor:       "GithubOauth2",
		Config:       []byte(`{"clientId":"abc","scopes":["repo"]}`),
		ClientSecret: storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:" + id)},
		CreatedAt:    past(),
		UpdatedAt:    past(),
	}
}

func storedOAuth2Provider(p storage.OAuth2Provider) storage.OAuth2Provider {
	p.CreatedAt, p.UpdatedAt = asStored(p.CreatedAt), asStored(p.UpdatedAt)
	return p
}

func testOAuth2Providers(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	gh := newOAuth2Provider("github", "id-github")
	// A provider may have no client secret (a public client).
	public := newOAuth2Provider("public", "id-public")
	public.ClientSecret = storage.Sealed{}
	mustOK(t, s.CreateOAuth2Provider(ctx, public, nil), "create provider without secret")
	mustOK(t, s.CreateOAuth2Provider(ctx, gh, map[string]string{"env": "prod"}), "create provider")
	wantErr(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("github", "id-other"), nil),
		storage.ErrAlreadyExists, "create provider with a taken name")
	wantErr(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("other", "id-github"), nil),
		storage.ErrAlreadyExists, "create provider with a taken id")
	_, err := s.GetOAuth2Provider(ctx, "other")
	wantErr(t, err, storage.ErrNotFound, "get provider whose creation failed")

	got, err := s.GetOAuth2Provider(ctx, "github")
	mustOK(t, err, "get provider")
	wantDiff(t, "provider", storedOAuth2Provider(gh), got)
	got, err = s.GetOAuth2ProviderByID(ctx, "id-github")
	mustOK(t, err, "get provider by id")
	wantDiff(t, "provider by id", storedOAuth2Provider(gh), got)
	got, err = s.GetOAuth2Provider(ctx, "public")
	mustOK(t, err, "get provider without secret")
	if !got.ClientSecret.IsZero() {
		t.Errorf("provider created without a secret has %+v", got.ClientSecret)
	}
	wantDiff(t, "provider without secret", storedOAuth2Provider(public), got)

	list, err := s.ListOAuth2Providers(ctx, storage.Page{})
	mustOK(t, err, "list providers")
	wantDiff(t, "provider list", []storage.OAuth2Provider{storedOAuth2Provider(gh), storedOAuth2Provider(public)}, list)

	// Deleting frees the name; the new provider has a new id and the old id
	// resolves to nothing.
	mustOK(t, s.DeleteOAuth2Provider(ctx, "github"), "delete provider")
	_, err = s.GetOAuth2ProviderByID(ctx, "id-github")
	wantErr(t, err, storage.ErrNotFound, "get deleted provider by id")
	wantErr(t, s.DeleteOAuth2Provider(ctx, "github"), storage.ErrNotFound, "delete provider twice")
	mustOK(t, s.CreateOAuth2Provider(ctx, newOAuth2Provider("github", "id-github-2"), nil), "create provider again")
	got, err = s.GetOAuth2Provider(ctx, "github")
	mustOK(t, err, "get re-created provider")
	if got.ID != "id-github-2" {
		t.Errorf("re-created provider has id %q, want id-github-2", got.ID)
	}
}

func testOAuth2ProviderUpdater(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	orig := newOAuth2Provider("github", "id-github")
	mustOK(t, s.CreateOAuth2Provider(ctx, orig, nil), "create provider")
	want := storedOAuth2Provider(orig)

	_, err := s.UpdateOAuth2Provider(ctx, "github", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) {
		p.Vendor = "must not be stored"
		return p, fmt.Errorf("wrapped: %w", errRefused)
	})
	wantErr(t, err, errRefused, "update with refusing updater")
	got, err := s.GetOAuth2Provider(ctx, "github")
	mustOK(t, err, "get provider")
	wantDiff(t, "provider after aborted update", want, got)

	updated, err := s.UpdateOAuth2Provider(ctx, "github", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) {
		wantDiff(t, "provider passed to updater", want, p)
		p.ID, p.Name, p.CreatedAt = "id-forged", "renamed", time.Now()
		p.Vendor = "CustomOauth2"
		p.Config = []byte(`{"clientId":"xyz"}`)
		p.ClientSecret = storage.Sealed{}
		return p, nil
	})
	mustOK(t, err, "update provider")
	if updated.ID != "id-github" || updated.Name != "github" {
		t.Errorf("updater changed identity to id %q name %q", updated.ID, updated.Name)
	}
	checkStoredTime(t, "CreatedAt after update", updated.CreatedAt, orig.CreatedAt)
	checkUpdatedAt(t, "UpdatedAt after update", updated.UpdatedAt, want.UpdatedAt)
	got, err = s.GetOAuth2ProviderByID(ctx, "id-github")
	mustOK(t, err, "get updated provider")
	wantDiff(t, "stored provider vs. UpdateOAuth2Provider's result", updated, got)
	if got.Vendor != "CustomOauth2" || !got.ClientSecret.IsZero() {
		t.Errorf("update did not store the updater's changes: %+v", got)
	}
	_, err = s.GetOAuth2ProviderByID(ctx, "id-forged")
	wantErr(t, err, storage.ErrNotFound, "get provider by the updater's new id")
}

func newAPIKeyProvider(name, id string) storage.APIKeyProvider {
	return storage.APIKeyProvider{
		ID:        id,
		Name:      name,
		APIKey:    storage.Sealed{KeyID: "key-1", Blob: []byte("sealed:" + id)},
		CreatedAt: past(),
		UpdatedAt: past(),
	}
}

func storedAPIKeyProvider(p storage.APIKeyProvider) storage.APIKeyProvider {
	p.CreatedAt, p.UpdatedAt = asStored(p.CreatedAt), asStored(p.UpdatedAt)
	return p
}

func testAPIKeyProviders(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	openai, weather := newAPIKeyProvider("openai", "id-openai"), newAPIKeyProvider("weather", "id-weather")
	mustOK(t, s.CreateAPIKeyProvider(ctx, weather, nil), "create weather")
	mustOK(t, s.CreateAPIKeyProvider(ctx, openai, map[string]string{"cost-center": "42"}), "create openai")
	wantErr(t, s.CreateAPIKeyProvider(ctx, newAPIKeyProvider("openai", "id-other"), nil),
		storage.ErrAlreadyExists, "create provider with a taken name")
	wantErr(t, s.CreateAPIKeyProvider(ctx, newAPIKeyProvider("other", "id-openai"), nil),
		storage.ErrAlreadyExists, "create provider with a taken id")
	_, err := s.GetAPIKeyProvider(ctx, "other")
	wantErr(t, err, storage.ErrNotFound, "get provider whose creation failed")

	got, err := s.GetAPIKeyProvider(ctx, "openai")
	mustOK(t, err, "get provider")
	wantDiff(t, "provider", storedAPIKeyProvider(openai), got)

	list, err := s.ListAPIKeyProviders(ctx, storage.Page{})
	mustOK(t, err, "list providers")
	wantDiff(t, "provider list", []storage.APIKeyProvider{storedAPIKeyProvider(openai), storedAPIKeyProvider(weather)}, list)

	mustOK(t, s.DeleteAPIKeyProvider(ctx, "openai"), "delete provider")
	_, err = s.GetAPIKeyProvider(ctx, "openai")
	wantErr(t, err, storage.ErrNotFound, "get deleted provider")
	wantErr(t, s.DeleteAPIKeyProvider(ctx, "openai"), storage.ErrNotFound, "delete provider twice")
	// The old id is free again too.
	mustOK(t, s.CreateAPIKeyProvider(ctx, newAPIKeyProvider("openai-2", "id-openai"), nil), "reuse a deleted provider's id")
}

func testAPIKeyProviderUpdater(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	orig := newAPIKeyProvider("openai", "id-openai")
	mustOK(t, s.CreateAPIKeyProvider(ctx, orig, nil), "create provider")
	want := storedAPIKeyProvider(orig)

	_, err := s.UpdateAPIKeyProvider(ctx, "openai", func(p storage.APIKeyProvider) (storage.APIKeyProvider, error) {
		p.APIKey = storage.Sealed{KeyID: "key-x", Blob: []byte("must not be stored")}
		return p, fmt.Errorf("wrapped: %w", errRefused)
	})
	wantErr(t, err, errRefused, "update with refusing updater")
	got, err := s.GetAPIKeyProvider(ctx, "openai")
	mustOK(t, err, "get provider")
	wantDiff(t, "provider after aborted update", want, got)

	newKey := storage.Sealed{KeyID: "key-2", Blob: []byte("rotated")}
	updated, err := s.UpdateAPIKeyProvider(ctx, "openai", func(p storage.APIKeyProvider) (storage.APIKeyProvider, error) {
		wantDiff(t, "provider passed to updater", want, p)
		p.ID, p.Name, p.CreatedAt = "id-forged", "renamed", time.Now()
		p.APIKey = newKey
		return p, nil
	})
	mustOK(t, err, "update provider")
	if updated.ID != "id-openai" || updated.Name != "openai" {
		t.Errorf("updater changed identity to id %q name %q", updated.ID, updated.Name)
	}
	checkStoredTime(t, "CreatedAt after update", updated.CreatedAt, orig.CreatedAt)
	checkUpdatedAt(t, "UpdatedAt after update", updated.UpdatedAt, want.UpdatedAt)
	got, err = s.GetAPIKeyProvider(ctx, "openai")
	mustOK(t, err, "get updated provider")
	wantDiff(t, "stored provider vs. UpdateAPIKeyProvider's result", updated, got)
	wantDiff(t, "updated API key", newKey, got.APIKey)
}

// testExternalSecretRefs checks that a provider's external secret
// reference is stored, replaced and removed with the provider, in place of
// its sealed secret, for both provider kinds.
func testExternalSecretRefs(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	ref := &storage.SecretRef{SecretID: "arn:aws:secretsmanager:us-east-1:123456789012:secret:corp-AbCdEf", JSONKey: "clientSecret"} //nolint:gosec // G101: where a secret is kept, not a secret
	o := newOAuth2Provider("corp", "id-corp")
	o.ClientSecret, o.ExternalSecret = storage.Sealed{}, ref
	a := newAPIKeyProvider("weather", "id-weather")
	a.APIKey, a.ExternalSecret = storage.Sealed{}, &storage.SecretRef{SecretID: "file:/run/secrets/weather.json", JSONKey: "key"}
	mustOK(t, s.CreateOAuth2Provider(ctx, o, nil), "create OAuth2 provider with an external secret")
	mustOK(t, s.CreateAPIKeyProvider(ctx, a, nil), "create API key provider with an external secret")
	gotO, err := s.GetOAuth2Provider(ctx, "corp")
	mustOK(t, err, "get OAuth2 provider")
	wantDiff(t, "OAuth2 provider with an external secret", storedOAuth2Provider(o), gotO)
	gotA, err := s.GetAPIKeyProvider(ctx, "weather")
	mustOK(t, err, "get API key provider")
	wantDiff(t, "API key provider with an external secret", storedAPIKeyProvider(a), gotA)

	// EXTERNAL to MANAGED: the sealed secret takes the reference's place.
	sealed := storage.Sealed{KeyID: "key-2", Blob: []byte("sealed")}
	gotO, err = s.UpdateOAuth2Provider(ctx, "corp", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) {
		p.ClientSecret, p.ExternalSecret = sealed, nil
		return p, nil
	})
	mustOK(t, err, "make the OAuth2 provider's secret managed")
	gotA, err = s.UpdateAPIKeyProvider(ctx, "weather", func(p storage.APIKeyProvider) (storage.APIKeyProvider, error) {
		p.APIKey, p.ExternalSecret = sealed, nil
		return p, nil
	})
	mustOK(t, err, "make the API key provider's key managed")
	o2, err := s.GetOAuth2Provider(ctx, "corp")
	mustOK(t, err, "get OAuth2 provider")
	a2, err := s.GetAPIKeyProvider(ctx, "weather")
	mustOK(t, err, "get API key provider")
	wantDiff(t, "managed OAuth2 provider", gotO, o2)
	wantDiff(t, "managed API key provider", gotA, a2)
	if o2.ExternalSecret != nil || a2.ExternalSecret != nil || o2.ClientSecret.KeyID != "key-2" || a2.APIKey.KeyID != "key-2" {
		t.Errorf("after the switch to MANAGED: %+v %+v", o2, a2)
	}

	// MANAGED to EXTERNAL: the sealed secret is gone.
	other := &storage.SecretRef{SecretID: "corp/oauth", JSONKey: "secret"} //nolint:gosec // G101: where a secret is kept, not a secret
	_, err = s.UpdateOAuth2Provider(ctx, "corp", func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) {
		p.ClientSecret, p.ExternalSecret = storage.Sealed{}, other
		return p, nil
	})
	mustOK(t, err, "make the OAuth2 provider's secret external")
	o3, err := s.GetOAuth2Provider(ctx, "corp")
	mustOK(t, err, "get OAuth2 provider")
	if !o3.ClientSecret.IsZero() || o3.ExternalSecret == nil || *o3.ExternalSecret != *other {
		t.Errorf("after the switch to EXTERNAL: %+v", o3)
	}
	list, err := s.ListAPIKeyProviders(ctx, storage.Page{})
	mustOK(t, err, "list API key providers")
	if len(list) != 1 || list[0].ExternalSecret != nil {
		t.Errorf("listed %+v", list)
	}
}

// testTimestamps checks that creation fills in missing times and that every
// time comes back in UTC with whole microseconds.
func testTimestamps(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	p := newPrincipal("AKIAZERO")
	p.CreatedAt, p.UpdatedAt = time.Time{}, time.Time{}
	mustOK(t, s.CreatePrincipal(ctx, p), "create principal with zero times")
	w := newWorkload("zero")
	w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}
	mustOK(t, s.CreateWorkloadIdentity(ctx, w, nil), "create workload identity with zero times")
	o := newOAuth2Provider("zero", "id-zero")
	o.CreatedAt, o.UpdatedAt = time.Time{}, time.Time{}
	mustOK(t, s.CreateOAuth2Provider(ctx, o, nil), "create oauth2 provider with zero times")
	a := newAPIKeyProvider("zero", "id-zero")
	a.CreatedAt, a.UpdatedAt = time.Time{}, time.Time{}
	mustOK(t, s.CreateAPIKeyProvider(ctx, a, nil), "create api key provider with zero times")

	gotP, err := s.GetPrincipal(ctx, "AKIAZERO")
	mustOK(t, err, "get principal")
	gotW, err := s.GetWorkloadIdentity(ctx, "zero")
	mustOK(t, err, "get workload identity")
	gotO, err := s.GetOAuth2Provider(ctx, "zero")
	mustOK(t, err, "get oauth2 provider")
	gotA, err := s.GetAPIKeyProvider(ctx, "zero")
	mustOK(t, err, "get api key provider")
	for what, ts := range map[string]time.Time{
		"principal CreatedAt": gotP.CreatedAt, "principal UpdatedAt": gotP.UpdatedAt,
		"workload CreatedAt": gotW.CreatedAt, "workload UpdatedAt": gotW.UpdatedAt,
		"oauth2 CreatedAt": gotO.CreatedAt, "oauth2 UpdatedAt": gotO.UpdatedAt,
		"api key CreatedAt": gotA.CreatedAt, "api key UpdatedAt": gotA.UpdatedAt,
	} {
		checkUpdatedAt(t, what, ts, before)
		if ts.Nanosecond()%1000 != 0 {
			t.Errorf("%s = %v has sub-microsecond digits", what, ts)
		}
	}

	// Given times are kept, normalised.
	given := newPrincipal("AKIAGIVEN")
	mustOK(t, s.CreatePrincipal(ctx, given), "create principal with times")
	gotP, err = s.GetPrincipal(ctx, "AKIAGIVEN")
	mustOK(t, err, "get principal")
	checkStoredTime(t, "given CreatedAt", gotP.CreatedAt, given.CreatedAt)
	checkStoredTime(t, "given UpdatedAt", gotP.UpdatedAt, given.UpdatedAt)
}

func testTokenVault(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetTokenVault(ctx, "default")
	wantErr(t, err, storage.ErrNotFound, "get token vault before its first update")

	_, err = s.UpdateTokenVault(ctx, "default", func(v storage.TokenVault) (storage.TokenVault, error) {
		v.KeyType = "ServiceManagedKey"
		return v, fmt.Errorf("wrapped: %w", errRefused)
	})
	wantErr(t, err, errRefused, "create token vault with refusing updater")
	_, err = s.GetTokenVault(ctx, "default")
	wantErr(t, err, storage.ErrNotFound, "get token vault after an aborted first update")

	before := time.Now().Add(-time.Second)
	first, err := s.UpdateTokenVault(ctx, "default", func(v storage.TokenVault) (storage.TokenVault, error) {
		wantDiff(t, "token vault passed to first updater", storage.TokenVault{ID: "default"}, v)
		v.ID = "forged"
		v.KeyType = "ServiceManagedKey"
		v.KeyID = "key-1"
		return v, nil
	})
	mustOK(t, err, "first update creates the token vault")
	if first.ID != "default" {
		t.Errorf("updater changed the vault id to %q", first.ID)
	}
	checkUpdatedAt(t, "LastModified after creation", first.LastModified, before)
	got, err := s.GetTokenVault(ctx, "default")
	mustOK(t, err, "get token vault")
	wantDiff(t, "stored token vault vs. UpdateTokenVault's result", first, got)
	_, err = s.GetTokenVault(ctx, "forged")
	wantErr(t, err, storage.ErrNotFound, "get token vault under the updater's id")

	_, err = s.UpdateTokenVault(ctx, "default", func(v storage.TokenVault) (storage.TokenVault, error) {
		v.KeyID = "must not be stored"
		return v, errRefused
	})
	wantErr(t, err, errRefused, "update token vault with refusing updater")

	second, err := s.UpdateTokenVault(ctx, "default", func(v storage.TokenVault) (storage.TokenVault, error) {
		wantDiff(t, "token vault passed to second updater", first, v)
		v.KeyType = "CustomerManagedKey"
		v.KMSKeyARN = "arn:aws:kms:us-east-1:123456789012:key/abc"
		v.KeyID = "key-2"
		return v, nil
	})
	mustOK(t, err, "second update")
	if second.LastModified.Before(first.LastModified) {
		t.Errorf("LastModified went back from %v to %v", first.LastModified, second.LastModified)
	}
	got, err = s.GetTokenVault(ctx, "default")
	mustOK(t, err, "get token vault")
	wantDiff(t, "token vault after second update", second, got)

	// Vaults are independent.
	_, err = s.GetTokenVault(ctx, "other")
	wantErr(t, err, storage.ErrNotFound, "get another token vault")
}
