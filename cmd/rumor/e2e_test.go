package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
)

// rumorBin is the binary built once for all end-to-end tests.
var rumorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rumor-e2e")
	if err != nil {
		panic(err)
	}
	rumorBin = filepath.Join(dir, "rumor")
	if out, err := exec.Command("go", "build", "-o", rumorBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build rumor: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one CLI invocation's outcome.
type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(rumorBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// agentProc is one `rumor agent` process.
type agentProc struct {
	dir    string
	cmd    *exec.Cmd
	socket string
	id     string
	addrs  []string
	log    *bytes.Buffer
}

func (a *agentProc) cli(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, append([]string{"--socket", a.socket}, args...)...)
}

func startAgent(t *testing.T, join []string, extra ...string) *agentProc {
	t.Helper()
	return startAgentIn(t, t.TempDir(), join, extra...)
}

func startAgentIn(t *testing.T, dir string, join []string, extra ...string) *agentProc {
	t.Helper()
	args := []string{"agent", "--data-dir", dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "info", "--settle", "200ms", "--metrics-addr", "127.0.0.1:0"}
	for _, j := range join {
		args = append(args, "--join", j)
	}
	args = append(args, extra...)
	a := &agentProc{dir: dir, cmd: exec.Command(rumorBin, args...), socket: filepath.Join(dir, "rumor.sock"), log: &bytes.Buffer{}}
	startProcess(t, a.cmd, a.log, "agent log")
	var st rpc.Status
	poll(t, 10*time.Second, "agent serves its socket", func() error {
		r := a.cli(t, "status", "-o", "json")
		if r.code != 0 {
			return fmt.Errorf("status exit %d: %s", r.code, r.stderr)
		}
		return json.Unmarshal([]byte(r.stdout), &st)
	})
	a.id, a.addrs = st.Node, st.Addrs
	return a
}

func poll(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jsonOf[T any](t *testing.T, r result) (T, error) {
	var v T
	if r.code != 0 {
		return v, fmt.Errorf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	}
	return v, json.Unmarshal([]byte(r.stdout), &v)
}

func TestThreeAgentsThroughTheCLI(t *testing.T) {
	a1 := startAgent(t, nil)
	a2 := startAgent(t, a1.addrs)
	a3 := startAgent(t, a1.addrs)
	as := []*agentProc{a1, a2, a3}
	poll(t, 15*time.Second, "three members everywhere", func() error {
		for _, a := range as {
			ms, err := jsonOf[[]rpc.Member](t, a.cli(t, "members", "-o", "json"))
			if err != nil || len(ms) != 3 {
				return fmt.Errorf("members: %d %v", len(ms), err)
			}
		}
		return nil
	})

	// Services: set on one agent, read on another.
	if r := a1.cli(t, "svc", "set", "web", "w1", "--addr", "10.0.0.1:8080", "--status", "up", "--tag", "zone=a"); r.code != 0 {
		t.Fatalf("svc set: %+v", r)
	}
	poll(t, 10*time.Second, "svc visible on a3", func() error {
		s, err := jsonOf[rpc.Service](t, a3.cli(t, "svc", "get", "web", "w1", "-o", "json"))
		if err != nil {
			return err
		}
		if s.Addr != "10.0.0.1:8080" || s.Status != "up" || s.Owner != a1.id || s.Tags["zone"] != "a" {
			t.Fatalf("svc get on a3 = %+v", s)
		}
		return nil
	})

	// Kernels: a1 wins, a2 is denied with exit 3 naming a1.
	if r := a1.cli(t, "kernel", "claim", "gpu0", "--ttl", "30s", "--job", "train"); r.code != 0 {
		t.Fatalf("kernel claim on a1: %+v", r)
	}
	poll(t, 10*time.Second, "lease visible on a2", func() error {
		k, err := jsonOf[rpc.Kernel](t, a2.cli(t, "kernel", "who", "gpu0", "-o", "json"))
		if err == nil && (k.Holder != a1.id || !k.Live) {
			err = fmt.Errorf("a2 sees %+v", k)
		}
		return err
	})
	r := a2.cli(t, "kernel", "claim", "gpu0")
	if r.code != 3 || !strings.Contains(r.stdout+r.stderr, a1.id[len(a1.id)-8:]) {
		t.Fatalf("claim of a held kernel: exit %d, out %q, err %q; want exit 3 naming %s", r.code, r.stdout, r.stderr, a1.id)
	}
	if r := a2.cli(t, "explain", "kernel/gpu0"); r.code != 0 || !strings.Contains(r.stdout, "held by "+a1.id) || !strings.Contains(r.stdout, "won epoch 1: the first claim") {
		t.Fatalf("explain kernel/gpu0 on a2: %+v", r)
	}

	// Tasks: owned by a2, cancelled from a3, which does not own it.
	if r := a1.cli(t, "task", "assign", "t1", "--node", a2.id); r.code != 0 {
		t.Fatalf("task assign: %+v", r)
	}
	poll(t, 10*time.Second, "task visible on a3", func() error {
		_, err := jsonOf[rpc.Task](t, a3.cli(t, "task", "where", "t1", "-o", "json"))
		return err
	})
	if r := a2.cli(t, "task", "state", "t1", "running"); r.code != 0 {
		t.Fatalf("task state running: %+v", r)
	}
	poll(t, 10*time.Second, "task running, seen on a3", func() error {
		tk, err := jsonOf[rpc.Task](t, a3.cli(t, "task", "where", "t1", "-o", "json"))
		if err == nil && tk.State != "running" {
			err = fmt.Errorf("a3 sees %+v", tk)
		}
		return err
	})
	if r := a3.cli(t, "task", "cancel", "t1"); r.code != 0 || !strings.Contains(r.stdout, "cancel-requested") {
		t.Fatalf("task cancel: %+v", r)
	}
	// The worker on a2 sees the request and confirms it.
	poll(t, 10*time.Second, "cancel request seen on a2", func() error {
		tk, err := jsonOf[rpc.Task](t, a2.cli(t, "task", "where", "t1", "-o", "json"))
		if err == nil && tk.State != "cancel-requested" {
			err = fmt.Errorf("a2 sees %+v", tk)
		}
		return err
	})
	if r := a2.cli(t, "task", "state", "t1", "cancelled"); r.code != 0 {
		t.Fatalf("task state cancelled: %+v", r)
	}
	poll(t, 10*time.Second, "task cancelled by its owner, seen on a1", func() error {
		tk, err := jsonOf[rpc.Task](t, a1.cli(t, "task", "where", "t1", "-o", "json"))
		if err == nil && (tk.State != "cancelled" || tk.Owner != a2.id) {
			err = fmt.Errorf("a1 sees %+v", tk)
		}
		return err
	})

	// Blacklist membership is scriptable through the exit code.
	if r := a2.cli(t, "bl", "add", "fraud", "u1", "--ttl", "1h"); r.code != 0 {
		t.Fatalf("bl add: %+v", r)
	}
	poll(t, 10*time.Second, "bl visible on a3", func() error {
		if r := a3.cli(t, "bl", "has", "fraud", "u1"); r.code != 0 {
			return fmt.Errorf("bl has exit %d", r.code)
		}
		return nil
	})
	if r := a3.cli(t, "bl", "has", "fraud", "u2"); r.code != 1 {
		t.Fatalf("bl has of an absent id: exit %d, want 1", r.code)
	}

	// SIGTERM: the agent leaves cleanly within a second.
	start := time.Now()
	if err := a3.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a3.cmd.Wait(); err != nil {
		t.Fatalf("agent exit after SIGTERM: %v\n%s", err, a3.log)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("shutdown took %v, want under 1s", d)
	}
	if _, err := os.Stat(a3.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after shutdown: %v", err)
	}
}

func TestBadInputExitCodes(t *testing.T) {
	a := startAgent(t, nil)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown command", []string{"frobnicate"}, 2, "frobnicate"},
		{"missing argument", []string{"svc", "set", "web"}, 2, "instance"},
		{"bad duration", []string{"bl", "add", "l", "x", "--ttl", "5parsecs"}, 2, "5parsecs"},
		{"bad output format", []string{"status", "-o", "yaml"}, 2, "yaml"},
		{"absent key", []string{"svc", "get", "nope", "x"}, 1, "nope"},
		{"id of the agent and of a data dir", []string{"id", "--data-dir", a.dir}, 2, "not both"},
	} {
		r := a.cli(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%s: exit %d stderr %q; want exit %d mentioning %q", tc.name, r.code, r.stderr, tc.code, tc.msg)
		}
	}
	// id asks the agent on --socket, and reads its key offline without it.
	for _, r := range []result{a.cli(t, "id"), run(t, "id", "--data-dir", a.dir)} {
		if r.code != 0 || strings.TrimSpace(r.stdout) != a.id {
			t.Errorf("id: exit %d stdout %q stderr %q; want %s", r.code, r.stdout, r.stderr, a.id)
		}
	}
	if r := run(t, "--version"); r.code != 0 || !strings.Contains(r.stdout, "/sync/4") {
		t.Errorf("--version: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r := run(t, "--socket", filepath.Join(t.TempDir(), "none.sock"), "status")
	if r.code != 1 || !strings.Contains(r.stderr, `is "rumor agent" running?`) {
		t.Errorf("agent not running: exit %d stderr %q", r.code, r.stderr)
	}
	r = run(t, "agent", "--data-dir", t.TempDir(), "--listen", "not-a-multiaddr")
	if r.code == 0 || !strings.Contains(r.stderr, "not-a-multiaddr") {
		t.Errorf("agent with a bad listen address: exit %d stderr %q", r.code, r.stderr)
	}
	r = run(t, "agent", "--data-dir", t.TempDir(), "--join", "/dns4/rumor.example.com/tcp/7946")
	if r.code == 0 || !strings.Contains(r.stderr, `bootstrap: "/dns4/rumor.example.com/tcp/7946" (from the bootstrap key or --join): does not end in /p2p/<peer id>`) {
		t.Errorf("agent with a join address without an id: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestKillDashNineAndRestart(t *testing.T) {
	a := startAgent(t, nil)
	for _, id := range []string{"u1", "u2", "u3"} {
		if r := a.cli(t, "bl", "add", "fraud", id); r.code != 0 {
			t.Fatalf("bl add: %+v", r)
		}
	}
	if r := a.cli(t, "svc", "set", "web", "w1", "--addr", "10.0.0.1:80"); r.code != 0 {
		t.Fatalf("svc set: %+v", r)
	}
	poll(t, 5*time.Second, "writes on disk", func() error {
		st, err := jsonOf[rpc.Status](t, a.cli(t, "status", "-o", "json"))
		if err == nil && st.Unflushed != 0 {
			err = fmt.Errorf("%d keys not flushed", st.Unflushed)
		}
		return err
	})
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	b := startAgentIn(t, a.dir, nil)
	if b.id != a.id {
		t.Fatalf("node id changed across restart: %s -> %s", a.id, b.id)
	}
	l, err := jsonOf[[]rpc.BlacklistEntry](t, b.cli(t, "bl", "ls", "fraud", "-o", "json"))
	if err != nil || len(l) != 3 {
		t.Fatalf("after kill -9 and restart: %+v %v", l, err)
	}
	if s, err := jsonOf[rpc.Service](t, b.cli(t, "svc", "get", "web", "w1", "-o", "json")); err != nil || s.Addr != "10.0.0.1:80" {
		t.Fatalf("svc after restart: %+v %v", s, err)
	}
}

func TestCorruptStateRefusedThenReset(t *testing.T) {
	a := startAgent(t, nil)
	if r := a.cli(t, "bl", "add", "l", "x"); r.code != 0 {
		t.Fatalf("bl add: %+v", r)
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	state := filepath.Join(a.dir, "state.db")
	if err := os.WriteFile(state, []byte("this is not a rumor state file, it is garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, "agent", "--data-dir", a.dir, "--listen", "/ip4/127.0.0.1/tcp/0")
	if r.code != 1 || !strings.Contains(r.stderr, "corrupt") || !strings.Contains(r.stderr, "--reset-state") {
		t.Fatalf("agent on a corrupt state file: exit %d, stderr %q; want exit 1 naming the problem and the recovery", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(state); !strings.HasPrefix(string(b), "this is not") {
		t.Fatal("the corrupt file was changed")
	}
	b := startAgentIn(t, a.dir, nil, "--reset-state")
	if st, err := jsonOf[rpc.Status](t, b.cli(t, "status", "-o", "json")); err != nil || st.Node != a.id {
		t.Fatalf("after --reset-state: %+v %v", st, err)
	}
	moved, _ := filepath.Glob(state + ".corrupt-*")
	if len(moved) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", moved)
	}
}

// startProcess starts cmd with its output in log; at cleanup it kills the
// process if it still runs and, if the test failed, prints the log.
func startProcess(t *testing.T, cmd *exec.Cmd, log interface {
	io.Writer
	fmt.Stringer
}, what string) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s:\n%s", what, log)
		}
	})
}
