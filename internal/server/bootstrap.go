package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/behalf-dev/behalf/internal/control"
	"github.com/behalf-dev/behalf/internal/storage"
)

var (
	bootstrapIDPattern     = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	bootstrapSecretPattern = regexp.MustCompile(`^[\x21-\x7e]{16,128}$`)
)

// bootstrapAdmin creates the first admin principal when none exists: from
// BEHALF_BOOTSTRAP_ACCESS_KEY_ID and BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY
// when both are set, otherwise with a generated key pair written to
// <data-dir>/admin-credentials in the AWS shared-credentials format.
func (s *Server) bootstrapAdmin(ctx context.Context, getenv func(string) string) error {
	id, secret := getenv("BEHALF_BOOTSTRAP_ACCESS_KEY_ID"), getenv("BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY")
	if (id == "") != (secret == "") {
		return fmt.Errorf("set both BEHALF_BOOTSTRAP_ACCESS_KEY_ID and BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY, or neither")
	}
	generated := id == ""
	if generated {
		id, secret = control.NewAccessKey()
	}
	if !bootstrapIDPattern.MatchString(id) {
		return fmt.Errorf("BEHALF_BOOTSTRAP_ACCESS_KEY_ID must be 16 to 128 characters of A-Z and 0-9")
	}
	if !bootstrapSecretPattern.MatchString(secret) {
		return fmt.Errorf("BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY must be 16 to 128 printable ASCII characters without spaces")
	}
	p, err := s.control.NewPrincipal(ctx, id, secret, storage.RoleAdmin, nil)
	if err != nil {
		return err
	}
	p.Description = "bootstrap admin"

	// Write the credentials before the principal exists, and publish the
	// file only if this process created it: no window in which an admin
	// exists whose secret nobody can read.
	path := s.cfg.AdminCredentialsPath()
	tmp := ""
	if generated {
		if tmp, err = writeCredentialsTemp(path, id, secret); err != nil {
			return err
		}
		defer os.Remove(tmp)
	}
	created, err := s.store.BootstrapPrincipal(ctx, p)
	if err != nil {
		return fmt.Errorf("bootstrap admin principal: %w", err)
	}
	if !created {
		return nil
	}
	if !generated {
		s.log.Info("created the bootstrap admin principal from the environment", "access_key_id", id)
		return nil
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write admin credentials: %w", err)
	}
	s.log.Info("created an admin principal; its credentials are in the AWS shared-credentials file",
		"access_key_id", id, "path", path)
	return nil
}

func writeCredentialsTemp(path, id, secret string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".admin-credentials-*")
	if err != nil {
		return "", fmt.Errorf("write admin credentials: %w", err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return "", err
	}
	content := fmt.Sprintf("# behalf admin principal, created by `behalf serve`.\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", id, secret)
	if _, err := f.WriteString(content); err != nil {
		return "", err
	}
	return f.Name(), f.Sync()
}
