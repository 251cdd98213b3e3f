package repotest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxFunctionLines bounds a function, counted from its func keyword to its
// closing brace: past it a reader can no longer see the whole of what one
// function does, and the function wants splitting into named steps.
const maxFunctionLines = 80

// functionLengthExempt lists the directories, relative to the repository
// root, whose functions may be longer: support code that only tests use,
// whose long functions are scripted scenarios and fixtures.
var functionLengthExempt = []string{
	"internal/storage/conformance",
	"internal/testutil",
	"internal/inbound/inboundtest",
}

// TestNoLongFunction fails when a non-test Go function, a declaration or a
// function literal, reaches maxFunctionLines lines. Two kinds are exempt:
// the CLI's command builders (functions named new…Command in internal/cli,
// which declare a command's flags and help text one after another, though
// the literals inside them are still measured), and the test-support
// packages listed in functionLengthExempt (the storage conformance suite,
// internal/testutil/... and internal/inbound/inboundtest).
func TestNoLongFunction(t *testing.T) {
	root := repoRoot(t)
	for _, dir := range goPackageDirs(t, root) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		rel = filepath.ToSlash(rel)
		if lengthExempt(rel) {
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			src, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			long, err := longFunctions(src, rel == "internal/cli")
			if err != nil {
				t.Fatalf("%s/%s: %v", rel, name, err)
			}
			for _, f := range long {
				t.Errorf("%s/%s: %s", rel, name, f)
			}
		}
	}
}

// lengthExempt reports whether the directory rel (slash-separated, relative
// to the repository root) is or is below an exempt directory.
func lengthExempt(rel string) bool {
	for _, dir := range functionLengthExempt {
		if rel == dir || strings.HasPrefix(rel, dir+"/") {
			return true
		}
	}
	return false
}

// longFunctions describes the functions of one Go file that reach
// maxFunctionLines lines; cli says the file is in internal/cli, whose
// new…Command builders are exempt.
func longFunctions(src []byte, cli bool) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var long []string
	measure := func(what string, body ast.Node) {
		lines := fset.Position(body.End()).Line - fset.Position(body.Pos()).Line + 1
		if lines >= maxFunctionLines {
			long = append(long, fmt.Sprintf("%s at line %d is %d lines long (the limit is under %d): split it into named steps", what, fset.Position(body.Pos()).Line, lines, maxFunctionLines))
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch fn := n.(type) {
		case *ast.FuncDecl:
			if fn.Body == nil || cli && commandBuilder(fn.Name.Name) {
				return true
			}
			measure("func "+funcName(fn), fn)
		case *ast.FuncLit:
			measure("a function literal", fn)
		}
		return true
	})
	return long, nil
}

// commandBuilder reports whether name is a CLI command builder, new…Command.
func commandBuilder(name string) bool {
	return strings.HasPrefix(name, "new") && strings.HasSuffix(name, "Command") && len(name) > len("newCommand")
}

// funcName names a declared function, with its receiver type for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	recv := fn.Recv.List[0].Type
	if star, ok := recv.(*ast.StarExpr); ok {
		recv = star.X
	}
	if idx, ok := recv.(*ast.IndexExpr); ok {
		recv = idx.X
	}
	if id, ok := recv.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

func TestLongFunctions(t *testing.T) {
	body := strings.Repeat("\t_ = 1\n", maxFunctionLines-2)
	short := strings.Repeat("\t_ = 1\n", maxFunctionLines-3)
	src := "package p\n\n" +
		"func long() {\n" + body + "}\n\n" +
		"func short() {\n" + short + "}\n\n" +
		"func (s *S) method() {\n" + body + "}\n\n" +
		"func newThingCommand() {\n" + body + "}\n\n" +
		"var lit = func() {\n" + body + "}\n\n" +
		"type S struct{}\n"
	for _, c := range []struct {
		cli  bool
		want []string
	}{
		{false, []string{"func long at line 3", "func S.method at line", "func newThingCommand at line", "a function literal at line"}},
		{true, []string{"func long at line 3", "func S.method at line", "a function literal at line"}},
	} {
		got, err := longFunctions([]byte(src), c.cli)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(c.want) {
			t.Fatalf("cli=%v: longFunctions = %q, want %d findings", c.cli, got, len(c.want))
		}
		for i, w := range c.want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("cli=%v: finding %d = %q, want it to start %q", c.cli, i, got[i], w)
			}
		}
	}
}
