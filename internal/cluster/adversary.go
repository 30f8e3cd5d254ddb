package cluster

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/antientropy"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/digest"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/internal/forge"
	"github.com/rumor-dev/rumor/wire"
)

// clusterName is the name of every simulated cluster (the default).
var clusterName = defaultConfig.Cluster

// Adversary is a member of the cluster that runs no agent: a gossip node
// with its own key that validates nothing, publishes whatever it likes and
// offers whatever it likes in anti-entropy exchanges.
type Adversary struct {
	c      *Cluster
	node   *gossip.Node
	signer *identity.Signer
	priv   ed25519.PrivateKey
	seq    int
}

// NewAdversary joins an adversary (the k-th) to the cluster, connected to
// every live agent, and returns once it is.
func (c *Cluster) NewAdversary(k int) *Adversary {
	c.t.Helper()
	key, _, err := identity.Generate()
	if err != nil {
		c.t.Fatal(err)
	}
	signer, err := identity.NewSigner(key, clusterName)
	if err != nil {
		c.t.Fatal(err)
	}
	var join []string
	live := c.Live()
	for _, n := range live {
		join = append(join, n.Agent().Addrs()...)
	}
	topics, lane := agent.GossipTopics()
	cfg := gossip.Config{
		Cluster: clusterName, Topics: topics, Lane: lane, Bootstrap: join, Identity: key,
		Validate: func(string, []byte, peer.ID, bool) error { return nil },
	}
	if c.net != nil {
		ip := IP(10_000 + k)
		cfg.Listen, cfg.Transports = []string{"/ip4/" + ip + "/udp/8000/quic-v1"}, c.net.Transports(ip)
	} else {
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	n, err := gossip.New(context.Background(), cfg)
	if err != nil {
		c.t.Fatalf("cluster: adversary: %v", err)
	}
	c.t.Cleanup(func() { _ = n.Close() })
	// A forged publication goes only to the peers the adversary knows
	// subscribe (agents refuse it and do not relay it): wait until every
	// agent's subscriptions have arrived, not just its connection.
	c.Eventually(formTimeout(len(live)), "adversary connected to every agent and knows its topics", func() error {
		for _, l := range live {
			p, _ := peer.Decode(l.ID())
			if !n.Connected(p) {
				return fmt.Errorf("not connected to %s", l.Name())
			}
			for _, topic := range topics {
				if !slices.Contains(n.TopicPeers(topic), p) {
					return fmt.Errorf("%s's subscription to %s not yet known", l.Name(), topic)
				}
			}
		}
		return nil
	})
	return &Adversary{c: c, node: n, signer: signer, priv: forge.Ed25519(key)}
}

// Forge signs d, a write in any node's name, with the adversary's own key,
// as one cert: what a member can make of another's write.
func (m *Adversary) Forge(d crdt.Delta) crdt.Delta {
	return forge.Cert(m.priv, clusterName, []crdt.Delta{d})[0]
}

// Stamp returns a fresh stamp in node's name, from the adversary's clock.
func (m *Adversary) Stamp(node string) crdt.Stamp {
	m.seq++
	return crdt.Stamp{HLC: crdt.MakeHLC(time.Now().UnixMilli(), uint16(m.seq)), Node: node}
}

// Ways an adversary sends deltas.
const (
	ViaGossip = "gossip" // published on the namespace's topic
	ViaAE     = "ae"     // offered in an anti-entropy exchange
	ViaKey    = "key"    // offered in a key exchange, as a kernel claimant does
)

// Send delivers ds to every live agent by the way via names.
func (m *Adversary) Send(ds []crdt.Delta, via string) error {
	ctx := context.Background()
	switch via {
	case ViaGossip:
		for _, x := range ds {
			// A replay alone is the very message its writer sent, which
			// GossipSub drops unseen as a duplicate: sent with a write
			// of the adversary's own, it is a new message, and judged.
			b, err := wire.Encode([]crdt.Delta{x, m.own(x)})
			if err != nil {
				return err
			}
			if err := m.node.Publish(ctx, string(crdt.NamespaceOf(x.Key)), b); err != nil {
				return err
			}
		}
	case ViaAE:
		st := offer{}
		for _, x := range ds {
			st = append(st, crdt.Entry{Key: x.Key, Deltas: []crdt.Delta{x}})
		}
		for _, n := range m.c.Live() {
			if err := m.exchange(n, antientropy.Protocol(clusterName), func(rw io.ReadWriter) error {
				_, err := antientropy.Initiate(rw, st, 0)
				return err
			}); err != nil {
				return err
			}
		}
	case ViaKey:
		// One key exchange per delta and agent.
		for _, x := range ds {
			st := offer{{Key: x.Key, Deltas: []crdt.Delta{x}}}
			for _, n := range m.c.Live() {
				if err := m.exchange(n, antientropy.KeyProtocol(clusterName), func(rw io.ReadWriter) error {
					_, err := antientropy.PushKey(rw, st, x.Key)
					return err
				}); err != nil {
					return err
				}
			}
		}
	default:
		return fmt.Errorf("cluster: send via %q: want %s, %s or %s", via, ViaGossip, ViaAE, ViaKey)
	}
	return nil
}

// exchange runs f on a stream of proto to n's agent.
func (m *Adversary) exchange(n *Node, proto string, f func(io.ReadWriter) error) error {
	p, _ := peer.Decode(n.ID())
	str, err := m.node.OpenStream(context.Background(), p, proto)
	if err != nil {
		return fmt.Errorf("open %s to %s: %w", proto, n.Name(), err)
	}
	defer str.Close()
	if err := f(str); err != nil {
		return fmt.Errorf("%s with %s: %w", proto, n.Name(), err)
	}
	return nil
}

// own returns a harmless write of the adversary's own in x's namespace
// (refused or not, it makes the message new).
func (m *Adversary) own(x crdt.Delta) crdt.Delta {
	m.seq++
	d := crdt.Delta{Key: string(crdt.NamespaceOf(x.Key)) + "/adversary/" + fmt.Sprint(m.seq), Op: crdt.OpPut,
		Stamp: crdt.Stamp{HLC: crdt.MakeHLC(time.Now().UnixMilli(), uint16(m.seq)), Node: m.signer.ID()}}
	switch crdt.NamespaceOf(x.Key) {
	case crdt.NSService:
		d.Value = crdt.Encode(crdt.ServiceValue{Status: "up"})
	case crdt.NSNode:
		d.Key = crdt.NodeKey(m.signer.ID())
	case crdt.NSKernel:
		d.Key, d.Op, d.Epoch, d.Expiry = "kernel/adversary-"+fmt.Sprint(m.seq), crdt.OpClaim, 1, time.Now().Add(time.Minute).UnixMilli()
	case crdt.NSTask:
		d.Key, d.Task, d.Value = "task/adversary-"+fmt.Sprint(m.seq), crdt.TaskQueued, crdt.Encode(crdt.TaskValue{Owner: m.signer.ID()})
	case crdt.NSWait:
		d.Key, d.Expiry = crdt.WaitKey("adversary", m.signer.ID(), fmt.Sprint(m.seq)), time.Now().Add(time.Minute).UnixMilli()
		d.Value = crdt.Encode(crdt.WaitValue{SinceMS: time.Now().UnixMilli()})
	}
	ds := []crdt.Delta{d}
	if err := m.signer.Sign(ds); err != nil {
		panic(err) // d names the signer
	}
	return ds[0]
}

// offer is an anti-entropy state that offers fixed entries and takes
// nothing.
type offer []crdt.Entry

func (o offer) Entries(prefix string) []crdt.Entry {
	var out []crdt.Entry
	for _, e := range o {
		if strings.HasPrefix(e.Key, prefix) {
			out = append(out, e)
		}
	}
	return out
}
func (offer) Merge([]crdt.Delta) int { return 0 }

// Digest digests the offer whole, whatever the cutoff.
func (o offer) Digest(crdt.HLC) digest.Digest { return digest.Of(o) }
