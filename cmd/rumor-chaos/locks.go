package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The lock workload: every agent's host runs `rumor lock` on one lock in a
// loop, each run's command a sleep whose life the workload watches (it
// prints its pid; the workload polls it). Two commands alive at once on two
// hosts is a double execution; how long they overlapped is its window.
const (
	lockName  = "lk"
	lockTTL   = 3 * time.Second
	lockWait  = 2 * time.Second
	lockPoll  = 5 * time.Millisecond
	lockLimit = 20 * time.Second // a run that takes longer is killed
)

// lockRun is one command that ran under the lock.
type lockRun struct {
	Agent      int           `json:"agent"`
	Epoch      uint64        `json:"epoch"`
	Asked      time.Time     `json:"asked"` // rumor lock started (and began to wait)
	Start      time.Time     `json:"start"` // first seen running
	End        time.Time     `json:"end"`   // first seen gone
	Code       int           `json:"exit_code"`
	Stopped    bool          `json:"stopped"` // rumor lock stopped it (lease lost, suspect or unconfirmed)
	Overlapped time.Duration `json:"overlapped_ns,omitempty"`
}

// lockClient runs `rumor lock` on a's host until ctx is done.
func (w *workload) lockClient(ctx context.Context, a *agent, rng *rand.Rand) {
	for pause(ctx, time.Duration(50+rng.IntN(200))*time.Millisecond) {
		if !a.up() {
			continue
		}
		if run, ok := w.lockOnce(ctx, a, time.Duration(300+rng.IntN(1200))*time.Millisecond); ok {
			w.mu.Lock()
			w.locks = append(w.locks, run)
			w.mu.Unlock()
		}
	}
}

// lockOnce runs rumor lock once, under the gate (the run changes the
// lock's records until it ends), and reports the command's run if it ran.
func (w *workload) lockOnce(ctx context.Context, a *agent, sleep time.Duration) (lockRun, bool) {
	w.gate.RLock()
	defer w.gate.RUnlock()
	cctx, cancel := context.WithTimeout(ctx, lockLimit)
	defer cancel()
	script := fmt.Sprintf(`echo "$$ $RUMOR_LOCK_EPOCH"; exec sleep %.3f`, sleep.Seconds())
	cmd := exec.CommandContext(cctx, w.rumorBin, "--socket", a.sock, "lock", "--ttl", lockTTL.String(), "--wait", lockWait.String(), lockName, "--", "sh", "-c", script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return lockRun{}, false
	}
	asked := time.Now()
	if err := cmd.Start(); err != nil {
		return lockRun{}, false
	}
	run := lockRun{Agent: a.i - 1, Asked: asked}
	sc := bufio.NewScanner(out)
	pid := 0
	if sc.Scan() {
		run.Start = time.Now()
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			pid, _ = strconv.Atoi(f[0])
			run.Epoch, _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	if pid > 0 {
		for !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			if cctx.Err() != nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(lockPoll)
		}
		run.End = time.Now()
	}
	_ = cmd.Wait()
	run.Code = cmd.ProcessState.ExitCode()
	run.Stopped = strings.Contains(stderr.String(), "sending SIG")
	return run, pid > 0
}

// lockOverlaps sets each run's overlap with runs on other hosts and
// returns the overlapping pairs' windows.
func lockOverlaps(runs []lockRun) []time.Duration {
	slices.SortFunc(runs, func(x, y lockRun) int { return x.Start.Compare(y.Start) })
	var windows []time.Duration
	for i := range runs {
		for j := i + 1; j < len(runs) && runs[j].Start.Before(runs[i].End); j++ {
			if runs[j].Agent == runs[i].Agent {
				continue
			}
			end := runs[i].End
			if runs[j].End.Before(end) {
				end = runs[j].End
			}
			d := end.Sub(runs[j].Start)
			windows = append(windows, d)
			runs[i].Overlapped = max(runs[i].Overlapped, d)
			runs[j].Overlapped = max(runs[j].Overlapped, d)
		}
	}
	return windows
}

// lockOvertakes returns, for the runs that waited, the most runs that
// began to wait after one of them and ran before it: how far the wait
// queue's first-come, first-served order was broken.
func lockOvertakes(runs []lockRun) int {
	most := 0
	for _, r := range runs {
		n := 0
		for _, o := range runs {
			if o.Agent != r.Agent && r.Asked.Before(o.Asked) && o.Start.Before(r.Start) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}
