package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/rpc"
)

// lab drives ../shared/netlab: every command bounded in time, its stderr
// in the error.
type lab struct {
	bin string // the netlab script
	net string // "10.99.0": node I is <net>.I
}

func (l *lab) run(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netlab %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (l *lab) up(n int) error { return l.run("up", strconv.Itoa(n)) }

// down stops everything in the lab and deletes it; safe to call twice.
func (l *lab) down() error { return l.run("down") }

func (l *lab) heal() error { return l.run("heal") }

// unpartition removes every partition and nothing else: it flushes the set
// of cut bridge-port pairs in the hub (netlab README, "Partition"), at
// once. `netlab heal` also restarts the delay helpers, which takes seconds
// and drops the packets they hold, so a heal would measure netlab.
func (l *lab) unpartition() error {
	hub := os.Getenv("NETLAB_PREFIX")
	if hub == "" {
		hub = "lab"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", hub+"hub", "nft", "flush", "set", "bridge", "netlab", "cut").CombinedOutput()
	if err != nil {
		return fmt.Errorf("unpartition: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (l *lab) partition(groups ...[]int) error {
	args := []string{"partition"}
	for _, g := range groups {
		var s []string
		for _, i := range g {
			s = append(s, strconv.Itoa(i))
		}
		args = append(args, strings.Join(s, " "))
	}
	return l.run(args...)
}

// delay makes everything node i sends take ms ± jitter ms, losing loss %.
func (l *lab) delay(i, ms, jitter int, loss float64) error {
	return l.run("delay", strconv.Itoa(i), strconv.Itoa(ms), strconv.Itoa(jitter), strconv.FormatFloat(loss, 'f', -1, 64))
}

// agent is one `rumor agent` process in its own namespace.
type agent struct {
	i       int // netlab node number, 1-based
	id      string
	dir     string
	sock    string
	logPath string
	listen  []string // TCP first, then QUIC unless the run is TCP only
	region  string
	client  *rpc.Client

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	paused  bool
	offset  time.Duration
	starts  int
	crashes int
}

// newAgent makes agent i's data dir with a fresh identity key, so that
// every agent's peer id is known before any starts (for --join).
func newAgent(root string, l *lab, i int, region string, tcpOnly bool) (*agent, error) {
	dir := filepath.Join(root, fmt.Sprintf("n%d", i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, err
	}
	b, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "identity.key"), b, 0o600); err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "rumor.sock")
	listen := []string{fmt.Sprintf("/ip4/%s.%d/tcp/7946", l.net, i)}
	if !tcpOnly {
		listen = append(listen, fmt.Sprintf("/ip4/%s.%d/udp/7946/quic-v1", l.net, i))
	}
	return &agent{
		i: i, id: id.String(), dir: dir, sock: sock, logPath: filepath.Join(root, fmt.Sprintf("n%d.log", i)),
		listen: listen, region: region, client: rpc.NewClient(sock),
	}, nil
}

// addrs are the agent's multiaddrs for --join.
func (a *agent) addrs() []string {
	var out []string
	for _, l := range a.listen {
		out = append(out, l+"/p2p/"+a.id)
	}
	return out
}

// start runs the agent in its namespace and waits until its API answers.
func (a *agent) start(l *lab, rumorBin, config string, peers []*agent) error {
	a.mu.Lock()
	if a.cmd != nil {
		a.mu.Unlock()
		return fmt.Errorf("agent %d: already running", a.i)
	}
	args := []string{"exec", strconv.Itoa(a.i), rumorBin, "agent", "--config", config, "--data-dir", a.dir,
		"--socket", a.sock, "--region", a.region}
	for _, l := range a.listen {
		args = append(args, "--listen", l)
	}
	for _, p := range peers {
		if p != a {
			for _, addr := range p.addrs() {
				args = append(args, "--join", addr)
			}
		}
	}
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "---- start %d, clock offset %v, %s\n", a.starts+1, a.offset, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(l.bin, args...)
	cmd.Env = append(os.Environ(), "RUMOR_TEST_CLOCK_OFFSET="+a.offset.String())
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		a.mu.Unlock()
		return fmt.Errorf("agent %d: %w", a.i, err)
	}
	exited := make(chan struct{})
	go func() { // owned by the agent: ends when the process does
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	a.cmd, a.exited, a.paused = cmd, exited, false
	a.starts++
	a.mu.Unlock()

	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := a.client.Status(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("agent %d exited at start (see %s): %v", a.i, a.logPath, tail(a.logPath))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent %d: API not up after 20s: %v", a.i, err)
		}
	}
}

// signal sends sig to the running agent; for SIGKILL and SIGTERM it waits
// until the process has exited (SIGTERM: up to 5 s, then SIGKILL).
func (a *agent) signal(sig syscall.Signal) error {
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	if cmd == nil {
		a.mu.Unlock()
		return fmt.Errorf("agent %d is not running", a.i)
	}
	err := cmd.Process.Signal(sig)
	switch sig {
	case syscall.SIGSTOP:
		a.paused = true
	case syscall.SIGCONT:
		a.paused = false
	}
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("agent %d: signal %v: %w", a.i, sig, err)
	}
	if sig != syscall.SIGKILL && sig != syscall.SIGTERM {
		return nil
	}
	if sig == syscall.SIGTERM {
		if a.paused {
			_ = cmd.Process.Signal(syscall.SIGCONT)
		}
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("agent %d did not stop within 5s of SIGTERM", a.i)
		}
	} else {
		<-exited
	}
	a.mu.Lock()
	a.cmd, a.paused = nil, false
	if sig == syscall.SIGKILL {
		a.crashes++
	}
	a.mu.Unlock()
	return nil
}

// up reports whether the agent runs and is not paused: whether the
// workload should use it.
func (a *agent) up() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cmd != nil && !a.paused
}

func tail(path string) error {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return errors.New(strings.Join(lines, " | "))
}
