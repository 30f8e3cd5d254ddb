package membership

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/crdt"
)

// Transport is what a Monitor needs of the network; gossip.Node implements
// it. Its methods may be called from any goroutine.
type Transport interface {
	// Addrs returns this node's addresses, with /p2p/<id>, for its heartbeat.
	Addrs() []string
	// Connected reports whether a connection to p is open.
	Connected(p peer.ID) bool
	// Ping measures a round trip to p over the open connection.
	Ping(ctx context.Context, p peer.ID) (time.Duration, error)
	// ClosePeer closes every connection to p.
	ClosePeer(p peer.ID) error
}

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	// Self is this node's id.
	Self string
	// Heartbeat is how often the node announces itself on node/<id>.
	Heartbeat time.Duration
	// Detector holds the failure detector's timings.
	Detector Config
	// Region and Version are what the heartbeat says about this node.
	Region, Version string
}

// Monitor runs the failure detector of one node: it writes the node's
// heartbeat every Heartbeat, derives member states a few times per
// heartbeat from what was heard (Heard, Disconnected), logs every change,
// and pings a peer that went silent while still connected, closing the
// connection if it does not answer.
type Monitor struct {
	cfg   MonitorConfig
	table *Table
	t     Transport
	write func(crdt.Delta) error
	clock clock.Clock
	log   *slog.Logger

	kept, closed atomic.Uint64 // silent-peer probes, by verdict
	wg           sync.WaitGroup
}

// NewMonitor returns the monitor of cfg.Self; write stores (and so
// publishes) the node's heartbeat. It takes what it hears at once; Run
// starts beating and probing over a transport.
func NewMonitor(cfg MonitorConfig, write func(crdt.Delta) error, clk clock.Clock, log *slog.Logger) *Monitor {
	return &Monitor{cfg: cfg, table: New(cfg.Self, cfg.Detector), write: write, clock: clk, log: log}
}

// Table returns the member table.
func (m *Monitor) Table() *Table { return m.table }

// Probes returns how many silent connected peers answered a ping and kept
// their connection, and how many did not and had it closed.
func (m *Monitor) Probes() (kept, closed uint64) { return m.kept.Load(), m.closed.Load() }

func (m *Monitor) nowMS() int64 { return m.clock.Now().UnixMilli() }

// beat writes this node's heartbeat now.
func (m *Monitor) beat() {
	v := crdt.MemberValue{Addrs: m.t.Addrs(), Region: m.cfg.Region, Version: m.cfg.Version}
	if err := m.write(crdt.Delta{Key: crdt.NodeKey(m.cfg.Self), Op: crdt.OpPut, Value: crdt.Encode(v)}); err != nil && !errors.Is(err, context.Canceled) {
		m.log.Warn("heartbeat", "err", err)
	}
}

// Heard records a sign of life of id at nowMS.
func (m *Monitor) Heard(id string, nowMS int64) {
	if c, ok := m.table.Heard(id, nowMS); ok {
		m.logChange(c)
	}
}

// Disconnected records that the last connection to id closed: a hint
// that makes it suspect at once.
func (m *Monitor) Disconnected(id string) {
	if c, ok := m.table.Disconnected(id); ok {
		m.logChange(c)
	}
}

// Partitioned reports whether this node has lost contact with more than
// half of the nodes it recently saw alive (heard within 3 × dead_after,
// and at least the last 30 s).
func (m *Monitor) Partitioned() bool {
	lost, seen := m.table.Unreachable(m.nowMS(), max(3*m.cfg.Detector.DeadAfter, 30*time.Second).Milliseconds())
	return 2*lost > seen
}

// Start announces this node at once over t, the transport Run then beats
// and probes over.
func (m *Monitor) Start(t Transport) {
	m.t = t
	m.beat()
}

// Run beats and ticks until ctx ends, then waits for the probes it
// started. Start must have been called.
func (m *Monitor) Run(ctx context.Context) {
	defer m.wg.Wait()
	beat := time.NewTicker(m.cfg.Heartbeat)
	defer beat.Stop()
	tick := time.NewTicker(max(m.cfg.Heartbeat/4, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			m.beat()
		case <-tick.C:
			for _, c := range m.table.Tick(m.nowMS()) {
				m.logChange(c)
				if c.To == Suspect {
					m.probe(ctx, c.ID)
				}
			}
		}
	}
}

// probe checks the connection to a node that went silent while still
// connected, and closes it if the node does not answer a ping within the
// probe timeout (one heartbeat, at least 500 ms). Such a connection is
// most likely cut (a partition, a paused or crashed host): TCP would only
// notice after its retransmission backoff, which grows with the length of
// the outage and can hold a healed link idle for many seconds. Closed, the
// peer is redialled within redial_min..redial_max of the network coming
// back, and the new connection starts an anti-entropy exchange at once. A
// node that answers keeps its connection: its silence is slowness (a
// starved CPU, a long queue), and dropping a working connection would only
// add handshakes to an overloaded cluster.
func (m *Monitor) probe(ctx context.Context, id string) {
	p, err := peer.Decode(id)
	if err != nil || !m.t.Connected(p) {
		return
	}
	timeout := max(m.cfg.Heartbeat, 500*time.Millisecond)
	m.wg.Go(func() {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		rtt, err := m.t.Ping(pctx, p)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			m.kept.Add(1)
			m.log.Debug("silent peer answered a ping; keeping its connection", "member", id, "rtt", rtt)
			return
		}
		m.closed.Add(1)
		m.log.Debug("closing connection to silent peer", "member", id)
		_ = m.t.ClosePeer(p)
	})
}

// logChange logs one line per membership change.
func (m *Monitor) logChange(c Change) {
	switch {
	case c.From == 0:
		m.log.Info("member joined", "member", c.ID)
	case c.To == Dead:
		m.log.Warn("member dead", "member", c.ID)
	default:
		m.log.Info("member "+c.To.String(), "member", c.ID, "was", c.From.String())
	}
}
