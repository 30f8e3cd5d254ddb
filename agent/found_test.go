package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	madns "github.com/multiformats/go-multiaddr-dns"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// foundBy returns how agent a says it found every member, by node id,
// once it knows want members and how it found each other one.
func foundBy(t *testing.T, a *Agent, want int) map[string]string {
	t.Helper()
	var found map[string]string
	eventually(t, 20*time.Second, "members and how they were found", func() error {
		ms, err := a.Members(context.Background())
		if err != nil {
			return err
		}
		found = make(map[string]string)
		for _, m := range ms {
			if !m.Self && m.Found == "" {
				return fmt.Errorf("%s: no found for %s", shortID(a.ID()), shortID(m.Node))
			}
			found[m.Node] = m.Found
		}
		if len(found) != want {
			return fmt.Errorf("%s knows %d members, want %d", shortID(a.ID()), len(found), want)
		}
		return nil
	})
	return found
}

// TestMembersShowHowFound: A starts alone; B joins it by a /dnsaddr name
// (an injected resolver), C by its IP address. Each member shows how each
// agent first found it.
func TestMembersShowHowFound(t *testing.T) {
	a := startAlone(t, config.LocalConfig(t.TempDir()), Options{})
	dns := &madns.MockResolver{TXT: map[string][]string{}}
	for _, s := range a.Addrs() {
		dns.TXT["_dnsaddr.rumor.test"] = append(dns.TXT["_dnsaddr.rumor.test"], "dnsaddr="+s)
	}
	res, err := madns.NewResolver(madns.WithDefaultResolver(dns))
	if err != nil {
		t.Fatal(err)
	}
	cfgB := config.LocalConfig(t.TempDir())
	cfgB.Bootstrap = []string{"/dnsaddr/rumor.test"}
	b := startAlone(t, cfgB, Options{Resolver: res})
	c := joinAgent(t, []*Agent{a}, nil, Options{})

	onA, onB, onC := foundBy(t, a, 3), foundBy(t, b, 3), foundBy(t, c, 3)
	for _, tc := range []struct {
		on, of string
		got    string
		want   []string
	}{
		{"A", "A", onA[a.ID()], []string{""}},
		{"A", "B", onA[b.ID()], []string{"inbound"}},
		{"A", "C", onA[c.ID()], []string{"inbound"}},
		{"B", "A", onB[a.ID()], []string{"dns"}},
		{"C", "A", onC[a.ID()], []string{"join"}},
		// B and C hear of each other from A; whichever dials first is
		// the other's inbound peer.
		{"B", "C", onB[c.ID()], []string{"gossip", "inbound"}},
		{"C", "B", onC[b.ID()], []string{"gossip", "inbound"}},
	} {
		if !slices.Contains(tc.want, tc.got) {
			t.Errorf("%s found %s by %q, want one of %q", tc.on, tc.of, tc.got, tc.want)
		}
	}
	if onB[c.ID()] == "inbound" && onC[b.ID()] == "inbound" {
		t.Error("B and C both say the other dialled first")
	}
}

// TestMDNSAgentsFindEachOther: two agents with mdns on and no join list
// find each other on the local network by multicast DNS. A third agent of
// the cluster, which their allow_peers leaves out, is heard of by them,
// ignored and counted.
func TestMDNSAgentsFindEachOther(t *testing.T) {
	cluster := fmt.Sprintf("mdns-%x", rand.Uint64()) // apart from any other test's agents
	dirs, ids := presetIdentities(t, 2)
	var as []*Agent
	for i := range 3 {
		cfg := config.LocalConfig(t.TempDir())
		cfg.Cluster, cfg.MDNS = cluster, true
		if i < 2 {
			cfg.DataDir, cfg.AllowPeers = dirs[i], ids
		}
		as = append(as, startAlone(t, cfg, Options{}))
	}
	a, b, outsider := as[0], as[1], as[2]
	onA, onB := foundBy(t, a, 2), foundBy(t, b, 2)
	ways := []string{onA[b.ID()], onB[a.ID()]}
	if !slices.Contains(ways, "mdns") || slices.ContainsFunc(ways, func(s string) bool { return s != "mdns" && s != "inbound" }) {
		t.Errorf("A found B by %q, B found A by %q: want mdns (one may be inbound)", ways[0], ways[1])
	}
	eventually(t, 20*time.Second, "A connected to B, and the outsider ignored", func() error {
		ms, err := a.Members(context.Background())
		if err != nil || !slices.ContainsFunc(ms, func(m rpc.Member) bool { return m.Node == b.ID() && m.Connected }) {
			return fmt.Errorf("not connected yet: %v", err)
		}
		if n := a.snapshot().MDNSIgnored; n == 0 {
			return errors.New("the outsider not counted yet")
		}
		return nil
	})
	out, err := peer.Decode(outsider.ID())
	if err != nil {
		t.Fatal(err)
	}
	if f := a.Gossip().Found(out); f != "" || slices.Contains(a.Gossip().Peers(), out) {
		t.Errorf("A took up the outsider its allow_peers leaves out (found by %q)", f)
	}
}
