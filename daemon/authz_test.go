package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/wire"
)

func TestPolicyBLWriters(t *testing.T) {
	const me, other = "me", "other"
	st := func(node string) crdt.Stamp { return crdt.Stamp{HLC: crdt.MakeHLC(1000, 0), Node: node} }
	open, closed := newPolicy(Config{}), policy{blWriters: map[string]bool{me: true}}
	for _, tc := range []struct {
		name   string
		p      policy
		ns     crdt.Namespace
		d      crdt.Delta
		author string
		reason string
	}{
		{"open: anyone writes bl", open, crdt.NSBlacklist, crdt.Delta{Key: "bl/a/b", Stamp: st(other), Op: crdt.OpPut}, other, ""},
		{"listed writer", closed, crdt.NSBlacklist, crdt.Delta{Key: "bl/a/b", Stamp: st(me), Op: crdt.OpPut}, me, ""},
		{"unlisted put", closed, crdt.NSBlacklist, crdt.Delta{Key: "bl/a/b", Stamp: st(other), Op: crdt.OpPut}, other, reasonNotAllowed},
		{"unlisted delete", closed, crdt.NSBlacklist, crdt.Delta{Key: "bl/a/b", Stamp: st(other), Op: crdt.OpDelete}, other, reasonNotAllowed},
		{"forged in a listed writer's name", closed, crdt.NSBlacklist, crdt.Delta{Key: "bl/a/b", Stamp: st(me), Op: crdt.OpPut}, other, reasonForgedWriter},
		{"other namespaces unaffected", closed, crdt.NSNode, crdt.Delta{Key: "node/other", Stamp: st(other), Op: crdt.OpPut}, other, ""},
	} {
		err := tc.p.check(tc.ns, tc.d, tc.author)
		got := ""
		var pe *policyError
		if errors.As(err, &pe) {
			got = pe.reason
		} else if err != nil {
			t.Errorf("%s: non-policy error %v", tc.name, err)
		}
		if got != tc.reason {
			t.Errorf("%s: reason %q (%v), want %q", tc.name, got, err, tc.reason)
		}
	}
}

func TestBLWritersLocalAPI(t *testing.T) {
	ctx := context.Background()
	dirs, ids := presetIdentities(t, 3)
	as := startCluster(t, 3, withIdentities(dirs, func(c *Config) { c.BLWriters = ids[:1] }))
	if _, err := as[0].BlacklistAdd(ctx, "fraud", "u1", rpc.BlacklistAdd{}); err != nil {
		t.Fatalf("listed writer: %v", err)
	}
	eventually(t, 10*time.Second, "the listed writer's entry everywhere", func() error {
		for _, a := range as {
			if _, ok := a.Store().Get("bl/fraud/u1"); !ok {
				return fmt.Errorf("%s lacks it", shortID(a.ID()))
			}
		}
		return nil
	})
	_, addErr := as[1].BlacklistAdd(ctx, "fraud", "u2", rpc.BlacklistAdd{})
	rmErr := as[2].BlacklistRemove(ctx, "fraud", "u1")
	for _, err := range []error{addErr, rmErr} {
		if rpc.CodeOf(err) != rpc.CodeDenied {
			t.Errorf("unlisted writer: %v, want code %s", err, rpc.CodeDenied)
		}
		if err == nil || !strings.Contains(err.Error(), "not in bl_writers") {
			t.Errorf("unlisted writer: %v, want it to name bl_writers", err)
		}
	}
	for _, a := range as {
		if _, ok := a.Store().Get("bl/fraud/u2"); ok {
			t.Errorf("%s holds the refused add", shortID(a.ID()))
		}
		if e, _ := a.Store().Get("bl/fraud/u1"); e.Winner().Op != crdt.OpPut {
			t.Errorf("%s: the refused remove took effect", shortID(a.ID()))
		}
	}
}

// TestMemberForgeriesAreRejectedEverywhere: a peer that is allowed to join
// (it is in allow_peers) publishes, with its own valid signature, writes
// the policy forbids. Every agent rejects each one, counts it by reason and
// keeps its state.
func TestMemberForgeriesAreRejectedEverywhere(t *testing.T) {
	ctx := context.Background()
	dirs, ids := presetIdentities(t, 3)
	rawKey, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	rawID, _ := peer.IDFromPrivateKey(rawKey)
	allow := append([]string{rawID.String()}, ids...)
	as := startCluster(t, 3, withIdentities(dirs, func(c *Config) {
		c.AllowPeers, c.BLWriters = allow, ids[:1]
	}))
	victim, owner, forger := as[0].ID(), as[1].ID(), rawID.String()

	// Legitimate state the forger will try to change.
	if _, err := as[0].ServiceSet(ctx, "web", "w0", rpc.ServiceSet{Addr: "10.0.0.1:80", Status: "up"}); err != nil {
		t.Fatal(err)
	}
	if _, err := as[0].BlacklistAdd(ctx, "fraud", "u1", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	if _, err := as[1].TaskAssign(ctx, "t1", rpc.TaskAssign{}); err != nil {
		t.Fatal(err)
	}
	if res, err := as[0].KernelClaim(ctx, "k", rpc.KernelClaim{TTLMillis: 60_000}); err != nil || !res.Granted {
		t.Fatalf("claim: %+v, %v", res, err)
	}
	watched := []string{"svc/web/w0", "bl/fraud/u1", "task/t1", "kernel/k"}
	eventually(t, 10*time.Second, "legitimate state everywhere", func() error {
		for _, k := range watched {
			for _, a := range as {
				if _, ok := a.Store().Get(k); !ok {
					return fmt.Errorf("%s lacks %s", shortID(a.ID()), k)
				}
			}
		}
		for _, prefix := range []string{"svc/", "bl/", "task/", "kernel/"} {
			if err := sameState(as, prefix); err != nil {
				return err
			}
		}
		return nil
	})
	before := make([]map[string]crdt.Entry, len(as))
	for i, a := range as {
		before[i] = make(map[string]crdt.Entry)
		for _, k := range watched {
			before[i][k], _ = a.Store().Get(k)
		}
	}
	lease, _ := as[0].Store().Get("kernel/k")
	epoch := lease.Winner().Epoch

	var join []string
	for _, a := range as {
		join = append(join, a.Addrs()...)
	}
	raw := rawPeerWithKey(t, rawKey, join)
	eventually(t, 10*time.Second, "the forger connected to all", func() error {
		if n := len(raw.Peers()); n < len(as) {
			return fmt.Errorf("%d peers", n)
		}
		return nil
	})

	now := crdt.MakeHLC(time.Now().UnixMilli(), 0)
	as0 := func(node string) crdt.Stamp { return crdt.Stamp{HLC: now, Node: node} }
	task := func(state crdt.TaskState) crdt.Delta {
		return crdt.Delta{Key: "task/t1", Stamp: as0(forger), Op: crdt.OpPut, Task: state, Value: crdt.Encode(crdt.TaskValue{Owner: owner, Result: "forged"})}
	}
	expiry := now.WallMS() + 60_000
	forgeries := []struct {
		name   string
		d      crdt.Delta
		reason string
	}{
		{"(i) svc put in the owner's name", crdt.Delta{Key: "svc/web/w0", Stamp: as0(victim), Op: crdt.OpPut, Value: crdt.Encode(crdt.ServiceValue{Addr: "6.6.6.6:80", Status: "up"})}, reasonForgedWriter},
		{"(i) svc delete in the owner's name", crdt.Delta{Key: "svc/web/w0", Stamp: as0(victim), Op: crdt.OpDelete}, reasonForgedWriter},
		{"(ii) node/<victim> in the forger's name", crdt.Delta{Key: nodeKey(victim), Stamp: as0(forger), Op: crdt.OpPut, Value: crdt.Encode(crdt.MemberValue{Region: "forged"})}, reasonNotOwner},
		{"(ii) node/<victim> in the victim's name", crdt.Delta{Key: nodeKey(victim), Stamp: as0(victim), Op: crdt.OpPut, Value: crdt.Encode(crdt.MemberValue{Region: "forged"})}, reasonForgedWriter},
		{"(iii) kernel claim in the holder's name", crdt.Delta{Key: "kernel/k", Stamp: as0(victim), Op: crdt.OpClaim, Epoch: epoch + 1, Expiry: expiry}, reasonForgedWriter},
		{"(iii) kernel renew in the holder's name", crdt.Delta{Key: "kernel/k", Stamp: as0(victim), Op: crdt.OpRenew, Epoch: epoch, Expiry: expiry}, reasonForgedWriter},
		{"(iii) kernel release in the holder's name", crdt.Delta{Key: "kernel/k", Stamp: as0(victim), Op: crdt.OpRelease, Epoch: epoch}, reasonForgedWriter},
		{"(iv) task running, not the owner", task(crdt.TaskRunning), reasonNotOwner},
		{"(iv) task done, not the owner", task(crdt.TaskDone), reasonNotOwner},
		{"(v) bl add, not in bl_writers", crdt.Delta{Key: "bl/fraud/u2", Stamp: as0(forger), Op: crdt.OpPut}, reasonNotAllowed},
		{"(v) bl remove, not in bl_writers", crdt.Delta{Key: "bl/fraud/u1", Stamp: as0(forger), Op: crdt.OpDelete}, reasonNotAllowed},
	}
	want := make(map[string]uint64)
	msgs := make([][]byte, len(forgeries))
	for i, f := range forgeries {
		// Each forgery is refused for the reason the test names (checked
		// with the pure policy, so the counts below map to the forgeries).
		var pe *policyError
		if err := as[1].policy.check(crdt.NamespaceOf(f.d.Key), f.d, forger); !errors.As(err, &pe) || pe.reason != f.reason {
			t.Fatalf("%s: policy says %v, want reason %s", f.name, err, f.reason)
		}
		want[f.reason]++
		if msgs[i], err = wire.Encode([]crdt.Delta{f.d}); err != nil {
			t.Fatal(err)
		}
	}
	base := make([]map[string]uint64, len(as))
	for i, a := range as {
		base[i] = a.Gossip().Rejections()
	}
	// Publish every forgery until every agent counted all of them (a
	// message sent before the agents learnt the forger's subscriptions
	// goes nowhere; each publish is a new message).
	eventually(t, 15*time.Second, "every agent counted every forgery", func() error {
		for i, a := range as {
			got := a.Gossip().Rejections()
			for reason, n := range want {
				if got[reason]-base[i][reason] < n {
					for j, f := range forgeries {
						if err := raw.Publish(ctx, string(crdt.NamespaceOf(f.d.Key)), msgs[j]); err != nil {
							t.Fatalf("publish %s: %v", f.name, err)
						}
					}
					time.Sleep(50 * time.Millisecond) // pace the retries
					return fmt.Errorf("%s: rejections %v (before: %v), want %v more", shortID(a.ID()), got, base[i], want)
				}
			}
		}
		return nil
	})
	// The forger's own, allowed writes do get through: the forgeries were
	// delivered and refused, not lost.
	good, _ := wire.Encode([]crdt.Delta{{Key: "svc/web/forger", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(time.Now().UnixMilli(), 0), Node: forger}, Op: crdt.OpPut, Value: crdt.Encode(crdt.ServiceValue{Status: "up"})}})
	if err := raw.Publish(ctx, "svc", good); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the forger's own write applied", func() error {
		for _, a := range as {
			if _, ok := a.Store().Get("svc/web/forger"); !ok {
				return fmt.Errorf("%s lacks it", shortID(a.ID()))
			}
		}
		return nil
	})
	for i, a := range as {
		t.Logf("%s rejections: %v (before the forgeries: %v)", shortID(a.ID()), a.Gossip().Rejections(), base[i])
		for _, k := range watched {
			if got, _ := a.Store().Get(k); !got.Equal(before[i][k]) {
				t.Errorf("%s: %s changed: %+v, was %+v", shortID(a.ID()), k, got.Deltas, before[i][k].Deltas)
			}
		}
		if _, ok := a.Store().Get("bl/fraud/u2"); ok {
			t.Errorf("%s holds the forged bl/fraud/u2", shortID(a.ID()))
		}
		e, _ := a.Store().Get(nodeKey(victim))
		var v crdt.MemberValue
		if w := e.Winner(); w.Stamp.Node != victim || crdt.Decode(w.Value, &v) != nil || v.Region == "forged" {
			t.Errorf("%s: node/%s is %+v", shortID(a.ID()), shortID(victim), w)
		}
		cur, _ := a.Store().Get("kernel/k")
		if l := crdt.Resolve(cur); l.Holder != victim || l.Epoch != epoch || !l.Live(time.Now().UnixMilli()) {
			t.Errorf("%s: kernel k held by %s at epoch %d (live %v), want %s at %d", shortID(a.ID()), l.Holder, l.Epoch, l.Live(time.Now().UnixMilli()), shortID(victim), epoch)
		}
	}
}

// TestUnsignedMessagesAreRejected: a peer whose GossipSub does not sign
// (but names itself as author) publishes a write that would be valid in
// its own name. StrictSign drops it before the write policy sees it.
func TestUnsignedMessagesAreRejected(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	as := startCluster(t, 2, nil)
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.LaxNoSign), pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(gossip.TopicName("default", "bl"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	for _, a := range as {
		ai, err := peer.AddrInfoFromString(a.Addrs()[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Connect(ctx, *ai); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the unsigned peer sees every agent on the topic", func() error {
		if n := len(topic.ListPeers()); n < len(as) {
			return fmt.Errorf("%d topic peers", n)
		}
		return nil
	})
	author := h.ID().String()
	d := crdt.Delta{Key: "bl/x/unsigned", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(time.Now().UnixMilli(), 0), Node: author}, Op: crdt.OpPut}
	if err := checkDelta(crdt.NSBlacklist, d, author); err != nil {
		t.Fatalf("the write would be valid if signed: %v", err)
	}
	msg, _ := wire.Encode([]crdt.Delta{d})
	// The same kind of write from a signing peer goes through.
	raw := rawPeer(t, as[0].Addrs())
	signed, _ := wire.Encode([]crdt.Delta{{Key: "bl/x/signed", Stamp: crdt.Stamp{HLC: d.Stamp.HLC, Node: raw.ID().String()}, Op: crdt.OpPut}})
	eventually(t, 15*time.Second, "a signed write applied after the unsigned ones", func() error {
		if err := topic.Publish(ctx, msg); err != nil {
			t.Fatal(err)
		}
		if err := raw.Publish(ctx, "bl", signed); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // pace the retries
		for _, a := range as {
			if _, ok := a.Store().Get("bl/x/signed"); !ok {
				return fmt.Errorf("%s lacks the signed write", shortID(a.ID()))
			}
		}
		return nil
	})
	for _, a := range as {
		if _, ok := a.Store().Get("bl/x/unsigned"); ok {
			t.Errorf("%s applied an unsigned message", shortID(a.ID()))
		}
	}
}
