package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/wire"
)

// node is a writer with its own key, for tests: it signs its own deltas.
type node struct{ *identity.Signer }

func newNode(t testing.TB) node {
	t.Helper()
	k, _, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s, err := identity.NewSigner(k, "test")
	if err != nil {
		t.Fatal(err)
	}
	return node{s}
}

// sign stamps ds as written by n at hlc (then hlc+1, ...) and signs them as
// one batch.
func (n node) sign(t testing.TB, hlc crdt.HLC, ds ...crdt.Delta) []crdt.Delta {
	t.Helper()
	out := slices.Clone(ds)
	for i := range out {
		out[i].Stamp = crdt.Stamp{HLC: hlc + crdt.HLC(i), Node: n.ID()}
	}
	if err := n.Sign(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// open opens a replica of node self in a fresh dir.
func open(t testing.TB, self node, clk clock.Clock, mod func(*Config)) *Replica {
	t.Helper()
	cfg := Config{
		DataDir: t.TempDir(), MaxSkew: 2 * time.Second, TombstoneHorizon: 24 * time.Hour,
		BatchMaxDeltas: 256, BatchMaxBytes: 64 << 10,
		Limits: Limits{MaxKeyBytes: 40, MaxValueBytes: 300, MaxTags: 3, MaxDeltasPerMessage: 5},
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := Open(cfg, Deps{Signer: self.Signer, Verifier: identity.NewVerifier("test"), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

var t0 = time.UnixMilli(1_800_000_000_000)

func hlcAt(tm time.Time) crdt.HLC { return crdt.MakeHLC(tm.UnixMilli(), 0) }

func put(key, status string) crdt.Delta {
	return crdt.Delta{Key: key, Op: crdt.OpPut, Value: crdt.Encode(crdt.ServiceValue{Status: status})}
}

func reasonsOf(errs []error) []string {
	var out []string
	for _, err := range errs {
		out = append(out, ReasonOf(err))
	}
	return out
}

// TestLimitsOnEveryPath: a delta at each entry bound is admitted, one over
// it refused as "limit", whether it comes by gossip, anti-entropy or a
// local write, and nothing changes.
func TestLimitsOnEveryPath(t *testing.T) {
	w := newNode(t)
	clk := clock.NewFake(t0)
	inst32, inst33 := strings.Repeat("i", 32), strings.Repeat("i", 33)
	val := func(n int) []byte {
		over := len(crdt.Encode(crdt.ServiceValue{Addr: "a", Status: "up"})) - 1
		return crdt.Encode(crdt.ServiceValue{Addr: strings.Repeat("a", n-over), Status: "up"})
	}
	tags := func(n int) []byte {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprint("t", i)] = "v"
		}
		return crdt.Encode(crdt.ServiceValue{Status: "up", Tags: m})
	}
	for _, tc := range []struct {
		name string
		d    crdt.Delta
		ok   bool
	}{
		{"key at max_key_bytes", crdt.Delta{Key: "svc/web/" + inst32, Op: crdt.OpPut, Value: tags(0)}, true},
		{"key over max_key_bytes", crdt.Delta{Key: "svc/web/" + inst33, Op: crdt.OpPut, Value: tags(0)}, false},
		{"value at max_value_bytes", crdt.Delta{Key: "svc/web/v", Op: crdt.OpPut, Value: val(300)}, true},
		{"value over max_value_bytes", crdt.Delta{Key: "svc/web/v", Op: crdt.OpPut, Value: val(301)}, false},
		{"tags at max_tags", crdt.Delta{Key: "svc/web/t", Op: crdt.OpPut, Value: tags(3)}, true},
		{"tags over max_tags", crdt.Delta{Key: "svc/web/t", Op: crdt.OpPut, Value: tags(4)}, false},
	} {
		for _, path := range []Source{Gossip, AntiEntropy, Local} {
			r := open(t, newNode(t), clk, nil)
			var err error
			switch path {
			case Gossip:
				err = r.Gossip("svc", envelopeOf(t, w.sign(t, hlcAt(t0), tc.d)...))
			case AntiEntropy:
				_, errs := r.ingest(AntiEntropy, w.sign(t, hlcAt(t0), tc.d), false)
				err = errs[0]
			case Local:
				_, _, err = r.Write(tc.d)
				if err != nil && errors.Is(err, ErrLimit) {
					err = &Refusal{Reason: ReasonLimit, Err: err}
				}
			}
			if tc.ok != (err == nil) || (!tc.ok && ReasonOf(err) != ReasonLimit) {
				t.Errorf("%s by %s: %v, want admitted %v", tc.name, path, err, tc.ok)
			}
			if _, held := r.Store().Get(tc.d.Key); held != tc.ok {
				t.Errorf("%s by %s: stored %v", tc.name, path, held)
			}
			if !tc.ok && r.Counters()[path].Refused[ReasonLimit] != 1 {
				t.Errorf("%s by %s: counted %v", tc.name, path, r.Counters()[path].Refused)
			}
		}
	}
	// max_deltas_per_message bounds a gossip message.
	r := open(t, newNode(t), clk, nil)
	var five []crdt.Delta
	for i := range 6 {
		five = append(five, crdt.Delta{Key: fmt.Sprint("bl/l/", i), Op: crdt.OpPut})
	}
	if err := r.Gossip("bl", envelopeOf(t, w.sign(t, hlcAt(t0), five[:5]...)...)); err != nil {
		t.Errorf("5 deltas: %v", err)
	}
	if err := r.Gossip("bl", envelopeOf(t, w.sign(t, hlcAt(t0.Add(time.Second)), five...)...)); ReasonOf(err) != ReasonLimit {
		t.Errorf("6 deltas: %v, want limit", err)
	}
}

func envelopeOf(t testing.TB, ds ...crdt.Delta) []byte {
	t.Helper()
	b, err := wire.Encode(ds)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOneIngestForEveryPath: the same forged, unsigned, out-of-policy,
// skewed and good deltas get the same verdicts by gossip and by
// anti-entropy, each counted under its path; gossip refuses a whole
// message for one bad delta, anti-entropy only that delta.
func TestOneIngestForEveryPath(t *testing.T) {
	clk := clock.NewFake(t0)
	w, other, writer := newNode(t), newNode(t), newNode(t)
	good := w.sign(t, hlcAt(t0), put("svc/web/w", "up"))[0]
	forged := other.sign(t, hlcAt(t0), put("svc/web/x", "up"))[0]
	forged.Stamp.Node = w.ID() // in w's name, with other's signature
	unsigned := crdt.Delta{Key: "svc/web/u", Stamp: crdt.Stamp{HLC: hlcAt(t0), Node: w.ID()}, Op: crdt.OpPut, Value: good.Value}
	notAllowed := other.sign(t, hlcAt(t0), crdt.Delta{Key: "bl/fraud/1", Op: crdt.OpPut})[0]
	notOwner := other.sign(t, hlcAt(t0), crdt.Delta{Key: crdt.NodeKey(w.ID()), Op: crdt.OpPut})[0]
	skewed := w.sign(t, hlcAt(t0.Add(time.Minute)), put("svc/web/s", "up"))[0]
	all := []crdt.Delta{good, forged, unsigned, notAllowed, notOwner, skewed}
	want := []string{"", ReasonForged, ReasonUnsigned, ReasonNotAllowed, ReasonNotOwner, ReasonClockSkew}
	bl := func(c *Config) { c.BLWriters, c.Limits.MaxKeyBytes = []string{writer.ID()}, 512 }

	ae := open(t, newNode(t), clk, bl)
	n, errs := ae.ingest(AntiEntropy, all, false)
	if got := reasonsOf(errs); !slices.Equal(got, want) || n != 1 {
		t.Fatalf("anti-entropy: applied %d, reasons %q, want 1 and %q", n, got, want)
	}
	for i, d := range all {
		if _, held := ae.Store().Get(d.Key); held != (want[i] == "") {
			t.Errorf("anti-entropy: %s held %v", d.Key, held)
		}
	}
	c := ae.Counters()[AntiEntropy]
	if c.Applied != 1 || c.Refused[ReasonForged] != 1 || c.Refused[ReasonClockSkew] != 1 {
		t.Errorf("anti-entropy counters %+v", c)
	}

	g := open(t, newNode(t), clk, bl)
	for i, d := range all {
		if d.Proof.Cert == nil {
			continue // an envelope carries signed deltas only
		}
		err := g.Gossip(string(crdt.NamespaceOf(d.Key)), envelopeOf(t, d))
		if ReasonOf(err) != want[i] {
			t.Errorf("gossip %s: %v, want %q", d.Key, err, want[i])
		}
	}
	// One bad delta refuses its whole message.
	both := w.sign(t, hlcAt(t0.Add(time.Second)), put("svc/web/a", "up"), put("svc/web/b", "up"))
	both[1].Value = crdt.Encode(crdt.ServiceValue{Status: "down"}) // no longer what was signed
	if err := g.Gossip("svc", envelopeOf(t, both...)); ReasonOf(err) != ReasonForged {
		t.Errorf("message with one forged delta: %v", err)
	}
	if _, held := g.Store().Get("svc/web/a"); held {
		t.Error("gossip applied part of a refused message")
	}
	if c := g.Counters()[Gossip]; c.Refused[ReasonForged] != 3 || c.Applied != 1 {
		t.Errorf("gossip counters %+v, want 3 forged (1 + the whole message of 2) and 1 applied", c)
	}
}

// TestReplayChangesNothing: an old signed delta sent again, by any path,
// merges to no change and is counted as stale.
func TestReplayChangesNothing(t *testing.T) {
	clk := clock.NewFake(t0)
	w := newNode(t)
	add := w.sign(t, hlcAt(t0), crdt.Delta{Key: "bl/fraud/u1", Op: crdt.OpPut})[0]
	rm := w.sign(t, hlcAt(t0.Add(time.Second)), crdt.Delta{Key: "bl/fraud/u1", Op: crdt.OpDelete})[0]
	r := open(t, newNode(t), clk, nil)
	if err := r.Gossip("bl", envelopeOf(t, add)); err != nil {
		t.Fatal(err)
	}
	if _, errs := r.ingest(AntiEntropy, []crdt.Delta{rm}, false); errs[0] != nil {
		t.Fatal(errs[0])
	}
	for _, path := range []Source{Gossip, AntiEntropy} {
		before := r.Counters()[path].Stale
		if path == Gossip {
			if err := r.Gossip("bl", envelopeOf(t, add)); err != nil {
				t.Fatal(err)
			}
		} else if n, _ := r.ingest(AntiEntropy, []crdt.Delta{add}, false); n != 0 {
			t.Fatal("replay changed the state")
		}
		if e, _ := r.Store().Get("bl/fraud/u1"); e.Winner().Op != crdt.OpDelete {
			t.Fatalf("replay by %s undid the remove", path)
		}
		if r.Counters()[path].Stale != before+1 {
			t.Errorf("replay by %s not counted as stale", path)
		}
	}
}

// TestEpochBound: a lease record past the ceiling is refused, whatever the
// replica holds (a claim at 2^64−1 would leave the kernel unclaimable). A
// record several epochs past the last one held is taken: a replica that
// missed epochs (partitioned while the kernel changed hands) gets the
// current epoch's records alone, the older ones having been pruned, and
// must converge on them.
func TestEpochBound(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b := newNode(t), newNode(t)
	claim := func(n node, epoch uint64, at time.Time) crdt.Delta {
		return n.sign(t, hlcAt(at), crdt.Delta{Key: "kernel/k", Op: crdt.OpClaim, Epoch: epoch, Expiry: at.Add(time.Minute).UnixMilli()})[0]
	}
	r := open(t, newNode(t), clk, nil)
	if err := r.Gossip("kernel", envelopeOf(t, claim(a, 5, t0))); err != nil {
		t.Fatalf("a claim at epoch 5: %v", err)
	}
	// What a peer that saw epochs 6 to 8 come and go holds: epoch 9 alone.
	if n, errs := r.ingest(AntiEntropy, []crdt.Delta{claim(b, 9, t0.Add(time.Second))}, false); errs[0] != nil || n != 1 {
		t.Fatalf("epoch 9 after 5, by anti-entropy: %v", errs[0])
	}
	if l := crdt.Resolve(mustGet(t, r, "kernel/k")); l.Epoch != 9 || l.Holder != b.ID() {
		t.Errorf("lease %+v, want b's epoch 9", l)
	}
	var ref *Refusal
	for _, e := range []uint64{EpochCeiling + 1, 1<<64 - 1} {
		d := a.sign(t, hlcAt(t0.Add(4*time.Millisecond)), crdt.Delta{Key: "kernel/new", Op: crdt.OpClaim, Epoch: e, Expiry: t0.Add(time.Minute).UnixMilli()})[0]
		err := r.Gossip("kernel", envelopeOf(t, d))
		if !errors.As(err, &ref) || ref.Reason != ReasonBadEpoch || ref.Ignore {
			t.Errorf("epoch %d: %v, want bad-epoch", e, err)
		}
	}
	if _, ok := r.Store().Get("kernel/new"); ok {
		t.Error("a claim past the ceiling was stored")
	}
	if err := r.Gossip("kernel", envelopeOf(t, a.sign(t, hlcAt(t0.Add(5*time.Millisecond)), crdt.Delta{Key: "kernel/top", Op: crdt.OpClaim, Epoch: EpochCeiling, Expiry: t0.Add(time.Minute).UnixMilli()})...)); err != nil {
		t.Errorf("a claim at the ceiling: %v", err)
	}
}

func mustGet(t testing.TB, r *Replica, key string) crdt.Entry {
	t.Helper()
	e, ok := r.Store().Get(key)
	if !ok {
		t.Fatalf("no %s", key)
	}
	return e
}

// TestLocalWriteIsSignedAndPublished: a local write is stored at once,
// then signed in its batch and published; the store takes the proof.
func TestLocalWriteIsSignedAndPublished(t *testing.T) {
	self := newNode(t)
	r := open(t, self, clock.NewFake(t0), nil)
	pub := &capture{ch: make(chan []byte, 4)}
	r.Start(pub)
	d, changed, err := r.Write(put("svc/web/me", "up"))
	if err != nil || !changed {
		t.Fatalf("write: %v, changed %v", err, changed)
	}
	if d.Stamp.Node != self.ID() || d.Stamp.HLC < hlcAt(t0) {
		t.Fatalf("stamp %+v", d.Stamp)
	}
	var msg []byte
	select {
	case msg = <-pub.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing published")
	}
	ds, err := wire.Decode(msg, wire.Limits{})
	if err != nil || len(ds) != 1 || !ds[0].Equal(d) {
		t.Fatalf("published %v, %+v", err, ds)
	}
	if errs := identity.NewVerifier("test").Verify(ds); errs[0] != nil {
		t.Fatalf("published delta does not verify: %v", errs[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	for e := mustGet(t, r, "svc/web/me"); e.Deltas[0].Proof.Cert == nil; e = mustGet(t, r, "svc/web/me") {
		if time.Now().After(deadline) {
			t.Fatal("the stored delta never took its proof")
		}
		time.Sleep(time.Millisecond)
	}
	// A write peers would refuse is never kept: not this node's heartbeat.
	if _, _, err := r.Write(crdt.Delta{Key: "node/someone-else", Op: crdt.OpPut}); ReasonOf(err) != ReasonNotOwner {
		t.Errorf("a write in another node's key: %v", err)
	}
}

// capture is a Publisher that keeps what it is given.
type capture struct{ ch chan []byte }

func (c *capture) Publish(_ context.Context, _ string, data []byte) error {
	c.ch <- data
	return nil
}

// TestRestoreVerifiesTheStateFile: records of the state file pass the same
// admission as any delta: a forged or unsigned record of another node is
// dropped and counted under "restore"; this node's own unsigned writes are
// kept, to be signed and published.
func TestRestoreVerifiesTheStateFile(t *testing.T) {
	self, w := newNode(t), newNode(t)
	clk := clock.NewFake(t0)
	dir := t.TempDir()
	in := func(c *Config) { c.DataDir = dir }
	r := open(t, self, clk, in)
	good := w.sign(t, hlcAt(t0), put("svc/web/good", "up"))[0]
	forged := w.sign(t, hlcAt(t0), put("svc/web/forged", "up"))[0]
	forged.Value = crdt.Encode(crdt.ServiceValue{Status: "forged"})
	unsignedOther := crdt.Delta{Key: "svc/web/theirs", Stamp: crdt.Stamp{HLC: hlcAt(t0), Node: w.ID()}, Op: crdt.OpPut, Value: good.Value}
	mine := crdt.Delta{Key: "svc/web/mine", Stamp: crdt.Stamp{HLC: hlcAt(t0), Node: self.ID()}, Op: crdt.OpPut, Value: good.Value}
	// Written to the store directly, as a tampered file or foreign backup would hold them.
	r.Store().Apply(good, forged, unsignedOther, mine)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := open(t, self, clk, in)
	for key, want := range map[string]bool{"svc/web/good": true, "svc/web/forged": false, "svc/web/theirs": false, "svc/web/mine": true} {
		if _, held := r2.Store().Get(key); held != want {
			t.Errorf("after restart, %s held %v, want %v", key, held, want)
		}
	}
	c := r2.Counters()[Restore]
	if c.Refused[ReasonForged] != 1 || c.Refused[ReasonUnsigned] != 1 {
		t.Errorf("restore counters %v", c.Refused)
	}
	pub := &capture{ch: make(chan []byte, 4)}
	r2.Start(pub)
	select {
	case msg := <-pub.ch:
		ds, err := wire.Decode(msg, wire.Limits{})
		if err != nil || len(ds) != 1 || ds[0].Key != "svc/web/mine" {
			t.Fatalf("published %v %+v, want the own unsigned write", err, ds)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the own unsigned write was not published")
	}
}

// TestWriteIfJudgesTheEntryAtTheWrite: WriteIf's condition sees the key's
// entry as it is when the write is made, and its error stops the write.
func TestWriteIfJudgesTheEntryAtTheWrite(t *testing.T) {
	self := newNode(t)
	r := open(t, self, clock.System{}, nil)
	first, _, err := r.Write(put("svc/web/a", "up"))
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("held")
	var seen crdt.Entry
	_, changed, err := r.WriteIf(put("svc/web/a", "down"), func(cur crdt.Entry) error { seen = cur; return stop })
	if !errors.Is(err, stop) || changed {
		t.Fatalf("WriteIf with a refusing condition: changed %v, err %v", changed, err)
	}
	if w := seen.Winner(); !w.Equal(first) {
		t.Fatalf("condition saw %+v, want the first write", w)
	}
	if e, _ := r.Store().Get("svc/web/a"); !e.Winner().Equal(first) {
		t.Fatalf("store holds %+v after a refused WriteIf", e.Winner())
	}
	if _, changed, err := r.WriteIf(put("svc/web/a", "down"), func(crdt.Entry) error { return nil }); err != nil || !changed {
		t.Fatalf("WriteIf with a passing condition: changed %v, err %v", changed, err)
	}
}

// BenchmarkGossipIngest is the validator's work for one gossip message of
// one signed svc delta with tags, as a peer publishes it: decode, limits,
// signature, policy, merge.
func BenchmarkGossipIngest(b *testing.B) {
	self, peer := newNode(b), newNode(b)
	clk := clock.NewFake(t0)
	r := open(b, self, clk, func(c *Config) {
		c.Limits = Limits{MaxKeyBytes: 512, MaxValueBytes: 64 << 10, MaxTags: 64, MaxDeltasPerMessage: 4096}
	})
	tags := map[string]string{"zone": "eu-west-1a", "version": "1.24.3", "owner": "payments", "canary": "false"}
	msgs := make([][]byte, b.N)
	for i := range msgs {
		d := crdt.Delta{Key: fmt.Sprintf("svc/web/%d", i), Op: crdt.OpPut,
			Value: crdt.Encode(crdt.ServiceValue{Addr: "10.1.2.3:8080", Status: "up", Tags: tags})}
		msgs[i] = envelopeOf(b, peer.sign(b, hlcAt(t0), d)...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := r.Gossip("svc", msgs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
