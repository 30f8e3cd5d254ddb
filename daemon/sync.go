package daemon

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/rumor-dev/rumor/antientropy"
	"github.com/rumor-dev/rumor/crdt"
)

// syncTimeout bounds one anti-entropy exchange.
const syncTimeout = 60 * time.Second

// syncSettleMin is the least a periodic exchange leaves out: it compares
// only entries stamped longer ago than max(syncSettleMin, 3 × the measured
// p99 gossip delay), at most anti_entropy_interval. Younger writes are
// likely still on their way by gossip; compared, they would make nearly
// every bucket differ under a steady write load and the exchange would
// resend the whole namespace. Exchanges on a new connection (a join, a
// heal, a restart) compare everything.
const syncSettleMin = 2 * time.Second

// syncStats counts anti-entropy work.
type syncStats struct {
	rounds   atomic.Uint64 // exchanges completed
	repaired atomic.Uint64 // deltas that changed our state
	refused  atomic.Uint64 // deltas refused by the write policy or skew bound
	failed   atomic.Uint64 // exchanges that failed
}

// aeState is the agent's replica as anti-entropy sees it.
type aeState struct{ a *Agent }

// Entries implements antientropy.State.
func (s aeState) Entries(prefix string) []crdt.Entry { return s.a.store.List(prefix) }

// Merge implements antientropy.State: deltas from a sync session pass the
// same write policy and clock-skew bound as gossip (their writer cannot be
// checked against a signature here: the session peer relays others'
// writes), then merge like gossip.
func (s aeState) Merge(ds []crdt.Delta) int {
	a := s.a
	now, maxSkew := a.nowMS(), a.cfg.MaxSkew.Milliseconds()
	ok := ds[:0:0]
	for _, d := range ds {
		if a.policy.check(crdt.NamespaceOf(d.Key), d, d.Stamp.Node) != nil || a.checkLimits(d) != nil || crdt.CheckSkew(d.Stamp.HLC, now, maxSkew) != nil {
			a.sync.refused.Add(1)
			continue
		}
		ok = append(ok, d)
	}
	a.hlcMu.Lock()
	for _, d := range ok {
		_ = a.hlc.Observe(d.Stamp.HLC, now, maxSkew)
	}
	a.hlcMu.Unlock()
	changed := a.store.Apply(ok...)
	for _, d := range changed {
		if crdt.NamespaceOf(d.Key) == crdt.NSNode {
			a.learnPeer(d) // e.g. after a restart: find the peers again
		}
	}
	a.sync.repaired.Add(uint64(len(changed)))
	return len(changed)
}

// startAntiEntropy serves the sync protocol and starts the loop that
// initiates exchanges: with every newly connected peer (a join, or a
// reconnect after a partition heals or a peer restarts) and with one
// random peer every AntiEntropy interval.
func (a *Agent) startAntiEntropy(ctx context.Context) {
	h := a.node.Host()
	h.SetStreamHandler(protocol.ID(antientropy.ProtocolV2(a.cfg.Cluster)), a.serveSync)
	h.SetStreamHandler(protocol.ID(antientropy.Protocol(a.cfg.Cluster)), a.serveSync)
	a.syncNow = make(chan peer.ID, 64)
	a.notifee = &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			select {
			case a.syncNow <- c.RemotePeer():
			default: // a burst of connections: the periodic round catches up
			}
		},
		// A lost connection is a hint for the failure detector: suspect
		// at once; dead still takes dead_after of silence.
		DisconnectedF: func(n network.Network, c network.Conn) {
			p := c.RemotePeer()
			if n.Connectedness(p) == network.Connected {
				return // another connection to p is still up
			}
			if ch, ok := a.members.Disconnected(p.String()); ok {
				a.logMembership(ch)
			}
		},
	}
	h.Network().Notify(a.notifee)
	a.goLoop(func() { a.syncLoop(ctx) })
}

func (a *Agent) stopAntiEntropy() {
	h := a.node.Host()
	h.Network().StopNotify(a.notifee)
	h.RemoveStreamHandler(protocol.ID(antientropy.ProtocolV2(a.cfg.Cluster)))
	h.RemoveStreamHandler(protocol.ID(antientropy.Protocol(a.cfg.Cluster)))
}

func (a *Agent) syncLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.AntiEntropy)
	defer t.Stop()
	for {
		var p peer.ID
		full := false
		select {
		case <-ctx.Done():
			return
		case p = <-a.syncNow:
			full = true
			// Every new connection gets an exchange, even if one with the
			// same peer just ended: a partition may have come and gone in
			// between. A redundant exchange costs one digest.
		case <-t.C:
			peers := a.node.Peers()
			if len(peers) == 0 {
				continue
			}
			p = peers[a.rand.IntN(len(peers))]
		}
		a.syncWith(ctx, p, full)
	}
}

// syncBefore is the cutoff of a periodic exchange (see syncSettleMin).
func (a *Agent) syncBefore() crdt.HLC {
	p99, _ := a.delays.p99()
	lag := min(max(syncSettleMin, 3*p99), a.cfg.AntiEntropy)
	return crdt.MakeHLC(a.nowMS()-lag.Milliseconds(), math.MaxUint16)
}

// syncWith runs one exchange with p as the initiator: of every entry if
// full, else of those older than syncBefore (with a peer that speaks
// version 2 of the protocol; version 1 compares everything).
func (a *Agent) syncWith(ctx context.Context, p peer.ID, full bool) {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	v2 := protocol.ID(antientropy.ProtocolV2(a.cfg.Cluster))
	// Never dial: an exchange runs on a connection that is up. A dial
	// here would bypass the gossip layer's redial backoff, and with a peer
	// that closes each connection right after the handshake (its
	// allow_peers does not name us) every new connection would start an
	// exchange that dials the next one.
	s, err := a.node.Host().NewStream(network.WithNoDial(ctx, "anti-entropy"), p, v2, protocol.ID(antientropy.Protocol(a.cfg.Cluster)))
	if err != nil {
		if ctx.Err() == nil {
			a.sync.failed.Add(1)
			a.log.Debug("anti-entropy: open stream", "peer", shortID(p.String()), "err", err)
		}
		return
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(syncTimeout))
	start := time.Now()
	var st antientropy.Stats
	switch {
	case s.Protocol() != v2:
		st, err = antientropy.Initiate(s, aeState{a})
	case full:
		st, err = antientropy.InitiateBefore(s, aeState{a}, 0)
	default:
		st, err = antientropy.InitiateBefore(s, aeState{a}, a.syncBefore())
	}
	a.logSync("initiated", p, st, time.Since(start), err)
}

// serveSync answers an exchange a peer initiated.
func (a *Agent) serveSync(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(syncTimeout))
	start := time.Now()
	respond := antientropy.Respond
	if s.Protocol() == protocol.ID(antientropy.ProtocolV2(a.cfg.Cluster)) {
		respond = antientropy.RespondV2
	}
	st, err := respond(s, aeState{a})
	a.logSync("answered", s.Conn().RemotePeer(), st, time.Since(start), err)
}

func (a *Agent) logSync(role string, p peer.ID, st antientropy.Stats, took time.Duration, err error) {
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			a.sync.failed.Add(1)
			a.log.Debug("anti-entropy failed", "role", role, "peer", shortID(p.String()), "err", err)
		}
		return
	}
	a.sync.rounds.Add(1)
	if st.Repaired > 0 {
		a.log.Info("anti-entropy repaired state", "role", role, "peer", shortID(p.String()),
			"buckets", st.Buckets, "sent", st.Sent, "received", st.Received, "repaired", st.Repaired, "took", took.Round(time.Millisecond))
	}
}
