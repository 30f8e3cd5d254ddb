package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
)

// lockedBuffer is an agent's log, written by the process's output copier
// while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// configAgent is a `rumor agent --config FILE` process: every setting is in
// the file, so a reload sees what the test writes there.
type configAgent struct {
	config, socket string
	cmd            *exec.Cmd
	log            *lockedBuffer
}

// opsConfig is a config for an agent on 127.0.0.1 in dataDir, plus extra.
func opsConfig(dataDir, extra string) string {
	return fmt.Sprintf("data_dir: %s\nlisten: [/ip4/127.0.0.1/tcp/0]\nmetrics_addr: \"\"\nsettle: 200ms\n%s", dataDir, extra)
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func startConfigAgent(t *testing.T, config string) *configAgent {
	t.Helper()
	a := &configAgent{config: config, log: &lockedBuffer{}, cmd: exec.Command(rumorBin, "agent", "--config", config)}
	r := run(t, "config", "check", config)
	if r.code != 0 {
		t.Fatalf("config check: %+v", r)
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if d, ok := strings.CutPrefix(l, "data_dir: "); ok {
			a.socket = filepath.Join(d, "rumor.sock")
		}
	}
	startProcess(t, a.cmd, a.log, "agent log ("+config+")")
	poll(t, 10*time.Second, "agent serves its socket", func() error {
		if r := a.cli(t, "status"); r.code != 0 {
			return fmt.Errorf("status exit %d: %s", r.code, r.stderr)
		}
		return nil
	})
	return a
}

func (a *configAgent) cli(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, append([]string{"--socket", a.socket}, args...)...)
}

func (a *configAgent) stop(t *testing.T) {
	t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
}

// logHas reports whether one line of the agent's log holds all of parts.
func (a *configAgent) logHas(parts ...string) bool {
	for _, l := range strings.Split(a.log.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestBackupAndRestore: a backup of a running agent restores into a fresh
// data dir, where a new agent serves its keys; restore refuses a damaged
// backup, a running agent and a backup older than tombstone_horizon.
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	srcData, dstData := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.Mkdir(srcData, 0o700); err != nil {
		t.Fatal(err)
	}
	src := startConfigAgent(t, writeConfigFile(t, dir, "src.yaml", opsConfig(srcData, "")))
	for _, id := range []string{"u1", "u2", "u3"} {
		if r := src.cli(t, "bl", "add", "fraud", id); r.code != 0 {
			t.Fatalf("bl add: %+v", r)
		}
	}
	if r := src.cli(t, "svc", "set", "web", "w1", "--addr", "10.0.0.1:80"); r.code != 0 {
		t.Fatalf("svc set: %+v", r)
	}
	backup := filepath.Join(dir, "rumor.backup")
	r := src.cli(t, "backup", backup)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "wrote "+backup+": ") {
		t.Fatalf("backup: %+v", r)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v; want mode 0600", fi, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".rumor.backup.tmp-*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}

	// Refused: the source agent runs; a damaged backup; a stale one.
	if r := run(t, "restore", "--data-dir", srcData, backup); r.code != 1 || !strings.Contains(r.stderr, "locked") {
		t.Errorf("restore under a running agent: %+v, want exit 1 saying it is locked", r)
	}
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.backup")
	writeFile(t, bad, string(raw[:len(raw)/2]))
	if r := run(t, "restore", "--data-dir", dstData, bad); r.code != 2 || !strings.Contains(r.stderr, "corrupt") {
		t.Errorf("restore of a truncated backup: %+v, want exit 2 saying it is corrupt", r)
	}
	if _, err := os.Stat(dstData); !os.IsNotExist(err) {
		t.Errorf("a refused restore created %s: %v", dstData, err)
	}
	stale := writeConfigFile(t, dir, "stale.yaml", opsConfig(dstData, "tombstone_horizon: 1ms\n"))
	if r := run(t, "restore", "--config", stale, backup); r.code != 2 || !strings.Contains(r.stderr, "longer than tombstone_horizon") {
		t.Errorf("restore of a backup older than the horizon: %+v, want exit 2", r)
	}

	r = run(t, "restore", "--data-dir", dstData, backup)
	if r.code != 0 || !strings.Contains(r.stdout, "restored "+backup+" into "+filepath.Join(dstData, "state.db")) {
		t.Fatalf("restore: %+v", r)
	}
	dst := startConfigAgent(t, writeConfigFile(t, dir, "dst.yaml", opsConfig(dstData, "")))
	l, err := jsonOf[[]rpc.BlacklistEntry](t, dst.cli(t, "bl", "ls", "fraud", "-o", "json"))
	if err != nil || len(l) != 3 {
		t.Fatalf("restored blacklist: %+v %v", l, err)
	}
	if s, err := jsonOf[rpc.Service](t, dst.cli(t, "svc", "get", "web", "w1", "-o", "json")); err != nil || s.Addr != "10.0.0.1:80" {
		t.Fatalf("restored service: %+v %v", s, err)
	}
	dst.stop(t)
	// Restoring again keeps the state it replaces.
	if r := run(t, "restore", "--data-dir", dstData, backup); r.code != 0 || !strings.Contains(r.stdout, "the previous state is kept as "+filepath.Join(dstData, "state.db.before-restore-")) {
		t.Fatalf("second restore: %+v", r)
	}
}

// TestSIGHUPReload: SIGHUP makes a running agent re-read its config file:
// bl_writers applies at once (this node may no longer write blacklists),
// a changed listen is logged as needing a restart, and a broken file is
// logged and changes nothing.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	config := writeConfigFile(t, dir, "rumor.yaml", opsConfig(data, "log_level: info\n"))
	a := startConfigAgent(t, config)
	if r := a.cli(t, "bl", "add", "fraud", "u1"); r.code != 0 {
		t.Fatalf("bl add: %+v", r)
	}
	someone := strings.TrimSpace(run(t, "keygen", "--out", filepath.Join(dir, "other.key")).stdout)
	body := strings.Replace(opsConfig(data, "log_level: debug\nbl_writers: ["+someone+"]\n"), "tcp/0", "tcp/1", 1)
	writeFile(t, config, body)
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "reload logged", func() error {
		if !a.logHas(`msg="config reloaded"`, "applied=bl_writers,log_level") {
			return fmt.Errorf("no reload line yet")
		}
		return nil
	})
	if !a.logHas(`msg="config change needs a restart to take effect"`, "key=listen") {
		t.Error("the listen change is not reported as needing a restart")
	}
	if r := a.cli(t, "bl", "add", "fraud", "u2"); r.code != 3 || !strings.Contains(r.stderr, "bl_writers") {
		t.Errorf("bl add after bl_writers excludes this node: %+v, want exit 3", r)
	}

	writeFile(t, config, body+"no_such_key: 1\n")
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "failed reload logged", func() error {
		if !a.logHas(`msg="config reload failed; nothing changed"`, "no_such_key") {
			return fmt.Errorf("no failure line yet")
		}
		return nil
	})
	if r := a.cli(t, "status"); r.code != 0 {
		t.Errorf("agent after a failed reload: %+v", r)
	}
	a.stop(t)
}

func writeConfigFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	writeFile(t, path, body)
	return path
}
