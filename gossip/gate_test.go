package gossip

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"
)

// countingGater admits everything and counts the handshakes it saw, to
// show that a HostOptions gater still runs behind the allowlist.
type countingGater struct{ secured atomic.Int64 }

func (*countingGater) InterceptPeerDial(peer.ID) bool               { return true }
func (*countingGater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (*countingGater) InterceptAccept(network.ConnMultiaddrs) bool  { return true }
func (*countingGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
func (g *countingGater) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	g.secured.Add(1)
	return true
}

// addrOf returns n's listen address on the transport named by proto
// ("tcp" or "quic-v1"), with its /p2p suffix.
func addrOf(t *testing.T, n *Node, proto string) string {
	t.Helper()
	for _, a := range n.Addrs() {
		if strings.Contains(a, "/"+proto+"/") {
			return a
		}
	}
	t.Fatalf("%s has no %s address in %v", n.ID(), proto, n.Addrs())
	return ""
}

func TestAllowPeersRefusesOthersOnTCPAndQUIC(t *testing.T) {
	for _, proto := range []string{"tcp", "quic-v1"} {
		t.Run(proto, func(t *testing.T) {
			listen := []string{"/ip4/127.0.0.1/tcp/0"}
			if proto == "quic-v1" {
				listen = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
			}
			memberCfg, friendCfg, strangerCfg := testConfig(t), testConfig(t), testConfig(t)
			for _, c := range []*Config{&memberCfg, &friendCfg, &strangerCfg} {
				c.Listen = listen
			}
			inner := new(countingGater)
			memberCfg.AllowPeers = []peer.ID{mustID(t, friendCfg)}
			memberCfg.HostOptions = []libp2p.Option{libp2p.ConnectionGater(inner)}
			member, _ := startNode(t, memberCfg)
			at := addrOf(t, member, proto)
			friendCfg.Bootstrap, strangerCfg.Bootstrap = []string{at}, []string{at}
			friend, _ := startNode(t, friendCfg)
			stranger, _ := startNode(t, strangerCfg)

			eventually(t, waitFor, "friend connected", func() bool { return connected(member, friend) })
			eventually(t, waitFor, "two refusals of the stranger's redials", func() bool { return member.Refused() >= 2 })
			// (Over QUIC the stranger may see its side of a connection for a
			// moment: its handshake ends before the member closes it.)
			if connected(member, stranger) {
				t.Fatal("stranger is connected")
			}
			if inner.secured.Load() == 0 {
				t.Error("the HostOptions gater was not consulted for the allowed peer")
			}
			// Our own dials to a peer not on the list are refused too.
			before := member.Refused()
			ai, err := peer.AddrInfoFromString(addrOf(t, stranger, proto))
			if err != nil {
				t.Fatal(err)
			}
			if err := member.h.Connect(context.Background(), *ai); err == nil {
				t.Fatal("dial to the stranger succeeded")
			}
			if member.Refused() <= before {
				t.Error("refused dial not counted")
			}
		})
	}
}

func TestPSKSeparatesNetworks(t *testing.T) {
	psk := func(b byte) pnet.PSK { return bytes.Repeat([]byte{b}, 32) }
	aCfg, bCfg, cCfg := testConfig(t), testConfig(t), testConfig(t)
	aCfg.PSK, bCfg.PSK, cCfg.PSK = psk(1), psk(1), psk(2)
	a, _ := startNode(t, aCfg)
	bCfg.Bootstrap = a.Addrs()
	b, _ := startNode(t, bCfg)
	eventually(t, waitFor, "same key connects", func() bool { return connected(a, b) })
	ai, err := peer.AddrInfoFromString(a.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	c, _ := startNode(t, cCfg)
	if err := c.h.Connect(context.Background(), *ai); err == nil {
		t.Fatal("a peer with another key connected")
	}
	if connected(a, c) {
		t.Fatal("a peer with another key is connected")
	}
}

func TestPSKRefusesQUIC(t *testing.T) {
	cfg := testConfig(t)
	cfg.PSK = bytes.Repeat([]byte{1}, 32)
	cfg.Listen = append(cfg.Listen, "/ip4/127.0.0.1/udp/0/quic-v1")
	_, err := New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "pnet does not cover QUIC") {
		t.Fatalf("New with PSK and QUIC: %v, want an error about pnet and QUIC", err)
	}
}

// TestSetAllowPeersWhileRunning: a node started open takes an allowlist at
// run time, which closes the connection to a peer no longer listed and
// refuses its redials; emptying the list opens the node again.
func TestSetAllowPeersWhileRunning(t *testing.T) {
	aCfg, bCfg := testConfig(t), testConfig(t)
	a, _ := startNode(t, aCfg)
	bCfg.Bootstrap = a.Addrs()
	b, _ := startNode(t, bCfg)
	eventually(t, waitFor, "open node connected", func() bool { return connected(a, b) })

	other := mustID(t, testConfig(t)) // listed, never started
	if closed := a.SetAllowPeers([]peer.ID{other}); len(closed) != 1 || closed[0] != b.ID() {
		t.Fatalf("SetAllowPeers closed %v, want [%s]", closed, b.ID())
	}
	eventually(t, waitFor, "b's redials refused", func() bool { return a.Refused() >= 1 && !connected(a, b) })

	if closed := a.SetAllowPeers(nil); len(closed) != 0 {
		t.Fatalf("opening closed %v", closed)
	}
	eventually(t, waitFor, "reconnected once open", func() bool { return connected(a, b) })
}
