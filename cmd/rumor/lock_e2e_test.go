package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lockProc is one `rumor lock` process whose command prints its pid and
// then sleeps.
type lockProc struct {
	cmd     *exec.Cmd
	stderr  *bytes.Buffer
	pid     int       // the locked command's
	started time.Time // when the command reported itself running
	exited  chan int  // rumor lock's exit code
}

func startLock(t *testing.T, a *agentProc, args ...string) *lockProc {
	t.Helper()
	all := append([]string{"--socket", a.socket, "lock"}, args...)
	all = append(all, "--", "sh", "-c", `echo "$$ $RUMOR_LOCK_EPOCH"; exec sleep 60`)
	l := &lockProc{cmd: exec.Command(rumorBin, all...), stderr: &bytes.Buffer{}, exited: make(chan int, 1)}
	out, err := l.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	l.cmd.Stderr = l.stderr
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_ = l.cmd.Wait()
		l.exited <- l.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		_ = l.cmd.Process.Kill()
		if l.pid > 0 {
			_ = syscall.Kill(l.pid, syscall.SIGKILL)
		}
	})
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("rumor lock %v: the command never ran: %s", args, l.stderr)
		}
		l.started = time.Now()
		f := strings.Fields(line)
		if l.pid, err = strconv.Atoi(f[0]); err != nil || len(f) != 2 || f[1] == "" {
			t.Fatalf("command's first line %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("rumor lock %v: the command did not start within 30s: %s", args, l.stderr)
	}
	return l
}

// gone waits until the locked command has exited and returns when it was
// first seen gone.
func (l *lockProc) gone(t *testing.T, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(l.pid, 0); errors.Is(err, syscall.ESRCH) {
			return time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the locked command (pid %d) still runs after %v: %s", l.pid, within, l.stderr)
	return time.Time{}
}

// TestLockCommand: rumor lock runs the command with the lock's environment
// and exits with its code; a second rumor lock is refused (exit 3) while
// the first runs, and a lease below the floor is refused (exit 2).
func TestLockCommand(t *testing.T) {
	a := startAgent(t, nil)
	r := a.cli(t, "lock", "gpu", "--", "sh", "-c", `echo "$RUMOR_LOCK_NAME $RUMOR_LOCK_EPOCH $RUMOR_LOCK_HOLDER"; exit 7`)
	if r.code != 7 || strings.TrimSpace(r.stdout) != "gpu 1 "+a.id {
		t.Fatalf("rumor lock: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if k := a.cli(t, "kernel", "who", "gpu"); !strings.Contains(k.stdout, "released") {
		t.Fatalf("after the command exited: %q", k.stdout)
	}
	l := startLock(t, a, "gpu")
	if r := a.cli(t, "lock", "gpu", "--", "true"); r.code != 3 || !strings.Contains(r.stderr, "is held by "+a.id) {
		t.Fatalf("second lock: exit %d, %q", r.code, r.stderr)
	}
	_ = syscall.Kill(l.pid, syscall.SIGTERM)
	if code := <-l.exited; code != 128+int(syscall.SIGTERM) {
		t.Fatalf("rumor lock of a command killed by SIGTERM exited %d", code)
	}
	if r := a.cli(t, "lock", "--ttl", "100ms", "gpu", "--", "true"); r.code != 2 || !strings.Contains(r.stderr, "minimum lease TTL 700ms") {
		t.Fatalf("ttl below the floor: exit %d, %q", r.code, r.stderr)
	}
	if r := a.cli(t, "lock", "gpu"); r.code != 2 {
		t.Fatalf("no command: exit %d, %q", r.code, r.stderr)
	}
}

// TestLockStopsTheCommandWhenItsAgentPauses: with the holder's agent
// paused (SIGSTOP), rumor lock cannot confirm a renewal and stops the
// command within ttl - lease_margin of the last renewal it saw; a waiter on
// another node gets the lease only after the holder's lease ran out (plus
// max_skew), so the two commands never run at once. Prints the gap.
func TestLockStopsTheCommandWhenItsAgentPauses(t *testing.T) {
	if testing.Short() {
		t.Skip("pauses an agent for seconds")
	}
	const ttl, margin = 2 * time.Second, 500 * time.Millisecond
	// Three agents: with two, the waiter's agent, cut off from half of
	// the nodes it saw, would be suspect itself and stop its own command.
	a := startAgent(t, nil, "--max-skew", "500ms")
	b := startAgent(t, a.addrs, "--max-skew", "500ms")
	c := startAgent(t, a.addrs, "--max-skew", "500ms")
	poll(t, 20*time.Second, "b sees a and c", func() error {
		if r := b.cli(t, "members"); strings.Count(r.stdout, " alive ") != 3 {
			return fmt.Errorf("members: %s", r.stdout)
		}
		return nil
	})
	_ = c
	holder := startLock(t, a, "--ttl", ttl.String(), "gpu")
	waiterDone := make(chan *lockProc, 1)
	go func() { waiterDone <- startLock(t, b, "--ttl", ttl.String(), "--wait", "60s", "gpu") }()
	poll(t, 20*time.Second, "b waits", func() error {
		if r := b.cli(t, "kernel", "who", "gpu"); !strings.Contains(r.stdout, a.id+" live") {
			return fmt.Errorf("who: %s", r.stdout)
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // let the waiter's session open: a pause before it is no different
	paused := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.cmd.Process.Signal(syscall.SIGCONT) }()
	stopped := holder.gone(t, 10*time.Second)
	if d := stopped.Sub(paused); d > ttl-margin+250*time.Millisecond {
		t.Fatalf("the holder's command ran %v after its agent paused: past ttl - lease_margin (%v)", d, ttl-margin)
	} else {
		t.Logf("holder's command stopped %v after its agent paused (bound: ttl - lease_margin = %v)", d.Round(time.Millisecond), ttl-margin)
	}
	var waiter *lockProc
	select {
	case waiter = <-waiterDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the waiter never got the lock")
	}
	gap := waiter.started.Sub(stopped)
	t.Logf("waiter's command started %v after the holder's stopped (%v after the pause)", gap.Round(time.Millisecond), waiter.started.Sub(paused).Round(time.Millisecond))
	if gap < 0 {
		t.Fatalf("both commands ran at once for %v", -gap)
	}
	_ = a.cmd.Process.Signal(syscall.SIGCONT)
	if code := <-holder.exited; code != 128+int(syscall.SIGTERM) {
		t.Fatalf("holder's rumor lock exited %d: %s", code, holder.stderr)
	}
}

// TestLockClientKilled: kill -9 of rumor lock kills its command (the
// parent-death signal) and the agent releases the lease at once, so
// another rumor lock gets it without waiting for the TTL.
func TestLockClientKilled(t *testing.T) {
	a := startAgent(t, nil)
	l := startLock(t, a, "--ttl", "60s", "gpu")
	killed := time.Now()
	if err := l.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-l.exited
	// The command is gone (a zombie at worst, as its parent died).
	poll(t, 5*time.Second, "the command gone", func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", l.pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return nil
		}
		return fmt.Errorf("pid %d: %s", l.pid, b)
	})
	next := startLock(t, a, "--ttl", "60s", "--wait", "30s", "gpu")
	if d := next.started.Sub(killed); d > 10*time.Second {
		t.Fatalf("the next lock started %v after the holder's client was killed (TTL 60 s)", d)
	} else {
		t.Logf("next lock's command started %v after kill -9 of the holder's rumor lock", d.Round(time.Millisecond))
	}
	_ = syscall.Kill(next.pid, syscall.SIGTERM)
	<-next.exited
}

// TestLockStoppedCommandIsKilled: a command stopped with SIGSTOP cannot
// act on SIGTERM; when the lease is lost (here, an operator's forced
// release), rumor lock's SIGKILL after --grace still ends it.
func TestLockStoppedCommandIsKilled(t *testing.T) {
	a := startAgent(t, nil)
	l := startLock(t, a, "--ttl", "60s", "--grace", "300ms", "gpu")
	if err := syscall.Kill(l.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	forced := time.Now()
	if r := a.cli(t, "kernel", "release", "--force", "gpu", "--reason", "test"); r.code != 0 {
		t.Fatalf("force release: exit %d: %s", r.code, r.stderr)
	}
	gone := l.gone(t, 10*time.Second)
	t.Logf("stopped command killed %v after the forced release (grace 300ms)", gone.Sub(forced).Round(time.Millisecond))
	if code := <-l.exited; code != 128+int(syscall.SIGKILL) {
		t.Fatalf("rumor lock exited %d: %s", code, l.stderr)
	}
	if !strings.Contains(l.stderr.String(), "was lost") || !strings.Contains(l.stderr.String(), "did not stop within 300ms") {
		t.Fatalf("rumor lock's messages: %s", l.stderr)
	}
}
