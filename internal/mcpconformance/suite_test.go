package mcpconformance_test

import (
	"bytes"
	"context"
	"github.com/behalf-dev/behalf/internal/testutil/nodetools"
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

// nodeTools is tools/node with what the test runs (nodetools.Dir).
func nodeTools(t *testing.T) string {
	return nodetools.Dir(t, filepath.Join("node_modules", ".bin", "conformance"))
}
