package netcut

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// conn is a network.Conn that only knows its remote peer.
type conn struct {
	network.Conn
	remote peer.ID
}

func (c conn) RemotePeer() peer.ID { return c.remote }

func TestBlockAndLift(t *testing.T) {
	var g Gater // the zero value is usable
	p, q := peer.ID("p"), peer.ID("q")
	if g.Blocked(p) || !g.InterceptPeerDial(p) || !g.InterceptAddrDial(p, nil) || !g.InterceptSecured(network.DirInbound, p, nil) {
		t.Fatal("a fresh gater blocks")
	}
	g.Block(p, true)
	if !g.Blocked(p) || g.Blocked(q) {
		t.Fatalf("after Block(p): p blocked %v, q blocked %v", g.Blocked(p), g.Blocked(q))
	}
	if g.InterceptPeerDial(p) || g.InterceptAddrDial(p, nil) ||
		g.InterceptSecured(network.DirInbound, p, nil) || g.InterceptSecured(network.DirOutbound, p, nil) {
		t.Fatal("a blocked peer got through")
	}
	if !g.InterceptPeerDial(q) || !g.InterceptAccept(nil) {
		t.Fatal("an unblocked peer or an unidentified accept was refused")
	}
	if ok, _ := g.InterceptUpgraded(conn{remote: q}); !ok {
		t.Fatal("InterceptUpgraded refused an unblocked peer")
	}
	if ok, _ := g.InterceptUpgraded(conn{remote: p}); ok {
		t.Fatal("InterceptUpgraded let a blocked peer through")
	}
	g.Block(p, false)
	if g.Blocked(p) || !g.InterceptPeerDial(p) {
		t.Fatal("the block was not lifted")
	}
	g.Block(q, false) // lifting a block that was never set is fine
}

func newHost(t *testing.T, g *Gater) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.ConnectionGater(g))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestGaterCutsRealHosts(t *testing.T) {
	ga, gb := New(), New()
	a, b := newHost(t, ga), newHost(t, gb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	binfo := peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}
	ainfo := peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}

	// Outbound: a blocks b, so a cannot dial b.
	ga.Block(b.ID(), true)
	if err := a.Connect(ctx, binfo); err == nil {
		t.Fatal("a dialled b although a blocks b")
	}
	// Inbound: b cannot reach a either, a refuses the secured connection.
	if err := b.Connect(ctx, ainfo); err == nil && a.Network().Connectedness(b.ID()) == network.Connected {
		t.Fatal("b connected to a although a blocks b")
	}
	// Lifted: they connect.
	ga.Block(b.ID(), false)
	if err := a.Connect(ctx, binfo); err != nil {
		t.Fatalf("after lifting the block: %v", err)
	}
	if a.Network().Connectedness(b.ID()) != network.Connected {
		t.Fatal("not connected after lifting the block")
	}
}
