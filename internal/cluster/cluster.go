// Package cluster runs clusters of rumor agents for tests: on a simulated
// network in virtual time (go-libp2p's QUIC over marcopolo/simnet, inside a
// testing/synctest bubble), or on real TCP on 127.0.0.1 in real time, with
// the same operations: writes, link cuts, loss, region latency, clock skew,
// kill and restart from the same data directory, and adversaries that
// forge and replay. Scenarios written as data (package internal/sim)
// drive it.
package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/internal/netcut"
)

// defaultConfig is the config every agent starts from.
var defaultConfig = config.DefaultConfig()

// Options configure a cluster.
type Options struct {
	// N is the number of agents.
	N int
	// Real runs the agents on real TCP on 127.0.0.1 in real time; without
	// it they run on a simulated network, and the cluster must be made
	// inside a synctest bubble.
	Real bool
	// Seed seeds every random choice: agents' randomness and packet loss.
	Seed uint64
	// Regions, if not empty, places node i in Regions[i%len(Regions)].
	Regions []string
	// Latency is the one-way latency between nodes of one region
	// (simulated network only). Default 1 ms.
	Latency time.Duration
	// Config adjusts each agent's config (after the cluster's own
	// settings: data dir, listen address, bootstrap, region).
	Config func(i int, c *config.Config)
	// RegionLatency sets the one-way latency between pairs of regions
	// ("eu-us" → 60ms), and Loss the probability that a packet is lost,
	// before the first agent starts (simulated network only): a cold
	// start in those conditions. Both can change later on Network.
	RegionLatency map[string]time.Duration
	Loss          float64
	// NoWait makes New return once every agent started, without waiting
	// for the cluster to form (the caller times that itself).
	NoWait bool
}

// Cluster is a set of agents and the network between them.
type Cluster struct {
	t    testing.TB
	opts Options
	net  *Network // nil on real TCP

	mu    sync.Mutex
	nodes []*Node
	cuts  map[[2]int]bool // links cut by Partition, by node index pair
}

// Node is one agent of a cluster, alive or killed.
type Node struct {
	// Index is the node's position, 0-based; its name is "n<Index+1>".
	Index int
	// Region is where the node is ("" without regions).
	Region string

	c      *Cluster
	dir    string
	ip     string
	port   int // real TCP: the port, kept across restarts
	offset atomic.Int64
	deaf   atomic.Bool   // ignores gossip (hears by anti-entropy alone)
	gater  *netcut.Gater // real TCP: cuts
	id     string
	agent  *agent.Agent // nil while killed
}

// Name returns "n1", "n2", ...
func (n *Node) Name() string { return "n" + strconv.Itoa(n.Index+1) }

// ID returns the node's id (stable across restarts).
func (n *Node) ID() string { return n.id }

// Agent returns the running agent, or nil while the node is killed.
func (n *Node) Agent() *agent.Agent {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.agent
}

// Now is the node's clock: the (virtual) time plus its skew.
func (n *Node) Now() time.Time { return time.Now().Add(time.Duration(n.offset.Load())) }

// SetSkew sets how far the node's clock runs ahead (or behind, if negative).
func (n *Node) SetSkew(d time.Duration) { n.offset.Store(int64(d)) }

// SetDeaf makes the node's agent ignore every gossip message it receives
// (on), so it learns only by anti-entropy; its own writes still spread.
func (n *Node) SetDeaf(on bool) { n.deaf.Store(on) }

// Traffic returns what the node sent and received on the simulated
// network so far (zeros on real TCP).
func (n *Node) Traffic() TrafficStats {
	if n.c.net == nil {
		return TrafficStats{}
	}
	return n.c.net.NodeTraffic(n.ip)
}

// Skew returns the node's clock skew.
func (n *Node) Skew() time.Duration { return time.Duration(n.offset.Load()) }

// New starts opts.N agents, each joining through the first live one, and
// waits until every agent counts every other alive. It stops them all in
// t's cleanup.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.N < 1 {
		t.Fatalf("cluster: N = %d", opts.N)
	}
	if opts.Latency == 0 {
		opts.Latency = time.Millisecond
	}
	c := &Cluster{t: t, opts: opts}
	if !opts.Real {
		c.net = NewNetwork(opts.Seed, opts.Latency)
		for p, d := range opts.RegionLatency {
			a, b, ok := strings.Cut(p, "-")
			if !ok {
				t.Fatalf("cluster: region latency %q: want <region>-<region>", p)
			}
			c.net.SetLatency(a, b, d)
		}
		c.net.SetLoss(opts.Loss)
		c.net.Start()
	}
	t.Cleanup(c.Close)
	root := t.TempDir()
	for i := range opts.N {
		n := &Node{Index: i, c: c, dir: filepath.Join(root, "n"+strconv.Itoa(i+1))}
		id, err := writeKey(n.dir, opts.Seed, i)
		if err != nil {
			t.Fatalf("cluster: %v", err)
		}
		n.id = id
		if len(opts.Regions) > 0 {
			n.Region = opts.Regions[i%len(opts.Regions)]
		}
		if opts.Real {
			n.ip, n.gater = "127.0.0.1", netcut.New()
		} else {
			n.ip = IP(i)
			c.net.SetRegion(n.ip, n.Region)
		}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		if err := c.start(n); err != nil {
			t.Fatalf("cluster: start %s: %v", n.Name(), err)
		}
	}
	if !opts.NoWait {
		c.WaitFormed(formTimeout(opts.N))
	}
	return c
}

// writeKey writes node i's key, drawn from seed, into dir, and returns its
// node id: the same seed gives the same ids, so which of two equal stamps
// wins (the one with the smaller node id) is the same on every run.
func writeKey(dir string, seed uint64, i int) (string, error) {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	binary.LittleEndian.PutUint64(s[8:], uint64(i))
	k, _, err := crypto.GenerateEd25519Key(rand.NewChaCha8(s))
	if err != nil {
		return "", err
	}
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, identity.File), b, 0o600); err != nil {
		return "", err
	}
	id, err := peer.IDFromPrivateKey(k)
	return id.String(), err
}

// formTimeout is how long a cluster of n agents may take to form.
func formTimeout(n int) time.Duration { return 20*time.Second + time.Duration(n)*200*time.Millisecond }

// Network returns the simulated network, or nil on real TCP.
func (c *Cluster) Network() *Network { return c.net }

// Nodes returns every node, alive or killed.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node named name ("n3"), or nil.
func (c *Cluster) Node(name string) *Node {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "n"))
	if err != nil || !strings.HasPrefix(name, "n") || i < 1 || i > len(c.nodes) {
		return nil
	}
	return c.nodes[i-1]
}

// Live returns the nodes whose agent runs.
func (c *Cluster) Live() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var live []*Node
	for _, n := range c.nodes {
		if n.agent != nil {
			live = append(live, n)
		}
	}
	return live
}

// ByID returns the node whose id is id, or nil.
func (c *Cluster) ByID(id string) *Node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// NameOf returns the name of the node with id id, or id itself.
func (c *Cluster) NameOf(id string) string {
	if n := c.ByID(id); n != nil {
		return n.Name()
	}
	return id
}

// start starts n's agent from its data directory.
func (c *Cluster) start(n *Node) error {
	cfg := config.LocalConfig(n.dir)
	cfg.Region = n.Region
	var opts agent.Options
	if c.opts.Real {
		cfg.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", n.port)}
		opts.HostOptions = []libp2p.Option{libp2p.ConnectionGater(n.gater)}
	} else {
		cfg.Listen = []string{"/ip4/" + n.ip + "/udp/8000/quic-v1"}
		opts.Transports = c.net.Transports(n.ip)
	}
	cfg.Bootstrap = c.bootstrapFor(n)
	if c.opts.Config != nil {
		c.opts.Config(n.Index, &cfg)
	}
	opts.Clock = n
	opts.DropGossip = func(string) bool { return n.deaf.Load() }
	opts.NoSocket = true
	opts.Rand = rand.New(rand.NewPCG(c.opts.Seed, uint64(n.Index)))
	a, err := agent.New(cfg, opts)
	if err != nil {
		return err
	}
	if err := a.Start(context.Background()); err != nil {
		return err
	}
	if c.opts.Real && n.port == 0 {
		n.port = tcpPort(a.Addrs())
	}
	c.mu.Lock()
	n.agent = a
	c.mu.Unlock()
	return nil
}

// bootstrapFor returns the addresses of the first live node other than n.
func (c *Cluster) bootstrapFor(n *Node) []string {
	for _, o := range c.Live() {
		if o != n {
			return o.agent.Addrs()
		}
	}
	return nil
}

func tcpPort(addrs []string) int {
	for _, a := range addrs {
		if _, rest, ok := strings.Cut(a, "/tcp/"); ok {
			p, _, _ := strings.Cut(rest, "/")
			if v, err := strconv.Atoi(p); err == nil {
				return v
			}
		}
	}
	return 0
}

// Kill stops n's agent as a crash would for the others: from this instant
// no packet reaches it or leaves it (on real TCP: every connection is
// refused and closed), then the agent is closed without releasing its
// leases, as a crash leaves them. Its data directory keeps
// what it had flushed, and what Close flushes (a real crash loses at most
// the writes of the last flush interval; the simulation does not).
func (c *Cluster) Kill(n *Node) {
	a := n.Agent()
	if a == nil {
		c.t.Fatalf("cluster: kill %s: not running", n.Name())
	}
	c.isolate(n, true)
	if err := a.Crash(); err != nil {
		c.t.Errorf("cluster: close %s: %v", n.Name(), err)
	}
	c.mu.Lock()
	n.agent = nil
	c.mu.Unlock()
	c.isolate(n, false)
}

// Restart starts a killed node again from its data directory.
func (c *Cluster) Restart(n *Node) {
	if n.Agent() != nil {
		c.t.Fatalf("cluster: restart %s: already running", n.Name())
	}
	if err := c.start(n); err != nil {
		c.t.Fatalf("cluster: restart %s: %v", n.Name(), err)
	}
}

// isolate cuts every link of n (on), or restores those of its links that
// no partition cuts (off).
func (c *Cluster) isolate(n *Node, on bool) {
	for _, o := range c.nodes {
		if o != n && !(!on && c.cutBetween(n, o)) {
			c.cutLink(n, o, on)
		}
	}
}

// Partition cuts every link between the groups (nodes in no group keep
// their links). The cuts stay until Heal.
func (c *Cluster) Partition(groups ...[]*Node) {
	for gi, g := range groups {
		for _, h := range groups[gi+1:] {
			for _, a := range g {
				for _, b := range h {
					c.mu.Lock()
					if c.cuts == nil {
						c.cuts = make(map[[2]int]bool)
					}
					c.cuts[idxPair(a.Index, b.Index)] = true
					c.mu.Unlock()
					c.cutLink(a, b, true)
				}
			}
		}
	}
}

// Heal removes every cut made by Partition.
func (c *Cluster) Heal() {
	c.mu.Lock()
	cuts := c.cuts
	c.cuts = nil
	c.mu.Unlock()
	for p := range cuts {
		c.cutLink(c.nodes[p[0]], c.nodes[p[1]], false)
	}
}

func idxPair(a, b int) [2]int {
	if a > b {
		a, b = b, a
	}
	return [2]int{a, b}
}

// cutBetween reports whether Partition cut the link between a and b.
func (c *Cluster) cutBetween(a, b *Node) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cuts[idxPair(a.Index, b.Index)]
}

// cutLink cuts or restores the link between a and b. On the simulated
// network packets between them are dropped, and the agents find out as
// they would on a real network (their connection goes silent). On real TCP
// the gaters refuse new connections and an open one is closed.
func (c *Cluster) cutLink(a, b *Node, on bool) {
	if c.net != nil {
		c.net.Cut(a.ip, b.ip, on)
		return
	}
	pa, _ := peer.Decode(a.id)
	pb, _ := peer.Decode(b.id)
	a.gater.Block(pb, on)
	b.gater.Block(pa, on)
	if !on {
		return
	}
	for _, x := range []struct {
		n *Node
		p peer.ID
	}{{a, pb}, {b, pa}} {
		if ag := x.n.Agent(); ag != nil {
			_ = ag.Gossip().ClosePeer(x.p)
		}
	}
}

// Close stops every agent, then the network.
func (c *Cluster) Close() {
	var errs []error
	for _, n := range c.Live() {
		errs = append(errs, n.Agent().Close())
		c.mu.Lock()
		n.agent = nil
		c.mu.Unlock()
	}
	if c.net != nil {
		c.net.Close()
	}
	if err := errors.Join(errs...); err != nil {
		c.t.Errorf("cluster: close: %v", err)
	}
}

// WaitFormed waits until every live agent counts every other live agent
// alive, and fails the test if that takes longer than timeout.
func (c *Cluster) WaitFormed(timeout time.Duration) {
	c.t.Helper()
	c.Eventually(timeout, "cluster formed", func() error {
		live := c.Live()
		for _, n := range live {
			ms, err := n.Agent().Members(context.Background())
			if err != nil {
				return err
			}
			alive := 0
			for _, m := range ms {
				if m.State == "alive" && c.ByID(m.Node) != nil && c.ByID(m.Node).Agent() != nil {
					alive++
				}
			}
			if alive < len(live) {
				return fmt.Errorf("%s counts %d of %d live agents alive", n.Name(), alive, len(live))
			}
			// Every connected agent is known to subscribe to every
			// topic: GossipSub then sends a node's own write to each of
			// them at once. A peer whose subscriptions have not arrived
			// yet gets it only through mesh repair (a heartbeat, ~1 s)
			// or anti-entropy, and a scenario's first "converged
			// within=1s" after formation would then time a race.
			g := n.Agent().Gossip()
			for _, p := range g.Peers() {
				if o := c.ByID(p.String()); o == nil || o.Agent() == nil {
					continue
				}
				for _, ns := range crdt.Namespaces {
					if !slices.Contains(g.TopicPeers(string(ns)), p) {
						return fmt.Errorf("%s does not know yet that %s subscribes to %s", n.Name(), c.ByID(p.String()).Name(), ns)
					}
				}
			}
		}
		return nil
	})
}

// PollEvery is how often Eventually, and the scenarios' observations,
// check their condition.
const PollEvery = 10 * time.Millisecond

// Eventually checks cond every 10 ms until it returns nil, and fails the
// test with cond's last error if it has not within timeout. It returns how
// long it took. In a synctest bubble the time is virtual.
func (c *Cluster) Eventually(timeout time.Duration, what string, cond func() error) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			c.t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(PollEvery)
	}
}
