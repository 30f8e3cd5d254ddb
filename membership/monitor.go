package membership

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
)

// Stream is one probe exchange's stream.
type Stream = gossip.Stream

// Transport is what a Monitor needs of the network; gossip.Node implements
// it. Its methods may be called from any goroutine.
type Transport interface {
	// Addrs returns this node's addresses, with /p2p/<id>, for its entry.
	Addrs() []string
	// Peers returns the peers connected now.
	Peers() []peer.ID
	// Connected reports whether a connection to p is open.
	Connected(p peer.ID) bool
	// Keeps reports whether this node keeps a connection to p: whether it
	// dials p again at once when the connection is lost.
	Keeps(p peer.ID) bool
	// Dial opens a connection to ai.ID at ai's addresses.
	Dial(ctx context.Context, ai peer.AddrInfo) error
	// OpenStream opens a stream of protocol proto to p over an open
	// connection; it never dials.
	OpenStream(ctx context.Context, p peer.ID, proto string) (gossip.Stream, error)
	// Handle serves proto until stop is called.
	Handle(proto string, h func(gossip.Stream)) (stop func())
	// ClosePeer closes every connection to p.
	ClosePeer(p peer.ID) error
}

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	// Self is this node's id; Cluster names the probe protocol.
	Self, Cluster string
	// Heartbeat is the probe period: every Heartbeat the node probes the
	// next ProbePeers of its connected peers, in a shuffled round.
	Heartbeat time.Duration
	// ProbePeers is how many peers each period probes (default 3), and
	// how many other peers are asked to ping one that does not answer.
	ProbePeers int
	// Detector holds the failure detector's timings.
	Detector Config
	// Region and Version are what the node's entry says about it.
	Region, Version string
	// Rand orders the probes and picks the helpers (seeded in tests).
	Rand *rand.Rand
	// PeerClock, if set, is told the wall clock (Unix ms) a peer's ping
	// says it was sent at, and the local time it arrived.
	PeerClock func(peer string, peerMS, nowMS int64)
	// OnChange, if set, is told every change of a member's state (the
	// agent's owner-down and owner-up watch events). It is called from the
	// monitor's goroutines and must not block.
	OnChange func(Change)
}

// Counters is what a Monitor did since it started.
type Counters struct {
	// ProbesSent and ProbesReceived count direct pings, PingReqsSent and
	// PingReqsReceived the requests to ping another node.
	ProbesSent, ProbesReceived     uint64
	PingReqsSent, PingReqsReceived uint64
	// BytesSent and BytesReceived are the probe exchanges' payload bytes.
	BytesSent, BytesReceived uint64
	// Accusations counts the accusations this node wrote (suspect and
	// dead), Refutations the times it raised its incarnation to refute
	// one, Announcements the entries it wrote (each run's first, address
	// changes, refutations).
	Accusations, Refutations, Announcements uint64
	// ClosedLinks counts connections closed to a node that no one could
	// reach.
	ClosedLinks uint64
	// Dials counts the connections this node opened to probe a member
	// no one it asked was connected to.
	Dials uint64
	// Learnt counts the other nodes' member entries and accusations
	// that changed this node's state: the membership changes gossiped
	// to it.
	Learnt uint64
	// Health is Lifeguard's local health score now: 0 when this node's
	// probes are answered in time; up to 8 when they are not, or when it
	// had to refute, each point stretching its probe period and probe
	// timeout by one more of itself.
	Health int
}

type counters struct {
	probesSent, probesIn, reqsSent, reqsIn  atomic.Uint64
	bytesOut, bytesIn                       atomic.Uint64
	accusations, refutations, announcements atomic.Uint64
	closed, learnt, dials                   atomic.Uint64
}

// Monitor runs the failure detector of one node: it announces the node,
// probes its peers, answers their probes, accuses the unreachable and
// refutes accusations of itself. Every membership change is logged.
type Monitor struct {
	cfg   MonitorConfig
	table *Table
	t     Transport
	write func(crdt.Delta) error
	clock clock.Clock
	log   *slog.Logger
	n     counters

	kick    chan peer.ID  // peers to probe out of turn
	refuted chan struct{} // the incarnation was raised: announce it

	mu       sync.Mutex
	inc      uint64   // this node's incarnation
	addrs    []string // as last announced
	order    []peer.ID
	probing  map[peer.ID]bool
	pending  map[peer.ID]bool          // lost peers still to probe
	tries    map[peer.ID]int           // inconclusive probes of lost peers, in a row
	dialInfo map[peer.ID]peer.AddrInfo // where each member said it listens
	beats    int                       // heartbeats since Start
	trouble  time.Time                 // when this node last saw a peer fail (m.clock)
	accusing map[string]uint64         // targets this node accused, by incarnation
	rejoins  int                       // announcements made on connected heartbeats since Start
	health   int                       // Lifeguard's local health: 0 healthy .. maxHealth
	rand     *rand.Rand

	wg sync.WaitGroup
}

// NewMonitor returns the monitor of cfg.Self; write stores (and so
// publishes) the node's entry and its accusations. Start and Run put it
// on a transport.
func NewMonitor(cfg MonitorConfig, write func(crdt.Delta) error, clk clock.Clock, log *slog.Logger) *Monitor {
	if cfg.ProbePeers <= 0 {
		cfg.ProbePeers = 3
	}
	r := cfg.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &Monitor{
		cfg: cfg, table: New(cfg.Self, cfg.Detector), write: write, clock: clk, log: log,
		kick: make(chan peer.ID, 64), refuted: make(chan struct{}, 1), probing: make(map[peer.ID]bool), pending: make(map[peer.ID]bool), tries: make(map[peer.ID]int), dialInfo: make(map[peer.ID]peer.AddrInfo), accusing: make(map[string]uint64), rand: r,
	}
}

// Table returns the member table.
func (m *Monitor) Table() *Table { return m.table }

// Counters returns what the monitor did so far.
func (m *Monitor) Counters() Counters {
	return Counters{
		ProbesSent: m.n.probesSent.Load(), ProbesReceived: m.n.probesIn.Load(),
		PingReqsSent: m.n.reqsSent.Load(), PingReqsReceived: m.n.reqsIn.Load(),
		BytesSent: m.n.bytesOut.Load(), BytesReceived: m.n.bytesIn.Load(),
		Accusations: m.n.accusations.Load(), Refutations: m.n.refutations.Load(), Announcements: m.n.announcements.Load(),
		ClosedLinks: m.n.closed.Load(), Dials: m.n.dials.Load(), Learnt: m.n.learnt.Load(), Health: m.scale() - 1,
	}
}

// Incarnation returns this node's incarnation.
func (m *Monitor) Incarnation() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inc
}

func (m *Monitor) nowMS() int64 { return m.clock.Now().UnixMilli() }

// Start announces this node at once over t, with an incarnation above any
// of its earlier runs (its clock in milliseconds), and serves probes.
// Run then probes over t.
func (m *Monitor) Start(t Transport) {
	m.t = t
	m.mu.Lock()
	m.inc = max(m.inc, uint64(max(m.nowMS(), 1)))
	m.mu.Unlock()
	m.announce(true)
}

// announce writes this node's entry if its addresses changed (or always).
func (m *Monitor) announce(always bool) {
	addrs := m.t.Addrs()
	m.mu.Lock()
	if !always && slices.Equal(addrs, m.addrs) {
		m.mu.Unlock()
		return
	}
	m.addrs = addrs
	v := crdt.MemberValue{Addrs: addrs, Region: m.cfg.Region, Version: m.cfg.Version, Inc: m.inc}
	m.mu.Unlock()
	m.n.announcements.Add(1)
	if err := m.write(crdt.Delta{Key: crdt.NodeKey(m.cfg.Self), Op: crdt.OpPut, Value: crdt.Encode(v)}); err != nil && !errors.Is(err, context.Canceled) {
		m.log.Warn("announce", "err", err)
	}
}

// refute raises this node's incarnation above inc, an incarnation some
// node accuses, and announces it.
func (m *Monitor) refute(inc uint64, by string) {
	m.mu.Lock()
	if inc < m.inc {
		m.mu.Unlock()
		return
	}
	m.inc = inc + 1
	m.health = min(m.health+1, maxHealth)
	m.mu.Unlock()
	m.n.refutations.Add(1)
	m.log.Info("refuting a suspicion of this node", "by", by, "incarnation", inc+1)
	// Announced by Run, not here: Learn runs on the replica's ingest
	// path, which must not call back into its writes.
	select {
	case m.refuted <- struct{}{}:
	default: // an announcement is pending; it will carry the new incarnation
	}
}

// Learn takes a node/ entry that changed the local state: a member's
// announcement or an accusation (of this node: refuted at once).
func (m *Monitor) Learn(d crdt.Delta, nowMS int64) {
	node, accuser, ok := crdt.SplitNodeKey(d.Key)
	if !ok || d.Op != crdt.OpPut {
		return
	}
	if d.Stamp.Node != m.cfg.Self {
		m.n.learnt.Add(1)
	}
	if accuser == "" {
		var v crdt.MemberValue
		if node == m.cfg.Self || crdt.Decode(d.Value, &v) != nil {
			return
		}
		if ai, ok := DialInfo(node, v.Addrs); ok {
			m.mu.Lock()
			m.dialInfo[ai.ID] = ai
			m.mu.Unlock()
		}
		m.logChange(m.table.Announced(node, v.Inc, nowMS))
		return
	}
	var v crdt.SuspectValue
	if crdt.Decode(d.Value, &v) != nil {
		return
	}
	if node == m.cfg.Self {
		m.refute(v.Inc, accuser)
		return
	}
	m.logChange(m.table.Accused(node, accuser, v.Inc, v.Dead, nowMS))
}

// Connected is the transport's word that a connection to p opened: a peer
// held suspect or dead here is probed at once, and so learns it.
func (m *Monitor) Connected(p peer.ID) {
	if s := m.table.State(p.String()); s == Suspect || s == Dead {
		m.probeSoon(p)
	}
}

// Disconnected is the transport's word that the last connection to p
// closed. If this node keeps p (it dials p again at once), p is probed at
// once (through other peers, as it is not connected), so a crashed node
// is accused without waiting for its turn. A peer this node does not keep
// is left to the nodes that keep it: in a cluster of more than max_peers
// nodes, connections are let go on purpose (a node keeps its max_peers
// best-ranked peers and closes the other dials it made), and the peers it
// asks to reach p are mostly not connected to p either, so probing every
// lost peer accuses live ones (at 300 simulated nodes the cold start's
// let-go connections made false accusations whose refutations and closed
// connections fed each other for tens of seconds: make sim-scale).
func (m *Monitor) Disconnected(p peer.ID) {
	if m.table.State(p.String()) != Alive || !m.t.Keeps(p) {
		return
	}
	m.troubled()
	m.mu.Lock()
	m.pending[p] = true // until a probe of it starts after this
	m.mu.Unlock()
	m.probeSoon(p)
}

func (m *Monitor) probeSoon(p peer.ID) {
	select {
	case m.kick <- p:
	default: // the regular round reaches it
	}
}

// Partitioned reports whether this node has lost most of the peers it
// saw alive recently (3 × dead_after, and at least the last 30 s).
func (m *Monitor) Partitioned() bool {
	lost, seen := m.table.Unreachable(m.nowMS(), max(3*m.cfg.Detector.DeadAfter, 30*time.Second).Milliseconds())
	return 2*lost > seen
}

// Run serves probes, probes peers and times suspicions out until ctx
// ends, then waits for the probes it started. Start must have been
// called.
func (m *Monitor) Run(ctx context.Context) {
	stop := m.t.Handle(ProbeProtocol(m.cfg.Cluster), func(s Stream) { m.serve(ctx, s) })
	defer stop()
	defer m.wg.Wait()
	beat := time.NewTimer(m.cfg.Heartbeat)
	defer beat.Stop()
	tick := time.NewTicker(max(m.cfg.Heartbeat/4, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-m.kick:
			m.probe(ctx, p)
		case <-m.refuted:
			m.announce(true)
		case <-beat.C:
			beat.Reset(m.cfg.Heartbeat * time.Duration(m.scale()))
			m.announce(m.rejoin())
			for _, p := range append(append(m.lost(), m.next()...), m.orphan()...) {
				m.probe(ctx, p)
			}
		case <-tick.C:
			for _, c := range m.table.Tick(m.nowMS()) {
				m.logChange(c, true)
				if c.To == Dead {
					m.confirmDead(c.ID)
				}
			}
		}
	}
}

// rejoinBeats is how many heartbeats after Start, among those that find
// the node connected, announce it again.
const rejoinBeats = 3

// rejoin reports whether this heartbeat should announce the node again:
// the announcement Start makes goes out before the node has any peer, so
// only anti-entropy would carry it (one exchange per anti_entropy_interval,
// spreading over the cluster in rounds of that). The first rejoinBeats
// heartbeats with a peer connected repeat it by gossip, which reaches
// every node within milliseconds: three messages per run, not one a
// heartbeat.
func (m *Monitor) rejoin() bool {
	if len(m.t.Peers()) == 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rejoins >= rejoinBeats {
		return false
	}
	m.rejoins++
	return true
}

// next returns the peers to probe this period: the next ProbePeers
// connected peers of a shuffled round over them (memberlist's order: each
// peer once per round, a new order each round).
func (m *Monitor) next() []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []peer.ID
	for refilled := false; len(out) < m.cfg.ProbePeers; {
		if len(m.order) == 0 {
			if refilled {
				break
			}
			m.order = slices.Clone(m.t.Peers())
			m.rand.Shuffle(len(m.order), func(i, j int) { m.order[i], m.order[j] = m.order[j], m.order[i] })
			refilled = true
			continue
		}
		p := m.order[0]
		m.order = m.order[1:]
		if m.t.Connected(p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// lost returns the peers whose connection closed and that no probe
// started since: a probe already running when the connection closed may
// have been answered just before, and a lost peer is in no round of
// connected peers, so without this a node cut off from everyone would
// never accuse anyone.
func (m *Monitor) lost() []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []peer.ID
	for p := range m.pending {
		if m.t.Connected(p) {
			delete(m.pending, p)
		} else if !m.probing[p] {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b peer.ID) int { return strings.Compare(string(a), string(b)) })
	return out
}

// helpers picks up to ProbePeers connected peers other than target that
// are not suspect or dead here (such a peer is the likelier to be cut
// off too): at random among the 2 × ProbePeers this node heard from last
// (they answered a probe of its own, or its request to help). On the
// small side of a partition the peers across the cut stop answering and
// drop out of that set, so the helpers asked are ones that can answer:
// picked at random among all, they were mostly across the cut, did not
// answer, and held this node's local health at its worst (at 30
// simulated agents, the cut-off region took 32 s to see the other side
// gone).
func (m *Monitor) helpers(target peer.ID) []peer.ID {
	type cand struct {
		id    peer.ID
		heard int64
	}
	var cs []cand
	for _, p := range m.t.Peers() {
		x, _ := m.table.Get(p.String())
		if p == target || x.State == Suspect || x.State == Dead {
			continue
		}
		cs = append(cs, cand{p, x.Heard})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rand.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	slices.SortStableFunc(cs, func(a, b cand) int { return cmp.Compare(b.heard, a.heard) })
	cs = cs[:min(len(cs), 2*m.cfg.ProbePeers)]
	m.rand.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	out := make([]peer.ID, 0, m.cfg.ProbePeers)
	for _, c := range cs[:min(len(cs), m.cfg.ProbePeers)] {
		out = append(out, c.id)
	}
	return out
}

// probe runs one probe of p on its own goroutine, unless one is running.
func (m *Monitor) probe(ctx context.Context, p peer.ID) {
	m.mu.Lock()
	if m.probing[p] || ctx.Err() != nil {
		m.mu.Unlock()
		return
	}
	m.probing[p] = true
	delete(m.pending, p)
	m.mu.Unlock()
	m.wg.Go(func() {
		defer func() {
			m.mu.Lock()
			delete(m.probing, p)
			m.mu.Unlock()
		}()
		m.round(ctx, p)
	})
}

// round probes p: a direct ping within a third of suspect_after, then, if
// it fails, pings through other peers within the rest of it (both
// stretched by the local health score). If no one reaches p, this node
// accuses it.
func (m *Monitor) round(ctx context.Context, p peer.ID) {
	id := p.String()
	start := time.Now() // network time: deadlines and timeouts run on it
	budget := m.cfg.Detector.SuspectAfter * time.Duration(m.scale())
	view, _ := m.table.Get(id)
	evidence := false  // p did not answer our ping over an open connection
	helperSaw := false // a helper connected to p saw it fail to answer
	if m.t.Connected(p) {
		dctx, cancel := context.WithTimeout(ctx, budget/3)
		v, inc, err := m.ping(dctx, p, view)
		cancel()
		if v == answered {
			m.mu.Lock()
			delete(m.tries, p)
			m.mu.Unlock()
			m.healthier(-1)
			m.logChange(m.table.Answered(id, inc, m.nowMS()))
			return
		}
		if ctx.Err() != nil {
			return
		}
		evidence = !errors.Is(err, errNotOpened)
		m.log.Debug("probe unanswered; asking other peers", "member", id, "err", err)
	}
	rest := budget - time.Since(start)
	if rest <= 0 {
		rest = budget / 3
	}
	v, inc, missed, replied := m.indirect(ctx, p, view, rest)
	switch v {
	case answered:
		m.logChange(m.table.Answered(id, inc, m.nowMS()))
		return
	case noAnswer:
		helperSaw = true
	}
	if ctx.Err() != nil {
		return
	}
	// Lifeguard's local health: a failed probe that no helper answered
	// (or with no helper to ask) costs this node a point, as the
	// helpers' silence points at this node; one that a helper answered
	// earns it one back, as an answered ping does. memberlist charges a point
	// per silent helper even when others answered; here helpers that
	// answered "no answer" or "not connected" show that this node's
	// exchanges get through, and the silent ones are the likelier
	// trouble: on the small side of a partition most peers are across
	// the cut, and its nodes must stay healthy enough to probe at the
	// normal pace and accuse (at 60 simulated nodes, memberlist's rule
	// held the cut-off region's nodes at the worst score, and they took
	// 35 s instead of 11 to see the other side gone: make sim-scale).
	switch {
	case replied == 0 && missed > 0:
		m.healthier(+1)
	case replied > 0:
		m.healthier(-1) // this node's exchanges get through
	}
	if evidence && !helperSaw && replied == 0 && m.scale() > unhealthy {
		// Only this node's own ping went unanswered, no helper answered
		// this node in time either, and this node is struggling (its
		// probes keep failing, or it was accused itself): it is the
		// likelier culprit. No accusation; the probes of healthier
		// peers decide. (A helper's answer, even "not connected", shows
		// this node's exchanges get through: on the small side of a
		// partition most probes fail, and its nodes must still accuse.)
		return
	}
	evidence = evidence || helperSaw
	if !evidence && !m.t.Connected(p) {
		// No one asked is in touch with p: try it on a connection of
		// our own, with a whole probe budget. A handshake takes
		// round trips, and one lost packet of it waits for QUIC's
		// or TCP's retransmission (about a second on a fresh
		// connection); with what is left of the budget, such dials
		// timed out and accused live nodes across regions (make
		// sim-scale, 0.5 % loss).
		var v verdict
		var inc uint64
		v, inc, evidence = m.dial(ctx, p, view, budget)
		if v == answered {
			m.logChange(m.table.Answered(id, inc, m.nowMS()))
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
	if !evidence && m.inconclusive(p) {
		return // asked again next heartbeat, through other peers
	}
	m.accuse(id, false)
}

// dial tries to reach p on a connection this node opens, within d, and
// pings it. It reports whether p answered (and with which incarnation),
// and whether its silence is evidence: the dial to the addresses p
// announced was refused, or p did not answer over the new connection. A
// dial that timed out, or a node whose addresses are unknown here, yields
// no evidence.
func (m *Monitor) dial(ctx context.Context, p peer.ID, view Peer, d time.Duration) (verdict, uint64, bool) {
	m.mu.Lock()
	ai, ok := m.dialInfo[p]
	m.mu.Unlock()
	if !ok {
		return notConnected, 0, false
	}
	dctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	m.n.dials.Add(1)
	if err := m.t.Dial(dctx, ai); err != nil {
		m.log.Debug("probe: dial failed", "member", p, "err", err)
		// A dial refused or reset is evidence; one that ran out of time
		// is not yet: a handshake that lost a packet waits about a
		// second for its retransmission (QUIC's first timeout, before
		// it has a round-trip sample), which a dial across regions with
		// loss does not survive (make sim-scale: such timeouts accused
		// live nodes). The probe is then inconclusive and repeated on
		// the next heartbeat; a member still out of reach is accused.
		// A dial refused by the backoff of one that failed moments ago
		// says nothing new either.
		return noAnswer, 0, ctx.Err() == nil && dctx.Err() == nil && !errors.Is(err, gossip.ErrBackoff)
	}
	v, inc, err := m.ping(dctx, p, view)
	return v, inc, v != answered && !errors.Is(err, errNotOpened)
}

// How many heartbeats apart this node probes one orphan: orphanEvery
// within orphanTroubleFor of seeing a peer fail, orphanQuietEvery
// otherwise.
const (
	orphanEvery      = 2
	orphanQuietEvery = 30
	orphanTroubleFor = 30 * time.Second
)

// troubled records that this node saw a peer fail: it accused one, or
// lost the connection to a peer it keeps. (Not others' accusations, nor
// one unanswered ping: in a large cluster with some packet loss, those
// are always happening somewhere, and would keep every node probing
// orphans at the fast pace.)
func (m *Monitor) troubled() {
	m.mu.Lock()
	m.trouble = m.clock.Now()
	m.mu.Unlock()
}

// orphan returns, now and then, one member held alive here that this node
// has no connection to, picked at random. The rounds probe connected
// peers only; in a cluster larger than max_peers most members are not
// connected to a given node, which is fine while the nodes connected to
// them probe them, but after a partition cut every connection to a
// member, no node on this side might be connected to it: it would be
// held alive here for good. SWIM probes random members; this probes the
// ones no connection covers, every orphanEvery heartbeats while peers
// fail around this node (a partition shows first as its own accusations
// and lost connections), and every orphanQuietEvery otherwise, which keeps
// an idle node's cost what it is without them (a probe of an orphan
// costs a dial).
func (m *Monitor) orphan() []peer.ID {
	m.mu.Lock()
	m.beats++
	every := orphanQuietEvery
	if !m.trouble.IsZero() && m.clock.Now().Sub(m.trouble) < orphanTroubleFor {
		every = orphanEvery
	}
	due := m.beats%every == 0
	m.mu.Unlock()
	if !due {
		return nil
	}
	var cands []peer.ID
	for _, x := range m.table.Peers() {
		if x.State != Alive {
			continue
		}
		p, err := peer.Decode(x.ID)
		if err != nil || m.t.Connected(p) {
			continue
		}
		cands = append(cands, p)
	}
	if len(cands) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return []peer.ID{cands[m.rand.IntN(len(cands))]}
}

// lostRounds is how many probes of a peer this node is not connected to
// may end with no evidence (no helper asked has a connection to it)
// before it accuses the peer anyway: no one it can find is in touch with
// it. A live peer then refutes.
const lostRounds = 2

// inconclusive records a probe of p that found no one in touch with it
// and reports whether to probe again (through other helpers) before
// accusing: a connection closed by the other side is what a crash looks
// like, and also what a peer trimming its connections looks like.
func (m *Monitor) inconclusive(p peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tries[p]++
	if m.tries[p] >= lostRounds {
		delete(m.tries, p)
		return false
	}
	m.pending[p] = true
	return true
}

// maxHealth bounds the local health score (memberlist's default).
const maxHealth = 8

// unhealthy is the local health scale above which this node does not
// accuse on its own unanswered ping alone.
const unhealthy = 2

// scale is the factor the local health score stretches the probe period
// and timeout by: 1 when healthy.
func (m *Monitor) scale() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.health + 1
}

// healthier moves the local health score by d, within 0..maxHealth
// (Lifeguard's local health awareness: a node whose own probes go
// unanswered, or that is accused itself, is likely the slow one — a
// starved CPU, a long queue — and gives its peers more time before it
// accuses any of them).
func (m *Monitor) healthier(d int) {
	m.mu.Lock()
	m.health = min(max(m.health+d, 0), maxHealth)
	m.mu.Unlock()
}

// indirect asks up to ProbePeers other peers to ping target within d
// and, if a connection to target is open, pings it directly once more
// meanwhile (memberlist's fallback ping: in a cluster larger than
// max_peers most helpers are not connected to target, and one lost packet
// of the first ping should not make an accusation). It returns answered
// if target answered anyone (and the incarnation it answered this node
// with, 0 if it answered a helper), noAnswer if a helper connected to it
// got no answer, notConnected if no helper is connected to it (or there
// is no other peer to ask). missed counts the helpers that did not
// answer (1 if there was none to ask), for the local health score, and
// replied those that did.
func (m *Monitor) indirect(ctx context.Context, target peer.ID, view Peer, d time.Duration) (v verdict, inc uint64, missed, replied int) {
	hs := m.helpers(target)
	direct := m.t.Connected(target)
	if len(hs) == 0 && !direct {
		return notConnected, 0, 1, 0
	}
	ictx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type reply struct {
		v      verdict
		inc    uint64
		helper bool
		from   peer.ID // the helper
		failed bool    // the helper did not answer
	}
	res := make(chan reply, len(hs)+1)
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Go(func() {
			v, _, err := m.exchange(ictx, h, request{kind: kindPingReq, timeoutMS: uint32(d.Milliseconds() * 4 / 5), target: target})
			m.n.reqsSent.Add(1)
			if err != nil {
				v = notConnected // the helper did not answer: it says nothing of target
			}
			res <- reply{v: v, helper: true, from: h, failed: err != nil}
		})
	}
	n := len(hs)
	if direct {
		n++
		wg.Go(func() {
			v, inc, _ := m.ping(ictx, target, view)
			res <- reply{v: v, inc: inc}
		})
	}
	defer wg.Wait()
	out := notConnected
	for range n {
		r := <-res
		switch {
		case r.v == answered:
			cancel() // the others need not finish
			return answered, r.inc, 0, replied + 1
		case r.failed:
			missed++
		case r.helper:
			replied++
			m.table.Answered(r.from.String(), 0, m.nowMS()) // it is in touch with this node
			if r.v == noAnswer {
				out = noAnswer
			}
		}
	}
	if len(hs) == 0 {
		missed = 1 // no helper to tell whether this node is the slow one
	}
	return out, 0, missed, replied
}

// ping sends p a direct ping with this node's view of it.
func (m *Monitor) ping(ctx context.Context, p peer.ID, view Peer) (v verdict, inc uint64, err error) {
	m.n.probesSent.Add(1)
	return m.exchange(ctx, p, request{kind: kindPing, view: view.State, inc: view.Inc, wallMS: m.nowMS()})
}

// errNotOpened marks an exchange whose stream did not open: on a young
// connection libp2p waits for the identify exchange first, and on a busy
// host that can outlast a probe. It says nothing of whether the peer
// would answer.
var errNotOpened = errors.New("probe stream not opened")

// exchange sends one request to p and reads its answer.
func (m *Monitor) exchange(ctx context.Context, p peer.ID, req request) (v verdict, inc uint64, err error) {
	s, err := m.t.OpenStream(ctx, p, ProbeProtocol(m.cfg.Cluster))
	if err != nil {
		return noAnswer, 0, fmt.Errorf("%w: %w", errNotOpened, err)
	}
	defer func() {
		if err != nil {
			_ = s.Reset()
		} else {
			_ = s.Close()
		}
	}()
	if dl, has := ctx.Deadline(); has {
		_ = s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	b := req.encode()
	if _, err = s.Write(b); err != nil {
		return noAnswer, 0, err
	}
	m.n.bytesOut.Add(uint64(len(b)))
	v, inc, err = decodeAnswer(s)
	if err == nil {
		m.n.bytesIn.Add(answerLen)
	}
	return v, inc, err
}

// serve answers one probe stream.
func (m *Monitor) serve(ctx context.Context, s Stream) {
	_ = s.SetDeadline(time.Now().Add(m.cfg.Detector.SuspectAfter)) // not m.clock: a deadline is network time
	req, err := decodeRequest(s)
	if err != nil {
		_ = s.Reset()
		return
	}
	from := s.Peer()
	v := answered
	switch req.kind {
	case kindPing:
		m.n.probesIn.Add(1)
		m.n.bytesIn.Add(pingLen)
		if m.cfg.PeerClock != nil {
			m.cfg.PeerClock(from.String(), req.wallMS, m.nowMS())
		}
		if req.view == Suspect || req.view == Dead {
			m.refute(req.inc, from.String())
		}
	case kindPingReq:
		m.n.reqsIn.Add(1)
		m.n.bytesIn.Add(uint64(6 + len(req.target)))
		d := min(time.Duration(req.timeoutMS)*time.Millisecond, m.cfg.Detector.SuspectAfter)
		switch {
		case req.target.String() == m.cfg.Self:
		case !m.t.Connected(req.target):
			v = notConnected
		default:
			pctx, cancel := context.WithTimeout(ctx, d)
			view, _ := m.table.Get(req.target.String())
			var inc uint64
			var err error
			v, inc, err = m.ping(pctx, req.target, view)
			cancel()
			switch {
			case v == answered:
				m.logChange(m.table.Answered(req.target.String(), inc, m.nowMS()))
			case errors.Is(err, errNotOpened):
				v = notConnected // no evidence either way
			default:
				v = noAnswer
			}
		}
	}
	b := encodeAnswer(v, m.Incarnation())
	if _, err := s.Write(b); err != nil {
		_ = s.Reset()
		return
	}
	m.n.bytesOut.Add(answerLen)
	_ = s.Close()
}

// accuse writes this node's accusation of target at the incarnation it
// knows (none if it knows none: a node never announced cannot be
// accused).
func (m *Monitor) accuse(target string, dead bool) {
	p, _ := m.table.Get(target)
	if p.Inc == 0 {
		return
	}
	if !dead {
		if p.State == Dead || (p.State == Suspect && p.Accusers >= 1+Confirmations) {
			return // dead already, or enough independent accusers: one more only adds traffic
		}
		m.mu.Lock()
		if inc, ok := m.accusing[target]; ok && inc == p.Inc {
			m.mu.Unlock()
			return // accused already
		}
		m.accusing[target] = p.Inc
		m.mu.Unlock()
	}
	m.n.accusations.Add(1)
	m.troubled()
	if !dead {
		m.log.Info("accusing an unreachable member", "member", target, "incarnation", p.Inc)
	}
	m.logChange(m.table.Accused(target, m.cfg.Self, p.Inc, dead, m.nowMS()))
	v := crdt.SuspectValue{Inc: p.Inc, Dead: dead}
	if err := m.write(crdt.Delta{Key: crdt.SuspectKey(target, m.cfg.Self), Op: crdt.OpPut, Value: crdt.Encode(v)}); err != nil && !errors.Is(err, context.Canceled) {
		m.log.Warn("accuse", "member", target, "err", err)
	}
}

// confirmDead writes the verdict of a suspicion this node started and
// that ran out: the member is dead at the incarnation it accused. Only
// accusers write it (one message per accuser, not one per node); every
// other node times the suspicion out on its own.
func (m *Monitor) confirmDead(target string) {
	m.mu.Lock()
	inc, ok := m.accusing[target]
	delete(m.accusing, target)
	m.mu.Unlock()
	if p, _ := m.table.Get(target); ok && p.Inc == inc {
		m.accuse(target, true)
		// A connection to a node no one reached is most likely cut (a
		// partition, a paused or crashed host): TCP would notice only
		// after its retransmission backoff, which can hold a healed link
		// idle for seconds. Closed, it is redialled with the redialer's
		// backoff and the new connection starts an anti-entropy exchange.
		if pid, err := peer.Decode(target); err == nil && m.t.Connected(pid) {
			m.n.closed.Add(1)
			_ = m.t.ClosePeer(pid)
		}
	}
}

// logChange logs a membership change, if there is one.
func (m *Monitor) logChange(c Change, ok bool) {
	if !ok {
		return
	}
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(c)
	}
	switch {
	case c.From == 0 && c.To == Alive:
		m.log.Info("member joined", "member", c.ID)
	case c.To == Dead:
		m.log.Warn("member dead", "member", c.ID)
	default:
		m.log.Info("member "+c.To.String(), "member", c.ID, "was", c.From.String())
	}
}
