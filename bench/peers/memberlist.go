package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rumor-dev/rumor/bench/benchstat"
)

// MemberlistSettings are the memberlist settings every node ran with.
type MemberlistSettings struct {
	Version          string  `json:"version"`
	Base             string  `json:"base"`
	GossipIntervalMs float64 `json:"gossip_interval_ms"`
	GossipNodes      int     `json:"gossip_nodes"`
	RetransmitMult   int     `json:"retransmit_mult"`
	UDPBufferSize    int     `json:"udp_buffer_size"`
	HandoffQueue     int     `json:"handoff_queue_depth"`
	ProbeIntervalMs  float64 `json:"probe_interval_ms"`
	PushPullInterval float64 `json:"push_pull_interval_s"`
	// RetransmitLimits is, per cluster size measured, how many times a
	// node's queue sends each message: RetransmitMult * ceil(log10(N+1)).
	RetransmitLimits map[int]int `json:"retransmit_limits"`
	// Relay: a node re-queues a message on its own broadcast queue the
	// first time it gets it, as serf does for user events; without it only
	// the writer ever sends a message, to RetransmitLimit random nodes.
	Relay bool `json:"relay"`
}

// memberlistOptions override DefaultLocalConfig where non-zero.
type memberlistOptions struct {
	gossipInterval time.Duration
	gossipNodes    int
	retransmitMult int
	relay          bool
	formTimeout    time.Duration
}

// memberlistConfig returns the config one node runs with.
func (o memberlistOptions) config() *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	if o.gossipInterval > 0 {
		c.GossipInterval = o.gossipInterval
	}
	if o.gossipNodes > 0 {
		c.GossipNodes = o.gossipNodes
	}
	if o.retransmitMult > 0 {
		c.RetransmitMult = o.retransmitMult
	}
	return c
}

// settings describes the config for the report, with the retransmit
// limit for each cluster size in sizes.
func (o memberlistOptions) settings(version string, sizes []int) MemberlistSettings {
	c := o.config()
	base := "DefaultLocalConfig()"
	if o.gossipInterval > 0 || o.gossipNodes > 0 || o.retransmitMult > 0 {
		base += " with overrides"
	}
	s := MemberlistSettings{Version: version, Base: base, GossipIntervalMs: benchstat.Ms(c.GossipInterval), GossipNodes: c.GossipNodes,
		RetransmitMult: c.RetransmitMult, UDPBufferSize: c.UDPBufferSize, HandoffQueue: c.HandoffQueueDepth,
		ProbeIntervalMs: benchstat.Ms(c.ProbeInterval), PushPullInterval: c.PushPullInterval.Seconds(), Relay: o.relay,
		RetransmitLimits: make(map[int]int)}
	for _, n := range sizes {
		s.RetransmitLimits[n] = retransmitLimit(c.RetransmitMult, n)
	}
	return s
}

// retransmitLimit is how many times memberlist's TransmitLimitedQueue
// sends each message in a cluster of n: mult * ceil(log10(n+1)).
func retransmitLimit(mult, n int) int {
	return mult * int(math.Ceil(math.Log10(float64(n+1))))
}

// broadcast is one message on a TransmitLimitedQueue.
type broadcast []byte

func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Finished()                             {}

// UniqueBroadcast marks every message as distinct, so the queue skips
// looking for ones it invalidates.
func (b broadcast) UniqueBroadcast() {}

var _ memberlist.UniqueBroadcast = broadcast(nil)

// mlNode is one memberlist node and its delegate.
type mlNode struct {
	idx      int
	ml       *memberlist.Memberlist
	queue    *memberlist.TransmitLimitedQueue
	h        *hub
	relay    bool
	receipts *atomic.Int64

	mu   sync.Mutex
	seen map[uint64]struct{} // tag<<56 | seq
}

// NodeMeta implements memberlist.Delegate: no metadata.
func (nd *mlNode) NodeMeta(int) []byte { return nil }

// NotifyMsg implements memberlist.Delegate: deliver a message the first
// time it arrives and, with relay, queue it for this node to gossip on.
func (nd *mlNode) NotifyMsg(b []byte) {
	at := time.Now()
	tag, seq, ok := parseMessage(b)
	if !ok {
		return
	}
	nd.receipts.Add(1)
	if !nd.markSeen(tag, seq) {
		return
	}
	nd.h.deliver(nd.idx, tag, seq, at)
	if nd.relay {
		nd.queue.QueueBroadcast(broadcast(append([]byte(nil), b...)))
	}
}

// markSeen records (tag, seq) and reports whether it is new.
func (nd *mlNode) markSeen(tag byte, seq uint64) bool {
	key := uint64(tag)<<56 | seq
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if _, dup := nd.seen[key]; dup {
		return false
	}
	nd.seen[key] = struct{}{}
	return true
}

// GetBroadcasts implements memberlist.Delegate: memberlist calls it once
// per gossip target every GossipInterval, with the bytes left in the UDP
// packet after its own membership messages.
func (nd *mlNode) GetBroadcasts(overhead, limit int) [][]byte {
	return nd.queue.GetBroadcasts(overhead, limit)
}

// LocalState implements memberlist.Delegate: no push/pull state.
func (nd *mlNode) LocalState(bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate: no push/pull state.
func (nd *mlNode) MergeRemoteState([]byte, bool) {}

// logCounter is every node's log output: it counts warnings and errors
// and memberlist's own drops ("handler queue full").
type logCounter struct {
	mu       sync.Mutex
	problems []string
	count    int64
	dropped  int64
}

func (l *logCounter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimSpace(string(p)), "\n") {
		if !strings.Contains(line, "[WARN]") && !strings.Contains(line, "[ERR]") {
			continue
		}
		l.mu.Lock()
		l.count++
		if strings.Contains(line, "handler queue full") {
			l.dropped++
		}
		if len(l.problems) < 10 {
			if i := strings.Index(line, "["); i >= 0 {
				line = line[i:] // drop the timestamp
			}
			l.problems = append(l.problems, line)
		}
		l.mu.Unlock()
	}
	return len(p), nil
}

// mlPeer is n memberlist nodes in this process on 127.0.0.1.
type mlPeer struct {
	nodes    []*mlNode
	log      *logCounter
	receipts atomic.Int64
}

// openMemberlist returns an opener of n joined memberlist nodes.
func openMemberlist(o memberlistOptions) opener {
	return func(ctx context.Context, n int, h *hub) (peer, time.Duration, error) {
		start := time.Now()
		mp := &mlPeer{log: &logCounter{}}
		var addrs []string
		for i := range n {
			conf := o.config()
			conf.Name = fmt.Sprintf("node%03d", i)
			conf.BindAddr, conf.AdvertiseAddr = "127.0.0.1", "127.0.0.1"
			// Port 0: memberlist binds TCP and UDP to one kernel-chosen port.
			conf.BindPort, conf.AdvertisePort = 0, 0
			conf.LogOutput = mp.log
			nd := &mlNode{idx: i, h: h, relay: o.relay, receipts: &mp.receipts, seen: make(map[uint64]struct{})}
			conf.Delegate = nd
			ml, err := memberlist.Create(conf)
			if err != nil {
				mp.close()
				return nil, 0, fmt.Errorf("memberlist node %d: %w", i, err)
			}
			nd.ml = ml
			nd.queue = &memberlist.TransmitLimitedQueue{NumNodes: ml.NumMembers, RetransmitMult: conf.RetransmitMult}
			mp.nodes = append(mp.nodes, nd)
			// Join every node already there: each push/pull tells both
			// sides about each other at once, so forming does not wait
			// for alive messages that gossip may miss and push/pull
			// (every PushPullInterval) would repair.
			if len(addrs) > 0 {
				if joined, err := ml.Join(addrs); err != nil || joined != len(addrs) {
					mp.close()
					return nil, 0, fmt.Errorf("memberlist node %d joined %d of %d nodes: %v", i, joined, len(addrs), err)
				}
			}
			addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", ml.LocalNode().Port))
		}
		deadline := start.Add(o.formTimeout)
		for {
			least := n
			for _, nd := range mp.nodes {
				least = min(least, nd.ml.NumMembers())
			}
			if least == n {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				mp.close()
				return nil, 0, fmt.Errorf("memberlist: %d nodes did not all see each other within %v (least saw %d)", n, o.formTimeout, least)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return mp, time.Since(start), nil
	}
}

func (mp *mlPeer) receivers() int { return len(mp.nodes) }
func (mp *mlPeer) writers() int   { return len(mp.nodes) }
func (mp *mlPeer) self(w int) int { return w }
func (mp *mlPeer) serverPID() int { return 0 }
func (mp *mlPeer) flush() error   { return nil }

// publish queues msg on node w's broadcast queue; memberlist sends it with
// the next gossip rounds.
func (mp *mlPeer) publish(w int, msg []byte) error {
	nd := mp.nodes[w]
	tag, seq, ok := parseMessage(msg)
	if !ok {
		return errors.New("memberlist: message shorter than its header")
	}
	nd.markSeen(tag, seq)
	nd.queue.QueueBroadcast(broadcast(msg))
	return nil
}

func (mp *mlPeer) stats() peerStats {
	mp.log.mu.Lock()
	defer mp.log.mu.Unlock()
	st := peerStats{Receipts: mp.receipts.Load(), Dropped: mp.log.dropped,
		Problems: append([]string(nil), mp.log.problems...), ProblemCount: mp.log.count}
	st.UDPInErrors, st.UDPRcvbufErrors = udpErrors()
	return st
}

// close shuts every node down (no graceful leave: the cluster is
// discarded whole).
func (mp *mlPeer) close() error {
	var errs []error
	for _, nd := range mp.nodes {
		errs = append(errs, nd.ml.Shutdown())
	}
	return errors.Join(errs...)
}
