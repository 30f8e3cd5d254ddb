package crdt

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// allowedImports is what package crdt may import: pure standard library, no
// IO, no clock, no concurrency. crdt is the bottom layer (DESIGN.md) and must
// stay deterministic.
var allowedImports = map[string]bool{
	"bytes": true, "cmp": true, "encoding/binary": true, "encoding/json": true, "errors": true,
	"fmt": true, "maps": true, "math": true, "math/bits": true, "slices": true, "sort": true,
	"strconv": true, "strings": true, "unicode": true, "unicode/utf8": true,
}

// Spelled out so that the failure says why, even if the allowlist grows.
var forbiddenImports = []string{"net", "os", "time", "io", "sync", "context", "math/rand", "crypto/rand", "runtime", "unsafe", "reflect", "syscall", "log"}

// importViolations parses the non-test Go files of package pkg in dir and
// describes every import outside the allowlist and every go statement. It
// returns how many files it checked.
func importViolations(dir, pkg string) (problems []string, checked int, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, 0, err
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, 0, err
		}
		if f.Name.Name != pkg {
			continue
		}
		checked++
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return nil, 0, fmt.Errorf("%s: bad import %s", name, imp.Path.Value)
			}
			pos := fset.Position(imp.Pos())
			for _, bad := range forbiddenImports {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					problems = append(problems, fmt.Sprintf("%s imports %q: crdt does no IO, reads no clock and starts no goroutines", pos, path))
				}
			}
			switch {
			case strings.Contains(path, "libp2p") || strings.Contains(path, "."):
				problems = append(problems, fmt.Sprintf("%s imports %q: crdt imports no third-party or project package", pos, path))
			case !allowedImports[path]:
				problems = append(problems, fmt.Sprintf("%s imports %q, not in the allowlist of pure stdlib packages", pos, path))
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				problems = append(problems, fmt.Sprintf("%s: go statement; crdt starts no goroutines", fset.Position(g.Pos())))
			}
			return true
		})
	}
	return problems, checked, nil
}

func TestPackageImportsOnlyPureStdlib(t *testing.T) {
	problems, checked, err := importViolations(".", "crdt")
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("found no non-test source files of package crdt")
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// The checker itself catches what it must.
func TestImportCheckerCatchesViolations(t *testing.T) {
	dir := t.TempDir()
	src := `package crdt

import (
	"os"
	"strings"
	"sync/atomic"
	"time"
	"net/netip"
	"github.com/libp2p/go-libp2p/core/peer"
)

func f() { go func() {}() }
`
	if err := os.WriteFile(filepath.Join(dir, "bad.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad_test.go"), []byte("package crdt\nimport \"net\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, checked, err := importViolations(dir, "crdt")
	if err != nil {
		t.Fatal(err)
	}
	if checked != 1 {
		t.Fatalf("checked %d files, want 1 (test files are skipped)", checked)
	}
	all := strings.Join(problems, "\n")
	for _, want := range []string{`"os"`, `"sync/atomic"`, `"time"`, `"net/netip"`, `"github.com/libp2p/go-libp2p/core/peer"`, "go statement"} {
		if !strings.Contains(all, want) {
			t.Errorf("checker missed %s; reported:\n%s", want, all)
		}
	}
	if strings.Contains(all, `"strings"`) || strings.Contains(all, "bad_test.go") {
		t.Errorf("checker flagged an allowed import or a test file:\n%s", all)
	}
}
