package dextest_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDexStaysInTests keeps Dex out of behalf's binaries. Dex links every
// connector (LDAP, SAML, Google, …) and a gRPC stack, and its server package
// is no stable API: only _test.go files and internal/testutil may import it.
// go list's Deps leave test files out, so any hit below is a non-test import.
// It also keeps out dex/storage/sql, which needs cgo.
func TestDexStaysInTests(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command:", err)
	}
	gomod, err := exec.CommandContext(t.Context(), "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		t.Fatalf("go env GOMOD: %q, %v", gomod, err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "list", "-e",
		"-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}

	const (
		module   = "github.com/behalf-dev/behalf"
		testutil = module + "/internal/testutil/"
		dex      = "github.com/dexidp/dex"
		dexSQL   = dex + "/storage/sql"
	)
	checked := 0
	for line := range strings.Lines(string(out)) {
		pkg, deps, _ := strings.Cut(strings.TrimSpace(line), " ")
		checked++
		for dep := range strings.FieldsSeq(deps) {
			if dep == dexSQL || strings.HasPrefix(dep, dexSQL+"/") {
				t.Errorf("%s depends on %s, which needs cgo", pkg, dep)
			}
			if (dep == dex || strings.HasPrefix(dep, dex+"/")) && !strings.HasPrefix(pkg, testutil) {
				t.Errorf("%s depends on %s; Dex is for tests only", pkg, dep)
				break // one line per package is enough
			}
		}
	}
	if checked < 2 {
		t.Fatalf("go list listed %d packages:\n%s", checked, out)
	}
}
