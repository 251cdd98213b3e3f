package egress_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// notServerEgress are the directories whose outbound HTTP is not behalf's
// server calling out: the CLI and tools calling a behalf server, the
// development identity provider, the benchmark, test helpers, examples,
// and the agent SDK (a module of its own that runs inside agents).
var notServerEgress = []string{
	"internal/egress", "internal/cli", "internal/devidp", "internal/bench", "internal/testutil", "examples", "cmd", "sdk",
}

// TestOutboundHTTPOnlyThroughEgress fails when a package builds its own
// HTTP client or transport, or uses net/http's default one, instead of
// taking the client egress.NewClient returns.
func TestOutboundHTTPOnlyThroughEgress(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	forbidden := map[string]bool{
		"Client": true, "Transport": true, "DefaultClient": true, "DefaultTransport": true,
		"Get": true, "Head": true, "Post": true, "PostForm": true,
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			for _, skip := range notServerEgress {
				if rel == skip {
					return filepath.SkipDir
				}
			}
			if strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		httpName := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "net/http" {
				httpName = "http"
				if imp.Name != nil {
					httpName = imp.Name.Name
				}
			}
		}
		if httpName == "" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var sel *ast.SelectorExpr
			switch n := n.(type) {
			case *ast.CompositeLit:
				sel, _ = n.Type.(*ast.SelectorExpr)
			case *ast.CallExpr:
				if fn, ok := n.Fun.(*ast.Ident); ok && fn.Name == "new" && len(n.Args) == 1 {
					sel, _ = n.Args[0].(*ast.SelectorExpr)
				}
			case *ast.SelectorExpr:
				if n.Sel.Name == "Client" || n.Sel.Name == "Transport" {
					return true // a type in a signature is fine; a literal is caught above
				}
				sel = n
			}
			if sel == nil {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == httpName && forbidden[sel.Sel.Name] {
				t.Errorf("%s: %s.%s: outbound HTTP must use the client from egress.NewClient", fset.Position(sel.Pos()), httpName, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
