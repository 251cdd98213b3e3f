package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/vault"
)

// releaseFails is storage whose refresh leases cannot be released.
type releaseFails struct{ storage.Storage }

func (releaseFails) FinishRefresh(context.Context, storage.ConnectionKey, string, int64, func(storage.Connection) (storage.Connection, error)) (storage.Connection, error) {
	return storage.Connection{}, errors.New("database unavailable")
}

// A lease holder whose lease will not release logs it and counts it, and
// still answers with what it found (here: another replica's fresh token).
// freshConnection stores, on SQLite, a connection of user id:alice whose
// access token "fresh-access-token" is good for an hour.
func freshConnection(t *testing.T, opts ...sqlstore.Option) (*sqlstore.Store, *vault.Vault, storage.ConnectionKey) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	kr, err := vault.OpenLocalKeyring(filepath.Join(dir, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(ctx, kr, kr.ServiceKeyID())
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, filepath.Join(dir, "behalf.db"), nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	k := storage.ConnectionKey{ProviderID: "provider-1", Workload: "agent-1", User: "id:alice"}
	now := time.Now()
	if err := st.CreateWorkloadIdentity(ctx, storage.WorkloadIdentity{Name: k.Workload, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	secret, err := v.SealClientSecret(ctx, k.ProviderID, []byte("client-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateOAuth2Provider(ctx, storage.OAuth2Provider{ID: k.ProviderID, Name: "provider", Vendor: "CustomOauth2", Config: []byte(`{}`),
		ClientSecret: secret, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(tokenSet{AccessToken: "fresh-access-token", Expiry: now.Add(time.Hour).Unix()}) //nolint:gosec // G117: a made-up token, sealed next
	sealed, err := v.Seal(ctx, raw, vault.ConnectionBinding(k))
	if err != nil {
		t.Fatal(err)
	}
	sess := storage.OAuthSession{ID: "session-1", StateHash: bytes.Repeat([]byte{1}, 32), ProviderID: k.ProviderID, Workload: k.Workload,
		User: k.User, Status: storage.SessionAuthorized, Request: []byte(`{}`), CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateOAuthSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := st.CompleteOAuthSession(ctx, sess.ID, storage.Connection{ConnectionKey: k, Status: storage.ConnectionActive, Details: []byte(`{}`),
		Tokens: sealed, ExpiresAt: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastUsedAt: now}); err != nil {
		t.Fatal(err)
	}

	return st, v, k
}

func TestLeaseReleaseFailureIsLoggedAndCounted(t *testing.T) {
	ctx := t.Context()
	st, v, k := freshConnection(t)
	var logs bytes.Buffer
	s := New(Deps{Store: releaseFails{st}, Vault: v, Now: time.Now, Log: slog.New(slog.NewTextHandler(&logs, nil))}, Options{})
	ts, err := s.refreshOnce(ctx, k, access.OAuth2Provider{})
	if err != nil || ts.AccessToken != "fresh-access-token" {
		t.Fatalf("refreshOnce = %+v, %v", ts, err)
	}
	if n := s.LeaseReleaseFailures(); n != 1 {
		t.Errorf("%d release failures counted, want 1", n)
	}
	if !strings.Contains(logs.String(), "refresh lease not released") || !strings.Contains(logs.String(), "database unavailable") {
		t.Errorf("log: %s", logs.String())
	}
}
