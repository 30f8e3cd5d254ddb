package gossip

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// connIDs returns the IDs of a's connections to b.
func connIDs(a, b *Node) map[string]bool {
	ids := make(map[string]bool)
	for _, c := range a.Host().Network().ConnsToPeer(b.ID()) {
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
		if err := side.from.Host().Network().ClosePeer(side.to.ID()); err != nil {
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
		return b.Host().Network().Connectedness(a.ID()) != network.Connected
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
	ai := peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}
	b.AddPeer(ai)
	b.AddPeer(ai)
	b.AddPeer(ai)
	// Both sides must have the connection before A can close it.
	eventually(t, waitFor, "B and A connected", func() bool { return connected(b, a) && connected(a, b) })
	if got := b.Peers(); len(got) != 1 || got[0] != a.ID() {
		t.Errorf("B.Peers() = %v, want [%s]", got, a.ID())
	}
	old := connIDs(b, a)
	if err := a.Host().Network().ClosePeer(b.ID()); err != nil {
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
	if n := len(b.Host().Network().ConnsToPeer(a.ID())); n != 1 {
		t.Errorf("B has %d connections to A, want 1", n)
	}
}

// TestRedialDelay checks the backoff schedule: none after no failure, then
// doubling from RedialMin to RedialMax with jitter in [d/2, d].
func TestRedialDelay(t *testing.T) {
	r := &redialer{min: 100 * time.Millisecond, max: 1 * time.Second, rnd: rand.New(rand.NewPCG(5, 6))}
	if d := r.delay(0); d != 0 {
		t.Errorf("delay(0) = %v, want 0", d)
	}
	for failures, ceiling := range map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 50: time.Second, 1000: time.Second,
	} {
		for range 100 {
			if d := r.delay(failures); d < ceiling/2 || d > ceiling {
				t.Fatalf("delay(%d) = %v, want in [%v, %v]", failures, d, ceiling/2, ceiling)
			}
		}
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
