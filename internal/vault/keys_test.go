package vault

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeysRouteByOwner(t *testing.T) {
	ctx := context.Background()
	kr, err := OpenLocalKeyring(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys := NewKeys(kr)
	id := kr.ServiceKeyID()
	w, err := keys.Key(ctx, id)
	if err != nil || w.KeyID() != id {
		t.Fatalf("Key(%s) = %v, %v", id, w, err)
	}
	if err := keys.Check(ctx, id); err != nil {
		t.Fatalf("Check(%s) = %v", id, err)
	}
	if _, err := keys.Signer(ctx, id); !errors.Is(err, ErrNotSigningKey) {
		t.Fatalf("Signer(%s) = %v, want ErrNotSigningKey", id, err)
	}
	if err := keys.Check(ctx, LocalPrefix+"00000000-0000-0000-0000-000000000000"); !errors.Is(err, ErrKeyGone) {
		t.Fatalf("Check(missing local key) = %v, want ErrKeyGone", err)
	}
	_, err = keys.Key(ctx, "arn:aws:kms:us-east-1:111122223333:key/x")
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "local") {
		t.Fatalf("Key(unowned id) = %v, want ErrUnknownKey naming the configured backends", err)
	}
}
