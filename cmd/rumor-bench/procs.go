package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// procOptions tune a cluster of `rumor agent` processes.
type procOptions struct {
	bin                      string // the rumor binary
	heartbeat, suspect, dead time.Duration
	formTimeout              time.Duration // how long every agent may take to see every member alive
	settle                   time.Duration // pause after forming, for GossipSub meshes to graft
	startTimeout             time.Duration // how long one agent may take to serve its socket
	// gomaxprocs, if positive, is each agent process's GOMAXPROCS (0:
	// Go's default, one per CPU).
	gomaxprocs int
	// metricsAddr is the agents' metrics_addr; "" turns the listener off,
	// so that many agents do not clash on its port.
	metricsAddr string
}

// procAgent is one `rumor agent` process on 127.0.0.1 with its own data
// dir, socket and log file. Only the goroutine that drives the cluster
// uses it; the process's waiter goroutine touches only its own cmd and
// exited channel.
type procAgent struct {
	i       int
	dir     string
	sock    string
	logPath string
	// listen is /ip4/127.0.0.1/tcp/0 until the first start, then the
	// address the agent got, so a restart listens where it did before.
	listen string
	id     string
	addrs  []string // full multiaddrs ending in /p2p/<id>, for --join
	client *rpc.Client

	cmd    *exec.Cmd     // nil when not running
	exited chan struct{} // closed when cmd has exited and been reaped
}

// procCluster is n `rumor agent` processes on 127.0.0.1, each joined
// through the first.
type procCluster struct {
	opt    procOptions
	root   string // parent of the agents' data dirs, the config and the logs
	config string // the agents' YAML config
	agents []*procAgent
	// formed is how long it took from the first start until every agent
	// listed every member alive.
	formed time.Duration
	// minPeers is the fewest connected peers any agent had when measuring began.
	minPeers int
}

// procConfig is the agents' config file: the defaults except the cluster
// name, the detector's settings, the metrics listener and logs at info.
func procConfig(opt procOptions) string {
	return fmt.Sprintf("cluster: bench\nheartbeat: %v\nsuspect_after: %v\ndead_after: %v\nmetrics_addr: %q\nlog_level: info\n",
		opt.heartbeat, opt.suspect, opt.dead, opt.metricsAddr)
}

// startProcCluster starts n agent processes, waits until every agent lists
// every member alive, gives the redialers up to 10 s to connect everyone
// and the meshes opt.settle to form. On error every process started is
// killed and the files removed.
func startProcCluster(ctx context.Context, n int, opt procOptions) (c *procCluster, err error) {
	root, err := os.MkdirTemp("", "rumor-bench-procs-")
	if err != nil {
		return nil, err
	}
	c = &procCluster{opt: opt, root: root, config: filepath.Join(root, "agent.yaml")}
	defer func() {
		if err != nil {
			c.close()
			c = nil
		}
	}()
	if err := os.WriteFile(c.config, []byte(procConfig(opt)), 0o644); err != nil {
		return nil, err
	}
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("a%03d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		sock := filepath.Join(dir, "rumor.sock")
		c.agents = append(c.agents, &procAgent{i: i, dir: dir, sock: sock, logPath: filepath.Join(root, fmt.Sprintf("a%03d.log", i)),
			listen: "/ip4/127.0.0.1/tcp/0", client: rpc.NewClient(sock)})
	}
	began := time.Now()
	// Agent 0 first: the others join through it.
	if err := c.agents[0].launch(opt, c.config, nil); err != nil {
		return nil, err
	}
	if err := c.agents[0].awaitAPI(ctx, opt.startTimeout); err != nil {
		return nil, err
	}
	for _, a := range c.agents[1:] {
		if err := a.launch(opt, c.config, c.agents[0].addrs); err != nil {
			return nil, err
		}
	}
	for _, a := range c.agents[1:] {
		if err := a.awaitAPI(ctx, opt.startTimeout); err != nil {
			return nil, err
		}
	}
	if err := pollUntil(ctx, time.Now().Add(opt.formTimeout), 50*time.Millisecond, func() error { return c.everyoneAlive(ctx) }); err != nil {
		return nil, fmt.Errorf("cluster of %d agent processes did not form within %v: %w", n, opt.formTimeout, err)
	}
	c.formed = time.Since(began)
	// Full connectivity is not required (GossipSub needs only a mesh), but
	// give the redialers a moment to get there before measuring.
	_ = pollUntil(ctx, time.Now().Add(10*time.Second), 50*time.Millisecond, func() error {
		if p := c.fewestPeers(ctx); p < min(n-1, config.DefaultConfig().MaxPeers) {
			return fmt.Errorf("an agent has %d peers", p)
		}
		return nil
	})
	if err := sleepCtx(ctx, opt.settle); err != nil {
		return nil, err
	}
	c.minPeers = c.fewestPeers(ctx)
	return c, nil
}

// agentEnv is this process's environment without RUMOR_* variables, which
// would override the agents' config, and with GOMAXPROCS=gomaxprocs if that
// is positive.
func agentEnv(gomaxprocs int) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RUMOR_") || (gomaxprocs > 0 && strings.HasPrefix(kv, "GOMAXPROCS=")) {
			continue
		}
		env = append(env, kv)
	}
	if gomaxprocs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(gomaxprocs))
	}
	return env
}

// launch starts the agent process with config, joining join; it does not
// wait for the API (awaitAPI does). On Linux the process gets its own
// process group and SIGKILL when this process dies, so that none outlives
// the bench; on every exit path the bench kills it itself (close).
func (a *procAgent) launch(opt procOptions, config string, join []string) error {
	if a.cmd != nil {
		return fmt.Errorf("agent %d is already running", a.i)
	}
	args := []string{"agent", "--config", config, "--data-dir", a.dir, "--socket", a.sock, "--listen", a.listen}
	for _, j := range join {
		args = append(args, "--join", j)
	}
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "---- start %s: %s %s\n", time.Now().Format(time.RFC3339Nano), opt.bin, strings.Join(args, " "))
	cmd := exec.Command(opt.bin, args...)
	cmd.Env = agentEnv(opt.gomaxprocs)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("agent %d: start %s: %w", a.i, opt.bin, err)
	}
	exited := make(chan struct{})
	go func() { // owned by the agent: ends when the process does (kill waits for it)
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	a.cmd, a.exited = cmd, exited
	return nil
}

// awaitAPI polls the agent's status until it answers, then records its id,
// addresses and the TCP address it listens on.
func (a *procAgent) awaitAPI(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := a.client.Status(cctx)
		cancel()
		if err == nil {
			if a.id != "" && st.Node != a.id {
				return fmt.Errorf("agent %d came back as %s, want %s", a.i, st.Node, a.id)
			}
			a.id, a.addrs = st.Node, st.Addrs
			for _, addr := range st.Addrs {
				if l, _, ok := strings.Cut(addr, "/p2p/"); ok && strings.HasPrefix(l, "/ip4/127.0.0.1/tcp/") {
					a.listen = l
				}
			}
			return nil
		}
		if a.exited == nil {
			return fmt.Errorf("agent %d is not running", a.i)
		}
		select {
		case <-a.exited:
			a.cmd = nil
			return fmt.Errorf("agent %d exited at start: %v (log %s)", a.i, logTail(a.logPath, 5), a.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent %d: API not up within %v: %w (log: %v)", a.i, within, err, logTail(a.logPath, 5))
		}
	}
}

// kill sends SIGKILL to the agent's process group and waits until the
// process is reaped; it returns how long the wait took after the signal.
func (a *procAgent) kill() (time.Duration, error) {
	if a.cmd == nil {
		return 0, fmt.Errorf("agent %d is not running", a.i)
	}
	pid := a.cmd.Process.Pid
	sent := time.Now()
	if err := killGroup(pid); err != nil {
		return 0, fmt.Errorf("agent %d: kill -9 %d: %w", a.i, pid, err)
	}
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		return 0, fmt.Errorf("agent %d (pid %d) not reaped 10 s after SIGKILL", a.i, pid)
	}
	a.cmd = nil
	return time.Since(sent), nil
}

// pid returns the agent's process id, 0 when it is not running.
func (a *procAgent) pid() int {
	if a.cmd == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// restart starts agent i again from its data dir (the same identity and
// state), listening where it did before and joining agent 0, and waits
// until its API answers with the same node id.
func (c *procCluster) restart(ctx context.Context, i int) error {
	if err := c.agents[i].launch(c.opt, c.config, c.agents[0].addrs); err != nil {
		return err
	}
	return c.agents[i].awaitAPI(ctx, c.opt.startTimeout)
}

// everyoneAlive returns nil when every running agent lists every agent
// alive.
func (c *procCluster) everyoneAlive(ctx context.Context) error {
	for _, a := range c.agents {
		ms, err := a.client.Members(ctx)
		if err != nil {
			return fmt.Errorf("agent %d: %w", a.i, err)
		}
		if len(ms) != len(c.agents) {
			return fmt.Errorf("agent %d lists %d members, want %d", a.i, len(ms), len(c.agents))
		}
		for _, m := range ms {
			if m.State != "alive" {
				return fmt.Errorf("agent %d sees %s %s", a.i, m.Node, m.State)
			}
		}
	}
	return nil
}

// fewestPeers returns the smallest number of connected peers any agent
// reports (-1 when one does not answer).
func (c *procCluster) fewestPeers(ctx context.Context) int {
	least := -1
	for _, a := range c.agents {
		st, err := a.client.Status(ctx)
		if err != nil {
			return -1
		}
		if least < 0 || st.Peers < least {
			least = st.Peers
		}
	}
	return least
}

// agentsCPU returns the CPU time the running agent processes have used so
// far (those already reaped count in childrenCPU).
func (c *procCluster) agentsCPU() time.Duration {
	var sum time.Duration
	for _, a := range c.agents {
		if pid := a.pid(); pid > 0 {
			sum += benchstat.ProcessCPU(pid)
		}
	}
	return sum
}

// close kills every running agent, waits until each is reaped, and removes
// the data dirs, config and logs. Safe to call twice.
func (c *procCluster) close() {
	for _, a := range c.agents {
		if a.cmd != nil {
			_, _ = a.kill()
		}
		_ = a.client.Close()
	}
	if c.root != "" {
		_ = os.RemoveAll(c.root)
		c.root = ""
	}
}

// logTail returns the last n lines of the file at path, as one error.
func logTail(path string, n int) error {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return errors.New(strings.Join(lines, " | "))
}

// procWatches holds one rpc watch stream per agent process, each read by
// its own goroutine, which hands every event with its arrival time on the
// bench's clock to a callback.
type procWatches struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error // first stream that ended on its own
}

// watchProcs opens a watch on prefix on every agent. fn runs on the
// stream's goroutine and must be quick. stop ends them.
func watchProcs(ctx context.Context, agents []*procAgent, prefix string, fn func(agent int, ev rpc.Event, at time.Time)) *procWatches {
	wctx, cancel := context.WithCancel(ctx)
	w := &procWatches{cancel: cancel}
	for i, a := range agents {
		w.wg.Go(func() {
			err := a.client.Watch(wctx, rpc.WatchRequest{Prefix: prefix}, func(ev rpc.Event) error {
				if ev.Key != "" && ev.Op != rpc.OpSnapshot { // changes only
					fn(i, ev, time.Now())
				}
				return nil
			})
			if wctx.Err() == nil {
				if err == nil {
					err = rpc.ErrWatchClosed
				}
				w.mu.Lock()
				if w.err == nil {
					w.err = fmt.Errorf("watch on agent %d ended early: %w", i, err)
				}
				w.mu.Unlock()
			}
		})
	}
	return w
}

// failed returns the error of a stream that ended early, if any.
func (w *procWatches) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// stop closes the streams, waits for their goroutines and returns failed().
func (w *procWatches) stop() error {
	w.cancel()
	w.wg.Wait()
	return w.failed()
}

// buildRumor builds ./cmd/rumor of this module into dir, statically linked
// as `make build` does, and returns the binary's path.
func buildRumor(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "rumor")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/rumor-dev/rumor/cmd/rumor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as `make build` does
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/rumor (run from the rumor module, or pass -rumor-bin): %v: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}
