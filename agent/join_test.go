package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/rpc"
)

// presetIdentities creates n data dirs, each holding a fresh identity key,
// so that a test knows the node ids before the agents start.
func presetIdentities(t *testing.T, n int) (dirs, ids []string) {
	t.Helper()
	for range n {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := crypto.MarshalPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := writeNewFile(filepath.Join(dir, identity.File), b); err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(k)
		dirs, ids = append(dirs, dir), append(ids, id.String())
	}
	return dirs, ids
}

// withIdentities returns a startCluster config modifier that gives the
// agents, in start order, the data dirs of presetIdentities.
func withIdentities(dirs []string, mod func(*config.Config)) func(*config.Config) {
	next := 0
	return func(c *config.Config) {
		c.DataDir = dirs[next]
		next++
		if mod != nil {
			mod(c)
		}
	}
}

// startOutsider starts an agent that is not part of the cluster, which
// tries to join through every member, redialling fast.
func startOutsider(t *testing.T, members []*Agent, mod func(*config.Config), opts Options) *Agent {
	t.Helper()
	cfg := config.LocalConfig(t.TempDir())
	for _, m := range members {
		cfg.Bootstrap = append(cfg.Bootstrap, m.Addrs()...)
	}
	cfg.RedialMin, cfg.RedialMax = 20*time.Millisecond, 100*time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	opts.Rand, opts.NoSocket = rand.New(rand.NewPCG(99, 7)), true
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// probeGater admits everything and records what it saw: inbound
// connections accepted by the transport, the peers that completed a
// handshake, and our own dial attempts.
type probeGater struct {
	mu      sync.Mutex
	accepts int
	dials   int
	secured map[peer.ID]bool
}

func (g *probeGater) InterceptPeerDial(peer.ID) bool { return true }
func (g *probeGater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dials++
	return true
}
func (g *probeGater) InterceptAccept(network.ConnMultiaddrs) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.accepts++
	return true
}
func (g *probeGater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.secured == nil {
		g.secured = make(map[peer.ID]bool)
	}
	g.secured[p] = true
	return true
}
func (g *probeGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

func (g *probeGater) counts() (accepts, dials int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.accepts, g.dials
}

func (g *probeGater) handshook(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.secured[p]
}

// assertKeptOut checks that outsiders and members never exchanged state:
// each side lacks the other's writes and heartbeats, and no member is
// connected to an outsider.
func assertKeptOut(t *testing.T, members, outsiders []*Agent, memberKey, outsiderKey string) {
	t.Helper()
	for _, m := range members {
		for _, o := range outsiders {
			if m.Gossip().Connected(o.Gossip().ID()) {
				t.Errorf("member %s is connected to outsider %s", shortID(m.ID()), shortID(o.ID()))
			}
			for _, k := range []string{outsiderKey, crdt.NodeKey(o.ID())} {
				if _, ok := m.Store().Get(k); ok {
					t.Errorf("member %s holds the outsider's %s", shortID(m.ID()), k)
				}
			}
			for _, k := range []string{memberKey, crdt.NodeKey(m.ID())} {
				if _, ok := o.Store().Get(k); ok {
					t.Errorf("outsider %s holds the member's %s", shortID(o.ID()), k)
				}
			}
		}
	}
	for _, o := range outsiders {
		if got := o.Store().List("node/"); len(got) != 1 {
			t.Errorf("outsider %s knows %d nodes, want only itself", shortID(o.ID()), len(got))
		}
	}
}

func TestAllowPeersKeepsOutsidersOut(t *testing.T) {
	ctx := context.Background()
	dirs, ids := presetIdentities(t, 3)
	as := startCluster(t, 3, withIdentities(dirs, func(c *config.Config) { c.AllowPeers = ids }))
	out := startOutsider(t, as, nil, Options{})
	if _, err := out.ServiceSet(ctx, "web", "outsider", rpc.ServiceSet{Status: "up"}); err != nil {
		t.Fatal(err)
	}
	if _, err := as[1].BlacklistAdd(ctx, "fraud", "u1", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	// Every member refuses the outsider's redials, several times after
	// both writes; meanwhile the member's write reaches every member.
	after := make([]uint64, len(as))
	for i, a := range as {
		after[i] = a.Gossip().Refused()
	}
	eventually(t, 15*time.Second, "members refuse the outsider again after the writes", func() error {
		for i, a := range as {
			if got := a.Gossip().Refused(); got < after[i]+3 {
				return fmt.Errorf("%s refused %d times, %d before the writes", shortID(a.ID()), got, after[i])
			}
		}
		return nil
	})
	eventually(t, 10*time.Second, "the member's write reaches every member", func() error {
		for _, a := range as {
			if _, ok := a.Store().Get("bl/fraud/u1"); !ok {
				return fmt.Errorf("%s lacks it", shortID(a.ID()))
			}
		}
		return nil
	})
	assertKeptOut(t, as, []*Agent{out}, "bl/fraud/u1", "svc/web/outsider")
	for _, a := range as {
		st, err := a.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: peers_refused %d, peers %d", shortID(a.ID()), st.PeersRefused, st.Peers)
		if st.PeersRefused == 0 || st.Peers != len(as)-1 {
			t.Errorf("%s status: peers_refused %d, peers %d; want > 0 and %d", shortID(a.ID()), st.PeersRefused, st.Peers, len(as)-1)
		}
	}
	if got := out.Gossip().Refused(); got != 0 {
		t.Errorf("the outsider, with no allowlist, refused %d connections", got)
	}
}

func TestPSKKeepsOtherNetworksOut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key, wrong := filepath.Join(dir, "cluster.psk"), filepath.Join(dir, "other.psk")
	for _, p := range []string{key, wrong} {
		if err := writeNewFile(p, identity.NewPSKFile()); err != nil {
			t.Fatal(err)
		}
	}
	gaters := []*probeGater{{}, {}}
	as := startClusterOpts(t, 2, func(c *config.Config) { c.PSKFile = key }, func(i int) Options {
		return Options{HostOptions: []libp2p.Option{libp2p.ConnectionGater(gaters[i])}}
	})
	var outsiders []*Agent
	var outGaters []*probeGater
	for _, psk := range []string{wrong, ""} { // another key; no key at all
		g := new(probeGater)
		outsiders = append(outsiders, startOutsider(t, as, func(c *config.Config) { c.PSKFile = psk }, Options{
			HostOptions: []libp2p.Option{libp2p.ConnectionGater(g)},
		}))
		outGaters = append(outGaters, g)
	}
	for i, o := range outsiders {
		if _, err := o.ServiceSet(ctx, "web", "outsider", rpc.ServiceSet{Status: "up"}); err != nil {
			t.Fatalf("outsider %d: %v", i, err)
		}
	}
	if _, err := as[0].BlacklistAdd(ctx, "fraud", "u1", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	dialsAfter := make([]int, len(outGaters))
	for i, g := range outGaters {
		_, dialsAfter[i] = g.counts()
	}
	eventually(t, 15*time.Second, "outsiders dial the members again after the writes, and members see the connections", func() error {
		for i, g := range outGaters {
			if _, dials := g.counts(); dials < dialsAfter[i]+2*len(as) {
				return fmt.Errorf("outsider %d dialled %d times, %d before the writes", i, dials, dialsAfter[i])
			}
		}
		for i, g := range gaters {
			if accepts, _ := g.counts(); accepts < 2 {
				return fmt.Errorf("member %d accepted %d connections at the transport", i, accepts)
			}
		}
		return nil
	})
	eventually(t, 10*time.Second, "the member's write reaches the other member", func() error {
		if _, ok := as[1].Store().Get("bl/fraud/u1"); !ok {
			return errors.New("missing")
		}
		return nil
	})
	assertKeptOut(t, as, outsiders, "bl/fraud/u1", "svc/web/outsider")
	// Without the key no handshake completes, so no member ever learnt an
	// outsider's peer id, and no outsider a member's.
	for i, g := range gaters {
		for _, o := range outsiders {
			if g.handshook(o.Gossip().ID()) {
				t.Errorf("member %d completed a handshake with outsider %s", i, shortID(o.ID()))
			}
		}
	}
	for i, g := range gaters {
		accepts, _ := g.counts()
		t.Logf("member %d: %d inbound connections accepted by the transport, none completed a handshake with an outsider", i, accepts)
	}
	for i, g := range outGaters {
		_, dials := g.counts()
		t.Logf("outsider %d: %d dial attempts, %d peers", i, dials, len(outsiders[i].Gossip().Peers()))
		for _, m := range as {
			if g.handshook(m.Gossip().ID()) {
				t.Errorf("outsider %d completed a handshake with member %s", i, shortID(m.ID()))
			}
		}
		if n := len(outsiders[i].Gossip().Peers()); n != 0 {
			t.Errorf("outsider %d has %d peers", i, n)
		}
	}
}

func TestJoinControlConfigErrors(t *testing.T) {
	dir := t.TempDir()
	psk := filepath.Join(dir, "psk")
	if err := writeNewFile(psk, identity.NewPSKFile()); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, ids := presetIdentities(t, 1)
	for _, tc := range []struct {
		name string
		mod  func(*config.Config)
		want []string // all in the error; none: New succeeds
	}{
		{"psk with quic", func(c *config.Config) {
			c.PSKFile = psk
			c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		}, []string{"psk_file", "quic-v1", "covers TCP only"}},
		{"psk with the default listen addresses", func(c *config.Config) { c.PSKFile = psk; c.Listen = config.DefaultConfig().Listen }, []string{"psk_file", "QUIC"}},
		{"psk on tcp", func(c *config.Config) { c.PSKFile = psk }, nil},
		{"psk file missing", func(c *config.Config) { c.PSKFile = filepath.Join(dir, "nope") }, []string{"psk_file", "no such file"}},
		{"psk file garbage", func(c *config.Config) { c.PSKFile = garbage }, []string{"psk_file", "not a private-network key", "rumor keygen --psk"}},
		{"bad allow_peers", func(c *config.Config) { c.AllowPeers = []string{ids[0], "bogus"} }, []string{"allow_peers", `"bogus"`}},
		{"bad bl_writers", func(c *config.Config) { c.BLWriters = []string{"x"} }, []string{"bl_writers", `"x"`}},
		{"good lists", func(c *config.Config) { c.AllowPeers, c.BLWriters = ids, ids }, nil},
	} {
		cfg := config.LocalConfig(t.TempDir())
		tc.mod(&cfg)
		_, err := New(cfg, Options{})
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, w)
			}
		}
	}
}

func writeNewFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}
