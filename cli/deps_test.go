package cli_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/rumor-dev/rumor"

// forbidden are the packages the CLI must not reach, directly or through
// another package of ours: it talks to the agent only through rpc.
var forbidden = []string{"daemon", "store", "gossip", "crdt", "membership", "lease"}

// TestDeps fails if package cli (its test files included) imports a
// forbidden package, directly or through any package of this module.
func TestDeps(t *testing.T) {
	seen := map[string]bool{}
	var walk func(pkg string, path []string)
	walk = func(pkg string, path []string) {
		if seen[pkg] {
			return
		}
		seen[pkg] = true
		dir := filepath.Join("..", filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")))
		for _, imp := range imports(t, dir) {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			chain := append(append([]string(nil), path...), imp)
			rel := strings.TrimPrefix(imp, module+"/")
			for _, f := range forbidden {
				if rel == f || strings.HasPrefix(rel, f+"/") {
					t.Errorf("cli must not import %s: %s", imp, strings.Join(chain, " -> "))
				}
			}
			walk(imp, chain)
		}
	}
	walk(module+"/cli", []string{module + "/cli"})
	if !seen[module+"/rpc"] {
		t.Error("found no import of rpc; is the walk broken?")
	}
}

// imports returns the import paths of the Go files in dir.
func imports(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return out
}
