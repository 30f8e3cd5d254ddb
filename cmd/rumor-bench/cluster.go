package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/store/watch"
)

// clusterOptions tune how a benchmark cluster is started.
type clusterOptions struct {
	heartbeat   time.Duration // agents' node/ heartbeat interval
	formTimeout time.Duration // how long every agent may take to see every member
	settle      time.Duration // pause after forming, for GossipSub meshes to graft
	seed        uint64
	// configure, when set, adjusts agent i's config before it starts.
	configure func(i int, cfg *config.Config)
	// options, when set, returns agent i's options; the cluster sets
	// NoSocket, Logger and Rand itself.
	options func(i int) agent.Options
	// logger, when set, returns agent i's logger (default: logs discarded).
	logger func(i int) *slog.Logger
}

// cluster is n agents in this process on 127.0.0.1, each joined through
// the first.
type cluster struct {
	agents []*agent.Agent
	cfgs   []config.Config // each agent's config, to restart it from its data dir
	opt    clusterOptions
	root   string // parent of the agents' data dirs
	// formed is how long it took until every agent listed every member.
	formed time.Duration
	// minPeers is the fewest connected peers any agent had when measuring began.
	minPeers int
}

// startCluster starts n agents and waits until every agent's store lists n
// keys under node/, then gives the meshes opt.settle to form. On error
// every agent started is closed.
func startCluster(ctx context.Context, n int, opt clusterOptions) (*cluster, error) {
	root, err := os.MkdirTemp("", "rumor-bench-")
	if err != nil {
		return nil, err
	}
	c := &cluster{root: root, opt: opt}
	began := time.Now()
	for i := range n {
		cfg := c.config(fmt.Sprintf("agent%03d", i))
		if i > 0 {
			cfg.Bootstrap = c.agents[0].Addrs()
		}
		if opt.configure != nil {
			opt.configure(i, &cfg)
		}
		a, err := c.startAgent(ctx, i, cfg, uint64(i))
		if err != nil {
			c.close()
			return nil, fmt.Errorf("start agent %d of %d: %w", i, n, err)
		}
		c.agents = append(c.agents, a)
		c.cfgs = append(c.cfgs, cfg)
	}
	// Formed: every agent holds every member's entry.
	deadline := time.Now().Add(opt.formTimeout)
	for {
		worst, seen, behind := -1, n, 0
		for i, a := range c.agents {
			k := memberCount(a.Store())
			if k < n {
				behind++
			}
			if k < seen {
				worst, seen = i, k
			}
		}
		if worst < 0 {
			break
		}
		if time.Now().After(deadline) {
			c.close()
			return nil, fmt.Errorf("cluster of %d agents did not form within %v: %d agents lack members; agent %d lists %d of %d under node/",
				n, opt.formTimeout, behind, worst, seen, n)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			c.close()
			return nil, err
		}
	}
	c.formed = time.Since(began)
	// Full connectivity is not required (GossipSub needs only a mesh), but
	// give the redialers a moment to get there (or to max_peers) before
	// measuring.
	want := n - 1
	if m := c.cfgs[0].MaxPeers; m > 0 {
		want = min(want, m)
	}
	peerDeadline := time.Now().Add(10 * time.Second)
	for c.fewestPeers() < want && time.Now().Before(peerDeadline) {
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			c.close()
			return nil, err
		}
	}
	if err := sleepCtx(ctx, opt.settle); err != nil {
		c.close()
		return nil, err
	}
	c.minPeers = c.fewestPeers()
	return c, nil
}

// memberCount returns how many member entries (node/<id>, not
// accusations) s holds.
func memberCount(s *store.Store) int {
	k := 0
	for _, e := range s.List("node/") {
		if crdt.IsMemberKey(e.Key) {
			k++
		}
	}
	return k
}

// config returns a bench agent's config with its data dir named dir under
// the cluster's root.
func (c *cluster) config(dir string) config.Config {
	cfg := config.LocalConfig(filepath.Join(c.root, dir))
	cfg.Cluster = "bench"
	scaleDetector(&cfg, c.opt.heartbeat)
	return cfg
}

// scaleDetector sets the heartbeat to hb and, for a heartbeat slower than
// the default, stretches suspect_after and dead_after by the same factor
// (an agent refuses suspect_after under two heartbeats).
func scaleDetector(cfg *config.Config, hb time.Duration) {
	if hb <= 0 {
		return
	}
	if hb > cfg.Heartbeat {
		f := float64(hb) / float64(cfg.Heartbeat)
		cfg.SuspectAfter = time.Duration(float64(cfg.SuspectAfter) * f)
		cfg.DeadAfter = time.Duration(float64(cfg.DeadAfter) * f)
	}
	cfg.Heartbeat = hb
}

// startAgent starts one agent with cfg, with the options and logger of
// cluster index i (logs discarded unless opt.logger is set) and randomness
// from stream.
func (c *cluster) startAgent(ctx context.Context, i int, cfg config.Config, stream uint64) (*agent.Agent, error) {
	var o agent.Options
	if c.opt.options != nil {
		o = c.opt.options(i)
	}
	o.NoSocket = true
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if c.opt.logger != nil {
		o.Logger = c.opt.logger(i)
	}
	o.Rand = rand.New(rand.NewPCG(c.opt.seed, stream))
	a, err := agent.New(cfg, o)
	if err == nil {
		err = a.Start(ctx)
	}
	return a, err
}

// restart starts agent i again from its data dir with the config it first
// started with (the same identity and state); the caller closed it before.
func (c *cluster) restart(ctx context.Context, i int, stream uint64) error {
	a, err := c.startAgent(ctx, i, c.cfgs[i], stream)
	if err != nil {
		return fmt.Errorf("restart agent %d: %w", i, err)
	}
	c.agents[i] = a
	return nil
}

// fewestPeers returns the smallest number of connected peers of any agent.
func (c *cluster) fewestPeers() int {
	least := -1
	for _, a := range c.agents {
		if p := len(a.Gossip().Peers()); least < 0 || p < least {
			least = p
		}
	}
	return least
}

// close stops every agent (concurrently, and waits for them) and removes
// the data dirs.
func (c *cluster) close() {
	var wg sync.WaitGroup
	for _, a := range c.agents {
		wg.Go(func() { _ = a.Close() })
	}
	wg.Wait()
	c.agents = nil
	_ = os.RemoveAll(c.root)
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drainers read store watchers promptly, one goroutine per watcher, and
// hand each event with its arrival time to a callback.
type drainers struct {
	wg       sync.WaitGroup
	watchers []*watch.Watcher
	mu       sync.Mutex
	err      error // first watcher that ended on its own
}

// watch starts draining a watcher on prefix in s. fn runs on the drainer's
// goroutine and must be quick.
func (d *drainers) watch(s *store.Store, prefix string, buffer int, fn func(ev watch.Event, at time.Time)) {
	w := s.Watch(prefix, buffer)
	d.watchers = append(d.watchers, w)
	d.wg.Go(func() {
		for ev := range w.C() {
			fn(ev, time.Now())
		}
		if err := w.Err(); !errors.Is(err, watch.ErrClosed) {
			d.mu.Lock()
			if d.err == nil {
				d.err = fmt.Errorf("store watcher on %q ended early: %w", prefix, err)
			}
			d.mu.Unlock()
		}
	})
}

// failed returns the error of a watcher that was dropped, if any.
func (d *drainers) failed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// stop closes the watchers, waits for the drainers and returns failed().
func (d *drainers) stop() error {
	for _, w := range d.watchers {
		w.Close()
	}
	d.wg.Wait()
	return d.failed()
}

// tracker times writes from just before the write call until the last of
// the expected agents applied them.
type tracker struct {
	mu      sync.Mutex
	pending map[string]*sample
	done    []time.Duration
	byKey   map[string]time.Duration // latency of each completed key
}

type sample struct {
	start  time.Time
	writer int    // index of the writing agent, whose own apply is ignored
	seen   []bool // by agent index
	left   int
	last   time.Time
}

func newTracker() *tracker {
	return &tracker{pending: make(map[string]*sample), byKey: make(map[string]time.Duration)}
}

// begin starts timing a write of key by agent writer that agents
// 0..agents-1 other than writer must apply. Call it just before the write.
func (t *tracker) begin(key string, writer, agents int) {
	s := &sample{writer: writer, seen: make([]bool, agents), left: agents - 1}
	t.mu.Lock()
	t.pending[key] = s
	s.start = time.Now()
	t.mu.Unlock()
}

// seen records that agent applied key at time at.
func (t *tracker) seen(key string, agent int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.pending[key]
	if !ok || agent == s.writer || agent >= len(s.seen) || s.seen[agent] {
		return
	}
	s.seen[agent] = true
	s.left--
	if at.After(s.last) {
		s.last = at
	}
	if s.left == 0 {
		d := s.last.Sub(s.start)
		t.done = append(t.done, d)
		t.byKey[key] = d
		delete(t.pending, key)
	}
}

// outstanding returns how many timed writes have not reached every agent.
func (t *tracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// laggards describes which agents have not applied the pending writes:
// the (up to) five that miss the most, as "agent (writes missing)".
func (t *tracker) laggards() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	missing := make(map[int]int)
	for _, s := range t.pending {
		for i, seen := range s.seen {
			if !seen && i != s.writer {
				missing[i]++
			}
		}
	}
	agents := make([]int, 0, len(missing))
	for i := range missing {
		agents = append(agents, i)
	}
	slices.SortFunc(agents, func(a, b int) int { return cmp.Or(missing[b]-missing[a], a-b) })
	var parts []string
	for _, i := range agents[:min(len(agents), 5)] {
		parts = append(parts, fmt.Sprintf("%d (%d)", i, missing[i]))
	}
	return fmt.Sprintf("%d agents miss some; most: %s", len(agents), strings.Join(parts, ", "))
}

// latency returns the latency of key, and whether it completed.
func (t *tracker) latency(key string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.byKey[key]
	return d, ok
}

// latencies returns the completed writes' latencies in completion order.
func (t *tracker) latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.done...)
}
