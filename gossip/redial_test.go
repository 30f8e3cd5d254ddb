package gossip

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/gossip/redial"
)

// connIDs returns the IDs of a's connections to b.
func connIDs(a, b *Node) map[string]bool {
	ids := make(map[string]bool)
	for _, c := range a.h.Network().ConnsToPeer(b.ID()) {
		ids[c.ID()] = true
	}
	return ids
}

// TestRedialAfterConnectionClosed cuts B's connection to its bootstrap peer
// A, from either side, and checks that B dials again by itself.
func TestRedialAfterConnectionClosed(t *testing.T) {
	a, _ := startNode(t, testConfig(t))
	cfg := testConfig(t)
	cfg.Bootstrap = a.Addrs()
	b, _ := startNode(t, cfg)
	eventually(t, waitFor, "B and A connected", func() bool { return connected(b, a) && connected(a, b) })

	for _, side := range []struct {
		name     string
		from, to *Node
	}{{"B closes", b, a}, {"A closes", a, b}} {
		old := connIDs(b, a)
		if err := side.from.h.Network().ClosePeer(side.to.ID()); err != nil {
			t.Fatalf("%s: ClosePeer: %v", side.name, err)
		}
		eventually(t, waitFor, side.name+": B reconnected to A on a new connection", func() bool {
			ids := connIDs(b, a)
			for id := range ids {
				if old[id] {
					return false
				}
			}
			return len(ids) > 0 && connected(a, b)
		})
	}
}

// TestRedialAfterRestart closes A and starts a new node with A's identity
// and address: B, which only knows A from its bootstrap list, reconnects by
// itself and messages flow both ways again.
func TestRedialAfterRestart(t *testing.T) {
	cfgA := testConfig(t)
	a, err := New(context.Background(), cfgA)
	if err != nil {
		t.Fatal(err)
	}
	addrs := a.Addrs()
	cfgB := testConfig(t)
	cfgB.Bootstrap = addrs
	b, colB := startNode(t, cfgB)
	eventually(t, waitFor, "B and A connected", func() bool { return connected(b, a) && connected(a, b) })

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, "B to see A gone", func() bool {
		return b.h.Network().Connectedness(a.ID()) != network.Connected
	})

	// Same identity, same address (the port A was given).
	cfgA.Listen = nil
	for _, addr := range addrs {
		cfgA.Listen = append(cfgA.Listen, strings.TrimSuffix(addr, "/p2p/"+a.ID().String()))
	}
	cfgA.Rand = rand.New(rand.NewPCG(3, 4))
	a2, colA2 := startNode(t, cfgA)
	if a2.ID() != a.ID() {
		t.Fatalf("restarted node has ID %s, want %s", a2.ID(), a.ID())
	}
	eventually(t, waitFor, "B to reconnect to the restarted A", func() bool { return connected(a2, b) })
	warmUp(t, "svc", []*Node{a2, b}, []*collector{colA2, colB})
}

// TestAddPeer checks that a peer given to AddPeer is dialled and kept
// connected, and that adding it again is harmless.
func TestAddPeer(t *testing.T) {
	a, _ := startNode(t, testConfig(t))
	b, _ := startNode(t, testConfig(t))
	ai := peer.AddrInfo{ID: a.ID(), Addrs: a.h.Addrs()}
	b.AddPeer(ai)
	b.AddPeer(ai)
	b.AddPeer(ai)
	// Both sides must have the connection before A can close it.
	eventually(t, waitFor, "B and A connected", func() bool { return connected(b, a) && connected(a, b) })
	if got := b.Peers(); len(got) != 1 || got[0] != a.ID() {
		t.Errorf("B.Peers() = %v, want [%s]", got, a.ID())
	}
	old := connIDs(b, a)
	if err := a.h.Network().ClosePeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, "B to redial A", func() bool {
		ids := connIDs(b, a)
		for id := range ids {
			if old[id] {
				return false
			}
		}
		return len(ids) > 0
	})
	b.AddPeer(ai) // still idempotent while connected
	if n := len(b.h.Network().ConnsToPeer(a.ID())); n != 1 {
		t.Errorf("B has %d connections to A, want 1", n)
	}
}

// TestUnreachableBootstrapDoesNotBlock starts a node whose bootstrap peer
// does not exist: New returns at once and Close stops the redials.
func TestUnreachableBootstrapDoesNotBlock(t *testing.T) {
	ghost := testConfig(t)
	cfg := testConfig(t)
	id := mustID(t, ghost)
	cfg.Bootstrap = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/1/p2p/%s", id)}
	start := time.Now()
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("New took %v", d)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoGoroutines(t)
}

// TestMaxPeersKeepsRankedPeersAndStillSpreads gives every node of a cluster
// every other node's address with MaxPeers 2: each node dials its two
// best-ranked peers (and its bootstrap peer), not all nine, keeps the
// ranked ones connected when a connection is cut, and a message from any
// node still reaches every other over the sparse graph.
func TestMaxPeersKeepsRankedPeersAndStillSpreads(t *testing.T) {
	const size, maxPeers = 10, 2
	nodes := make([]*Node, size)
	cols := make([]*collector, size)
	for i := range size {
		cfg := testConfig(t, "svc")
		cfg.MaxPeers = maxPeers
		if i > 0 {
			cfg.Bootstrap = nodes[0].Addrs()
		}
		nodes[i], cols[i] = startNode(t, cfg)
	}
	for _, n := range nodes {
		for _, o := range nodes {
			if o != n {
				n.AddPeer(peer.AddrInfo{ID: o.ID(), Addrs: o.h.Addrs()})
			}
		}
	}
	// kept returns the peers node i ranks first, as redial.PreferredPeers names
	// them (what benchmarks rely on to connect hosts as nodes would be).
	byID := make(map[peer.ID]*Node, size)
	ids := make([]peer.ID, 0, size)
	for _, n := range nodes {
		byID[n.ID()] = n
		ids = append(ids, n.ID())
	}
	kept := func(i int) []*Node {
		var out []*Node
		for _, id := range redial.PreferredPeers(nodes[i].ID(), ids, maxPeers) {
			out = append(out, byID[id])
		}
		return out
	}
	outbound := func(n *Node) int {
		c := 0
		for _, conn := range n.h.Network().Conns() {
			if conn.Stat().Direction == network.DirOutbound {
				c++
			}
		}
		return c
	}
	conns := func() string {
		var b strings.Builder
		for i, n := range nodes {
			fmt.Fprintf(&b, "node %d: %d conns, %d outbound\n", i, len(n.h.Network().Conns()), outbound(n))
		}
		return b.String()
	}
	eventuallyDiag(t, waitFor, "every node connected to its ranked peers", func() bool {
		for i, n := range nodes {
			for _, k := range kept(i) {
				if !connected(n, k) {
					return false
				}
			}
		}
		return true
	}, conns)
	// Peers dialled while they ranked first among those known so far are
	// let go again: only the ranked ones stay dialled.
	eventuallyDiag(t, waitFor, "every node's own dials down to its ranked peers", func() bool {
		for _, n := range nodes {
			if outbound(n) > maxPeers {
				return false
			}
		}
		return true
	}, conns)

	// A cut link to a ranked peer comes back.
	victim := kept(3)[0]
	if err := nodes[3].h.Network().ClosePeer(victim.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, "node 3 redials its ranked peer", func() bool { return connected(nodes[3], victim) })

	ctx := context.Background()
	round := 0
	eventually(t, 3*waitFor, "every node's message reaches every other node", func() bool {
		// Republish until the meshes have formed over the sparse graph (a
		// new payload each time: a message is named by its content, and
		// one seen already is dropped); the collectors keep every delivery.
		round++
		for i, n := range nodes {
			if err := n.Publish(ctx, "svc", []byte(fmt.Sprintf("from %d #%d", i, round))); err != nil {
				t.Fatal(err)
			}
		}
		for j, c := range cols {
			for i, n := range nodes {
				if i == j {
					continue
				}
				got := false
				for r := 1; r <= round && !got; r++ {
					got = c.has(n.ID(), fmt.Sprintf("from %d #%d", i, r))
				}
				if !got {
					return false
				}
			}
		}
		return true
	})
}

// A dial that times out can still complete in the swarm, so the redialer
// first sees that connection as connected rather than as a dial's result.
// If it is a dial beyond max_peers it must still be let go once past the
// young age, with no further event to wake the redialer.
func TestMaxPeersTrimsADialThatCompletedOutsideTheRedialer(t *testing.T) {
	cfg := testConfig(t, "svc")
	cfg.MaxPeers = 1
	a, _ := startNode(t, cfg)
	b, _ := startNode(t, testConfig(t, "svc"))
	c, _ := startNode(t, testConfig(t, "svc"))
	keep, extra := b, c
	if redial.PreferredPeers(a.ID(), []peer.ID{b.ID(), c.ID()}, 1)[0] == c.ID() {
		keep, extra = c, b
	}
	a.AddPeer(peer.AddrInfo{ID: keep.ID(), Addrs: keep.h.Addrs()})
	eventually(t, waitFor, "a connected to its ranked peer", func() bool { return connected(a, keep) })
	a.AddPeer(peer.AddrInfo{ID: extra.ID(), Addrs: extra.h.Addrs()})
	// The late completion of a dial the redialer gave up on.
	if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: extra.ID(), Addrs: extra.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, "a's dial to the peer beyond max_peers closed", func() bool {
		for _, conn := range a.h.Network().ConnsToPeer(extra.ID()) {
			if conn.Stat().Direction == network.DirOutbound {
				return false
			}
		}
		return true
	})
	if !connected(a, keep) {
		t.Error("a lost its ranked peer")
	}
}

// TestRefusedPeerIsNotHammered: B's allowlist leaves A out, and A joins
// through B, so B's gater closes each of A's connections right after the
// handshake. A stream that A opens on its own once a connection has closed
// (as an anti-entropy exchange queued for that connection would) must not
// dial B again, and A's redialer must back off: B sees a handful of
// connection attempts in a few seconds, not hundreds. Each side says so
// once. When B admits A and a connection holds, A says that too.
func TestRefusedPeerIsNotHammered(t *testing.T) {
	const (
		window      = 3 * time.Second
		maxAttempts = 12 // backoff from 20 ms doubling: 9 dials fit in 5 s at most
	)
	logA, logB := newLogRecorder(), newLogRecorder()
	bCfg := testConfig(t)
	bCfg.AllowPeers = []peer.ID{mustID(t, testConfig(t))}
	bCfg.Logger = logB.logger()
	b, _ := startNode(t, bCfg)
	aCfg := testConfig(t)
	aCfg.Bootstrap = []string{addrOf(t, b, "tcp")}
	aCfg.Logger = logA.logger()
	a, _ := startNode(t, aCfg)

	ctx, cancel := context.WithCancel(context.Background())
	var openers sync.WaitGroup
	opener := &network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() != b.ID() {
			return
		}
		openers.Go(func() {
			if s, err := a.nd.NewStream(ctx, b.ID(), "/rumor-test/after-close/1"); err == nil {
				_ = s.Reset()
			}
		})
	}}
	a.h.Network().Notify(opener)
	t.Cleanup(func() {
		a.h.Network().StopNotify(opener)
		cancel()
		openers.Wait()
	})

	eventually(t, waitFor, "B refuses A", func() bool { return b.Refused() > 0 })
	before, linesA := b.Refused(), len(logA.lines())
	time.Sleep(window) // a measurement window, not a wait for an event
	attempts, lines := b.Refused()-before, logA.lines()[linesA:]
	t.Logf("B refused A %d times in %v; A logged %d lines at info and above: %q", attempts, window, len(lines), lines)
	if attempts > maxAttempts {
		t.Errorf("B refused %d connections of A in %v, want at most %d", attempts, window, maxAttempts)
	}
	if len(lines) > 3 {
		// Its warning, and the first refused connection opening and
		// closing, if that falls in the window.
		t.Errorf("A logged %d lines in %v, want at most 3", len(lines), window)
	}
	if n := logA.count("gossip: peer keeps refusing our connections: we are probably not in its allow_peers"); n != 1 {
		t.Errorf("A warned %d times that B refuses it, want once", n)
	}
	if n, all := logB.count("gossip: refused connection: peer "+a.ID().String()+" is not in allow_peers"), logB.count("refused"); n != 1 || all != 1 {
		t.Errorf("B logged the refusal of A %d times (%d refusal lines), want once", n, all)
	}

	// A's next redial may be seconds away; B dials A instead, and A's
	// redialer sees the connection hold.
	b.SetAllowPeers(nil)
	b.AddPeer(peer.AddrInfo{ID: a.ID(), Addrs: a.h.Addrs()})
	eventually(t, waitFor, "A connected to B once admitted, and says so", func() bool {
		return connected(a, b) && logA.count("gossip: peer admits our connections again") == 1
	})
}
