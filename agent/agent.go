// Package agent wires one rumor node together and runs it: the replica
// (the one ingest path and the store), the gossip transport, anti-entropy,
// the failure detector, the lease holder and the task rules, the metrics
// and the local API. It decides nothing itself: every rule is in the
// package that owns it, and the agent only connects their inputs and
// outputs, owns the goroutines that drive them and stops them all.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	madns "github.com/multiformats/go-multiaddr-dns"

	"github.com/rumor-dev/rumor/antientropy"
	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/kernels"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/obs"
	"github.com/rumor-dev/rumor/queue"
	"github.com/rumor-dev/rumor/replica"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/version"
)

// Version is the agent's version, shown in status and member entries.
var Version = version.Release

// ErrStopped is returned by an agent's methods after Close.
var ErrStopped = kernels.ErrStopped

// Options are the agent's injected dependencies; the zero value uses the
// real ones. Tests use them to fake time, randomness and the network.
type Options struct {
	Clock       clock.Clock
	Logger      *slog.Logger
	Rand        *rand.Rand
	HostOptions []libp2p.Option
	// Transports, if not nil, replace the libp2p transports (the
	// simulated cluster passes its simulated network's QUIC).
	Transports []libp2p.Option
	// DropGossip, when set, makes the agent ignore gossip messages
	// received from the peers it returns true for (tests: convergence by
	// anti-entropy alone).
	DropGossip func(via string) bool
	// NoSocket skips the Unix-socket API server (in-process tests call
	// the agent's methods directly).
	NoSocket bool
	// LogLevel, if set, is the level of Logger's handler, which Reload
	// changes when log_level does (without it, log_level needs a restart).
	LogLevel *slog.LevelVar
	// Resolver resolves the DNS names of join addresses, at every redial
	// (nil: the system's resolver). Tests inject one whose answers change.
	Resolver *madns.Resolver
}

// Agent is one rumor node.
type Agent struct {
	cfg   config.Config
	opts  Options
	clock clock.Clock
	log   *slog.Logger
	rand  *rand.Rand
	psk   pnet.PSK

	self    string
	rep     *replica.Replica
	store   *store.Store
	node    *gossip.Node
	mon     *membership.Monitor
	sync    *antientropy.Syncer
	kernels *kernels.Service
	queue   *queue.Service
	lag     *obs.LagProbe
	metrics *obs.Server // nil without metrics_addr
	// known remembers which peers were handed to the gossip layer to keep
	// connected, so a member entry heard again does not re-add a peer.
	known   *lru.Cache[string, struct{}]
	rl      reloadState
	started time.Time

	cancel    context.CancelFunc
	stopNote  func()
	wg        sync.WaitGroup
	closeOnce sync.Once
	closed    chan struct{}
	// owners collects membership changes for owner-down/up watch events.
	owners *ownerChanges
}

// New validates cfg and prepares an agent; Start brings it up.
func New(cfg config.Config, opts Options) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := cfg.SocketPerm(); err != nil { // an unknown socket_group
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(uint64(opts.Clock.Now().UnixNano()), uint64(os.Getpid())))
	}
	known, _ := lru.New[string, struct{}](4096)
	a := &Agent{
		cfg: cfg, opts: opts, clock: opts.Clock, log: opts.Logger, rand: opts.Rand,
		lag: obs.NewLagProbe(), known: known, closed: make(chan struct{}), owners: newOwnerChanges(),
	}
	if cfg.PSKFile != "" {
		psk, err := config.LoadPSK(cfg.PSKFile)
		if err != nil {
			return nil, err
		}
		a.psk = psk
	}
	a.rl.init(cfg)
	return a, nil
}

// Start brings the agent up: identity, state, libp2p host, GossipSub
// topics and the agent's loops. It returns once the agent serves; Close
// stops it.
func (a *Agent) Start(ctx context.Context) error {
	key, err := identity.LoadOrCreate(a.cfg.DataDir)
	if err != nil {
		return err
	}
	signer, err := identity.NewSigner(key, a.cfg.Cluster)
	if err != nil {
		return err
	}
	a.self = signer.ID()
	a.log = a.log.With("node", shortID(a.self))
	allow, err := a.joinPolicy()
	if err != nil {
		return err
	}
	a.rep, err = replica.Open(a.replicaConfig(), replica.Deps{
		Signer: signer, Verifier: identity.NewVerifier(a.cfg.Cluster), Clock: a.clock, Logger: a.log,
		Applied: a.applied,
	})
	if err != nil {
		return err
	}
	a.store = a.rep.Store()
	a.store.Hub().SetHistory(a.cfg.WatchHistory)
	a.store.SetKVHistory(a.cfg.KVHistory)
	a.kernels = kernels.New(kernels.Deps{
		Self: a.self, Config: a.cfg, Clock: a.clock, Log: a.log, Store: a.store, Write: a.writeIf,
		GossipDelayP99: a.rep.GossipDelayP99,
		Peers:          func() []peer.ID { return a.node.Peers() },
		PushKey:        func(ctx context.Context, p peer.ID, key string) error { return a.sync.PushKey(ctx, p, key) },
		Partitioned:    func() bool { return a.mon.Partitioned() },
		Dead:           a.ownerDead,
		States:         a.states,
		Closed:         a.closed,
	})
	a.queue = queue.New(queue.Deps{
		Self: a.self, Config: a.cfg, Clock: a.clock, Log: a.log, Store: a.store,
		Write:   func(d crdt.Delta) (crdt.Delta, bool, error) { return a.write(d) },
		Kernels: a.kernels,
		Known:   func(node string) bool { return a.mon.Table().State(node) != 0 },
		Dead:    a.ownerDead,
		Rand:    rand.New(rand.NewPCG(a.rand.Uint64(), a.rand.Uint64())),
		States:  a.states,
		Closed:  a.closed,
	})
	a.mon = membership.NewMonitor(membership.MonitorConfig{
		Self: a.self, Cluster: a.cfg.Cluster, Heartbeat: a.cfg.Heartbeat, ProbePeers: a.cfg.ProbePeers,
		Detector: a.cfg.Membership(), Region: a.cfg.Region, Version: Version,
		Rand: rand.New(rand.NewPCG(a.rand.Uint64(), a.rand.Uint64())), PeerClock: a.rep.PeerClock,
		OnChange: a.owners.note,
	}, func(d crdt.Delta) error { _, _, err := a.write(d); return err }, a.clock, a.log)
	topics, lane := GossipTopics()
	a.node, err = gossip.New(ctx, gossip.Config{
		Cluster:         a.cfg.Cluster,
		Topics:          topics,
		Lane:            lane,
		Listen:          a.cfg.Listen,
		Bootstrap:       a.cfg.Bootstrap,
		Resolver:        a.opts.Resolver,
		MDNS:            a.cfg.MDNS,
		Identity:        key,
		MaxMessageBytes: a.cfg.MaxMessageBytes,
		Validate:        a.validate,
		Logger:          a.log,
		Rand:            rand.New(rand.NewPCG(a.rand.Uint64(), a.rand.Uint64())),
		HostOptions:     a.opts.HostOptions,
		Transports:      a.opts.Transports,
		AllowPeers:      allow,
		PSK:             a.psk,
		RedialMin:       a.cfg.RedialMin,
		RedialMax:       a.cfg.RedialMax,
		MaxPeers:        a.cfg.MaxPeers,
		MeshDegree:      a.cfg.MeshDegree,
	})
	if err != nil {
		_ = a.rep.Close()
		return err
	}
	if err := a.listenMetrics(); err != nil {
		_ = a.node.Close()
		_ = a.rep.Close()
		a.node = nil // Close has nothing more to stop
		return err
	}
	a.sync = antientropy.NewSyncer(antientropy.Config{
		Cluster: a.cfg.Cluster, Interval: a.cfg.AntiEntropy, Logger: a.log,
		Cutoff: func() crdt.HLC { return a.rep.Cutoff(a.cfg.AntiEntropy) },
		Rand:   rand.New(rand.NewPCG(a.rand.Uint64(), a.rand.Uint64())),
	}, a.node, a.rep)
	a.stopNote = a.node.Notify(func(p peer.ID) {
		a.sync.Connected(p)
		a.mon.Connected(p)
	}, a.mon.Disconnected)
	a.started = a.clock.Now()
	loopCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.rep.Start(a.node)
	a.kernels.Resume()
	a.mon.Start(a.node) // announce ourselves at once, before the first tick
	a.wg.Go(func() { a.mon.Run(loopCtx) })
	notes := a.watchNotes()
	a.wg.Go(func() { notes(loopCtx) })
	a.wg.Go(func() { a.sync.Run(loopCtx) })
	a.wg.Go(func() { a.kernels.Run(loopCtx) })
	if a.metrics != nil {
		a.wg.Go(func() {
			if err := a.metrics.Serve(); err != nil {
				a.log.Error("metrics server stopped", "err", err)
			}
		})
	}
	a.log.Info("agent started", "cluster", a.cfg.Cluster, "addrs", a.node.Addrs(), "metrics", a.MetricsAddr())
	a.rl.markUp()
	return nil
}

// GossipTopics returns the gossip topics an agent joins, one per
// namespace, and those of them that its gossip node carries on the
// priority lane (gossip.Config.Lane; replica.InLane): a peer that speaks
// to agents over GossipSub (tests' raw peers and adversaries) must join
// the same.
func GossipTopics() (topics, lane []string) {
	for _, ns := range crdt.Namespaces {
		topics = append(topics, string(ns))
		if replica.InLane(ns) {
			lane = append(lane, string(ns))
		}
	}
	return topics, lane
}

// replicaConfig is the part of the config the replica takes.
func (a *Agent) replicaConfig() replica.Config {
	return replica.Config{
		DataDir: a.cfg.DataDir, ResetState: a.cfg.ResetState, MaxSkew: a.cfg.MaxSkew,
		TombstoneHorizon: a.cfg.TombstoneHorizon, BatchMaxDeltas: a.cfg.BatchMaxDeltas, BatchMaxBytes: a.cfg.BatchMaxBytes,
		Limits: limitsOf(a.cfg), BLWriters: a.cfg.BLWriters, KVWriters: a.cfg.KVWriters,
	}
}

func limitsOf(c config.Config) replica.Limits {
	return replica.Limits{MaxKeyBytes: c.MaxKeyBytes, MaxValueBytes: c.MaxValueBytes, MaxTags: c.MaxTags, MaxDeltasPerMessage: c.MaxDeltasPerMessage}
}

// Close stops the agent's loops and its network, publishes what is queued
// and flushes its state, and waits for all of it. It releases the leases
// the agent holds first: a graceful stop frees its kernels at once, where
// a crash leaves them held until they run out. It is idempotent.
func (a *Agent) Close() error { return a.close(true) }

// Crash stops the agent as Close does, except that it leaves its leases
// held, as a crash would (tests and the simulated cluster: a restart then
// resumes them).
func (a *Agent) Crash() error { return a.close(false) }

func (a *Agent) close(release bool) error {
	var err error
	a.closeOnce.Do(func() {
		if release && a.node != nil {
			a.kernels.ReleaseAll() // while writes are still taken and published
		}
		close(a.closed)
		if a.cancel != nil {
			a.cancel()
		}
		if a.metrics != nil {
			a.metrics.Stop()
		}
		a.wg.Wait()
		if a.node != nil {
			a.stopNote()
			err = errors.Join(a.rep.Close(), a.node.Close()) // the replica publishes what is queued first
		}
		a.log.Info("agent stopped")
	})
	return err
}

// ID returns the agent's node id (its libp2p peer id).
func (a *Agent) ID() string { return a.self }

// Addrs returns multiaddrs other agents can join.
func (a *Agent) Addrs() []string { return a.node.Addrs() }

// Store returns the agent's replicated store, for reads (tests and tools).
func (a *Agent) Store() *store.Store { return a.store }

// Gossip returns the agent's gossip node (tests and tools).
func (a *Agent) Gossip() *gossip.Node { return a.node }

// Monitor returns the agent's failure detector (tests and tools).
func (a *Agent) Monitor() *membership.Monitor { return a.mon }

// Replica returns the agent's replica (tests and tools).
func (a *Agent) Replica() *replica.Replica { return a.rep }

// nowMS reads the wall clock in Unix milliseconds.
func (a *Agent) nowMS() int64 { return a.clock.Now().UnixMilli() }

// write is a local write: the replica stamps, admits and stores d, and
// publishes it. It returns the delta and whether it changed the store.
func (a *Agent) write(d crdt.Delta) (crdt.Delta, bool, error) { return a.writeIf(d, nil) }

// writeIf is write, made only if cond passes (see replica.WriteIf).
func (a *Agent) writeIf(d crdt.Delta, cond func(crdt.Entry) error) (crdt.Delta, bool, error) {
	return a.replicaWrite(func() (crdt.Delta, bool, error) { return a.rep.WriteIf(d, cond) })
}

// writeFrom writes the delta next makes from key's entry as it is at the
// instant of the write (see replica.WriteFrom).
func (a *Agent) writeFrom(key string, next func(crdt.Entry) (crdt.Delta, error)) (crdt.Delta, bool, error) {
	return a.replicaWrite(func() (crdt.Delta, bool, error) { return a.rep.WriteFrom(key, next) })
}

// replicaWrite runs a write of the replica, unless the agent stopped, and
// turns a write over a bound into a bad request.
func (a *Agent) replicaWrite(write func() (crdt.Delta, bool, error)) (crdt.Delta, bool, error) {
	select {
	case <-a.closed:
		return crdt.Delta{}, false, ErrStopped
	default:
	}
	d, changed, err := write()
	switch {
	case errors.Is(err, replica.ErrLimit):
		return d, false, rpc.BadRequest("%v", err)
	case errors.Is(err, replica.ErrStopped):
		return d, false, ErrStopped
	}
	return d, changed, err
}

// validate is the gossip validator: the replica ingests the message.
func (a *Agent) validate(topic string, data []byte, via peer.ID, local bool) error {
	if local {
		return nil // stored and judged by the replica when it was written
	}
	if a.opts.DropGossip != nil && a.opts.DropGossip(via.String()) {
		return gossip.Ignore("dropped", errors.New("test option DropGossip"))
	}
	err := a.rep.Gossip(topic, data)
	var r *replica.Refusal
	if errors.As(err, &r) {
		if r.Ignore {
			return gossip.Ignore(r.Reason, r.Err)
		}
		return gossip.Reject(r.Reason, r.Err)
	}
	return err
}

// applied sees every delta that changed the state: writes that came by
// gossip feed the lag probe; member entries and accusations feed the
// failure detector, and member entries teach the gossip layer whom to
// keep connected.
func (a *Agent) applied(src replica.Source, changed []crdt.Delta, nowMS int64) {
	for _, d := range changed {
		if src == replica.Gossip && d.Stamp.Node != a.self {
			a.lag.Observe(d.Stamp.Node, d.Stamp.HLC.WallMS(), nowMS)
		}
		if crdt.NamespaceOf(d.Key) != crdt.NSNode {
			continue
		}
		a.mon.Learn(d, nowMS)
		if d.Stamp.Node != a.self && crdt.IsMemberKey(d.Key) {
			a.learnPeer(d)
		}
	}
}

// learnPeer asks the gossip layer to keep a node we heard about connected,
// so agents that joined through one bootstrap peer mesh with everyone. It
// dials only the addresses a node's own signed entry gives for itself.
func (a *Agent) learnPeer(d crdt.Delta) {
	id := crdt.LastSegment(d.Key)
	if a.known.Contains(id) {
		return
	}
	var v crdt.MemberValue
	if crdt.Decode(d.Value, &v) != nil {
		return
	}
	ai, ok := membership.DialInfo(id, v.Addrs)
	if !ok {
		return
	}
	a.known.Add(id, struct{}{})
	a.node.AddPeer(ai)
}

// shortID abbreviates a node id for logs.
func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// Backup writes a consistent snapshot of the agent's state (a copy of its
// state file) for `rumor backup`. It records the time first, so that a
// restore can tell the snapshot's age.
func (a *Agent) Backup(ctx context.Context, begin func(size int64) (io.Writer, error)) (int64, error) {
	n, err := a.rep.Backup(ctx, begin)
	if err == nil {
		a.log.Info("backup written", "bytes", n, "keys", a.store.Len())
	}
	return n, err
}

// MetricsAddr returns the address /metrics and the status page are served
// on ("" when metrics_addr is off), with the port it bound when
// metrics_addr asked for port 0.
func (a *Agent) MetricsAddr() string {
	if a.metrics == nil {
		return ""
	}
	return a.metrics.Addr()
}

var (
	_ rpc.API          = (*Agent)(nil)
	_ httpapi.Backuper = (*Agent)(nil)
)

// errorf is fmt.Errorf with the package's prefix.
func errorf(format string, args ...any) error { return fmt.Errorf("agent: "+format, args...) }
