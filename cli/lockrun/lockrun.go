// Package lockrun runs a command while holding a kernel's lease, the work
// of `rumor lock`: it holds a lease session open with the agent, renews
// the lease while the command runs, and stops the command, on this
// process's own monotonic clock, before the lease can have run out on the
// agent: even a paused or dead agent cannot leave it running as a second
// holder.
package lockrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rumor-dev/rumor/rpc"
)

// exitFailed is the exit code of a command whose end Run could not read.
const exitFailed = 1

// ParseSignal parses a signal name (TERM, SIGTERM, term) or number.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := "SIG" + strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for n := syscall.Signal(1); n < 32; n++ {
		if unixSignalName(n) == name {
			return n, nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q (want a name such as TERM, INT, HUP, or a number)", s)
}

// unixSignalName is the SIG name of n, e.g. SIGTERM.
func unixSignalName(n syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGKILL: "SIGKILL",
		syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2", syscall.SIGTERM: "SIGTERM", syscall.SIGALRM: "SIGALRM",
	}
	return names[n]
}

// Options say what Run runs, under which lease.
type Options struct {
	// Name is the kernel whose lease the command runs under.
	Name string
	// Claim is the session's claim: lease length, job, wait, run-once slot.
	Claim rpc.KernelClaim
	// Argv is the command and its arguments.
	Argv []string
	// Signal stops the command when the lease is lost; SIGKILL follows
	// after Grace (0: 5 s, or a third of the lease less its margin if
	// shorter).
	Signal syscall.Signal
	Grace  time.Duration
	// Stdout and Stderr are the command's; Stderr also gets Run's notes.
	Stdout, Stderr io.Writer
}

// ErrNotGranted is wrapped by Run's error when the lease was not granted
// (held by another, and no wait or the wait ran out).
var ErrNotGranted = errors.New("lease not granted")

// ErrBadGrace is wrapped by Run's error when Options.Grace leaves the
// command no time within the lease.
var ErrBadGrace = errors.New("grace too long for the lease")

// Run claims the lease Options.Name for a session, runs the command while
// renewing it, stops the command (Signal, then SIGKILL after Grace) before
// the lease can have run out if it is lost, goes suspect or cannot be
// confirmed renewed, releases the lease, and returns the command's exit
// code (128+n if signal n ended it). With a run-once slot it records the
// run's outcome, and a slot that already ran is not run again (exit 0).
func Run(ctx context.Context, client *rpc.Client, opts Options) (int, error) {
	l := &locker{client: client, name: opts.Name, req: opts.Claim, argv: opts.Argv, sig: opts.Signal, grace: opts.Grace, stdout: opts.Stdout, stderr: opts.Stderr}
	return l.run(ctx)
}

// locker runs one `rumor lock`: a session, the command, and the deadline
// that stops the command.
type locker struct {
	client         *rpc.Client
	name           string
	req            rpc.KernelClaim
	argv           []string
	sig            syscall.Signal
	grace          time.Duration // 0: the default
	stdout, stderr io.Writer
}

func (l *locker) logf(format string, args ...any) {
	fmt.Fprintf(l.stderr, "rumor lock: "+format+"\n", args...)
}

// run acquires the lease, runs the command and returns its exit code.
func (l *locker) run(ctx context.Context) (int, error) {
	sctx, endSession := context.WithCancel(ctx)
	events := make(chan rpc.SessionEvent, 16)
	sess := &sessionEnd{done: make(chan struct{})}
	go func() {
		defer close(sess.done)
		sess.err = l.client.KernelSession(sctx, l.name, l.req, func(ev rpc.SessionEvent) error {
			select {
			case events <- ev:
				return nil
			case <-sctx.Done():
				return sctx.Err()
			}
		})
	}()
	defer func() {
		endSession()
		<-sess.done
	}()

	granted, err := l.acquire(events, sess)
	if err != nil {
		return 0, err
	}
	ttl := time.Duration(granted.TTLMillis) * time.Millisecond
	margin := time.Duration(granted.MarginMillis) * time.Millisecond
	grace := l.grace
	if grace == 0 {
		grace = min(5*time.Second, (ttl-margin)/3)
	}
	if grace >= ttl-margin {
		l.release(granted.Session)
		return 0, fmt.Errorf("%w: --grace %v leaves the command no time: the lease is %v and must stop %v (lease_margin) before its end", ErrBadGrace, grace, ttl, margin)
	}
	if t := granted.Once; t != nil && t.State != "running" {
		l.logf("slot %s already ran on node %s: %s (%s); not running it again", l.req.Once, t.Owner, t.State, t.Result)
		l.release(granted.Session)
		return 0, nil
	}
	// Confirm the lease before starting: the deadline counts from a
	// renewal sent after the grant.
	s := &supervisor{locker: l, session: granted.Session, ttl: ttl, margin: margin, grace: grace}
	if err := s.renewNow(ctx); err != nil {
		l.release(granted.Session)
		return 0, fmt.Errorf("lease %s was granted but could not be confirmed: %w", l.name, err)
	}
	code, fenced, err := s.runCommand(ctx, granted.Kernel, events, sess.done)
	if l.req.Once != "" && err == nil && !fenced {
		state, result := "done", "exit 0"
		if code != 0 {
			state, result = "failed", fmt.Sprintf("exit %d", code)
		}
		if _, err := l.client.TaskUpdate(context.WithoutCancel(ctx), rpc.OnceTask(l.name, l.req.Once), rpc.TaskUpdate{State: state, Result: result}); err != nil {
			l.logf("recording slot %s as %s: %v", l.req.Once, state, err)
		}
	}
	l.release(granted.Session)
	return code, err
}

// sessionEnd is how a session's stream ended: err, once done is closed.
type sessionEnd struct {
	done chan struct{}
	err  error
}

// acquire waits for the session's verdict.
func (l *locker) acquire(events <-chan rpc.SessionEvent, sess *sessionEnd) (rpc.SessionEvent, error) {
	for {
		select {
		case ev := <-events:
			switch ev.Event {
			case rpc.SessionGranted:
				return ev, nil
			case rpc.SessionWaiting:
				l.logf("waiting for %s (held by %s, epoch %d)", l.name, holderName(ev.Kernel.Holder), ev.Kernel.Epoch)
			case rpc.SessionDenied:
				if h := ev.Kernel.Holder; h != "" && ev.Kernel.Live {
					return ev, fmt.Errorf("%w: lock %s is held by %s (epoch %d)", ErrNotGranted, l.name, h, ev.Kernel.Epoch)
				}
				return ev, fmt.Errorf("%w: lock %s was not granted", ErrNotGranted, l.name)
			}
		case <-sess.done:
			if sess.err == nil {
				return rpc.SessionEvent{}, errors.New("the agent ended the session before granting it")
			}
			return rpc.SessionEvent{}, sess.err
		}
	}
}

func holderName(h string) string {
	if h == "" {
		return "nobody"
	}
	return h
}

// release gives the session's lease back; a lease already gone is fine.
func (l *locker) release(session string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.client.KernelRelease(ctx, l.name, rpc.KernelRelease{Session: session}); err != nil && rpc.CodeOf(err) != rpc.CodeDenied {
		l.logf("release of %s: %v", l.name, err)
	}
}

// supervisor renews a session's lease while its command runs and stops
// the command before the lease can have run out.
type supervisor struct {
	*locker
	session            string
	ttl, margin, grace time.Duration
	// deadline is when the command must have stopped: the send time of the
	// last renewal the agent confirmed, plus ttl, minus margin. The agent
	// stamped that renewal after it was sent, so the lease lasts at least
	// that long on the agent's clock; other nodes wait max_skew more.
	deadline time.Time
}

// renewNow sends one keepalive and, if the agent confirms it, moves the
// deadline.
func (s *supervisor) renewNow(ctx context.Context) error {
	sent := time.Now()
	ctx, cancel := context.WithTimeout(ctx, max(s.ttl/3, 100*time.Millisecond))
	defer cancel()
	if _, err := s.client.KernelRenew(ctx, s.name, rpc.KernelRenew{TTLMillis: s.req.TTLMillis, Session: s.session}); err != nil {
		return err
	}
	if d := sent.Add(s.ttl - s.margin); d.After(s.deadline) {
		s.deadline = d
	}
	return nil
}

// runCommand runs the command until it exits and returns its exit code,
// and whether it was stopped because the lease was lost or unconfirmed.
func (s *supervisor) runCommand(ctx context.Context, k rpc.Kernel, events <-chan rpc.SessionEvent, sessionDone <-chan struct{}) (int, bool, error) {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, s.stdout, s.stderr
	cmd.Env = append(os.Environ(),
		"RUMOR_LOCK_NAME="+s.name,
		"RUMOR_LOCK_EPOCH="+strconv.FormatUint(k.Epoch, 10),
		"RUMOR_LOCK_HOLDER="+k.Holder,
		"RUMOR_LOCK_SESSION="+s.session,
	)
	if s.req.Once != "" {
		cmd.Env = append(cmd.Env, "RUMOR_LOCK_SLOT="+s.req.Once)
	}
	// Its own process group, so that a signal reaches a script's children
	// too; and SIGKILL if rumor lock dies (kill -9), whose agent then
	// releases the lease at once. The parent-death signal is sent when the
	// thread that started the command exits: keep this goroutine on it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, false, fmt.Errorf("start %s: %w", s.argv[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	signalGroup := func(sig syscall.Signal) { _ = syscall.Kill(-cmd.Process.Pid, sig) }

	type renewal struct{ err error }
	renewed := make(chan renewal, 1)
	renewing := false
	nextRenew := time.NewTimer(s.ttl / 3)
	defer nextRenew.Stop()
	stopAt := time.NewTimer(time.Until(s.deadline.Add(-s.grace)))
	defer stopAt.Stop()
	var (
		fenced bool
		kill   <-chan time.Time
	)
	fence := func(why string) {
		if fenced {
			return
		}
		fenced = true
		s.logf("%s: sending %s to %s, SIGKILL in %v", why, unixSignalName(s.sig), s.argv[0], s.grace.Round(time.Millisecond))
		signalGroup(s.sig)
		kill = time.After(s.grace)
	}
	sessionEvents := events
	for {
		select {
		case err := <-exited:
			signalGroup(syscall.SIGKILL) // what the command left behind in its group
			return commandExitCode(cmd, err), fenced, nil
		case sig := <-sigs:
			signalGroup(sig.(syscall.Signal))
		case ev := <-sessionEvents:
			switch ev.Event {
			case rpc.SessionSuspect:
				fence("lease " + s.name + " is suspect (this agent is cut off from most of the cluster)")
			case rpc.SessionLost, rpc.SessionExpired, rpc.SessionReleased:
				fence("lease " + s.name + " was " + ev.Event)
			case rpc.SessionStopping:
				fence("the agent is stopping")
			}
		case <-sessionDone:
			sessionEvents, sessionDone = nil, nil
			s.logf("the agent ended the session stream; the command keeps the lease only until its deadline")
		case <-nextRenew.C:
			if !renewing && !fenced {
				renewing = true
				go func() { renewed <- renewal{s.renewNow(ctx)} }()
			}
		case r := <-renewed:
			renewing = false
			var next time.Duration
			switch {
			case r.err == nil:
				stopAt.Reset(time.Until(s.deadline.Add(-s.grace)))
				next = s.ttl / 3
			case rpc.CodeOf(r.err) == rpc.CodeDenied || rpc.CodeOf(r.err) == rpc.CodeNotFound:
				fence(fmt.Sprintf("lease %s could not be renewed (%v)", s.name, r.err))
			default: // the agent did not answer: try again soon, the deadline stands
				s.logf("renewal of %s failed: %v", s.name, r.err)
				next = min(s.ttl/10, time.Second)
			}
			if next > 0 {
				nextRenew.Reset(next)
			}
		case <-stopAt.C:
			fence(fmt.Sprintf("lease %s was not confirmed renewed in time", s.name))
		case <-kill:
			kill = nil
			s.logf("%s did not stop within %v: sending SIGKILL", s.argv[0], s.grace.Round(time.Millisecond))
			signalGroup(syscall.SIGKILL)
		}
	}
}

// commandExitCode is the exit code of the command that ended with err (from Wait):
// its own, or 128+n if signal n ended it.
func commandExitCode(cmd *exec.Cmd, err error) int {
	st := cmd.ProcessState
	if st == nil {
		return exitFailed
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if err != nil && st.ExitCode() < 0 {
		return exitFailed
	}
	return st.ExitCode()
}
