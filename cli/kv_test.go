package cli_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rumor-dev/rumor/rpc"
)

func TestKV(t *testing.T) {
	a := startAgent(t)
	a.run("kv", "put", "/config/web/port", "8080").expect(t, 0).table(t,
		"KEY VERSION VALUE WRITER UPDATED EXPIRES",
		`/config/web/port 1 8080 SELF0001 \ds ago -`)
	file := filepath.Join(t.TempDir(), "motd")
	if err := os.WriteFile(file, []byte("line one\nline two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.run("kv", "put", "/config/web/motd", "@"+file, "--ttl", "1h").expect(t, 0).table(t,
		"KEY VERSION VALUE WRITER UPDATED EXPIRES",
		`/config/web/motd 1 line one\\nline two\\n SELF0001 \ds ago in (59m|1h)`)
	if r := a.run("kv", "get", "/config/web/motd", "-o", "raw").expect(t, 0); r.stdout != "line one\nline two\n" {
		t.Errorf("kv get -o raw: %q", r.stdout)
	}
	e := decodeJSON[rpc.KVEntry](t, a.run("kv", "put", "/config/web/port", "9090", "--if-version", "1", "-o", "json").expect(t, 0))
	if e.Version != 2 || e.Value != "9090" || e.Writer != self {
		t.Errorf("kv put -o json: %+v", e)
	}
	a.run("kv", "put", "/config/web/port", "7070", "--if-version", "1").expect(t, 3).stderrHas(t, "at version 2")
	a.run("kv", "ls", "/config/").expect(t, 0).table(t,
		"KEY VERSION VALUE WRITER UPDATED EXPIRES",
		`/config/web/motd 1 line one\\nline two\\n SELF0001 \ds ago in (59m|1h)`,
		`/config/web/port 2 9090 SELF0001 \ds ago -`)
	if l := decodeJSON[[]rpc.KVEntry](t, a.run("kv", "ls", "-o", "json").expect(t, 0)); len(l) != 2 {
		t.Errorf("kv ls -o json: %+v", l)
	}
	a.run("kv", "history", "/config/web/port").expect(t, 0).table(t,
		"KEY VERSION VALUE WRITER UPDATED EXPIRES",
		`/config/web/port 2 9090 SELF0001 \ds ago - current`,
		`/config/web/port 1 8080 SELF0001 \ds ago -`)
	a.run("kv", "rm", "/config/web/port", "--if-version", "1").expect(t, 3)
	a.run("kv", "rm", "/config/web/port", "--if-version", "2").expect(t, 0)
	a.run("kv", "get", "/config/web/port").expect(t, 1).stderrHas(t, "no kv key /config/web/port")

	// Bad input: a clear message and exit 2, nothing written.
	a.run("kv", "put", "/config/x").expect(t, 2).stderrHas(t, "missing argument <value>")
	a.run("kv", "put", "/config/x", "@/nonexistent/file").expect(t, 1).stderrHas(t, "/nonexistent/file")
	a.run("kv", "get", "/config/x", "-o", "yaml").expect(t, 2).stderrHas(t, "want table, json or raw")
	a.run("kv", "put", "/config/x", "v", "--if-version", "-1").expect(t, 2)
	a.run("svc", "ls", "-o", "raw").expect(t, 2).stderrHas(t, "want table or json")
	if l := decodeJSON[[]rpc.KVEntry](t, a.run("kv", "ls", "/config/x", "-o", "json").expect(t, 0)); len(l) != 0 {
		t.Errorf("bad input wrote %+v", l)
	}
}
