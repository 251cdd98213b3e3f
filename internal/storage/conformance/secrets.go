package conformance

import (
	"cmp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// secretsFixture creates one record per sealed column and key, and returns
// each record's reference by name.
func secretsFixture(t *testing.T, s storage.Storage) map[string]storage.SealedRef {
	ctx := t.Context()
	sealed := func(keyID, blob string) storage.Sealed {
		return storage.Sealed{KeyID: keyID, Blob: []byte(blob)}
	}
	p1, p2 := newPrincipal("AKIA1"), newPrincipal("AKIA2")
	p1.Secret, p2.Secret = sealed("key-1", "p1"), sealed("key-2", "p2")
	o1, o2 := newOAuth2Provider("oauth-1", "oid-1"), newOAuth2Provider("oauth-2", "oid-2")
	o1.ClientSecret, o2.ClientSecret = sealed("key-1", "o1"), storage.Sealed{}
	a1, a2 := newAPIKeyProvider("apikey-1", "aid-1"), newAPIKeyProvider("apikey-2", "aid-2")
	a1.APIKey, a2.APIKey = sealed("key-1", "a1"), sealed("key-2", "a2")

	mustOK(t, s.CreatePrincipal(ctx, p1), "create principal 1")
	mustOK(t, s.CreatePrincipal(ctx, p2), "create principal 2")
	mustOK(t, s.CreateOAuth2Provider(ctx, o1, nil), "create oauth2 provider 1")
	mustOK(t, s.CreateOAuth2Provider(ctx, o2, nil), "create oauth2 provider 2")
	mustOK(t, s.CreateAPIKeyProvider(ctx, a1, nil), "create api key provider 1")
	mustOK(t, s.CreateAPIKeyProvider(ctx, a2, nil), "create api key provider 2")
	s1, s2 := newServerKey("wat", "sk-1", past()), newServerKey("audit", "sk-2", past())
	s1.Key, s2.Key = sealed("key-1", "s1"), sealed("key-2", "s2")
	mustOK(t, s.CreateServerKey(ctx, s1), "create server key 1")
	mustOK(t, s.CreateServerKey(ctx, s2), "create server key 2")
	mustOK(t, s.CreateWorkloadIdentity(ctx, newWorkload("agent"), nil), "create workload identity")
	c1 := newCachedToken("oid-1", "agent", "scopes=a", time.Now().Add(time.Hour))
	c2 := newCachedToken("oid-1", "agent", "scopes=b", time.Now().Add(time.Hour))
	c1.Token, c2.Token = sealed("key-1", "c1"), sealed("key-2", "c2")
	mustOK(t, s.PutCachedToken(ctx, c1), "put cached token 1")
	mustOK(t, s.PutCachedToken(ctx, c2), "put cached token 2")
	k1 := storage.ConnectionKey{ProviderID: "oid-1", Workload: "agent", User: "alice"}
	k2 := storage.ConnectionKey{ProviderID: "oid-1", Workload: "agent", User: "bob"}
	// Sessions: one sealed with each key, one without secrets; the sessions
	// that created the connections are completed and hold none either.
	os1, os2, os3 := newSession("sess-1", k1), newSession("sess-2", k2), newSession("sess-3", k1)
	os1.Secrets, os2.Secrets, os3.Secrets = sealed("key-1", "os1"), sealed("key-2", "os2"), storage.Sealed{}
	for _, sess := range []storage.OAuthSession{os1, os2, os3} {
		mustOK(t, s.CreateOAuthSession(ctx, sess), "create session "+sess.ID)
	}
	cn1, cn2 := newConnection(k1), newConnection(k2)
	cn1.Tokens, cn2.Tokens = sealed("key-1", "cn1"), sealed("key-2", "cn2")
	connect(t, s, cn1)
	connect(t, s, cn2)

	// Owners are what the vault binds ciphertexts to: access key ids for
	// principals, provider ids (not names) for providers, "<purpose>/<id>"
	// for server keys, for cached tokens the provider id with the
	// workload and cache key, session ids for sessions, and for
	// connections the provider id with the workload and user.
	return map[string]storage.SealedRef{
		"p1":  {Kind: storage.SecretPrincipal, Owner: "AKIA1", Sealed: p1.Secret},
		"p2":  {Kind: storage.SecretPrincipal, Owner: "AKIA2", Sealed: p2.Secret},
		"o1":  {Kind: storage.SecretOAuth2ClientSecret, Owner: "oid-1", Sealed: o1.ClientSecret},
		"a1":  {Kind: storage.SecretAPIKey, Owner: "aid-1", Sealed: a1.APIKey},
		"a2":  {Kind: storage.SecretAPIKey, Owner: "aid-2", Sealed: a2.APIKey},
		"s1":  {Kind: storage.SecretServerKey, Owner: "wat/sk-1", Sealed: s1.Key},
		"s2":  {Kind: storage.SecretServerKey, Owner: "audit/sk-2", Sealed: s2.Key},
		"c1":  {Kind: storage.SecretCachedToken, Owner: "oid-1", Workload: "agent", User: "scopes=a", Sealed: c1.Token},
		"c2":  {Kind: storage.SecretCachedToken, Owner: "oid-1", Workload: "agent", User: "scopes=b", Sealed: c2.Token},
		"os1": {Kind: storage.SecretSession, Owner: "sess-1", Workload: "agent", User: "alice", Sealed: os1.Secrets},
		"os2": {Kind: storage.SecretSession, Owner: "sess-2", Workload: "agent", User: "bob", Sealed: os2.Secrets},
		"cn1": {Kind: storage.SecretConnection, Owner: "oid-1", Workload: "agent", User: "alice", Sealed: cn1.Tokens},
		"cn2": {Kind: storage.SecretConnection, Owner: "oid-1", Workload: "agent", User: "bob", Sealed: cn2.Tokens},
	}
}

func sortRefs(refs []storage.SealedRef) []storage.SealedRef {
	slices.SortFunc(refs, func(a, b storage.SealedRef) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Owner, b.Owner),
			cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.User, b.User))
	})
	return refs
}

func refsOf(fixture map[string]storage.SealedRef, names ...string) []storage.SealedRef {
	refs := make([]storage.SealedRef, 0, len(names))
	for _, n := range names {
		refs = append(refs, fixture[n])
	}
	return sortRefs(refs)
}

func testListStaleSecrets(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	stale, err := s.ListStaleSecrets(ctx, storage.AllUnder("key-1"), 0)
	mustOK(t, err, "list stale secrets of an empty store")
	if len(stale) != 0 {
		t.Errorf("empty store has stale secrets %v", stale)
	}

	fixture := secretsFixture(t, s)
	for _, c := range []struct {
		keyID string
		want  []storage.SealedRef
	}{
		{"key-2", refsOf(fixture, "p1", "o1", "a1", "s1", "c1", "os1", "cn1")},
		{"key-1", refsOf(fixture, "p2", "a2", "s2", "c2", "os2", "cn2")},
		// The provider without a client secret and the sessions without
		// secrets are never listed.
		{"key-3", refsOf(fixture, "p1", "p2", "o1", "a1", "a2", "s1", "s2", "c1", "c2", "os1", "os2", "cn1", "cn2")},
	} {
		got, err := s.ListStaleSecrets(ctx, storage.AllUnder(c.keyID), 0)
		mustOK(t, err, "list secrets not sealed with "+c.keyID)
		wantDiff(t, "secrets not sealed with "+c.keyID, c.want, sortRefs(got))
	}

	// Each kind is stale against its own target: here behalf's own
	// secrets belong under key-1 and the others under key-2.
	perKind := func(kind storage.SecretKind) string {
		if kind == storage.SecretPrincipal || kind == storage.SecretServerKey {
			return "key-1"
		}
		return "key-2"
	}
	got, err := s.ListStaleSecrets(ctx, perKind, 0)
	mustOK(t, err, "list secrets not under their kind's key")
	wantDiff(t, "secrets not under their kind's key", refsOf(fixture, "p2", "s2", "o1", "a1", "c1", "os1", "cn1"), sortRefs(got))

	all := refsOf(fixture, "p1", "p2", "o1", "a1", "a2", "s1", "s2", "c1", "c2", "os1", "os2", "cn1", "cn2")
	for _, limit := range []int{1, 2, 4, 6, 8, 10, 12, 13} {
		got, err := s.ListStaleSecrets(ctx, storage.AllUnder("key-3"), limit)
		mustOK(t, err, "list stale secrets with a limit")
		if len(got) != limit {
			t.Errorf("limit %d listed %d secrets", limit, len(got))
		}
		for _, ref := range got {
			if !slices.ContainsFunc(all, func(r storage.SealedRef) bool {
				return r.Kind == ref.Kind && r.Owner == ref.Owner && r.Workload == ref.Workload && r.User == ref.User &&
					string(r.Sealed.Blob) == string(ref.Sealed.Blob)
			}) {
				t.Errorf("limit %d listed unknown secret %+v", limit, ref)
			}
		}
	}
}

// A walk that never replaces what it lists (records it cannot re-wrap)
// still visits every stale secret once and ends.
func testListStaleSecretsAfter(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	fixture := secretsFixture(t, s)
	for _, batch := range []int{1, 2, 5, 13} {
		var walked []storage.SealedRef
		after := storage.SealedRef{}
		for range 20 {
			got, err := s.ListStaleSecretsAfter(ctx, storage.AllUnder("key-3"), after, batch)
			mustOK(t, err, "list stale secrets after a cursor")
			if len(got) == 0 {
				break
			}
			walked = append(walked, got...)
			after = got[len(got)-1]
		}
		want := refsOf(fixture, "p1", "p2", "o1", "a1", "a2", "s1", "s2", "c1", "c2", "os1", "os2", "cn1", "cn2")
		wantDiff(t, "secrets walked in batches of "+strconv.Itoa(batch), sortRefs(want), sortRefs(walked))
	}
	first, err := s.ListStaleSecretsAfter(ctx, storage.AllUnder("key-2"), storage.SealedRef{}, 0)
	mustOK(t, err, "list stale secrets from the start")
	all, err := s.ListStaleSecrets(ctx, storage.AllUnder("key-2"), 0)
	mustOK(t, err, "list stale secrets")
	wantDiff(t, "a zero cursor lists from the start", all, first)
}

func testReplaceSecret(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	fixture := secretsFixture(t, s)
	next := func(blob string) storage.Sealed { return storage.Sealed{KeyID: "key-2", Blob: []byte(blob)} }

	// Each kind's secret can be replaced through the reference rotation lists.
	stale, err := s.ListStaleSecrets(ctx, storage.AllUnder("key-2"), 0)
	mustOK(t, err, "list stale secrets")
	if len(stale) != 7 {
		t.Fatalf("listed %d stale secrets, want 7", len(stale))
	}
	// Version counts changes of the tokens, which re-wrapping is not.
	cn1Before, err := s.GetConnection(ctx, storage.ConnectionKey{ProviderID: "oid-1", Workload: "agent", User: "alice"})
	mustOK(t, err, "get connection")
	for _, ref := range stale {
		mustOK(t, s.ReplaceSecret(ctx, ref, next("new:"+ref.Owner)), "replace "+string(ref.Kind)+" of "+ref.Owner)
	}
	p1, err := s.GetPrincipal(ctx, "AKIA1")
	mustOK(t, err, "get principal")
	wantDiff(t, "replaced principal secret", next("new:AKIA1"), p1.Secret)
	if p1.Description != newPrincipal("AKIA1").Description {
		t.Errorf("replacing the secret changed the description to %q", p1.Description)
	}
	o1, err := s.GetOAuth2Provider(ctx, "oauth-1")
	mustOK(t, err, "get oauth2 provider")
	wantDiff(t, "replaced client secret", next("new:oid-1"), o1.ClientSecret)
	a1, err := s.GetAPIKeyProvider(ctx, "apikey-1")
	mustOK(t, err, "get api key provider")
	wantDiff(t, "replaced api key", next("new:aid-1"), a1.APIKey)
	keys, err := s.ListServerKeys(ctx, "wat")
	mustOK(t, err, "list server keys")
	if len(keys) != 1 {
		t.Fatalf("listed %d wat keys, want 1", len(keys))
	}
	wantDiff(t, "replaced server key", next("new:wat/sk-1"), keys[0].Key)
	c1, err := s.GetCachedToken(ctx, "oid-1", "agent", "scopes=a")
	mustOK(t, err, "get cached token")
	wantDiff(t, "replaced cached token", next("new:oid-1"), c1.Token)
	c2, err := s.GetCachedToken(ctx, "oid-1", "agent", "scopes=b")
	mustOK(t, err, "get the other cached token")
	wantDiff(t, "cached token under another key", fixture["c2"].Sealed, c2.Token)
	os1, err := s.GetOAuthSession(ctx, "sess-1")
	mustOK(t, err, "get session")
	wantDiff(t, "replaced session secrets", next("new:sess-1"), os1.Secrets)
	os2, err := s.GetOAuthSession(ctx, "sess-2")
	mustOK(t, err, "get the other session")
	wantDiff(t, "session sealed with the current key", fixture["os2"].Sealed, os2.Secrets)
	cn1, err := s.GetConnection(ctx, storage.ConnectionKey{ProviderID: "oid-1", Workload: "agent", User: "alice"})
	mustOK(t, err, "get connection")
	wantDiff(t, "replaced connection tokens", next("new:oid-1"), cn1.Tokens)
	cn1.Tokens = cn1Before.Tokens
	wantDiff(t, "connection after re-wrapping, but for its tokens", cn1Before, cn1)
	cn2, err := s.GetConnection(ctx, storage.ConnectionKey{ProviderID: "oid-1", Workload: "agent", User: "bob"})
	mustOK(t, err, "get the other connection")
	wantDiff(t, "connection of another user", fixture["cn2"].Sealed, cn2.Tokens)
	stale, err = s.ListStaleSecrets(ctx, storage.AllUnder("key-2"), 0)
	mustOK(t, err, "list stale secrets after rotation")
	if len(stale) != 0 {
		t.Errorf("stale secrets left after rotation: %v", stale)
	}

	// Compare-and-swap: a reference that no longer matches is refused.
	wantErr(t, s.ReplaceSecret(ctx, fixture["p1"], next("late")), storage.ErrConflict, "replace with an outdated reference")
	wrongBlob := fixture["p2"]
	wrongBlob.Sealed.Blob = []byte("not the stored blob")
	wantErr(t, s.ReplaceSecret(ctx, wrongBlob, next("x")), storage.ErrConflict, "replace with the right key id but the wrong blob")
	wrongKey := fixture["p2"]
	wrongKey.Sealed.KeyID = "key-9"
	wantErr(t, s.ReplaceSecret(ctx, wrongKey, next("x")), storage.ErrConflict, "replace with the right blob but the wrong key id")
	p2, err := s.GetPrincipal(ctx, "AKIA2")
	mustOK(t, err, "get principal 2")
	wantDiff(t, "secret after refused replacements", fixture["p2"].Sealed, p2.Secret)
	noSecret := storage.SealedRef{Kind: storage.SecretOAuth2ClientSecret, Owner: "oid-2", Sealed: next("o2")}
	wantErr(t, s.ReplaceSecret(ctx, noSecret, next("x")), storage.ErrConflict, "replace a secret that is not stored")

	// Owners are providers' ids, not names.
	byName := fixture["a2"]
	byName.Owner = "apikey-2"
	wantErr(t, s.ReplaceSecret(ctx, byName, next("x")), storage.ErrNotFound, "replace naming the provider instead of its id")

	// Every part of a binding names the row: a reference whose workload,
	// user or owner format does not fit its kind finds nothing.
	for what, ref := range map[string]storage.SealedRef{
		"a cached token under another workload": {Kind: storage.SecretCachedToken, Owner: "oid-1", Workload: "other", User: "scopes=b", Sealed: fixture["c2"].Sealed},
		"a cached token under another key":      {Kind: storage.SecretCachedToken, Owner: "oid-1", Workload: "agent", User: "scopes=z", Sealed: fixture["c2"].Sealed},
		"a cached token without its workload":   {Kind: storage.SecretCachedToken, Owner: "oid-1", Sealed: fixture["c2"].Sealed},
		"a server key without its purpose":      {Kind: storage.SecretServerKey, Owner: "sk-2", Sealed: fixture["s2"].Sealed},
		"a server key under another purpose":    {Kind: storage.SecretServerKey, Owner: "wat/sk-2", Sealed: fixture["s2"].Sealed},
		"a server key with a workload":          {Kind: storage.SecretServerKey, Owner: "audit/sk-2", Workload: "agent", Sealed: fixture["s2"].Sealed},
		"a principal with a workload":           {Kind: storage.SecretPrincipal, Owner: "AKIA2", Workload: "agent", Sealed: fixture["p2"].Sealed},
		"a connection of another user":          {Kind: storage.SecretConnection, Owner: "oid-1", Workload: "agent", User: "carol", Sealed: fixture["cn2"].Sealed},
		"a connection without its user":         {Kind: storage.SecretConnection, Owner: "oid-1", Workload: "agent", Sealed: fixture["cn2"].Sealed},
		"a connection under the provider name":  {Kind: storage.SecretConnection, Owner: "oauth-1", Workload: "agent", User: "bob", Sealed: fixture["cn2"].Sealed},
		"a session without its user":            {Kind: storage.SecretSession, Owner: "sess-2", Workload: "agent", Sealed: fixture["os2"].Sealed},
		"a session of another user":             {Kind: storage.SecretSession, Owner: "sess-2", Workload: "agent", User: "alice", Sealed: fixture["os2"].Sealed},
		"a missing session":                     {Kind: storage.SecretSession, Owner: "sess-9", Workload: "agent", User: "bob", Sealed: fixture["os2"].Sealed},
	} {
		wantErr(t, s.ReplaceSecret(ctx, ref, next("x")), storage.ErrNotFound, "replace "+what)
	}
	mustOK(t, s.ReplaceSecret(ctx, fixture["s2"], next("new:s2")), "replace server key 2")
	wantErr(t, s.ReplaceSecret(ctx, fixture["s2"], next("newer:s2")), storage.ErrConflict, "replace server key 2 twice")

	mustOK(t, s.DeleteServerKey(ctx, "audit", "sk-2"), "delete server key")
	wantErr(t, s.ReplaceSecret(ctx, fixture["s2"], next("x")), storage.ErrNotFound, "replace a deleted server key")
	wantErr(t, s.ReplaceSecret(ctx, fixture["os1"], next("late")), storage.ErrConflict, "replace session secrets with an outdated reference")
	wantErr(t, s.ReplaceSecret(ctx, fixture["cn1"], next("late")), storage.ErrConflict, "replace connection tokens with an outdated reference")
	noSecrets := storage.SealedRef{Kind: storage.SecretSession, Owner: "sess-3", Workload: "agent", User: "alice", Sealed: next("os3")}
	wantErr(t, s.ReplaceSecret(ctx, noSecrets, next("x")), storage.ErrConflict, "replace the secrets of a session that holds none")

	mustOK(t, s.DeleteWorkloadIdentity(ctx, "agent"), "delete the tokens' workload")
	wantErr(t, s.ReplaceSecret(ctx, fixture["c2"], next("x")), storage.ErrNotFound, "replace a deleted cached token")
	wantErr(t, s.ReplaceSecret(ctx, fixture["cn2"], next("x")), storage.ErrNotFound, "replace the tokens of a deleted connection")
	wantErr(t, s.ReplaceSecret(ctx, fixture["os2"], next("x")), storage.ErrNotFound, "replace the secrets of a deleted session")
	mustOK(t, s.DeleteAPIKeyProvider(ctx, "apikey-2"), "delete api key provider")
	wantErr(t, s.ReplaceSecret(ctx, fixture["a2"], next("x")), storage.ErrNotFound, "replace the secret of a deleted owner")
	gone := storage.SealedRef{Kind: storage.SecretPrincipal, Owner: "AKIA-GONE", Sealed: fixture["p2"].Sealed}
	wantErr(t, s.ReplaceSecret(ctx, gone, next("x")), storage.ErrNotFound, "replace the secret of a missing principal")

	if err := s.ReplaceSecret(ctx, storage.SealedRef{Kind: "no-such-kind", Owner: "AKIA2", Sealed: fixture["p2"].Sealed}, next("x")); err == nil {
		t.Error("replace with an unknown secret kind succeeded")
	}
}

// ResetTokenVault deletes the users' tokens sealed under the deleted key,
// keeps the providers with their secrets Lost, leaves what other keys seal
// and behalf's own secrets alone, and commits with the vault's new key.
func testResetTokenVault(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	fixture := secretsFixture(t, s)
	_, err := s.UpdateTokenVault(ctx, "default", func(v storage.TokenVault) (storage.TokenVault, error) {
		v.KeyType, v.KMSKeyARN, v.KeyID = "CustomerManagedKey", "arn:aws:kms:us-east-1:123456789012:key/k1", "key-1"
		return v, nil
	})
	mustOK(t, err, "put the vault under key-1")
	toService := func(v storage.TokenVault, _ storage.VaultReset) (storage.TokenVault, error) {
		v.KeyType, v.KMSKeyARN, v.KeyID = "ServiceManagedKey", "", "key-service"
		return v, nil
	}

	_, _, err = s.ResetTokenVault(ctx, "default", "key-2", toService)
	wantErr(t, err, storage.ErrConflict, "reset a vault no longer under the key")
	_, _, err = s.ResetTokenVault(ctx, "default", "key-1", func(storage.TokenVault, storage.VaultReset) (storage.TokenVault, error) {
		return storage.TokenVault{}, errRefused
	})
	wantErr(t, err, errRefused, "reset with a refusing updater")
	_, err = s.GetConnection(ctx, storage.ConnectionKey{ProviderID: "oid-1", Workload: "agent", User: "alice"})
	mustOK(t, err, "a refused reset deletes nothing")
	_, _, err = s.ResetTokenVault(ctx, "other", "key-1", toService)
	wantErr(t, err, storage.ErrNotFound, "reset a missing vault")

	before := time.Now().Add(-time.Second)
	var seen storage.VaultReset
	v, removed, err := s.ResetTokenVault(ctx, "default", "key-1", func(v storage.TokenVault, r storage.VaultReset) (storage.TokenVault, error) {
		seen = r
		return toService(v, r)
	})
	mustOK(t, err, "reset the vault")
	want := storage.VaultReset{Connections: 1, Sessions: 1, CachedTokens: 1, ClientSecrets: []string{"oauth-1"}, APIKeys: []string{"apikey-1"}}
	wantDiff(t, "what the reset removed", want, removed)
	wantDiff(t, "what the updater saw", want, seen)
	if v.KeyID != "key-service" || v.KeyType != "ServiceManagedKey" || v.KMSKeyARN != "" {
		t.Errorf("vault after reset: %+v", v)
	}
	checkUpdatedAt(t, "LastModified after reset", v.LastModified, before)
	got, err := s.GetTokenVault(ctx, "default")
	mustOK(t, err, "get the vault after reset")
	wantDiff(t, "stored vault vs. ResetTokenVault's result", v, got)

	// The tokens under key-1 are gone; those under key-2 stay.
	_, err = s.GetConnection(ctx, storage.ConnectionKey{ProviderID: "oid-1", Workload: "agent", User: "alice"})
	wantErr(t, err, storage.ErrNotFound, "connection sealed under the deleted key")
	_, err = s.GetOAuthSession(ctx, "sess-1")
	wantErr(t, err, storage.ErrNotFound, "session sealed under the deleted key")
	_, err = s.GetCachedToken(ctx, "oid-1", "agent", "scopes=a")
	wantErr(t, err, storage.ErrNotFound, "cached token sealed under the deleted key")
	cn2, err := s.GetConnection(ctx, storage.ConnectionKey{ProviderID: "oid-1", Workload: "agent", User: "bob"})
	mustOK(t, err, "connection under another key")
	wantDiff(t, "connection under another key", fixture["cn2"].Sealed, cn2.Tokens)
	_, err = s.GetOAuthSession(ctx, "sess-3")
	mustOK(t, err, "a session without secrets stays")

	// The providers stay, their secrets Lost; the other key's stays.
	o1, err := s.GetOAuth2Provider(ctx, "oauth-1")
	mustOK(t, err, "the OAuth2 provider stays")
	if !o1.ClientSecret.Lost() || o1.ClientSecret.KeyID != "key-1" {
		t.Errorf("client secret after reset: %+v, want Lost under key-1", o1.ClientSecret)
	}
	checkUpdatedAt(t, "provider UpdatedAt after reset", o1.UpdatedAt, before)
	a1, err := s.GetAPIKeyProvider(ctx, "apikey-1")
	mustOK(t, err, "the API key provider stays")
	if !a1.APIKey.Lost() {
		t.Errorf("API key after reset: %+v, want Lost", a1.APIKey)
	}
	a2, err := s.GetAPIKeyProvider(ctx, "apikey-2")
	mustOK(t, err, "API key provider under another key")
	wantDiff(t, "API key under another key", fixture["a2"].Sealed, a2.APIKey)
	if o2, err := s.GetOAuth2Provider(ctx, "oauth-2"); err != nil || !o2.ClientSecret.IsZero() {
		t.Errorf("a provider without a client secret after reset: %+v %v", o2.ClientSecret, err)
	}

	// behalf's own secrets are not the vault's: left as they are.
	p1, err := s.GetPrincipal(ctx, "AKIA1")
	mustOK(t, err, "get principal")
	wantDiff(t, "principal's secret under the deleted key", fixture["p1"].Sealed, p1.Secret)
	keys, err := s.ListServerKeys(ctx, "wat")
	mustOK(t, err, "list server keys")
	if len(keys) != 1 {
		t.Fatalf("listed %d wat keys, want 1", len(keys))
	}
	wantDiff(t, "server key under the deleted key", fixture["s1"].Sealed, keys[0].Key)

	// Lost secrets are never stale: there is nothing left to re-wrap.
	stale, err := s.ListStaleSecrets(ctx, storage.AllUnder("key-service"), 0)
	mustOK(t, err, "list stale secrets after reset")
	wantDiff(t, "stale secrets after reset", refsOf(fixture, "p1", "p2", "a2", "s1", "s2", "c2", "os2", "cn2"), sortRefs(stale))

	// A second reset under the old key is refused; the vault moved on.
	_, _, err = s.ResetTokenVault(ctx, "default", "key-1", toService)
	wantErr(t, err, storage.ErrConflict, "reset twice")

	// Setting the secret again ends the loss.
	_, err = s.UpdateAPIKeyProvider(ctx, "apikey-1", func(p storage.APIKeyProvider) (storage.APIKeyProvider, error) {
		p.APIKey = storage.Sealed{KeyID: "key-service", Blob: []byte("a1 again")}
		return p, nil
	})
	mustOK(t, err, "set the API key again")
	if a1, _ := s.GetAPIKeyProvider(ctx, "apikey-1"); a1.APIKey.Lost() || string(a1.APIKey.Blob) != "a1 again" {
		t.Errorf("API key set again: %+v", a1.APIKey)
	}
}
