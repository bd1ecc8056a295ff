package app

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
)

// TestEveryRouteDeclaresARole reads every Handle/HandleFunc call of the
// source tree and checks that its pattern is in the access table
// (auth.Routes), so that a new route cannot ship without a declared role;
// and builds sred to check that every pattern of the table is mounted.
func TestEveryRouteDeclaresARole(t *testing.T) {
	consts := map[string]string{} // "pkg.Name" -> value
	type call struct {
		pkg string
		arg ast.Expr
	}
	var calls []call
	root := filepath.Join("..", "..")
	skip := map[string]bool{filepath.Join(root, "examples"): true} // not sred
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (skip[path] || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if i < len(n.Values) {
						if lit, ok := n.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							v, _ := strconv.Unquote(lit.Value)
							consts[f.Name.Name+"."+name.Name] = v
						}
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Handle" || sel.Sel.Name == "HandleFunc") && len(n.Args) == 2 {
					calls = append(calls, call{f.Name.Name, n.Args[0]})
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	var eval func(pkg string, e ast.Expr) (string, bool)
	eval = func(pkg string, e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			v, err := strconv.Unquote(e.Value)
			return v, err == nil
		case *ast.BinaryExpr:
			l, ok1 := eval(pkg, e.X)
			r, ok2 := eval(pkg, e.Y)
			return l + r, ok1 && ok2
		case *ast.SelectorExpr:
			if x, ok := e.X.(*ast.Ident); ok {
				v, ok := consts[x.Name+"."+e.Sel.Name]
				return v, ok
			}
		case *ast.Ident:
			v, ok := consts[pkg+"."+e.Name]
			return v, ok
		}
		return "", false
	}
	found := 0
	for _, c := range calls {
		pattern, ok := eval(c.pkg, c.arg)
		if !ok || !strings.Contains(pattern, "/") {
			continue // not a route pattern known at compile time
		}
		found++
		_, declared := auth.Routes[pattern]
		if !declared {
			t.Errorf("route %q (%s) declares no role: add it to auth.Routes", pattern, fset.Position(c.arg.Pos()))
		}
	}
	require.GreaterOrEqual(t, found, 55, "the source scan found the routes")

	// Every pattern of the table is mounted by sred.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("global: {incident_id_prefix: INC}\n"), 0o644))
	a, err := New(context.Background(), Options{ConfigFile: cfg, StoragePath: filepath.Join(dir, "data")})
	require.NoError(t, err)
	defer a.Close()
	param := regexp.MustCompile(`\{[^}]+\}`)
	for pattern := range auth.Routes {
		method, path, _ := strings.Cut(pattern, " ")
		r, err := http.NewRequest(method, param.ReplaceAllString(strings.TrimSuffix(path, "{$}"), "x"), nil)
		require.NoError(t, err)
		_, got := a.Mux.Handler(r)
		require.Equal(t, pattern, got, "the access table lists %q but sred does not mount it", pattern)
	}
}
