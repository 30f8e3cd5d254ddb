package agent

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/replica"
)

func TestValidatorRejectsAndCountsBadMessages(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 4, nil)
	// One raw peer per agent, connected to that agent only: a rejected
	// message is not forwarded, and GossipSub publishes to the mesh only,
	// so this is how every agent is sure to judge every bad message.
	raws := make([]*rawPeer, len(as))
	for i, a := range as {
		raws[i] = newRawPeer(t, a.Addrs())
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
	now := crdt.MakeHLC(time.Now().UnixMilli(), 0)
	oversized := bytes.Repeat([]byte{0}, 1<<20+1)
	type msg struct {
		topic string
		data  []byte
	}
	seq := uint16(0)
	bad := func(raw *rawPeer) []msg {
		seq++ // every round new messages (GossipSub drops a message it saw)
		self := crdt.Stamp{HLC: now + crdt.HLC(seq), Node: raw.id()}
		// Signed by the raw peer, but naming the victim as writer.
		forged := crdt.Delta{Key: "svc/web/stolen", Stamp: crdt.Stamp{HLC: self.HLC, Node: victim}, Op: crdt.OpPut, Value: crdt.Encode(crdt.ServiceValue{Status: "up"})}
		cert := raw.sign(t, crdt.Delta{Key: "svc/web/own", Stamp: self, Op: crdt.OpPut, Value: forged.Value})[0].Proof
		forged.Proof = cert // a proof of another delta
		foreignNode := envelope(t, raw.sign(t, crdt.Delta{Key: "node/" + victim, Stamp: self, Op: crdt.OpPut})...)
		farFuture := envelope(t, raw.sign(t, crdt.Delta{Key: "bl/x/future", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(time.Now().Add(time.Hour).UnixMilli(), seq), Node: self.Node}, Op: crdt.OpPut})...)
		wrongTopic := envelope(t, raw.sign(t, crdt.Delta{Key: "svc/web/x", Stamp: self, Op: crdt.OpPut, Value: forged.Value})...)
		return []msg{{"svc", envelope(t, forged)}, {"node", foreignNode}, {"bl", farFuture}, {"bl", oversized}, {"task", []byte("\xffgarbage")}, {"kernel", wrongTopic}}
	}
	want := map[string]uint64{replica.ReasonForged: 1, replica.ReasonNotOwner: 1, replica.ReasonClockSkew: 1, gossip.ReasonOversized: 1, replica.ReasonUndecodable: 1, replica.ReasonWrongTopic: 1}
	// Publish until counted: a message published before the raw peer is
	// in the agent's mesh goes nowhere.
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
	// A valid write from the same peer still gets through, and none of the
	// bad ones changed any state.
	good := envelope(t, raw.sign(t, crdt.Delta{Key: "bl/x/ok", Stamp: crdt.Stamp{HLC: now + 1000, Node: raw.id()}, Op: crdt.OpPut})...)
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
		for _, k := range []string{"svc/web/stolen", "bl/x/future", "svc/web/x"} {
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
		// The ingest path counted the refused deltas by reason too.
		refused := a.Replica().Counters()[replica.Gossip].Refused
		for _, r := range []string{replica.ReasonForged, replica.ReasonNotOwner, replica.ReasonClockSkew, replica.ReasonUndecodable, replica.ReasonWrongTopic} {
			if refused[r] == 0 {
				t.Errorf("%s: no gossip delta refused as %s: %v", shortID(a.ID()), r, refused)
			}
		}
	}
}
