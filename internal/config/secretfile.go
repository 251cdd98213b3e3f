package config

import (
	"fmt"
	"os"
	"strings"
)

// ReadSecretFile reads a secret from a file of at most 4 KiB readable by
// its owner only, without surrounding white space (so `openssl rand -hex
// 32` output works); "" for no file. Its errors name the file, never its
// content.
func ReadSecretFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 || !fi.Mode().IsRegular() || fi.Size() > 4<<10 {
		return "", fmt.Errorf("%s must be a file of at most 4 KiB readable by its owner only (chmod 600), not mode %04o", path, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path) //nolint:gosec // G304: a path from the operator's configuration
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(raw))
	if secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
}
