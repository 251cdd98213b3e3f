package mcpconformance_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// baseline lists the scenarios behalf does not pass yet, each with the
// reason; the suite fails on a scenario missing from it that fails, and
// on one listed in it that passes.
const baseline = "testdata/expected-failures.yml"

// TestAuthScenarios runs every client authorization scenario of the
// official MCP conformance suite (tools/node), with TestClient, this
// test binary, as the client: the 2025-11-25 ones, the 2025-03-26
// backward-compatibility ones, the draft ones and the extensions'.
func TestAuthScenarios(t *testing.T) {
	if os.Getenv(envScenario) != "" {
		t.Skip("this process is the client")
	}
	dir := nodeTools(t)
	scenarios := authScenarios(t, dir)
	if len(scenarios) < 20 {
		t.Fatalf("the suite lists %d client authorization scenarios: %v", len(scenarios), scenarios)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(self, " \t") {
		t.Skipf("the suite splits its --command on spaces: %q has one", self)
	}
	expected, err := filepath.Abs(baseline)
	if err != nil {
		t.Fatal(err)
	}
	command := self + " -test.run=^TestClient$ -test.v"
	for _, s := range scenarios {
		t.Run(strings.TrimPrefix(s, "auth/"), func(t *testing.T) {
			out, err := conformance(t, dir, "client", "--scenario", s, "--command", command,
				"--expected-failures", expected, "--output-dir", t.TempDir())
			if err != nil {
				t.Errorf("%s: %v\n%s", s, err, out)
			}
		})
	}
}

// authScenarios are the suite's client scenarios named auth/….
func authScenarios(t *testing.T, dir string) []string {
	t.Helper()
	out, err := conformance(t, dir, "list", "--client")
	if err != nil {
		t.Fatalf("conformance list: %v\n%s", err, out)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- (auth/\S+)`).FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	return names
}

// ansi matches the colours the suite prints whatever NO_COLOR says.
var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// conformance runs the suite's command line with Node 22 from tools/node.
func conformance(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "node_modules", ".bin")
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "conformance"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return ansi.ReplaceAllString(out.String(), ""), err
}

// nodeTools is tools/node, installed by `npm ci`; without it the test is
// skipped outside CI and fails in CI.
func nodeTools(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "tools", "node"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join("node_modules", ".bin", "node"), filepath.Join("node_modules", ".bin", "conformance")} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			if os.Getenv("CI") == "" {
				t.Skipf("Node 22 and the MCP conformance suite are not installed: run `npm ci --no-audit --no-fund` in %s (%v)", dir, err)
			}
			t.Fatalf("CI: tools/node is not installed (.ci/run installs it before the tests): %v", err)
		}
	}
	return dir
}
