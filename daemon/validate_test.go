package daemon

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/wire"
)

// rawPeer joins the cluster's topics with a gossip node that validates
// nothing, so a test can publish whatever bytes it likes.
func rawPeer(t *testing.T, join []string) *gossip.Node {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return rawPeerWithKey(t, key, join)
}

// rawPeerWithKey is rawPeer with a given identity.
func rawPeerWithKey(t *testing.T, key crypto.PrivKey, join []string) *gossip.Node {
	t.Helper()
	var topics []string
	for _, ns := range crdt.Namespaces {
		topics = append(topics, string(ns))
	}
	n, err := gossip.New(context.Background(), gossip.Config{
		Cluster: "default", Topics: topics, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: join,
		Identity: key, MaxMessageBytes: 4 << 20,
		Validate: func(string, peer.ID, []byte) (any, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestValidatorRejectsAndCountsBadMessages(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 4, nil)
	// One raw peer per agent, connected to that agent only: a rejected
	// message is not forwarded, and GossipSub publishes to the mesh only,
	// so this is how every agent is sure to judge every bad message.
	raws := make([]*gossip.Node, len(as))
	for i, a := range as {
		raws[i] = rawPeer(t, a.Addrs())
	}
	eventually(t, 10*time.Second, "raw peers connected", func() error {
		for i, raw := range raws {
			if len(raw.Peers()) == 0 {
				return fmt.Errorf("raw peer %d has no peer", i)
			}
		}
		return nil
	})
	victim := as[0].ID()
	stamp := crdt.Stamp{HLC: crdt.MakeHLC(time.Now().UnixMilli(), 0), Node: victim}
	forged, _ := wire.Encode([]crdt.Delta{{Key: "svc/web/stolen", Stamp: stamp, Op: crdt.OpPut, Value: crdt.Encode(crdt.ServiceValue{Status: "up"})}})
	oversized := bytes.Repeat([]byte{0}, 1<<20+1)
	type msg struct {
		topic string
		data  []byte
	}
	bad := func(raw *gossip.Node) []msg {
		self := crdt.Stamp{HLC: stamp.HLC, Node: raw.ID().String()}
		foreignNode, _ := wire.Encode([]crdt.Delta{{Key: "node/" + victim, Stamp: self, Op: crdt.OpPut}})
		farFuture, _ := wire.Encode([]crdt.Delta{{Key: "bl/x/future", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(time.Now().Add(time.Hour).UnixMilli(), 0), Node: self.Node}, Op: crdt.OpPut}})
		return []msg{{"svc", forged}, {"node", foreignNode}, {"bl", farFuture}, {"bl", oversized}, {"task", []byte("\xffgarbage")}, {"kernel", forged}}
	}
	want := map[string]uint64{reasonForgedWriter: 1, reasonNotOwner: 1, reasonClockSkew: 1, gossip.ReasonOversized: 1, reasonUndecodable: 1, reasonWrongTopic: 1}
	// Publish until counted: a message published before the raw peer is
	// in the agent's mesh goes nowhere, and each publish is a new message.
	eventually(t, 15*time.Second, "every agent counted every rejection", func() error {
		for i, a := range as {
			got := a.Gossip().Rejections()
			for reason, n := range want {
				if got[reason] < n {
					for _, m := range bad(raws[i]) {
						if err := raws[i].Publish(ctx, m.topic, m.data); err != nil {
							t.Fatalf("publish on %s: %v", m.topic, err)
						}
					}
					time.Sleep(50 * time.Millisecond) // pace the retries
					return fmt.Errorf("%s: rejections %v, want at least %v", shortID(a.ID()), got, want)
				}
			}
		}
		return nil
	})
	raw := raws[0]
	self := crdt.Stamp{HLC: stamp.HLC, Node: raw.ID().String()}
	// A valid write from the same peer still gets through, and none of the
	// bad ones changed any state.
	good, _ := wire.Encode([]crdt.Delta{{Key: "bl/x/ok", Stamp: crdt.Stamp{HLC: stamp.HLC + 1, Node: self.Node}, Op: crdt.OpPut}})
	if err := raw.Publish(ctx, "bl", good); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "valid write applied", func() error {
		for _, a := range as {
			if _, ok := a.Store().Get("bl/x/ok"); !ok {
				return fmt.Errorf("%s lacks bl/x/ok", shortID(a.ID()))
			}
		}
		return nil
	})
	for _, a := range as {
		for _, k := range []string{"svc/web/stolen", "bl/x/future"} {
			if _, ok := a.Store().Get(k); ok {
				t.Errorf("%s applied rejected key %s", shortID(a.ID()), k)
			}
		}
		if e, _ := a.Store().Get("node/" + victim); e.Winner().Stamp.Node != victim {
			t.Errorf("%s: node/%s written by %s", shortID(a.ID()), shortID(victim), e.Winner().Stamp.Node)
		}
		if k := a.Store().List("kernel/"); len(k) != 0 {
			t.Errorf("%s has kernel keys %v", shortID(a.ID()), k)
		}
	}
}

func TestCheckDeltaPolicy(t *testing.T) {
	const me, other = "me", "other"
	st := crdt.Stamp{HLC: crdt.MakeHLC(1000, 0), Node: me}
	task := func(state crdt.TaskState, owner string) crdt.Delta {
		return crdt.Delta{Key: "task/t", Stamp: st, Op: crdt.OpPut, Task: state, Value: crdt.Encode(crdt.TaskValue{Owner: owner})}
	}
	for _, tc := range []struct {
		name   string
		ns     crdt.Namespace
		d      crdt.Delta
		reason string
	}{
		{"svc put", crdt.NSService, crdt.Delta{Key: "svc/a/b", Stamp: st, Op: crdt.OpPut, Value: []byte(`{"status":"up"}`)}, ""},
		{"svc without status", crdt.NSService, crdt.Delta{Key: "svc/a/b", Stamp: st, Op: crdt.OpPut, Value: []byte(`{}`)}, reasonBadValue},
		{"svc key too short", crdt.NSService, crdt.Delta{Key: "svc/a", Stamp: st, Op: crdt.OpDelete}, reasonBadKey},
		{"empty segment", crdt.NSBlacklist, crdt.Delta{Key: "bl//x", Stamp: st, Op: crdt.OpPut}, reasonBadKey},
		{"wrong topic", crdt.NSBlacklist, crdt.Delta{Key: "svc/a/b", Stamp: st, Op: crdt.OpDelete}, reasonWrongTopic},
		{"forged writer", crdt.NSBlacklist, crdt.Delta{Key: "bl/a/b", Stamp: crdt.Stamp{HLC: 1, Node: other}, Op: crdt.OpPut}, reasonForgedWriter},
		{"no stamp", crdt.NSBlacklist, crdt.Delta{Key: "bl/a/b", Stamp: crdt.Stamp{Node: me}, Op: crdt.OpPut}, reasonBadValue},
		{"claim on bl", crdt.NSBlacklist, crdt.Delta{Key: "bl/a/b", Stamp: st, Op: crdt.OpClaim}, reasonBadOp},
		{"own node", crdt.NSNode, crdt.Delta{Key: "node/me", Stamp: st, Op: crdt.OpPut}, ""},
		{"other's node", crdt.NSNode, crdt.Delta{Key: "node/other", Stamp: st, Op: crdt.OpPut}, reasonNotOwner},
		{"assign for another", crdt.NSTask, task(crdt.TaskQueued, other), ""},
		{"cancel request by anyone", crdt.NSTask, task(crdt.TaskCancelRequested, other), ""},
		{"done by non-owner", crdt.NSTask, task(crdt.TaskDone, other), reasonNotOwner},
		{"done by owner", crdt.NSTask, task(crdt.TaskDone, me), ""},
		{"task without owner", crdt.NSTask, task(crdt.TaskQueued, ""), reasonBadValue},
		{"unknown task state", crdt.NSTask, task(99, me), reasonBadOp},
		{"claim", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpClaim, Epoch: 1, Expiry: 2000}, ""},
		{"claim expired at birth", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpClaim, Epoch: 1, Expiry: 1000}, reasonBadValue},
		{"epoch 0", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpRelease}, reasonBadValue},
		{"put on kernel", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpPut, Epoch: 1}, reasonBadOp},
	} {
		err := checkDelta(tc.ns, tc.d, me)
		got := ""
		if pe, ok := err.(*policyError); ok {
			got = pe.reason
		} else if err != nil {
			t.Errorf("%s: non-policy error %v", tc.name, err)
		}
		if got != tc.reason {
			t.Errorf("%s: reason %q (%v), want %q", tc.name, got, err, tc.reason)
		}
	}
}
