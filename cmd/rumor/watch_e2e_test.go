package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
)

// watchProc is a `rumor watch -o json` process and its lines.
type watchProc struct {
	cmd   *exec.Cmd
	lines chan rpc.Event
}

func startWatchProc(t *testing.T, a *agentProc, args ...string) *watchProc {
	t.Helper()
	cmd := exec.Command(rumorBin, append([]string{"--socket", a.socket, "watch", "-o", "json"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &watchProc{cmd: cmd, lines: make(chan rpc.Event, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev rpc.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err == nil {
				w.lines <- ev
			}
		}
		close(w.lines)
	}()
	t.Cleanup(w.kill)
	return w
}

func (w *watchProc) kill() {
	if w.cmd.ProcessState == nil {
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
	}
}

func (w *watchProc) next(t *testing.T) rpc.Event {
	t.Helper()
	select {
	case ev, ok := <-w.lines:
		if !ok {
			t.Fatal("the watch ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch line within 10s")
	}
	return rpc.Event{}
}

// TestWatchSinceAcrossAKilledWatch: a `rumor watch` killed mid-stream and
// started again with --since the cursor of its last line prints every
// change made meanwhile, exactly once, and nothing else first (the figure
// README "Watching" quotes: 0 missed of 40).
func TestWatchSinceAcrossAKilledWatch(t *testing.T) {
	a := startAgent(t, nil)
	if r := a.cli(t, "svc", "set", "web", "a"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	w := startWatchProc(t, a, "svc/", "--keepalive", "0")
	if ev := w.next(t); ev.Op != rpc.OpSnapshot || ev.Key != "svc/web/a" {
		t.Fatalf("first line %+v, want the snapshot of svc/web/a", ev)
	}
	synced := w.next(t)
	if synced.Op != rpc.OpSynced || synced.Cursor == "" {
		t.Fatalf("%+v, want synced with a cursor", synced)
	}
	if r := a.cli(t, "svc", "set", "web", "b"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	last := w.next(t)
	if last.Op != "put" || last.Key != "svc/web/b" || last.Cursor == "" {
		t.Fatalf("%+v", last)
	}
	w.kill()

	const missed = 40
	var want []string
	for i := range missed {
		args := []string{"svc", "set", "web", fmt.Sprint("i", i%5), "--status", fmt.Sprint("s", i)}
		want = append(want, fmt.Sprintf("put svc/web/i%d", i%5))
		if i%4 == 3 { // remove the instance set just before
			args = []string{"svc", "rm", "web", fmt.Sprint("i", (i-1)%5)}
			want[len(want)-1] = fmt.Sprintf("delete svc/web/i%d", (i-1)%5)
		}
		if r := a.cli(t, args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
		if r := a.cli(t, "bl", "add", "l", fmt.Sprint(i)); r.code != 0 { // another prefix
			t.Fatal(r.stderr)
		}
	}
	r := startWatchProc(t, a, "svc/", "--since", last.Cursor, "--keepalive", "0")
	got := 0
	for i := range missed {
		ev := r.next(t)
		if s := ev.Op + " " + ev.Key; s != want[i] || ev.Cursor == "" {
			t.Fatalf("line %d after --since: %q cursor %q, want %q", i, s, ev.Cursor, want[i])
		}
		got++
	}
	if r := a.cli(t, "svc", "set", "web", "z"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if ev := r.next(t); ev.Key != "svc/web/z" {
		t.Fatalf("after the missed changes: %+v (a duplicate or an extra line)", ev)
	}
	t.Logf("changes made while the watch was away: %d, printed after --since: %d, missed: %d", missed, got, missed-got)
}
