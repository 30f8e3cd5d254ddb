// Package layers holds the test that enforces DESIGN.md's layer map: which
// of rumor's packages each package may import, so that dependencies flow
// down only and each responsibility stays in its package.
package layers

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/rumor-dev/rumor/"

// allowed lists, for every package of the agent, the module's packages it
// may import (besides its own sub-packages' tests). A package missing here
// fails the test: place it in the map when you add it.
var allowed = map[string][]string{
	"crdt":             {},
	"clock":            {},
	"wire":             {"crdt"},
	"digest":           {"crdt"},
	"store":            {"crdt", "wire", "digest", "store/record", "store/superseded", "store/kvhist", "store/watch"},
	"store/superseded": {"crdt"},
	"store/kvhist":     {"crdt"},
	"store/watch":      {"crdt"},
	"store/record":     {"crdt", "wire"},
	"identity":         {"crdt", "wire"},
	"gossip/redial":    {},
	"gossip":           {"gossip/redial"},
	"antientropy":      {"crdt", "digest", "wire", "gossip"},
	"membership":       {"crdt", "clock", "gossip"},
	"lease":            {"crdt"},
	"tasks":            {"crdt"},
	"kernels":          {"crdt", "clock", "config", "store", "lease", "tasks", "rpc", "view"},
	"queue":            {"crdt", "clock", "config", "store", "tasks", "kernels", "rpc", "view"},
	"replica":          {"crdt", "digest", "wire", "store", "identity", "clock"},
	"config":           {"membership", "rpc", "gossip", "gossip/redial"},
	"obs":              {"rpc"},
	"view":             {"crdt", "membership", "rpc"},
	"rpc":              {},
	"version":          {},
	"rpc/rpctest":      {"rpc"},
	"rpc/httpapi":      {"rpc"},
	"rpc/contract":     {"rpc", "rpc/httpapi"},
	"agent": {"crdt", "clock", "wire", "store", "store/watch", "identity", "gossip", "antientropy", "membership", "lease",
		"tasks", "kernels", "queue", "replica", "config", "obs", "rpc", "rpc/httpapi", "view", "version"},
	"cli":             {"rpc", "cli/lockrun", "cli/table", "version"},
	"cli/table":       {"rpc", "version"},
	"cli/lockrun":     {"rpc"},
	"chaos":           {"crdt", "rpc"},
	"internal/netcut": {},
	// Test support: a member's forgeries, the simulated cluster, and the
	// scenarios that drive it.
	"internal/forge": {"crdt", "wire", "identity"},
	"internal/cluster": {"agent", "config", "crdt", "digest", "identity", "antientropy", "gossip", "wire",
		"internal/forge", "internal/netcut"},
	"internal/sim":    {"internal/cluster", "config", "crdt", "replica", "rpc"},
	"internal/layers": {},
	"bench/benchstat": {},
}

// tools are binaries and their support: they may import anything.
var tools = []string{"cmd/", "bench/peers"}

func TestImportsFollowTheLayerMap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg, ok := strings.CutPrefix(fields[0], module)
		if !ok {
			continue
		}
		if slices.ContainsFunc(tools, func(p string) bool { return strings.HasPrefix(pkg, p) }) {
			continue
		}
		may, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not in the layer map (internal/layers/layers_test.go, DESIGN.md)", pkg)
			continue
		}
		seen++
		for _, imp := range fields[1:] {
			dep, ours := strings.CutPrefix(imp, module)
			if ours && !slices.Contains(may, dep) {
				t.Errorf("%s imports %s: not allowed by the layer map (it may import %v)", pkg, dep, may)
			}
		}
	}
	if seen < 15 {
		t.Fatalf("checked only %d packages; go list output:\n%s", seen, out)
	}
}

// TestOnlyTheReplicaWritesTheStore: every delta enters the store through
// the replica's ingest path. No other package of the agent calls the
// store's Apply or Attach.
func TestOnlyTheReplicaWritesTheStore(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || rel == "replica" || rel == "store" || strings.HasPrefix(rel, "cmd") || strings.HasPrefix(rel, "bench") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		checked++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, call := range []string{"store.Apply(", "Store().Apply(", "store.Attach(", "Store().Attach(", "st.Apply("} {
				if strings.Contains(line, call) {
					t.Errorf("%s:%d: %s: only package replica writes the store", rel, i+1, strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 30 {
		t.Fatalf("checked only %d files", checked)
	}
}

// TestRulePackagesArePure: the packages that hold rules (crdt, lease,
// tasks) take time as arguments and do no IO: no wall clock, no goroutine,
// no network or file access.
func TestRulePackagesArePure(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, pkg := range []string{"crdt", "lease", "tasks"} {
		files, err := filepath.Glob(filepath.Join(root, pkg, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no files (%v)", pkg, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(b), "\n") {
				code, _, _ := strings.Cut(line, "//")
				for _, bad := range []string{"time.Now(", "time.Since(", "time.After", "time.NewTimer", "time.NewTicker", "go func", "\"os\"", "\"net\"", "\"net/http\""} {
					if strings.Contains(code, bad) || strings.HasPrefix(strings.TrimSpace(code), "go ") {
						t.Errorf("%s:%d: %s: %s takes time as an argument and does no IO", filepath.Base(f), i+1, strings.TrimSpace(line), pkg)
					}
				}
			}
		}
	}
}
