package gossip

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// tracer follows a node's GossipSub meshes, so tests can wait until a
// route exists instead of publishing into a mesh still forming, and counts
// events for failure reports.
type tracer struct {
	mu     sync.Mutex
	mesh   map[string]map[peer.ID]bool // full topic name → peers in our mesh
	counts map[string]int
}

func newTracer() *tracer {
	return &tracer{mesh: make(map[string]map[peer.ID]bool), counts: make(map[string]int)}
}

// inMesh reports whether p is in our mesh of the full topic name.
func (tr *tracer) inMesh(topic string, p peer.ID) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.mesh[topic][p]
}

func (tr *tracer) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := ""
	for _, k := range slices.Sorted(maps.Keys(tr.counts)) {
		s += fmt.Sprintf(" %s=%d", k, tr.counts[k])
	}
	return s
}

func (tr *tracer) count(k string) {
	tr.mu.Lock()
	tr.counts[k]++
	tr.mu.Unlock()
}

func (tr *tracer) Graft(p peer.ID, topic string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.counts["graft"]++
	if tr.mesh[topic] == nil {
		tr.mesh[topic] = make(map[peer.ID]bool)
	}
	tr.mesh[topic][p] = true
}

func (tr *tracer) Prune(p peer.ID, topic string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.counts["prune"]++
	delete(tr.mesh[topic], p)
}

func (tr *tracer) OnClosedOutboundStream(p peer.ID) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.counts["closedstream"]++
	for _, m := range tr.mesh {
		delete(m, p)
	}
}

func (tr *tracer) OnNewOutboundStream(peer.ID, protocol.ID)             { tr.count("newstream") }
func (tr *tracer) Join(string)                                          {}
func (tr *tracer) Leave(string)                                         {}
func (tr *tracer) ValidateMessage(*pubsub.Message)                      { tr.count("validate") }
func (tr *tracer) DeliverMessage(*pubsub.Message)                       { tr.count("deliver") }
func (tr *tracer) RejectMessage(_ *pubsub.Message, reason string)       { tr.count("reject:" + reason) }
func (tr *tracer) DuplicateMessage(*pubsub.Message)                     { tr.count("duplicate") }
func (tr *tracer) ThrottlePeer(peer.ID)                                 { tr.count("throttle") }
func (tr *tracer) RecvRPC(*pubsub.RPC)                                  { tr.count("recvrpc") }
func (tr *tracer) SendRPC(*pubsub.RPC, peer.ID)                         { tr.count("sendrpc") }
func (tr *tracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (tr *tracer) DropRPC(*pubsub.RPC, peer.ID)                         { tr.count("droprpc") }
func (tr *tracer) UndeliverableMessage(*pubsub.Message)                 { tr.count("undeliverable") }

// waitMesh waits until each of the pairs of nodes has the other in its mesh
// of the short topic: messages then travel between them at once.
func waitMesh(t *testing.T, topic string, pairs ...[2]*collector) {
	t.Helper()
	for _, p := range pairs {
		a, b := p[0], p[1]
		full := TopicName(a.n.cfg.Cluster, topic)
		eventuallyDiag(t, waitFor, fmt.Sprintf("mesh %s between %s and %s", topic, a.n.ID().ShortString(), b.n.ID().ShortString()),
			func() bool { return a.tr.inMesh(full, b.n.ID()) && b.tr.inMesh(full, a.n.ID()) },
			func() string { return fmt.Sprintf("a:%v\nb:%v", a.tr, b.tr) })
	}
}

func pubsubTracer(tr *tracer) pubsub.Option { return pubsub.WithRawTracer(tr) }
