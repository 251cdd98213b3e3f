package repotest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

const modulePath = "github.com/behalf-dev/behalf"

// maxTrackedFileSize bounds every tracked file: large files are build
// outputs, data dumps or vendored archives, none of which belong in git.
const maxTrackedFileSize = 1 << 20

// binaryAllowed lists tracked files that may hold non-text content, each
// with the reason. Executables are refused even when listed here.
var binaryAllowed = map[string]string{}

// repoRoot is the directory of behalf's go.mod, two levels above this
// package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(gomod, []byte("module "+modulePath+"\n")) {
		t.Fatalf("%s/go.mod is not module %s", root, modulePath)
	}
	return root
}

// trackedFiles lists the files in the git index, or skips the test when
// there is no git or no repository.
func trackedFiles(t *testing.T, root string) []string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skipf("no .git in %s (%v): cannot list tracked files", root, err)
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skipf("git is not installed: cannot list tracked files: %v", err)
	}
	out, err := exec.Command(git, "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []string
	for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if name != "" {
			files = append(files, name)
		}
	}
	if len(files) == 0 {
		t.Fatal("git ls-files listed no files")
	}
	return files
}

func TestNoTrackedBinaryOrLargeFile(t *testing.T) {
	root := repoRoot(t)
	for _, name := range trackedFiles(t, root) {
		if problem := checkTrackedFile(filepath.Join(root, filepath.FromSlash(name)), name); problem != "" {
			t.Errorf("%s: %s", name, problem)
		}
	}
}

// checkTrackedFile says what is wrong with a tracked file, or "".
func checkTrackedFile(path, name string) string {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "" // deleted in the work tree; the index still lists it
	}
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	if info.Size() > maxTrackedFileSize {
		return fmt.Sprintf("%.1f MiB, over 1 MiB; large files do not belong in git", float64(info.Size())/(1<<20))
	}
	content, err := io.ReadAll(f)
	if err != nil {
		return err.Error()
	}
	if kind := executableKind(content); kind != "" {
		return "a compiled " + kind + " binary; build outputs are ignored (.gitignore), never committed"
	}
	if _, ok := binaryAllowed[name]; ok {
		return ""
	}
	if bytes.IndexByte(content, 0) >= 0 || !utf8.Valid(content) {
		return "not UTF-8 text; add it to binaryAllowed with the reason if it must be tracked"
	}
	return ""
}

// executableKind recognises executables by their magic numbers.
func executableKind(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x7fELF")):
		return "ELF"
	case bytes.HasPrefix(b, []byte{0xfe, 0xed, 0xfa, 0xce}), bytes.HasPrefix(b, []byte{0xfe, 0xed, 0xfa, 0xcf}),
		bytes.HasPrefix(b, []byte{0xce, 0xfa, 0xed, 0xfe}), bytes.HasPrefix(b, []byte{0xcf, 0xfa, 0xed, 0xfe}),
		bytes.HasPrefix(b, []byte{0xca, 0xfe, 0xba, 0xbe}):
		return "Mach-O"
	case bytes.HasPrefix(b, []byte("MZ")) && len(b) >= 64:
		return "PE"
	}
	return ""
}

func TestCheckTrackedFileRecognisesBadFiles(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		content []byte
		want    string // a substring of the problem; "" for none
	}{
		{"main.go", []byte("package main\n"), ""},
		{"agentcore-sdk", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64)...), "ELF"},
		{"tool", append([]byte{0xcf, 0xfa, 0xed, 0xfe}, make([]byte, 64)...), "Mach-O"},
		{"tool.exe", append([]byte("MZ"), make([]byte, 64)...), "PE"},
		{"data.bin", []byte{0x00, 0x01, 0x02}, "not UTF-8 text"},
		{"latin1.txt", []byte{'c', 'a', 'f', 0xe9}, "not UTF-8 text"},
		{"dump.sql", bytes.Repeat([]byte("x"), maxTrackedFileSize+1), "over 1 MiB"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, c.content, 0o600); err != nil {
			t.Fatal(err)
		}
		got := checkTrackedFile(path, c.name)
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: problem %q, want one containing %q", c.name, got, c.want)
		}
	}
}

// goPackageDirs lists every directory of the repository holding non-test Go
// files, nested modules (examples, tools) included and installed Node
// packages (tools/node/node_modules) left out.
func goPackageDirs(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "behalf-data" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			if dir := filepath.Dir(path); !slices.Contains(dirs, dir) {
				dirs = append(dirs, dir)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("found no Go packages")
	}
	return dirs
}

func TestEveryPackageHasADocComment(t *testing.T) {
	root := repoRoot(t)
	for _, dir := range goPackageDirs(t, root) {
		rel, _ := filepath.Rel(root, dir)
		documented, err := hasPackageDoc(dir)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
		} else if !documented {
			t.Errorf("%s: no package doc comment (// Package x … or // Command x … above the package clause of one file, usually doc.go)", rel)
		}
	}
}

// hasPackageDoc reports whether a non-test file of dir documents its
// package.
func hasPackageDoc(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return false, err
		}
		if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
			return true, nil
		}
	}
	return false, nil
}

func TestHasPackageDoc(t *testing.T) {
	for _, c := range []struct {
		src  string
		want bool
	}{
		{"// Package p does one thing.\npackage p\n", true},
		{"// Command p does one thing.\npackage main\n", true},
		{"// Copyright line, separated from the clause.\n\npackage p\n", false},
		{"package p\n", false},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(c.src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "p_test.go"), []byte("// Package p tests.\n"+c.src[strings.Index(c.src, "package"):]), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := hasPackageDoc(dir); err != nil || got != c.want {
			t.Errorf("%q: hasPackageDoc = %v, %v; want %v", c.src, got, err, c.want)
		}
	}
}

// TestGoModHasNoReplace keeps behalf's go.mod, the agent SDK's and the
// tools module's free of replace directives: a replace applies only when building here, so
// what passes CI would not be what someone importing behalf builds.
// examples/go.mod replaces behalf and the SDK by the directories beside it on purpose:
// nothing imports the examples, and they must build against this tree.
func TestGoModHasNoReplace(t *testing.T) {
	root := repoRoot(t)
	for _, name := range []string{"go.mod", "sdk/go.mod", "tools/go.mod"} {
		content, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if errors.Is(err, fs.ErrNotExist) && name != "go.mod" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range replaceDirectives(content) {
			t.Errorf("%s: %s", name, line)
		}
	}
}

// replaceDirectives returns the lines of a go.mod file that start a
// replace directive or block.
func replaceDirectives(gomod []byte) []string {
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "replace" || strings.HasPrefix(text, "replace ") || strings.HasPrefix(text, "replace(") || strings.HasPrefix(text, "replace\t") {
			found = append(found, fmt.Sprintf("line %d: %s", line, text))
		}
	}
	return found
}

func TestReplaceDirectives(t *testing.T) {
	gomod := "module m\n\n// replace in a comment is fine\nrequire x v1.0.0\nreplace x => ../x\nreplace (\n\ty => ../y\n)\n"
	got := replaceDirectives([]byte(gomod))
	want := []string{"line 5: replace x => ../x", "line 6: replace ("}
	if !slices.Equal(got, want) {
		t.Errorf("replaceDirectives = %q, want %q", got, want)
	}
}

// outsideDocuments matches the names of documents that were never part of
// this repository, listed in testdata so that no Go file names them;
// comments cite RFC sections, AgentCore API operations or docs/.
func outsideDocuments(t *testing.T) *regexp.Regexp {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "outside-documents.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var alternatives []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			alternatives = append(alternatives, line)
		}
	}
	return regexp.MustCompile(strings.Join(alternatives, "|"))
}

func TestNoCitationOfOutsideDocuments(t *testing.T) {
	outsideDocument := outsideDocuments(t)
	root := repoRoot(t)
	for _, dir := range goPackageDirs(t, root) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			path := filepath.Join(dir, name)
			content, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, path)
			for _, cite := range citations(outsideDocument, content) {
				t.Errorf("%s: %s", rel, cite)
			}
		}
	}
}

// citations returns the lines of a Go file that mention an outside document.
func citations(outsideDocument *regexp.Regexp, src []byte) []string {
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	for line := 1; sc.Scan(); line++ {
		for _, doc := range outsideDocument.FindAllString(sc.Text(), -1) {
			found = append(found, fmt.Sprintf("line %d cites %s", line, doc))
		}
	}
	return found
}
