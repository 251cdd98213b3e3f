package secretsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const filePrefix = "file:"

// Files reads secrets from files inside a set of directories, such as
// Kubernetes secrets mounted into behalf's pod. A secret id is "file:"
// followed by an absolute path, or an absolute path; the file holds the
// JSON object. Nothing outside the directories is read: not by a path
// with "..", not through a symbolic link that leads out of the directory
// (links that stay inside, as in a Kubernetes secret volume, are
// followed), so that a provider cannot be made to read behalf's own
// keyring or database.
type Files struct {
	dirs []string
}

// NewFiles returns the source for the directories dirs, which must be
// absolute.
func NewFiles(dirs []string) (*Files, error) {
	f := &Files{}
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("secretsource: directory %q is not an absolute path", d)
		}
		f.dirs = append(f.dirs, filepath.Clean(d))
	}
	return f, nil
}

// within reports whether path is inside dir (both clean and absolute)
// and returns it relative to dir.
func within(dir, path string) (string, bool) {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}

// locate returns the configured directory secretID's file is in, and the
// file's path relative to it.
func (f *Files) locate(secretID string) (dir, rel string, err error) {
	path := strings.TrimPrefix(secretID, filePrefix)
	if !filepath.IsAbs(path) || strings.ContainsRune(path, 0) {
		return "", "", fail(secretID, InvalidID, nil)
	}
	path = filepath.Clean(path)
	for _, d := range f.dirs {
		if rel, ok := within(d, path); ok {
			return d, rel, nil
		}
	}
	return "", "", fail(secretID, OutsideDirectories, nil)
}

// Check refuses a path outside the directories, as written; links are
// followed only when the file is read.
func (f *Files) Check(secretID string) error {
	_, _, err := f.locate(secretID)
	return err
}

// Read returns the file's content, at most MaxSecretBytes.
func (f *Files) Read(_ context.Context, secretID string) ([]byte, error) {
	dir, rel, err := f.locate(secretID)
	if err != nil {
		return nil, err
	}
	// Where the links lead, for a clear refusal; os.Root below enforces it
	// even against a link changed meanwhile.
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fileError(secretID, err)
	}
	target, err := filepath.EvalSymlinks(filepath.Join(dir, rel))
	if err != nil {
		return nil, fileError(secretID, err)
	}
	if _, ok := within(realDir, target); !ok {
		return nil, fail(secretID, OutsideDirectories, nil)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fileError(secretID, err)
	}
	defer func() { _ = root.Close() }() // read only: Close loses nothing
	file, err := root.Open(rel)
	if err != nil {
		return nil, fileError(secretID, err)
	}
	defer func() { _ = file.Close() }() // read only
	if st, err := file.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fail(secretID, NotFound, errors.New("not a regular file"))
	}
	doc, err := io.ReadAll(io.LimitReader(file, MaxSecretBytes+1))
	if err != nil {
		return nil, fileError(secretID, err)
	}
	if len(doc) > MaxSecretBytes {
		clear(doc)
		return nil, fail(secretID, TooLarge, nil)
	}
	return doc, nil
}

func fileError(secretID string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail(secretID, NotFound, err)
	case errors.Is(err, fs.ErrPermission):
		return fail(secretID, Denied, err)
	}
	return fail(secretID, Unavailable, err)
}
