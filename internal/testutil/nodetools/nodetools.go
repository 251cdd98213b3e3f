// Package nodetools finds tools/node, the Node 22 and the npm packages
// (the MCP TypeScript SDK, the MCP conformance suite) that some tests run.
package nodetools

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir is tools/node, with the files under it that the test needs
// installed (paths relative to it, such as node_modules/.bin/conformance);
// Node itself is always needed. Without them the test is skipped, except
// in CI, where .ci/run installs them before the tests and their absence
// fails the test.
func Dir(t testing.TB, needs ...string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("nodetools: cannot locate the repository")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "tools", "node")
	for _, p := range append([]string{filepath.Join("node_modules", ".bin", "node")}, needs...) {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			if os.Getenv("CI") == "" {
				t.Skipf("Node 22 and the MCP npm packages are not installed: run `npm ci --no-audit --no-fund` in %s (%v)", dir, err)
			}
			t.Fatalf("CI: tools/node is not installed (.ci/run installs it before the tests): %v", err)
		}
	}
	return dir
}
