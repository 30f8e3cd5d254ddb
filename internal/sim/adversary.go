package sim

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/antientropy"
	"github.com/rumor-dev/rumor/crdt"
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
	c        *Cluster
	node     *gossip.Node
	signer   *identity.Signer
	priv     ed25519.PrivateKey
	seq      int
	captured []crdt.Delta
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
	var topics []string
	for _, ns := range crdt.Namespaces {
		topics = append(topics, string(ns))
	}
	cfg := gossip.Config{
		Cluster: clusterName, Topics: topics, Bootstrap: join, Identity: key,
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
		c.t.Fatalf("sim: adversary: %v", err)
	}
	c.t.Cleanup(func() { _ = n.Close() })
	c.Eventually(formTimeout(len(live)), "adversary connected to every agent", func() error {
		for _, l := range live {
			p, _ := peer.Decode(l.ID())
			if !n.Connected(p) {
				return fmt.Errorf("not connected to %s", l.Name())
			}
		}
		return nil
	})
	return &Adversary{c: c, node: n, signer: signer, priv: forge.Ed25519(key)}
}

// forge makes a write in another node's name, signed with the adversary's
// own key, and sends it.
func (m *Adversary) forge(d *datadriven.TestData, s *Script) string {
	victim := s.c.Node(s.val(d, "as", ""))
	if victim == nil {
		d.Fatalf(s.t, "forge: as=<node> missing or unknown")
	}
	key := s.val(d, "key", "")
	if crdt.NamespaceOf(key) == "" {
		d.Fatalf(s.t, "forge: key=%q is not a rumor key", key)
	}
	m.seq++
	delta := crdt.Delta{Key: key, Stamp: crdt.Stamp{HLC: crdt.MakeHLC(time.Now().UnixMilli(), uint16(m.seq)), Node: victim.ID()}}
	switch op := s.val(d, "op", "put"); op {
	case "put":
		delta.Op, delta.Value = crdt.OpPut, crdt.Encode(crdt.ServiceValue{Status: s.val(d, "status", "up")})
		if crdt.NamespaceOf(key) == crdt.NSBlacklist {
			delta.Value = nil
		}
	case "delete":
		delta.Op = crdt.OpDelete
	case "claim", "renew", "release":
		delta.Op = map[string]crdt.Op{"claim": crdt.OpClaim, "renew": crdt.OpRenew, "release": crdt.OpRelease}[op]
		k, _ := victim.Agent().KernelGet(context.Background(), strings.TrimPrefix(key, "kernel/"))
		delta.Epoch, delta.Expiry = k.Epoch, time.Now().Add(time.Hour).UnixMilli()
		if op == "claim" {
			delta.Epoch++
		}
	case "task":
		st, ok := crdt.ParseTaskState(s.val(d, "state", "failed"))
		if !ok {
			d.Fatalf(s.t, "forge: unknown task state")
		}
		tk, _ := victim.Agent().TaskGet(context.Background(), strings.TrimPrefix(key, "task/"))
		delta.Op, delta.Task, delta.Value = crdt.OpPut, st, crdt.Encode(crdt.TaskValue{Owner: tk.Owner, Result: "forged"})
	default:
		d.Fatalf(s.t, "forge: unknown op %q", op)
	}
	return m.send(d, s, forge.Cert(m.priv, clusterName, []crdt.Delta{delta}))
}

// replay sends every captured write again, as it was signed.
func (m *Adversary) replay(d *datadriven.TestData, s *Script) string {
	if len(m.captured) == 0 {
		d.Fatalf(s.t, "replay: nothing captured")
	}
	return m.send(d, s, m.captured)
}

// send delivers ds by gossip or by anti-entropy (via=ae) to every live
// agent.
func (m *Adversary) send(d *datadriven.TestData, s *Script, ds []crdt.Delta) string {
	ctx := context.Background()
	switch via := s.val(d, "via", "gossip"); via {
	case "gossip":
		for _, x := range ds {
			// A replay alone is the very message its writer sent, which
			// GossipSub drops unseen as a duplicate: sent with a write
			// of the adversary's own, it is a new message, and judged.
			msg := []crdt.Delta{x, m.own(x)}
			b, err := wire.Encode(msg)
			if err != nil {
				d.Fatalf(s.t, "forge: encode: %v", err)
			}
			if err := m.node.Publish(ctx, string(crdt.NamespaceOf(x.Key)), b); err != nil {
				return "error: " + err.Error()
			}
		}
	case "ae":
		st := offer{}
		for _, x := range ds {
			st = append(st, crdt.Entry{Key: x.Key, Deltas: []crdt.Delta{x}})
		}
		for _, n := range s.c.Live() {
			p, _ := peer.Decode(n.ID())
			str, err := m.node.OpenStream(ctx, p, antientropy.Protocol(clusterName))
			if err != nil {
				return fmt.Sprintf("error: open a sync stream to %s: %v", n.Name(), err)
			}
			_, err = antientropy.Initiate(str, st, 0)
			_ = str.Close()
			if err != nil {
				return fmt.Sprintf("error: exchange with %s: %v", n.Name(), err)
			}
		}
	case "key":
		// One key exchange per delta and agent: the exchange a claimant
		// runs with its peers, carrying whatever the adversary offers.
		for _, x := range ds {
			st := offer{{Key: x.Key, Deltas: []crdt.Delta{x}}}
			for _, n := range s.c.Live() {
				p, _ := peer.Decode(n.ID())
				str, err := m.node.OpenStream(ctx, p, antientropy.KeyProtocol(clusterName))
				if err != nil {
					return fmt.Sprintf("error: open a key stream to %s: %v", n.Name(), err)
				}
				_, err = antientropy.PushKey(str, st, x.Key)
				_ = str.Close()
				if err != nil {
					return fmt.Sprintf("error: key exchange with %s: %v", n.Name(), err)
				}
			}
		}
	default:
		d.Fatalf(s.t, "via=%q: want gossip, ae or key", via)
	}
	return "ok"
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
