package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"

	"github.com/behalf-dev/behalf/internal/control"
	"github.com/behalf-dev/behalf/internal/logging"
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
		defer s.removeCredentialsTemp(ctx, tmp)
	}
	created, err := s.store.BootstrapPrincipal(ctx, p)
	if err != nil {
		return fmt.Errorf("bootstrap admin principal: %w", err)
	}
	if !created {
		return nil
	}
	if !generated {
		s.log.LogAttrs(ctx, slog.LevelInfo, "created the bootstrap admin principal from the environment", slog.String(logging.KeyAccessKeyID, id))
		return nil
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write admin credentials: %w", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "created an admin principal; its credentials are in the AWS shared-credentials file",
		slog.String(logging.KeyAccessKeyID, id), slog.String(logging.KeyPath, path))
	return nil
}

// removeCredentialsTemp removes the temporary credentials file unless it
// was published; one left behind holds an admin secret, so it is logged.
func (s *Server) removeCredentialsTemp(ctx context.Context, tmp string) {
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.LogAttrs(ctx, slog.LevelError, "temporary admin credentials file not removed; remove it", slog.String(logging.KeyPath, tmp), logging.Err(err))
	}
}

// writeCredentialsTemp writes the credentials file under a temporary name;
// on failure it leaves no file behind.
func writeCredentialsTemp(path, id, secret string) (name string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".admin-credentials-*")
	if err != nil {
		return "", fmt.Errorf("write admin credentials: %w", err)
	}
	content := fmt.Sprintf("# behalf admin principal, created by `behalf serve`.\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", id, secret)
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(content)
	}
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return "", fmt.Errorf("write admin credentials: %w", errors.Join(err, os.Remove(f.Name())))
	}
	return f.Name(), nil
}
