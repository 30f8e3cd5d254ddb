package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/crdt"
)

// crashChildEnv, when set to a data file path, turns TestKillDuringWriteBurst
// into the child that writes until it is killed.
const crashChildEnv = "RUMOR_TEST_CRASH_CHILD"

// crashKey and crashValue are the i-th write of the burst: one new key per
// write, with a value that names its key, so a torn or misplaced record
// shows.
func crashKey(i int) string { return fmt.Sprintf("svc/burst/%07d", i) }
func crashValue(i int) string {
	return fmt.Sprintf("%07d|%s|%07d", i, strings.Repeat(string(rune('a'+i%26)), 50+i%200), i)
}

// crashChild writes new keys in order through a store with a short flush
// interval, and after every explicit Flush prints "flushed N": keys 0..N
// are durable. It resumes after the keys already in the file and never
// returns: the parent kills it with SIGKILL.
func crashChild(path string) {
	s, err := Open(path, Options{FlushInterval: time.Millisecond, Logger: quiet})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := s.Len(); ; i++ {
		s.Apply(put(crashKey(i), uint64(crdt.MakeHLC(int64(1_000_000+i), 0)), "n1", crashValue(i)))
		if i%40 == 39 {
			if err := s.Flush(); err != nil {
				fmt.Fprintln(out, "flush:", err)
				out.Flush()
				os.Exit(3)
			}
			fmt.Fprintf(out, "flushed %d\n", i)
			out.Flush()
		}
	}
}

// TestKillDuringWriteBurst kills (SIGKILL) a process in the middle of a
// write burst, at a random moment, several times over the same data file.
// Every time, the file must open, every entry in it must be whole (the
// value its key was written with), the keys must be a prefix of the burst
// (writes are flushed in order), and every key confirmed flushed before the
// kill must be there.
func TestKillDuringWriteBurst(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	r := rand.New(rand.NewPCG(2026, 6))
	const rounds = 6
	for round := range rounds {
		delay := time.Duration(5+r.IntN(120)) * time.Millisecond
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringWriteBurst$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var confirmed atomic.Int64 // last index confirmed flushed
		confirmed.Store(-1)
		first := make(chan struct{})
		lines := make(chan struct{})
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			once := false
			for sc.Scan() {
				n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "flushed "))
				if err != nil {
					t.Errorf("round %d: child says %q", round, sc.Text())
					continue
				}
				confirmed.Store(int64(n))
				if !once {
					once = true
					close(first)
				}
			}
		}()
		select {
		case <-first:
		case <-lines:
			t.Fatalf("round %d: child ended before its first flush", round)
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: no flush from the child in 30s", round)
		}
		time.Sleep(delay) // the kill lands at a random point of the burst
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-lines // the pipe is drained: every confirmation the child made is counted
		_ = cmd.Wait()
		last := int(confirmed.Load())

		s, err := Open(path, Options{FlushInterval: never, Logger: quiet})
		if err != nil {
			t.Fatalf("round %d: the data file does not open after kill -9: %v", round, err)
		}
		n := s.Len()
		for i := range n {
			e, ok := s.Get(crashKey(i))
			if !ok {
				t.Fatalf("round %d: %d keys, but %s is missing: not a prefix of the burst", round, n, crashKey(i))
			}
			if got := string(e.Winner().Value); got != crashValue(i) {
				t.Fatalf("round %d: %s holds %q, want %q", round, crashKey(i), got, crashValue(i))
			}
		}
		if n <= last {
			t.Fatalf("round %d: %d keys on disk, but keys up to %d were confirmed flushed", round, n, last)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after %v; %d keys confirmed, %d on disk", round, delay, last+1, n)
	}
}
