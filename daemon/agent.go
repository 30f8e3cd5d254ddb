// Package daemon is the rumor agent: it wires the replicated store, the
// gossip layer and the local API together, owns every goroutine it starts,
// and implements rpc.API.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/wire"
)

// Version is the agent's version, shown in status and node heartbeats.
var Version = "0.1.0"

// ErrStopped is returned by an agent's methods after Close.
var ErrStopped = errors.New("daemon: agent stopped")

// Options are the agent's injected dependencies; the zero value uses the
// real ones. Tests use them to fake time, randomness and the network.
type Options struct {
	Clock       clock.Clock
	Logger      *slog.Logger
	Rand        *rand.Rand
	HostOptions []libp2p.Option
	// DropGossip, when set, makes the agent ignore gossip messages from
	// the peers it returns true for (tests: convergence by anti-entropy).
	DropGossip func(from string) bool
	// NoSocket skips the Unix-socket API server (in-process tests call
	// the agent's methods directly).
	NoSocket bool
	// LogLevel, if set, is the level of Logger's handler, which Reload
	// changes when log_level does (without it, log_level needs a restart).
	LogLevel *slog.LevelVar
}

// Agent is one rumor node.
type Agent struct {
	cfg   Config
	opts  Options
	clock clock.Clock
	log   *slog.Logger
	rand  *rand.Rand

	hlcMu    sync.Mutex
	hlc      crdt.Clock
	reserved int64 // wall ms up to which stamps are durably reserved

	store   *store.Store
	members *membership.Table
	leases  *leases
	node    *gossip.Node
	self    string
	pub     *publisher
	delays  *delayTracker
	// known remembers which peers were handed to the gossip layer to keep
	// connected, so a heartbeat does not re-add a peer every second.
	known *lru.Cache[string, struct{}]
	// psk is the private-network key (nil: none); policy is the part of
	// the write policy that the config sets (bl_writers).
	psk    pnet.PSK
	policy livePolicy
	// rl holds what a config reload changes (see Reload).
	rl reloadState

	deltasIn    atomic.Uint64
	nsIn        nsCounter // deltasIn by namespace
	leaseStats  leaseStats
	lag         *lagProbe
	metrics     *metricsServer // nil without metrics_addr
	ownClockLog logLimiter     // "our own clock is ahead", once per 10 s
	clockWarned atomic.Int64   // wall ms of the last clock warning
	sync        syncStats
	silent      silentProbes // probeSilentPeer's verdicts
	syncNow     chan peer.ID
	notifee     *network.NotifyBundle
	started     time.Time

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closed    chan struct{}
}

// New validates cfg and prepares an agent; Start brings it up.
func New(cfg Config, opts Options) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	}
	known, _ := lru.New[string, struct{}](4096)
	a := &Agent{
		cfg: cfg, opts: opts, clock: opts.Clock, log: opts.Logger, rand: opts.Rand,
		store: store.New(), leases: newLeases(), delays: newDelayTracker(1024), known: known,
		nsIn: newNSCounter(), lag: newLagProbe(), closed: make(chan struct{}),
	}
	if cfg.PSKFile != "" {
		psk, err := loadPSK(cfg.PSKFile)
		if err != nil {
			return nil, err
		}
		a.psk = psk
	}
	a.policy.set(newPolicy(cfg))
	a.rl.init(cfg)
	return a, nil
}

// Start brings the agent up: identity, libp2p host, GossipSub topics and
// the agent's loops. It returns once the agent serves; Close stops it.
func (a *Agent) Start(ctx context.Context) error {
	key, err := loadIdentity(a.cfg.DataDir)
	if err != nil {
		return err
	}
	pid, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("daemon: identity: %w", err)
	}
	a.self = pid.String()
	allow, err := a.joinPolicy()
	if err != nil {
		return err
	}
	if err := a.openStore(); err != nil {
		return err
	}
	topics := make([]string, len(crdt.Namespaces))
	for i, ns := range crdt.Namespaces {
		topics[i] = string(ns)
	}
	node, err := gossip.New(ctx, gossip.Config{
		Cluster:         a.cfg.Cluster,
		Topics:          topics,
		Listen:          a.cfg.Listen,
		Bootstrap:       a.cfg.Bootstrap,
		Identity:        key,
		MaxMessageBytes: a.cfg.MaxMessageBytes,
		Validate:        a.validate,
		Logger:          a.log,
		Rand:            rand.New(rand.NewPCG(a.rand.Uint64(), a.rand.Uint64())),
		HostOptions:     a.opts.HostOptions,
		AllowPeers:      allow,
		PSK:             a.psk,
		RedialMin:       a.cfg.RedialMin,
		RedialMax:       a.cfg.RedialMax,
		MaxPeers:        a.cfg.MaxPeers,
	})
	if err != nil {
		a.store.Close()
		return err
	}
	a.log = a.log.With("node", shortID(a.self))
	if a.metrics, err = a.listenMetrics(); err != nil {
		_ = node.Close()
		a.store.Close()
		return err
	}
	a.node = node
	a.members = membership.New(a.self, a.cfg.membership())
	a.started = a.clock.Now()
	loopCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.pub = newPublisher(node, a.cfg.BatchMaxDeltas, a.cfg.BatchMaxBytes, a.log)
	a.resumeLeases()
	a.heartbeat() // announce ourselves at once, before the first tick
	a.goLoop(func() { a.pub.run(loopCtx) })
	a.goLoop(func() { a.receiveLoop(loopCtx) })
	a.goLoop(func() { every(loopCtx, a.cfg.Heartbeat, a.heartbeat) })
	a.goLoop(func() { a.taskLoop(loopCtx) })
	a.goLoop(func() {
		every(loopCtx, max(a.cfg.Heartbeat/4, 50*time.Millisecond), func() { a.tickMembership(loopCtx) })
	})
	a.goLoop(func() { a.leaseLoop(loopCtx) })
	a.goLoop(func() { every(loopCtx, min(max(a.cfg.TombstoneHorizon/100, time.Second), 10*time.Minute), a.collect) })
	a.goLoop(func() { a.rejectionLoop(loopCtx) })
	a.startAntiEntropy(loopCtx)
	if a.metrics != nil {
		a.goLoop(func() {
			if err := a.metrics.serve(); err != nil {
				a.log.Error("metrics server stopped", "err", err)
			}
		})
	}
	a.log.Info("agent started", "cluster", a.cfg.Cluster, "addrs", node.Addrs(), "metrics", a.MetricsAddr())
	a.rl.markUp()
	return nil
}

func (a *Agent) goLoop(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// Close stops the agent's loops and its network, and waits for them. It is
// idempotent.
func (a *Agent) Close() error {
	var err error
	a.closeOnce.Do(func() {
		close(a.closed)
		if a.cancel != nil {
			a.cancel()
		}
		if a.metrics != nil {
			a.metrics.stop()
		}
		a.wg.Wait()
		if a.node != nil {
			a.stopAntiEntropy()
			a.pub.flush(context.Background()) // best effort: what is queued goes out
			err = a.node.Close()
		}
		if a.store != nil {
			if cerr := a.store.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
		a.log.Info("agent stopped")
	})
	return err
}

// ID returns the agent's node id (its libp2p peer id).
func (a *Agent) ID() string { return a.self }

// Addrs returns multiaddrs other agents can join.
func (a *Agent) Addrs() []string { return a.node.Addrs() }

// Store returns the agent's replicated store (for tests and tools).
func (a *Agent) Store() *store.Store { return a.store }

// Gossip returns the agent's gossip node (for tests and tools).
func (a *Agent) Gossip() *gossip.Node { return a.node }

// nowMS reads the wall clock in Unix milliseconds.
func (a *Agent) nowMS() int64 { return a.clock.Now().UnixMilli() }

// write stamps a local delta, applies it to the store and queues it for
// gossip. It returns the delta and whether it changed the store.
func (a *Agent) write(d crdt.Delta) (crdt.Delta, bool, error) {
	select {
	case <-a.closed:
		return d, false, ErrStopped
	default:
	}
	if err := a.checkWrite(d); err != nil {
		return d, false, err
	}
	a.hlcMu.Lock()
	wall := a.nowMS()
	st, err := a.stamp()
	a.hlcMu.Unlock()
	if err != nil {
		return d, false, err
	}
	d.Stamp = st
	// Callers set Expiry as wall clock + TTL, but every node judges an
	// expiry against the write's stamp. The HLC can run ahead of this
	// host's wall clock (it observed a peer ahead of us, or restarted from
	// a reservation made before the clock was set back): then the TTL
	// counts from the stamp, or a lease could expire before its own stamp
	// and be refused by every peer while we keep it.
	if ahead := st.HLC.WallMS() - wall; d.Expiry != 0 && ahead > 0 {
		d.Expiry += ahead
	}
	// Never keep what peers would refuse: that would diverge for good.
	if err := a.policy.check(crdt.NamespaceOf(d.Key), d, a.self); err != nil {
		return d, false, fmt.Errorf("daemon: refusing to write a delta peers would reject: %w", err)
	}
	changed := len(a.store.Apply(d)) > 0
	if changed {
		a.pub.enqueue(d)
	}
	return d, changed, nil
}

// validate is the gossip validator: decode, then apply the write policy
// and the clock-skew bound to every delta. It runs on pubsub's workers.
func (a *Agent) validate(topic string, from peer.ID, data []byte) (any, error) {
	ds, err := wire.Decode(data, a.liveConfig().wireLimits())
	switch {
	case errors.Is(err, wire.ErrVersion):
		return nil, gossip.Reject(reasonVersion, err)
	case errors.Is(err, wire.ErrLimit):
		return nil, gossip.Reject(reasonLimit, err)
	case err != nil:
		return nil, gossip.Reject(reasonUndecodable, err)
	}
	author, now := from.String(), a.nowMS()
	for _, d := range ds {
		if err := errors.Join(a.policy.check(crdt.Namespace(topic), d, author), a.checkLimits(d)); err != nil {
			var pe *policyError
			errors.As(err, &pe)
			return nil, gossip.Reject(pe.reason, err)
		}
		if err := crdt.CheckSkew(d.Stamp.HLC, now, a.cfg.MaxSkew.Milliseconds()); err != nil {
			if author == a.self {
				if ok, held := a.ownClockLog.allow(time.Now()); ok {
					a.log.Warn("our own clock is ahead of the HLC bound", "err", err, "not_logged", held)
				}
			} else if c, ok := a.members.Heard(author, now); ok {
				// Refused, but signed by its author (GossipSub checked the
				// signature) and stamped ahead of us, so fresh: the author is
				// alive, its clock merely runs ahead. Without this, a node
				// whose clock is beyond max_skew would be declared dead.
				a.logMembership(c)
			}
			return nil, gossip.Ignore(reasonClockSkew, fmt.Errorf("from %s: %w", shortID(author), err))
		}
	}
	return ds, nil
}

// receiveLoop applies validated deltas from peers.
func (a *Agent) receiveLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-a.node.Messages():
			if !ok {
				return
			}
			if a.opts.DropGossip != nil && a.opts.DropGossip(m.From.String()) {
				continue
			}
			// Anything a node publishes proves it alive (heartbeats are
			// just the message it sends when it has nothing else to say).
			if c, ok := a.members.Heard(m.From.String(), a.nowMS()); ok {
				a.logMembership(c)
			}
			ds, _ := m.Decoded.([]crdt.Delta)
			a.receive(ds)
		}
	}
}

func (a *Agent) receive(ds []crdt.Delta) {
	now := a.nowMS()
	maxSkew := a.cfg.MaxSkew.Milliseconds()
	a.hlcMu.Lock()
	for _, d := range ds {
		_ = a.hlc.Observe(d.Stamp.HLC, now, maxSkew) // checked by the validator already
	}
	a.hlcMu.Unlock()
	for _, d := range ds {
		if crdt.NamespaceOf(d.Key) == crdt.NSNode {
			a.checkOwnClock(d, now)
		}
	}
	for _, d := range a.store.Apply(ds...) {
		a.deltasIn.Add(1)
		ns := crdt.NamespaceOf(d.Key)
		a.nsIn.add(ns, 1)
		a.delays.add(now - d.Stamp.HLC.WallMS())
		if ns == crdt.NSNode {
			a.lag.observe(d.Stamp.Node, d.Stamp.HLC.WallMS(), now)
			a.learnPeer(d)
		}
	}
}

// checkOwnClock warns when a peer's fresh heartbeat is stamped further
// behind our clock than max_skew: then it is probably our clock that is
// ahead, and peers are refusing our writes.
func (a *Agent) checkOwnClock(heartbeat crdt.Delta, nowMS int64) {
	behind := nowMS - heartbeat.Stamp.HLC.WallMS()
	if behind <= a.cfg.MaxSkew.Milliseconds() {
		return
	}
	if last := a.clockWarned.Load(); nowMS-last < 10_000 || !a.clockWarned.CompareAndSwap(last, nowMS) {
		return
	}
	a.log.Warn("this node's clock looks ahead of its peers: they reject our writes stamped beyond max_skew; fix NTP",
		"peer", shortID(heartbeat.Stamp.Node), "ahead_by", (time.Duration(behind) * time.Millisecond).Round(100*time.Millisecond), "max_skew", a.cfg.MaxSkew)
}

// learnPeer asks the gossip layer to keep a node we heard about connected,
// so agents that joined through one bootstrap peer mesh with everyone.
func (a *Agent) learnPeer(d crdt.Delta) {
	id := lastSegment(d.Key)
	if id == a.self || a.known.Contains(id) {
		return
	}
	var v crdt.MemberValue
	if crdt.Decode(d.Value, &v) != nil {
		return
	}
	ai, ok := heartbeatPeer(id, v.Addrs)
	if !ok {
		return
	}
	a.known.Add(id, struct{}{})
	a.node.AddPeer(ai)
}

// heartbeatPeer returns what to dial for the node that announced addrs in
// its heartbeat node/<id>: the addresses that end in /p2p/<id>, its own id,
// and hold no other /p2p/ component, without that suffix. The others are
// dropped: an address without the node's id, or naming another node,
// would make every agent that hears the heartbeat dial somebody else (and
// anyone who can publish can announce one). ok is false if id is not a
// node id or no address is left.
func heartbeatPeer(id string, addrs []string) (ai peer.AddrInfo, ok bool) {
	pid, err := peer.Decode(id)
	if err != nil {
		return peer.AddrInfo{}, false
	}
	ai.ID = pid
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		p2p, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil || p2p.ID != pid || len(p2p.Addrs) != 1 {
			continue
		}
		if _, err := p2p.Addrs[0].ValueForProtocol(ma.P_P2P); err == nil {
			continue // through another node (a relay)
		}
		ai.Addrs = append(ai.Addrs, p2p.Addrs[0])
	}
	return ai, len(ai.Addrs) > 0
}

// every runs fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

func (a *Agent) heartbeat() {
	v := crdt.MemberValue{Addrs: a.node.Addrs(), Region: a.cfg.Region, Version: Version}
	if _, _, err := a.write(crdt.Delta{Key: nodeKey(a.self), Op: crdt.OpPut, Value: crdt.Encode(v)}); err != nil && !errors.Is(err, ErrStopped) {
		a.log.Warn("heartbeat", "err", err)
	}
}

// tickMembership re-derives member states (run a few times per heartbeat).
func (a *Agent) tickMembership(ctx context.Context) {
	for _, c := range a.members.Tick(a.nowMS()) {
		a.logMembership(c)
		if c.To == membership.Suspect {
			a.probeSilentPeer(ctx, c.ID)
		}
	}
}

// probeSilentPeer checks the connection to a node that went silent while
// still connected, and closes it if the node does not answer a libp2p ping
// within the probe timeout (one heartbeat, at least 500 ms). Such a
// connection is most likely cut (a partition, a paused or crashed host):
// TCP would only notice after its retransmission backoff, which grows with
// the length of the outage and can hold a healed link idle for many
// seconds. Closed, the peer is redialled within redial_min..redial_max of
// the network coming back, and the new connection starts an anti-entropy
// exchange at once. A node that answers keeps its connection: its silence
// is slowness (a starved CPU, a long queue), and dropping a working
// connection would only add handshakes to an overloaded cluster.
func (a *Agent) probeSilentPeer(ctx context.Context, id string) {
	p, err := peer.Decode(id)
	if err != nil || a.node.Host().Network().Connectedness(p) != network.Connected {
		return
	}
	timeout := max(a.cfg.Heartbeat, 500*time.Millisecond)
	a.goLoop(func() {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		// Only over the connection we suspect: never dial a new one.
		res, ok := <-ping.Ping(network.WithNoDial(pctx, "silent-peer probe"), a.node.Host(), p)
		if ctx.Err() != nil {
			return
		}
		if ok && res.Error == nil {
			a.silent.kept.Add(1)
			a.log.Debug("silent peer answered a ping; keeping its connection", "member", id, "rtt", res.RTT)
			return
		}
		a.silent.closed.Add(1)
		a.log.Debug("closing connection to silent peer", "member", id)
		_ = a.node.Host().Network().ClosePeer(p)
	})
}

// silentProbes counts probeSilentPeer's verdicts.
type silentProbes struct {
	kept, closed atomic.Uint64
}

// logMembership logs one line per membership change.
func (a *Agent) logMembership(c membership.Change) {
	switch {
	case c.From == 0:
		a.log.Info("member joined", "member", c.ID)
	case c.To == membership.Dead:
		a.log.Warn("member dead", "member", c.ID)
	default:
		a.log.Info("member "+c.To.String(), "member", c.ID, "was", c.From.String())
	}
}

// ownerDead reports whether the failure detector holds node dead.
func (a *Agent) ownerDead(node string) bool { return a.members.State(node) == membership.Dead }

// taskLoop finishes cancellations of tasks this node owns: when a
// cancel-requested state arrives for one of our tasks, the owner's agent
// has delivered it to watchers (they saw the same event) and writes
// cancelled.
func (a *Agent) taskLoop(ctx context.Context) {
	for {
		w := a.store.Watch("task/", 1024)
		a.cancelRequested() // anything that arrived before the watch
		if !a.drainTasks(ctx, w) {
			return
		}
		a.log.Warn("task watcher fell behind; resubscribing", "err", w.Err())
	}
}

// drainTasks handles task events until ctx ends (false) or w is dropped (true).
func (a *Agent) drainTasks(ctx context.Context, w *store.Watcher) bool {
	defer w.Close()
	for {
		select {
		case <-ctx.Done():
			return false
		case ev, ok := <-w.C():
			if !ok {
				return true
			}
			if ev.Delta.Task == crdt.TaskCancelRequested {
				a.finishCancel(ev.Entry.Winner())
			}
		}
	}
}

func (a *Agent) cancelRequested() {
	for _, e := range a.store.List("task/") {
		if e.Winner().Task == crdt.TaskCancelRequested {
			a.finishCancel(e.Winner())
		}
	}
}

func (a *Agent) finishCancel(cur crdt.Delta) {
	var v crdt.TaskValue
	if crdt.Decode(cur.Value, &v) != nil || v.Owner != a.self || cur.Task != crdt.TaskCancelRequested {
		return
	}
	v.Result = "cancelled on request of " + cur.Stamp.Node
	if _, _, err := a.write(crdt.Delta{Key: cur.Key, Op: crdt.OpPut, Task: crdt.TaskCancelled, Value: crdt.Encode(v)}); err != nil && !errors.Is(err, ErrStopped) {
		a.log.Warn("write cancelled", "task", cur.Key, "err", err)
	}
}

// shortID abbreviates a node id for logs.
func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

var _ rpc.API = (*Agent)(nil)
