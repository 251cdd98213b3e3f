package vault

import (
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// LocalPrefix starts the id of every key held in a local keyring file.
const LocalPrefix = "local:"

// LocalKeyring keeps key-encryption keys in a file on the server's disk:
// the zero-configuration default. The file holds one service key, created
// with the file, and any customer keys created later; keys are never
// removed, so records sealed under any of them stay readable.
//
// Several replicas may share one keyring file; a replica that meets an
// unknown key id re-reads the file (at most once a second) before failing.
// Changes to the file are made under an exclusive flock(2) on a lock file
// beside it, so processes adding keys at once do not overwrite each other.
type LocalKeyring struct {
	path string

	mu       sync.RWMutex
	keys     map[string]*localKey
	service  string
	lastLoad time.Time
}

type keyringFile struct {
	Keys []keyringEntry `json:"keys"`
}

type keyringEntry struct {
	// ID is a UUID, so that a key can be named by a KMS-style ARN.
	ID       string    `json:"id"`
	Service  bool      `json:"service,omitempty"`
	Created  time.Time `json:"created"`
	Material string    `json:"material"` // base64, 32 bytes
}

// OpenLocalKeyring loads the keyring at path, creating it (mode 0600) with
// a fresh service key when it does not exist.
func OpenLocalKeyring(path string) (*LocalKeyring, error) {
	k := &LocalKeyring{path: path}
	err := k.load()
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil { //nolint:gosec // G703: the operator configures the keyring's path
			return nil, fmt.Errorf("vault: create keyring directory: %w", err)
		}
		entry, genErr := newKeyringEntry(true)
		if genErr != nil {
			return nil, genErr
		}
		if err := writeKeyring(path, keyringFile{Keys: []keyringEntry{entry}}, true); err != nil {
			return nil, err
		}
		err = k.load()
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// LoadLocalKeyring loads the keyring at path and never creates one; its
// error wraps fs.ErrNotExist when the file is missing.
func LoadLocalKeyring(path string) (*LocalKeyring, error) {
	k := &LocalKeyring{path: path}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

// ServiceKeyID returns the id of the key created with the keyring.
func (k *LocalKeyring) ServiceKeyID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.service
}

// Key implements Keyring.
func (k *LocalKeyring) Key(_ context.Context, id string) (KeyWrapper, error) {
	k.mu.RLock()
	w, ok := k.keys[id]
	stale := time.Since(k.lastLoad) > time.Second
	k.mu.RUnlock()
	if ok {
		return w, nil
	}
	if strings.HasPrefix(id, LocalPrefix) && stale {
		if err := k.load(); err != nil {
			return nil, err
		}
		k.mu.RLock()
		w, ok = k.keys[id]
		k.mu.RUnlock()
		if ok {
			return w, nil
		}
	}
	return nil, fmt.Errorf("%w %q in the local keyring %s", ErrUnknownKey, id, k.path)
}

// Name implements Backend.
func (k *LocalKeyring) Name() string { return "local" }

// Owns implements Backend.
func (k *LocalKeyring) Owns(id string) bool { return strings.HasPrefix(id, LocalPrefix) }

// Check implements Backend. It reads the file again: behalf never removes
// a key from it, so a key missing from the file was removed by hand and is
// gone, even if this process still holds a copy.
func (k *LocalKeyring) Check(_ context.Context, id string) error {
	if err := k.load(); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyUnavailable, err)
	}
	k.mu.RLock()
	_, ok := k.keys[id]
	k.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %w %q in the local keyring %s", ErrKeyGone, ErrUnknownKey, id, k.path)
	}
	return nil
}

// Signer implements Backend: a local keyring holds only AES keys.
func (k *LocalKeyring) Signer(_ context.Context, id string) (crypto.Signer, error) {
	return nil, fmt.Errorf("%w: %s is an AES key of the local keyring", ErrNotSigningKey, id)
}

var _ Backend = (*LocalKeyring)(nil)

// Has reports whether the keyring holds id, re-reading the file if needed.
func (k *LocalKeyring) Has(ctx context.Context, id string) bool {
	_, err := k.Key(ctx, id)
	return err == nil
}

// KeyInfo is a key of the keyring, without its material.
type KeyInfo struct {
	ID      string
	Created time.Time
	// Service is the key created with the keyring.
	Service bool
}

// Keys lists the keys in the keyring file as it is now, the service key
// first, then oldest first.
func (k *LocalKeyring) Keys() ([]KeyInfo, error) {
	f, err := readKeyring(k.path)
	if err != nil {
		return nil, err
	}
	keys := make([]KeyInfo, len(f.Keys))
	for i, e := range f.Keys {
		keys[i] = KeyInfo{ID: LocalPrefix + e.ID, Created: e.Created, Service: e.Service}
	}
	slices.SortStableFunc(keys, func(a, b KeyInfo) int {
		if a.Service != b.Service {
			if a.Service {
				return -1
			}
			return 1
		}
		return a.Created.Compare(b.Created)
	})
	return keys, nil
}

// Create adds a new customer key to the keyring file and returns its id.
// The file is read again under the lock, so keys other processes added
// since it was loaded are kept.
func (k *LocalKeyring) Create() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	unlock, err := lockKeyring(k.path)
	if err != nil {
		return "", err
	}
	defer unlock()
	f, err := readKeyring(k.path)
	if err != nil {
		return "", err
	}
	entry, err := newKeyringEntry(false)
	if err != nil {
		return "", err
	}
	f.Keys = append(f.Keys, entry)
	if err := writeKeyring(k.path, f, false); err != nil {
		return "", err
	}
	if err := k.apply(f); err != nil {
		return "", err
	}
	return LocalPrefix + entry.ID, nil
}

// lockKeyring takes an exclusive flock(2) on path+".lock", waiting for
// other processes to release it. The lock file is never removed: removing
// it would let two processes hold locks on different inodes.
func lockKeyring(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // G304: the operator configures the keyring's path
	if err != nil {
		return nil, fmt.Errorf("vault: lock keyring: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("vault: lock keyring %s: %w", path, err), f.Close())
	}
	// Closing the descriptor releases the lock, even when Close reports an
	// error: the kernel drops the descriptor either way.
	return func() { _ = f.Close() }, nil
}

func (k *LocalKeyring) load() error {
	f, err := readKeyring(k.path)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.apply(f)
}

// apply installs the keys of f; the caller holds k.mu.
func (k *LocalKeyring) apply(f keyringFile) error {
	keys := make(map[string]*localKey, len(f.Keys))
	service := ""
	for i, e := range f.Keys {
		if _, err := uuid.Parse(e.ID); err != nil {
			return fmt.Errorf("vault: keyring %s: key %d: id is not a UUID", k.path, i)
		}
		material, err := base64.StdEncoding.DecodeString(e.Material)
		if err != nil || len(material) != 32 {
			return fmt.Errorf("vault: keyring %s: key %s: material must be 32 bytes in base64", k.path, e.ID)
		}
		aead, err := newGCM(material)
		clear(material)
		if err != nil {
			return err
		}
		id := LocalPrefix + e.ID
		if _, dup := keys[id]; dup {
			return fmt.Errorf("vault: keyring %s: key %s appears twice", k.path, e.ID)
		}
		keys[id] = &localKey{id: id, aead: aead}
		if e.Service {
			if service != "" {
				return fmt.Errorf("vault: keyring %s: more than one service key", k.path)
			}
			service = id
		}
	}
	if service == "" {
		return fmt.Errorf("vault: keyring %s has no service key", k.path)
	}
	k.keys, k.service, k.lastLoad = keys, service, time.Now()
	return nil
}

func readKeyring(path string) (keyringFile, error) {
	fi, err := os.Stat(path) //nolint:gosec // G703: the operator configures the keyring's path
	if err != nil {
		return keyringFile{}, fmt.Errorf("vault: keyring: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return keyringFile{}, fmt.Errorf("vault: keyring %s has mode %04o; it must be readable by its owner only (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	raw, err := os.ReadFile(path) //nolint:gosec // G304: the operator configures the keyring's path
	if err != nil {
		return keyringFile{}, fmt.Errorf("vault: keyring: %w", err)
	}
	var f keyringFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return keyringFile{}, fmt.Errorf("vault: keyring %s is not valid JSON: %w", path, err)
	}
	return f, nil
}

// writeKeyring replaces the file atomically; exclusive refuses to replace
// an existing file, so two processes starting at once cannot both create
// a service key. The temporary file holds keys too: failing to remove it
// is an error.
func writeKeyring(path string, f keyringFile, exclusive bool) (err error) {
	raw, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyring-*")
	if err != nil {
		return fmt.Errorf("vault: write keyring: %w", err)
	}
	defer func() {
		// Gone already after a rename; still there after a link or a failure.
		if rmErr := os.Remove(tmp.Name()); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) { //nolint:gosec // G703: a name CreateTemp made in the keyring's directory
			err = errors.Join(err, fmt.Errorf("vault: remove temporary keyring: %w", rmErr))
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Sync(); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if exclusive {
		// A hard link fails if path exists; rename would silently replace it.
		if err := os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil
			}
			return fmt.Errorf("vault: create keyring: %w", err)
		}
		return nil
	}
	return os.Rename(tmp.Name(), path) //nolint:gosec // G703: the operator configures the keyring's path
}

func newKeyringEntry(service bool) (keyringEntry, error) {
	material := make([]byte, 32)
	if _, err := rand.Read(material); err != nil {
		return keyringEntry{}, err
	}
	defer clear(material)
	return keyringEntry{
		ID:       uuid.NewString(),
		Service:  service,
		Created:  time.Now().UTC().Truncate(time.Second),
		Material: base64.StdEncoding.EncodeToString(material),
	}, nil
}

// localKey wraps data keys with AES-256-GCM under a key held in memory.
type localKey struct {
	id   string
	aead cipher.AEAD
}

func (l *localKey) KeyID() string { return l.id }

func (l *localKey) Wrap(_ context.Context, dek, aad []byte) ([]byte, error) {
	out := make([]byte, gcmNonceSize, gcmNonceSize+len(dek)+gcmTagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return l.aead.Seal(out, out[:gcmNonceSize], dek, aad), nil
}

func (l *localKey) Unwrap(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) < gcmNonceSize+gcmTagSize {
		return nil, ErrDecrypt
	}
	dek, err := l.aead.Open(nil, wrapped[:gcmNonceSize], wrapped[gcmNonceSize:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return dek, nil
}
