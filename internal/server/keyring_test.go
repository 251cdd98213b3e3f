package server_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/server"
)

// A database that holds sealed secrets is never paired with a new keyring:
// starting without the keyring fails, names the file, and writes nothing.
func TestMissingKeyringWithSealedSecrets(t *testing.T) {
	dataDir := t.TempDir()
	srv, _ := startWithEnv(t, dataDir, nil) // seals the bootstrap admin's secret
	srv.Close()
	keyring := filepath.Join(dataDir, "keyring.json")
	if err := os.Remove(keyring); err != nil {
		t.Fatal(err)
	}

	f := config.Defaults()
	f.DataDir = dataDir
	cfg, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(context.Background(), cfg, slog.New(slog.DiscardHandler), server.Options{Getenv: func(string) string { return "" }})
	if err == nil || !strings.Contains(err.Error(), keyring) {
		t.Fatalf("start without the keyring of a used database: %v, want an error naming %s", err, keyring)
	}
	if _, statErr := os.Stat(keyring); !os.IsNotExist(statErr) {
		t.Fatalf("a failed start wrote a new keyring (%v)", statErr)
	}
}
