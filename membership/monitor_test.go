package membership

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
)

// fakeTransport is a Transport with no network: nobody is connected, and
// the peers in keep are kept.
type fakeTransport struct{ keep map[peer.ID]bool }

func (fakeTransport) Addrs() []string                           { return nil }
func (fakeTransport) Peers() []peer.ID                          { return nil }
func (fakeTransport) Connected(peer.ID) bool                    { return false }
func (f fakeTransport) Keeps(p peer.ID) bool                    { return f.keep[p] }
func (fakeTransport) ClosePeer(peer.ID) error                   { return nil }
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
