package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/behalf-dev/behalf/internal/control"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
)

// openKeyring loads the local keyring at path. A new one is created only
// for a database that has never sealed anything: a new keyring cannot open
// secrets sealed under a lost one, so writing it would only hide the loss.
func openKeyring(ctx context.Context, path string, st storage.Storage) (*vault.LocalKeyring, error) {
	kr, err := vault.LoadLocalKeyring(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return kr, err
	}
	used, err := holdsSealedData(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("keyring %s is missing; checking whether the database needs it: %w", path, err)
	}
	if used {
		// Another replica sharing the file may have created it after the
		// first look and then sealed its first record.
		if kr, err := vault.LoadLocalKeyring(path); !errors.Is(err, fs.ErrNotExist) {
			return kr, err
		}
		return nil, fmt.Errorf("keyring %s is missing, but the database holds secrets sealed under it; restore the file (a new keyring could not open them)", path)
	}
	return vault.OpenLocalKeyring(path)
}

// holdsSealedData reports whether the database has a token vault record or
// any sealed secret.
func holdsSealedData(ctx context.Context, st storage.Storage) (bool, error) {
	_, err := st.GetTokenVault(ctx, control.DefaultTokenVault)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, storage.ErrNotFound):
		return false, err
	}
	// Every sealed secret has a key id, so none is sealed under "".
	sealed, err := st.ListStaleSecrets(ctx, "", 1)
	return len(sealed) > 0, err
}
