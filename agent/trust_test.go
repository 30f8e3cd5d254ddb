package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/rumor-dev/rumor/antientropy"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/digest"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/internal/forge"
	"github.com/rumor-dev/rumor/replica"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/store"
)

// The trust model, tried by a member: mallory is in allow_peers (it may
// join) but not in bl_writers, owns no task, holds no lease. For every
// namespace it tries a write in another node's name, a write its own name
// does not allow, and a replay of an old signed delta of another node, and
// a relay of another node's signed delta with one field changed; each by
// every path a delta can take: gossip, anti-entropy, and the state file
// (a restored backup). Every forgery is refused and counted by path and
// reason, and changes nothing; a replay is admitted (its signature is
// good) and changes nothing.

// attempt is one write mallory tries.
type attempt struct {
	name   string
	d      crdt.Delta // as it travels, with whatever proof mallory gives it
	reason string     // why it is refused; "" for a replay, which is admitted
}

// signedWinner waits until a's write to key has its proof (the store takes
// it when the batch is signed and published) and returns it.
func signedWinner(t *testing.T, a *Agent, key string) crdt.Delta {
	t.Helper()
	var d crdt.Delta
	eventually(t, 10*time.Second, "the write to "+key+" signed", func() error {
		e, ok := a.Store().Get(key)
		if !ok || e.Winner().Proof.Cert == nil {
			return errNotYet
		}
		d = e.Winner()
		return nil
	})
	return d
}

// aeState is an anti-entropy state holding only the deltas mallory sends.
type aeState struct{ entries []crdt.Entry }

func (s aeState) Digest(crdt.HLC) digest.Digest { return digest.Of(s.entries) }
func (s aeState) Entries(string) []crdt.Entry   { return s.entries }
func (s aeState) Merge([]crdt.Delta) int        { return 0 }

func TestForgeriesAreRefusedOnEveryPath(t *testing.T) {
	ctx := context.Background()
	dirs, ids := presetIdentities(t, 3)
	mKey, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	mPriv := forge.Ed25519(mKey)
	mSigner, _ := identity.NewSigner(mKey, "default")
	mallory := mSigner.ID()
	policy := func(c *config.Config) {
		c.AllowPeers, c.BLWriters = append(slices.Clone(ids), mallory), ids[:1]
		c.KVWriters = map[string][]string{"/config/pay/": ids[:1]}
	}
	as := startCluster(t, 3, withIdentities(dirs, policy))
	a0, a1 := as[0], as[1]

	// Legitimate state, and the old signed deltas mallory will replay.
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = a0.ServiceSet(ctx, "web", "w0", rpc.ServiceSet{Status: "up"})
	mustDo(err)
	oldSvc := signedWinner(t, a0, "svc/web/w0")
	_, err = a0.ServiceSet(ctx, "web", "w0", rpc.ServiceSet{Status: "draining"})
	mustDo(err)
	_, err = a0.BlacklistAdd(ctx, "fraud", "u1", rpc.BlacklistAdd{})
	mustDo(err)
	oldBL := signedWinner(t, a0, "bl/fraud/u1")
	mustDo(a0.BlacklistRemove(ctx, "fraud", "u1"))
	_, err = a0.BlacklistAdd(ctx, "fraud", "u2", rpc.BlacklistAdd{})
	mustDo(err)
	_, err = a1.TaskAssign(ctx, "t1", rpc.TaskAssign{})
	mustDo(err)
	_, err = a1.TaskUpdate(ctx, "t1", rpc.TaskUpdate{State: "running"})
	mustDo(err)
	oldTask := signedWinner(t, a1, "task/t1")
	_, err = a1.TaskUpdate(ctx, "t1", rpc.TaskUpdate{State: "done", Result: "ok"})
	mustDo(err)
	// A work queue's task: submitted on a0, taken and done on a1.
	_, err = a0.TaskSubmit(ctx, "jobs", rpc.TaskSubmit{ID: "q1", Payload: []byte("input")})
	mustDo(err)
	oldSubmit := signedWinner(t, a0, "task/q1")
	eventually(t, 10*time.Second, "the submission reaches a1", func() error {
		_, err := a1.TaskGet(ctx, "q1")
		return err
	})
	took, err := a1.TaskTake(ctx, "jobs", rpc.TaskTake{})
	if err != nil || !took.Taken {
		t.Fatalf("take: %+v %v", took, err)
	}
	oldTake := signedWinner(t, a1, "task/q1")
	_, err = a1.TaskUpdate(ctx, "q1", rpc.TaskUpdate{State: "done", Result: "ok"})
	mustDo(err)
	res, err := a0.KernelClaim(ctx, "k", rpc.KernelClaim{Keep: true, TTLMillis: 120_000})
	if err != nil || !res.Granted {
		t.Fatalf("claim: %+v %v", res, err)
	}
	epoch := res.Kernel.Epoch
	_, err = a0.KVPut(ctx, "/config/pay/db", rpc.KVPut{Value: "db-1"})
	mustDo(err)
	oldKV := signedWinner(t, a0, "kv/config/pay/db")
	_, err = a0.KVPut(ctx, "/config/pay/db", rpc.KVPut{Value: "db-2"})
	mustDo(err)
	oldClaim := signedWinner(t, a0, "kernel/k")
	oldBeat := signedWinner(t, a0, crdt.NodeKey(a0.ID()))
	watched := []string{"svc/web/w0", "bl/fraud/u1", "bl/fraud/u2", "bl/fraud/u9", "task/t1", "task/q1", "kernel/k", "kv/config/pay/db", crdt.NodeKey(a0.ID())}
	eventually(t, 10*time.Second, "legitimate state everywhere", func() error {
		for _, prefix := range []string{"svc/", "bl/", "task/", "kernel/", "kv/"} {
			if err := sameState(as, prefix); err != nil {
				return err
			}
		}
		for _, a := range as {
			if k, _ := a.KernelGet(ctx, "k"); k.Holder != a0.ID() {
				return fmt.Errorf("%s: kernel %+v", shortID(a.ID()), k)
			}
		}
		return nil
	})

	// The attempts, stamped now (within max_skew, so skew is not why).
	now := crdt.MakeHLC(time.Now().UnixMilli(), 0)
	at := func(node string, i int) crdt.Stamp { return crdt.Stamp{HLC: now + crdt.HLC(i), Node: node} }
	inName := func(i int, d crdt.Delta, victim string) crdt.Delta {
		d.Stamp = at(victim, i)
		return forge.Cert(mPriv, "default", []crdt.Delta{d})[0]
	}
	own := func(i int, d crdt.Delta) crdt.Delta {
		d.Stamp = at(mallory, i)
		return forge.Cert(mPriv, "default", []crdt.Delta{d})[0] // mallory's valid signature
	}
	tampered := func(d crdt.Delta, change func(*crdt.Delta)) crdt.Delta {
		change(&d) // the proof stays that of the original
		return d
	}
	up := crdt.Encode(crdt.ServiceValue{Status: "up"})
	attempts := []attempt{
		// svc
		{"svc: put in the owner's name", inName(1, crdt.Delta{Key: "svc/web/w0", Op: crdt.OpPut, Value: crdt.Encode(crdt.ServiceValue{Status: "up", Addr: "6.6.6.6:80"})}, a0.ID()), replica.ReasonForged},
		{"svc: no status, own name", own(2, crdt.Delta{Key: "svc/web/m", Op: crdt.OpPut, Value: []byte(`{}`)}), replica.ReasonBadValue},
		{"svc: replay of the owner's old put", oldSvc, ""},
		{"svc: relay of the owner's put, address changed", tampered(oldSvc, func(d *crdt.Delta) { d.Value = crdt.Encode(crdt.ServiceValue{Status: "up", Addr: "6.6.6.6:80"}) }), replica.ReasonForged},
		// bl
		{"bl: remove in a bl writer's name", inName(3, crdt.Delta{Key: "bl/fraud/u2", Op: crdt.OpDelete}, a0.ID()), replica.ReasonForged},
		{"bl: add, own name, not in bl_writers", own(4, crdt.Delta{Key: "bl/fraud/u9", Op: crdt.OpPut}), replica.ReasonNotAllowed},
		{"bl: replay of a removed add", oldBL, ""},
		{"bl: relay of an add turned into a remove", tampered(oldBL, func(d *crdt.Delta) { d.Op, d.Stamp.HLC = crdt.OpDelete, now+5 }), replica.ReasonForged},
		// task
		{"task: failed in the owner's name", inName(6, crdt.Delta{Key: "task/t1", Op: crdt.OpPut, Task: crdt.TaskFailed, Value: crdt.Encode(crdt.TaskValue{Owner: a1.ID(), Result: "forged"})}, a1.ID()), replica.ReasonForged},
		{"task: failed, own name, not the owner", own(7, crdt.Delta{Key: "task/t1", Op: crdt.OpPut, Task: crdt.TaskFailed, Value: crdt.Encode(crdt.TaskValue{Owner: a1.ID(), Result: "forged"})}), replica.ReasonNotOwner},
		{"task: replay of running after done", oldTask, ""},
		{"task: relay of running turned into failed", tampered(oldTask, func(d *crdt.Delta) { d.Task = crdt.TaskFailed }), replica.ReasonForged},
		// a work queue's task
		{"queue: failed in the taker's name", inName(15, crdt.Delta{Key: "task/q1", Op: crdt.OpPut, Task: crdt.TaskFailed, Value: crdt.Encode(crdt.TaskValue{Owner: a1.ID(), Queue: "jobs", Result: "forged"})}, a1.ID()), replica.ReasonForged},
		{"queue: failed, own name, the taker's attempt", own(16, crdt.Delta{Key: "task/q1", Op: crdt.OpPut, Task: crdt.TaskFailed, Value: crdt.Encode(crdt.TaskValue{Owner: a1.ID(), Queue: "jobs", Result: "forged"})}), replica.ReasonNotOwner},
		{"queue: replay of the submission after done", oldSubmit, ""},
		{"queue: replay of the take after done", oldTake, ""},
		{"queue: relay of the take with another payload", tampered(oldTake, func(d *crdt.Delta) {
			d.Value = crdt.Encode(crdt.TaskValue{Owner: a1.ID(), Queue: "jobs", Payload: []byte("rm -rf /"), Attempt: 1})
		}), replica.ReasonForged},
		// kv
		{"kv: put in a kv_writers writer's name", inName(17, crdt.Delta{Key: "kv/config/pay/db", Op: crdt.OpPut, Value: crdt.Encode(crdt.KVValue{Value: "evil", Version: 9})}, a0.ID()), replica.ReasonForged},
		{"kv: put under a kv_writers prefix, own name", own(18, crdt.Delta{Key: "kv/config/pay/db", Op: crdt.OpPut, Value: crdt.Encode(crdt.KVValue{Value: "evil", Version: 9})}), replica.ReasonNotAllowed},
		{"kv: delete under a kv_writers prefix, own name", own(19, crdt.Delta{Key: "kv/config/pay/db", Op: crdt.OpDelete, Value: crdt.Encode(crdt.KVValue{Version: 9})}), replica.ReasonNotAllowed},
		{"kv: replay of the writer's old put", oldKV, ""},
		{"kv: relay of the writer's put, value changed", tampered(oldKV, func(d *crdt.Delta) {
			d.Value, d.Stamp.HLC = crdt.Encode(crdt.KVValue{Value: "evil", Version: 9}), now+20
		}), replica.ReasonForged},
		{"kv: no version, own name", own(21, crdt.Delta{Key: "kv/free/x", Op: crdt.OpPut, Value: []byte(`{"v":"x"}`)}), replica.ReasonBadValue},
		// kernel
		{"kernel: release in the holder's name", inName(8, crdt.Delta{Key: "kernel/k", Op: crdt.OpRelease, Epoch: epoch}, a0.ID()), replica.ReasonForged},
		{"kernel: claim at epoch 2^64-1, own name", own(9, crdt.Delta{Key: "kernel/k", Op: crdt.OpClaim, Epoch: 1<<64 - 1, Expiry: now.WallMS() + 60_000}), replica.ReasonBadEpoch},
		{"kernel: replay of the holder's claim", oldClaim, ""},
		{"kernel: relay of the claim with a later expiry", tampered(oldClaim, func(d *crdt.Delta) { d.Expiry += 3_600_000 }), replica.ReasonForged},
		// node
		{"node: heartbeat in the node's name", inName(10, crdt.Delta{Key: crdt.NodeKey(a0.ID()), Op: crdt.OpPut, Value: crdt.Encode(crdt.MemberValue{Region: "forged"})}, a0.ID()), replica.ReasonForged},
		{"node: another node's heartbeat, own name", own(11, crdt.Delta{Key: crdt.NodeKey(a0.ID()), Op: crdt.OpPut, Value: crdt.Encode(crdt.MemberValue{Region: "forged"})}), replica.ReasonNotOwner},
		{"node: replay of an old heartbeat", oldBeat, ""},
		{"node: relay of a heartbeat with its addresses changed", tampered(oldBeat, func(d *crdt.Delta) {
			d.Value = crdt.Encode(crdt.MemberValue{Addrs: []string{"/ip4/6.6.6.6/tcp/1/p2p/" + a0.ID()}})
		}), replica.ReasonForged},
		// wait: a place in a kernel's queue
		{"wait: queued in another node's name", inName(12, crdt.Delta{Key: crdt.WaitKey("k", a1.ID(), "s"), Op: crdt.OpPut, Expiry: now.WallMS() + 60_000, Value: crdt.Encode(crdt.WaitValue{SinceMS: 1})}, a1.ID()), replica.ReasonForged},
		{"wait: another node's place, own name", own(13, crdt.Delta{Key: crdt.WaitKey("k", a1.ID(), "s"), Op: crdt.OpPut, Expiry: now.WallMS() + 60_000, Value: crdt.Encode(crdt.WaitValue{SinceMS: 1})}), replica.ReasonNotOwner},
		{"wait: own place, no since", own(14, crdt.Delta{Key: crdt.WaitKey("k", mallory, "s"), Op: crdt.OpPut, Expiry: now.WallMS() + 60_000, Value: []byte(`{}`)}), replica.ReasonBadValue},
	}
	// The forged certs are well formed: mallory's own writes made the same
	// way verify.
	if errs := identity.NewVerifier("default").Verify([]crdt.Delta{own(99, crdt.Delta{Key: "svc/web/m", Op: crdt.OpPut, Value: up})}); errs[0] != nil {
		t.Fatalf("forge.Cert makes bad certs: %v", errs[0])
	}
	wantRefused := map[string]uint64{}
	replays := uint64(0)
	for _, at := range attempts {
		if at.reason == "" {
			replays++
		} else {
			wantRefused[at.reason]++
		}
	}
	before := map[string][]crdt.Entry{}
	for _, k := range watched {
		for _, a := range as {
			e, _ := a.Store().Get(k)
			before[k] = append(before[k], e)
		}
	}
	unchanged := func(path string) {
		t.Helper()
		for _, k := range watched {
			for i, a := range as {
				e, _ := a.Store().Get(k)
				if crdt.NamespaceOf(k) == crdt.NSNode {
					// Heartbeats go on: the winner must still be a0's own.
					var v crdt.MemberValue
					if w := e.Winner(); w.Stamp.Node != a0.ID() || crdt.Decode(w.Value, &v) != nil || v.Region == "forged" || len(v.Addrs) == 1 && strings.Contains(v.Addrs[0], "6.6.6.6") {
						t.Errorf("%s: %s on %s: heartbeat %+v", path, k, shortID(a.ID()), w)
					}
					continue
				}
				if !e.Equal(before[k][i]) {
					t.Errorf("%s: %s changed on %s: %+v, was %+v", path, k, shortID(a.ID()), e.Deltas, before[k][i].Deltas)
				}
			}
		}
	}
	counted := func(a *Agent, src replica.Source, base replica.PathCounters) error {
		c := a.Replica().Counters()[src]
		for reason, n := range wantRefused {
			if got := c.Refused[reason] - base.Refused[reason]; got < n {
				return fmt.Errorf("%s: %s refused %d as %s, want %d", shortID(a.ID()), src, got, reason, n)
			}
		}
		if got := c.Stale - base.Stale; got < replays {
			return fmt.Errorf("%s: %s admitted %d stale deltas, want %d replays", shortID(a.ID()), src, got, replays)
		}
		return nil
	}
	baseOf := func(src replica.Source) []replica.PathCounters {
		var out []replica.PathCounters
		for _, a := range as {
			out = append(out, a.Replica().Counters()[src])
		}
		return out
	}

	// 1. Gossip: mallory, connected to every agent, publishes each attempt
	// in a message of its own. A canary of its own first shows that its
	// messages reach every agent.
	var join []string
	for _, a := range as {
		join = append(join, a.Addrs()...)
	}
	m := newRawPeerWithKey(t, mKey, join)
	seq := 0
	for _, ns := range crdt.Namespaces {
		eventually(t, 15*time.Second, "mallory's messages on "+string(ns)+" reach every agent", func() error {
			seq++
			var canary crdt.Delta
			switch ns {
			case crdt.NSNode:
				canary = crdt.Delta{Key: crdt.NodeKey(mallory), Op: crdt.OpPut}
			case crdt.NSKernel:
				// A kernel of its own per attempt: a later claim of a
				// kernel's epoch 1 loses to the first and is not kept, so
				// an agent that got an earlier canary would drop this one.
				canary = crdt.Delta{Key: fmt.Sprintf("kernel/canary%d", seq), Op: crdt.OpClaim, Epoch: 1, Expiry: now.WallMS() + 60_000}
			case crdt.NSTask:
				canary = crdt.Delta{Key: "task/canary", Op: crdt.OpPut, Task: crdt.TaskQueued, Value: crdt.Encode(crdt.TaskValue{Owner: mallory})}
			case crdt.NSBlacklist:
				// Not in bl_writers: the canary is refused, and counted.
				canary = crdt.Delta{Key: "bl/canary/c", Op: crdt.OpPut}
			case crdt.NSWait:
				canary = crdt.Delta{Key: crdt.WaitKey("canary", mallory, "c"), Op: crdt.OpPut, Expiry: now.WallMS() + 60_000, Value: crdt.Encode(crdt.WaitValue{SinceMS: 1})}
			case crdt.NSKV:
				canary = crdt.Delta{Key: "kv/canary/c", Op: crdt.OpPut, Value: crdt.Encode(crdt.KVValue{Value: "c", Version: 1})}
			default:
				canary = crdt.Delta{Key: string(ns) + "/canary/c", Op: crdt.OpPut, Value: up}
			}
			canary = own(100+seq, canary)
			refused := baseOf(replica.Gossip)
			if err := m.Publish(ctx, string(ns), envelope(t, canary)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // pace the retries
			for i, a := range as {
				if ns == crdt.NSBlacklist {
					if a.Replica().Counters()[replica.Gossip].Refused[replica.ReasonNotAllowed] == refused[i].Refused[replica.ReasonNotAllowed] {
						return fmt.Errorf("%s did not judge the canary", shortID(a.ID()))
					}
				} else if e, ok := a.Store().Get(canary.Key); !ok || !slices.ContainsFunc(e.Deltas, canary.Equal) {
					return fmt.Errorf("%s lacks the canary", shortID(a.ID()))
				}
			}
			return nil
		})
	}
	base := baseOf(replica.Gossip)
	currentU2 := signedWinner(t, a0, "bl/fraud/u2")
	for i, at := range attempts {
		msg := []crdt.Delta{at.d}
		if at.reason == "" {
			// A replay alone would be the very message its writer sent,
			// which GossipSub drops unseen as a duplicate. Sent with a
			// write of mallory's own (or, on bl, another genuine write),
			// it is a new message, and is judged.
			ns := crdt.NamespaceOf(at.d.Key)
			var companion crdt.Delta
			switch ns {
			case crdt.NSBlacklist:
				companion = currentU2
			case crdt.NSNode:
				companion = own(200+i, crdt.Delta{Key: crdt.NodeKey(mallory), Op: crdt.OpPut})
			case crdt.NSKernel:
				companion = own(200+i, crdt.Delta{Key: "kernel/m", Op: crdt.OpClaim, Epoch: 1, Expiry: now.WallMS() + 60_000})
			case crdt.NSTask:
				companion = own(200+i, crdt.Delta{Key: "task/m", Op: crdt.OpPut, Task: crdt.TaskQueued, Value: crdt.Encode(crdt.TaskValue{Owner: mallory})})
			default:
				companion = own(200+i, crdt.Delta{Key: "svc/web/m", Op: crdt.OpPut, Value: up})
			}
			msg = append(msg, companion)
		}
		if err := m.Publish(ctx, string(crdt.NamespaceOf(at.d.Key)), envelope(t, msg...)); err != nil {
			t.Fatalf("%s: publish: %v", at.name, err)
		}
	}
	eventually(t, 10*time.Second, "every agent counted every gossip attempt", func() error {
		for i, a := range as {
			if err := counted(a, replica.Gossip, base[i]); err != nil {
				return err
			}
		}
		return nil
	})
	unchanged("gossip")

	// 2. Anti-entropy: mallory starts exchanges with each agent and offers
	// the attempts as its state (a tampered relay goes in an exchange of
	// its own: one envelope holds one delta per place in a cert).
	rounds := make([]aeState, 2)
	for _, at := range attempts {
		r := 0
		if strings.HasPrefix(strings.SplitN(at.name, ": ", 2)[1], "relay") {
			r = 1
		}
		rounds[r].entries = append(rounds[r].entries, crdt.Entry{Key: at.d.Key, Deltas: []crdt.Delta{at.d}})
	}
	base = baseOf(replica.AntiEntropy)
	for _, a := range as {
		sent := 0
		for _, st := range rounds {
			s, err := m.OpenStream(ctx, a.Gossip().ID(), antientropy.Protocol("default"))
			if err != nil {
				t.Fatalf("open sync stream to %s: %v", shortID(a.ID()), err)
			}
			stats, err := antientropy.Initiate(s, st, 0)
			_ = s.Close()
			if err != nil {
				t.Fatalf("exchange with %s: %v", shortID(a.ID()), err)
			}
			sent += stats.Sent
		}
		if sent < len(attempts) {
			t.Fatalf("exchanges with %s sent %d of %d attempts", shortID(a.ID()), sent, len(attempts))
		}
	}
	eventually(t, 10*time.Second, "every agent counted every anti-entropy attempt", func() error {
		for i, a := range as {
			if err := counted(a, replica.AntiEntropy, base[i]); err != nil {
				return err
			}
		}
		return nil
	})
	unchanged("anti-entropy")

	// 3. Restore: an agent starts from a state file that holds an attempt
	// (a forged backup): it refuses a forgery as it loads it; a replay is
	// a genuine write and is loaded (merged by stamp like any). One file
	// per attempt, as a register file keeps one write per key. A record in
	// a0's name with no proof at all is refused as unsigned.
	unsigned := crdt.Delta{Key: "svc/web/w0", Stamp: at(a0.ID(), 50), Op: crdt.OpPut, Value: up}
	for _, at := range append(slices.Clone(attempts), attempt{"svc: put in the owner's name, unsigned", unsigned, replica.ReasonUnsigned}) {
		cfg := config.LocalConfig(t.TempDir())
		policy(&cfg)
		cfg.AllowPeers = nil
		st, err := store.Open(filepath.Join(cfg.DataDir, replica.StateFile), store.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		st.Apply(at.d)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		r := startAlone(t, cfg, Options{})
		c := r.Replica().Counters()[replica.Restore]
		var total uint64
		for _, n := range c.Refused {
			total += n
		}
		e, held := r.Store().Get(at.d.Key)
		kept := held && slices.ContainsFunc(e.Deltas, at.d.Equal)
		switch {
		case at.reason == "" && (total != 0 || !kept):
			t.Errorf("restore, %s: refused %v, kept %v; want it loaded", at.name, c.Refused, kept)
		case at.reason != "" && (c.Refused[at.reason] != 1 || total != 1 || kept):
			t.Errorf("restore, %s: refused %v, kept %v; want one refused as %s", at.name, c.Refused, kept, at.reason)
		}
		_ = r.Close()
	}
	t.Logf("refused by path and reason on %s: gossip %v, anti-entropy %v",
		shortID(a0.ID()), a0.Replica().Counters()[replica.Gossip].Refused, a0.Replica().Counters()[replica.AntiEntropy].Refused)
}
