package membership

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
)

// fakeTransport is a Transport with no network: nobody is connected, and
// the peers in keep are kept.
type fakeTransport struct {
	keep    map[peer.ID]bool
	dialErr error // what Dial returns
	hang    bool  // Dial waits for its context to end
}

func (fakeTransport) Addrs() []string         { return nil }
func (fakeTransport) Peers() []peer.ID        { return nil }
func (fakeTransport) Connected(peer.ID) bool  { return false }
func (f fakeTransport) Keeps(p peer.ID) bool  { return f.keep[p] }
func (fakeTransport) ClosePeer(peer.ID) error { return nil }
func (f fakeTransport) Dial(ctx context.Context, _ peer.AddrInfo) error {
	if f.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.dialErr
}
func (fakeTransport) Handle(string, func(gossip.Stream)) func() { return func() {} }
func (fakeTransport) OpenStream(context.Context, peer.ID, string) (gossip.Stream, error) {
	return nil, gossip.ErrNotConnected
}

// TestLostPeersProbedOnlyIfKept: a lost connection to a peer this node
// keeps makes a probe of it at once; one to a peer it does not keep (a
// connection either side let go on purpose) makes none, as the peers
// asked to reach it are mostly not connected to it and would accuse a
// live node.
func TestLostPeersProbedOnlyIfKept(t *testing.T) {
	kept, other := peer.ID("kept"), peer.ID("other")
	clk := clock.NewFake(time.UnixMilli(1_000_000))
	m := NewMonitor(MonitorConfig{Self: "self", Cluster: "c", Heartbeat: time.Second, Detector: DefaultConfig()},
		func(crdt.Delta) error { return nil }, clk, slog.New(slog.DiscardHandler))
	m.t = fakeTransport{keep: map[peer.ID]bool{kept: true}}
	for _, p := range []peer.ID{kept, other} {
		m.table.Announced(p.String(), 1, clk.Now().UnixMilli())
	}
	m.Disconnected(kept)
	m.Disconnected(other)
	if got := m.lost(); len(got) != 1 || got[0] != kept {
		t.Fatalf("lost: %v, want only the kept peer", got)
	}
	select {
	case p := <-m.kick:
		if p != kept {
			t.Fatalf("probed at once: %v, want the kept peer", p)
		}
	default:
		t.Fatal("the kept peer is not probed at once")
	}
	select {
	case p := <-m.kick:
		t.Fatalf("probed %v too, want only the kept peer", p)
	default:
	}
}

// TestUnconnectedMemberProbedByDial: a member no connection covers is
// probed every orphanQuietEvery heartbeats, and every orphanEvery for
// orphanTroubleFor after this node saw a peer fail; when no one asked is
// in touch with it, a refused dial to the addresses it announced is
// evidence enough to accuse it at once. Without this, after a partition
// cut every connection to a member, the nodes on this side held it alive
// for good (the small region of make sim-scale saw 11 of the other side
// alive for 35 s). A member whose addresses are unknown here, or whose
// dial timed out (a handshake that lost a packet), is not accused on the
// first such probe.
func TestUnconnectedMemberProbedByDial(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1_000_000))
	var wrote []string
	m := NewMonitor(MonitorConfig{Self: "self", Cluster: "c", Heartbeat: time.Second, ProbePeers: 3, Detector: DefaultConfig()},
		func(d crdt.Delta) error { wrote = append(wrote, d.Key); return nil }, clk, slog.New(slog.DiscardHandler))
	m.t = fakeTransport{dialErr: errors.New("dial refused")}
	gone, unknown := newPeerID(t), newPeerID(t)
	announce := func(id peer.ID, addrs ...string) {
		m.Learn(crdt.Delta{Key: crdt.NodeKey(id.String()), Op: crdt.OpPut, Stamp: crdt.Stamp{Node: id.String()},
			Value: crdt.Encode(crdt.MemberValue{Inc: 7, Addrs: addrs})}, clk.Now().UnixMilli())
	}
	announce(gone, "/ip4/127.0.0.1/tcp/1/p2p/"+gone.String())
	announce(unknown)

	var picked []peer.ID
	for range orphanQuietEvery {
		picked = append(picked, m.orphan()...)
	}
	if len(picked) != 1 || !slices.Contains([]peer.ID{gone, unknown}, picked[0]) {
		t.Fatalf("orphans over %d quiet heartbeats: %v, want one of the two members", orphanQuietEvery, picked)
	}
	m.troubled() // as when this node accuses a peer, or loses a kept one
	picked = nil
	for range 2 * orphanEvery {
		picked = append(picked, m.orphan()...)
	}
	if len(picked) != 2 {
		t.Fatalf("orphans over %d heartbeats after trouble: %v, want one every %d", 2*orphanEvery, picked, orphanEvery)
	}
	clk.Advance(orphanTroubleFor)
	picked = nil
	for range 2 * orphanEvery {
		picked = append(picked, m.orphan()...)
	}
	if len(picked) != 0 {
		t.Fatalf("orphans %v over %d heartbeats once the trouble is %v old, want none", picked, 2*orphanEvery, orphanTroubleFor)
	}

	ctx := t.Context()
	m.round(ctx, unknown)
	if len(wrote) != 0 {
		t.Fatalf("accused a member with no known address on the first probe: %v", wrote)
	}
	m.t = fakeTransport{hang: true}
	m.cfg.Detector.SuspectAfter = 30 * time.Millisecond // the dial's budget, on the network's clock
	m.round(ctx, gone)
	if len(wrote) != 0 {
		t.Fatalf("accused on a dial that timed out: %v", wrote)
	}
	m.t = fakeTransport{dialErr: errors.New("dial refused")}
	m.round(ctx, gone)
	if want := crdt.SuspectKey(gone.String(), "self"); !slices.Equal(wrote, []string{want}) {
		t.Fatalf("after a refused dial wrote %v, want the accusation %s", wrote, want)
	}
}

// TestDeadMemberNotAccusedAgain: a member held dead here gets no further
// accusation from this node (a probe of it over a connection not yet timed
// out fails again and again): it would tell no one anything, cost a
// message for every node, and stay in every store, as accusations of a
// node that never returns do. At 30 simulated agents, ten killed ones had
// gathered 193 accusations by the end of make sim-scale, 70 of them from
// the kill phase.
func TestDeadMemberNotAccusedAgain(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1_000_000))
	var wrote []string
	m := NewMonitor(MonitorConfig{Self: "self", Cluster: "c", Heartbeat: time.Second, Detector: DefaultConfig()},
		func(d crdt.Delta) error { wrote = append(wrote, d.Key); return nil }, clk, slog.New(slog.DiscardHandler))
	m.t = fakeTransport{}
	gone, other := newPeerID(t), newPeerID(t)
	for _, p := range []peer.ID{gone, other} {
		m.table.Announced(p.String(), 3, clk.Now().UnixMilli())
	}
	m.Learn(crdt.Delta{Key: crdt.SuspectKey(gone.String(), "x"), Op: crdt.OpPut, Stamp: crdt.Stamp{Node: "x"},
		Value: crdt.Encode(crdt.SuspectValue{Inc: 3, Dead: true})}, clk.Now().UnixMilli())
	if s := m.table.State(gone.String()); s != Dead {
		t.Fatalf("after a dead verdict: %v, want dead", s)
	}
	m.accuse(gone.String(), false)
	m.accuse(other.String(), false)
	if len(wrote) != 1 || wrote[0] != crdt.SuspectKey(other.String(), "self") {
		t.Fatalf("wrote %v, want only the accusation of the live member", wrote)
	}
}
