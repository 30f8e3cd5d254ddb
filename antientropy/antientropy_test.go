package antientropy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/digest"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/wire"
)

// sign gives deltas proofs the way writers do, as far as the protocol can
// tell: one cert per writer and batch (the signature is made up; the
// protocol moves proofs, State.Merge checks them).
func sign(ds ...crdt.Delta) []crdt.Delta {
	certs := map[string]*crdt.Cert{}
	for i, d := range ds {
		c := certs[d.Stamp.Node]
		if c == nil || len(c.Hashes) == 64 {
			c = &crdt.Cert{}
			copy(c.Sig[:], fmt.Sprint(d.Stamp.Node, i))
			certs[d.Stamp.Node] = c
		}
		ds[i].Proof = crdt.Proof{Cert: c, Pos: uint16(len(c.Hashes))}
		c.Hashes = append(c.Hashes, wire.Hash(d))
	}
	return ds
}

// replica adapts a store to State.
type replica struct{ s *store.Store }

func (r replica) Digest(before crdt.HLC) digest.Digest { return r.s.Digest(before) }
func (r replica) Entries(prefix string) []crdt.Entry   { return r.s.List(prefix) }
func (r replica) Merge(ds []crdt.Delta) int            { return len(r.s.Apply(ds...)) }

func randomDeltas(r *rand.Rand, n int) []crdt.Delta {
	var out []crdt.Delta
	for i := range n {
		st := crdt.Stamp{HLC: crdt.HLC(r.IntN(50) + 1), Node: fmt.Sprintf("n%d", r.IntN(3))}
		switch r.IntN(3) {
		case 0:
			out = append(out, crdt.Delta{Key: fmt.Sprintf("svc/s/%d", r.IntN(n)), Stamp: st, Op: crdt.OpPut, Value: []byte{byte(i)}})
		case 1:
			out = append(out, crdt.Delta{Key: fmt.Sprintf("bl/l/%d", r.IntN(n)), Stamp: st, Op: crdt.Op(1 + r.IntN(2))})
		case 2:
			out = append(out, crdt.Delta{Key: fmt.Sprintf("kernel/%d", r.IntN(5)), Stamp: st, Op: crdt.OpClaim, Epoch: uint64(r.IntN(3) + 1), Expiry: 1e12})
		}
	}
	return sign(out...)
}

// exchange runs one session between a and b over an in-memory pipe.
func exchange(t *testing.T, a, b State) (Stats, Stats) {
	t.Helper()
	return exchangeBefore(t, a, b, 0)
}

// exchangeBefore runs one session with the given cutoff between a and b.
func exchangeBefore(t *testing.T, a, b State, before crdt.HLC) (Stats, Stats) {
	t.Helper()
	sa, sb, errA, errB := overPipe(
		func(rw io.ReadWriter) (Stats, error) { return Initiate(rw, a, before) },
		func(rw io.ReadWriter) (Stats, error) { return Respond(rw, b) })
	if errA != nil || errB != nil {
		t.Fatalf("initiate: %v; respond: %v", errA, errB)
	}
	return sa, sb
}

// overPipe runs the two sides of one exchange over an in-memory pipe; a
// side that fails closes its end, so the other does not wait for it.
func overPipe(ask, answer func(io.ReadWriter) (Stats, error)) (Stats, Stats, error, error) {
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	type res struct {
		s   Stats
		err error
	}
	done := make(chan res, 1)
	go func() {
		s, err := answer(cb)
		if err != nil {
			cb.Close()
		}
		done <- res{s, err}
	}()
	sa, errA := ask(ca)
	if errA != nil {
		ca.Close()
	}
	r := <-done
	return sa, r.s, errA, r.err
}

func equalStores(a, b *store.Store) error {
	ea, eb := a.List(""), b.List("")
	if len(ea) != len(eb) {
		return fmt.Errorf("%d keys vs %d", len(ea), len(eb))
	}
	for i := range ea {
		if !ea[i].Equal(eb[i]) {
			return fmt.Errorf("differ on %s", ea[i].Key)
		}
	}
	return nil
}

func TestOneExchangeConverges(t *testing.T) {
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 1))
		all := randomDeltas(r, 200)
		a, b, want := store.New(), store.New(), store.New()
		want.Apply(all...)
		for _, d := range all { // each side gets a random part, some both
			switch r.IntN(3) {
			case 0:
				a.Apply(d)
			case 1:
				b.Apply(d)
			default:
				a.Apply(d)
				b.Apply(d)
			}
		}
		exchange(t, replica{a}, replica{b})
		if err := equalStores(a, want); err != nil {
			t.Fatalf("seed %d: initiator: %v", seed, err)
		}
		if err := equalStores(b, want); err != nil {
			t.Fatalf("seed %d: responder: %v", seed, err)
		}
		if d := digest.Diff(digest.Of(a.List("")), digest.Of(b.List(""))); len(d) != 0 {
			t.Fatalf("seed %d: digests still differ in %d buckets", seed, len(d))
		}
	}
}

func TestOnlyDifferingBucketsTravel(t *testing.T) {
	a, b := store.New(), store.New()
	for i := range 5000 {
		d := sign(crdt.Delta{Key: fmt.Sprintf("bl/l/%d", i), Stamp: crdt.Stamp{HLC: 1, Node: "n"}, Op: crdt.OpPut})
		a.Apply(d...)
		b.Apply(d...)
	}
	b.Apply(sign(crdt.Delta{Key: "bl/l/new", Stamp: crdt.Stamp{HLC: 2, Node: "n"}, Op: crdt.OpPut})...)
	sa, sb := exchange(t, replica{a}, replica{b})
	if sa.Buckets != 1 || sb.Buckets != 1 {
		t.Fatalf("buckets %d/%d, want 1", sa.Buckets, sb.Buckets)
	}
	if sa.Repaired != 1 || sb.Repaired != 0 {
		t.Fatalf("repaired %d/%d, want 1/0", sa.Repaired, sb.Repaired)
	}
	if sb.Sent > 5000/digest.Buckets*3 {
		t.Fatalf("responder sent %d deltas for one differing key", sb.Sent)
	}
	if _, ok := a.Get("bl/l/new"); !ok {
		t.Fatal("missing key not repaired")
	}
	// Equal states: nothing but digests travel.
	sa, _ = exchange(t, replica{a}, replica{b})
	if sa.Buckets != 0 || sa.Sent != 0 || sa.Received != 0 {
		t.Fatalf("equal states exchanged %+v", sa)
	}
}

// TestCutoffLeavesRecentWritesOut: under a steady write load both replicas
// lag each other by the writes in flight; a version 2 exchange with a
// cutoff before them compares only what both should hold by now, so it
// sends only the buckets where older state differs, and a later exchange
// (or one with no cutoff) still repairs everything.
func TestCutoffLeavesRecentWritesOut(t *testing.T) {
	a, b := store.New(), store.New()
	for i := range 5000 {
		d := sign(crdt.Delta{Key: fmt.Sprintf("bl/l/%d", i), Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1000, 0), Node: "n"}, Op: crdt.OpPut})
		a.Apply(d...)
		b.Apply(d...)
	}
	// Recent writes, different on each side, in most buckets.
	for i := range 2000 {
		st := crdt.Stamp{HLC: crdt.MakeHLC(5000, uint16(i)), Node: "n"}
		a.Apply(sign(crdt.Delta{Key: fmt.Sprintf("bl/a/%d", i), Stamp: st, Op: crdt.OpPut})...)
		b.Apply(sign(crdt.Delta{Key: fmt.Sprintf("bl/b/%d", i), Stamp: st, Op: crdt.OpPut})...)
	}
	// One old write that b lost, and one key a overwrote recently.
	a.Apply(sign(crdt.Delta{Key: "bl/l/lost", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1500, 0), Node: "n"}, Op: crdt.OpPut},
		crdt.Delta{Key: "bl/l/7", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(5000, 9999), Node: "n"}, Op: crdt.OpDelete})...)

	cutoff := crdt.MakeHLC(2000, 0)
	sa, sb := exchangeBefore(t, replica{a}, replica{b}, cutoff)
	if sa.Buckets > 2 || sb.Buckets > 2 {
		t.Fatalf("buckets %d/%d differ, want at most 2 (the lost key's and the overwritten key's)", sa.Buckets, sb.Buckets)
	}
	if sa.Sent+sb.Sent > 2*(7000/digest.Buckets)*3 {
		t.Fatalf("sent %d+%d deltas for two differing keys", sa.Sent, sb.Sent)
	}
	for _, k := range []string{"bl/l/lost", "bl/l/7"} {
		ea, _ := a.Get(k)
		eb, ok := b.Get(k)
		if !ok || !ea.Equal(eb) {
			t.Fatalf("%s not repaired: %+v vs %+v", k, ea, eb)
		}
	}
	// Equal old state: only digests travel.
	sa, _ = exchangeBefore(t, replica{a}, replica{b}, cutoff)
	if sa.Buckets != 0 || sa.Sent != 0 || sa.Received != 0 {
		t.Fatalf("equal old states exchanged %+v", sa)
	}
	// A later cutoff, or none, covers the recent writes too.
	exchangeBefore(t, replica{a}, replica{b}, crdt.MakeHLC(6000, 0))
	if err := equalStores(a, b); err != nil {
		t.Fatalf("after an exchange with a later cutoff: %v", err)
	}
	c := store.New()
	c.Apply(sign(crdt.Delta{Key: "bl/c/1", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(5000, 1), Node: "m"}, Op: crdt.OpPut})...)
	exchangeBefore(t, replica{a}, replica{c}, 0)
	if err := equalStores(a, c); err != nil {
		t.Fatalf("after an exchange with no cutoff: %v", err)
	}
}

// TestCutoffComparesEveryRecordOfAKernel: a kernel whose holder renews
// all the time always has a fresh record, and its records are pruned to
// the newest renewal. A periodic exchange must still compare it, so that a
// competing claim or a renewal that one replica lost is repaired within
// one interval. (The cutoff first left out every key with a record newer
// than it: with a short lease, two replicas kept different holders for as
// long as the holder renewed. Then it left out the fresh records only:
// since the newest renewal replaces the older ones, every renewal was left
// out, and a replica that missed them saw the lease expire while its
// holder renewed it — make chaos' holders-disagree, and the simulated
// scenario holder-renewal-repair.)
func TestCutoffComparesEveryRecordOfAKernel(t *testing.T) {
	k := func(ms int64, node string, op crdt.Op, epoch uint64, exp int64) crdt.Delta {
		return crdt.Delta{Key: "kernel/k1", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(ms, 0), Node: node}, Op: op, Epoch: epoch, Expiry: exp}
	}
	cutoff := crdt.MakeHLC(5000, 0) // renewals at 9000 are too fresh to compare
	t.Run("lost claim", func(t *testing.T) {
		claimA := sign(k(1000, "a", crdt.OpClaim, 1, 4000))
		claimB := sign(k(999, "b", crdt.OpClaim, 1, 4000)) // earlier: b wins epoch 1
		renewA := sign(k(9000, "a", crdt.OpRenew, 1, 12000))
		x, y := store.New(), store.New()
		x.Apply(claimA[0], claimB[0], renewA[0])
		y.Apply(claimA[0], renewA[0]) // y lost b's claim
		if crdt.Resolve(mustGet(t, x, "kernel/k1")).Holder == crdt.Resolve(mustGet(t, y, "kernel/k1")).Holder {
			t.Fatal("test setup: the replicas agree already")
		}
		sa, _ := exchangeBefore(t, replica{y}, replica{x}, cutoff)
		if sa.Repaired == 0 {
			t.Fatal("a lost claim was not repaired because the kernel has a fresh record")
		}
		if hx, hy := crdt.Resolve(mustGet(t, x, "kernel/k1")), crdt.Resolve(mustGet(t, y, "kernel/k1")); hx.Holder != hy.Holder || hx.Holder != "b" {
			t.Fatalf("holders after the exchange: %s and %s, want b", hx.Holder, hy.Holder)
		}
	})
	t.Run("lost renewals", func(t *testing.T) {
		claim := sign(k(1000, "a", crdt.OpClaim, 1, 4000))
		renew := sign(k(9000, "a", crdt.OpRenew, 1, 12000))
		x, y := store.New(), store.New()
		x.Apply(claim[0], renew[0])
		y.Apply(claim[0]) // y missed every renewal: to it the lease expired at 4000
		sa, _ := exchangeBefore(t, replica{y}, replica{x}, cutoff)
		if sa.Repaired == 0 {
			t.Fatal("the holder's renewal was not repaired: it is always fresher than the cutoff")
		}
		if ly := crdt.Resolve(mustGet(t, y, "kernel/k1")); ly.Expiry != 12000 {
			t.Fatalf("expiry after the exchange %d, want 12000", ly.Expiry)
		}
		if sa, _ := exchangeBefore(t, replica{y}, replica{x}, cutoff); sa.Buckets != 0 {
			t.Fatalf("equal kernels still differ: %+v", sa)
		}
	})
}

func mustGet(t *testing.T, s *store.Store, key string) crdt.Entry {
	t.Helper()
	e, ok := s.Get(key)
	if !ok {
		t.Fatalf("no %s", key)
	}
	return e
}

// TestUnsignedDeltasStay: a local write whose batch is not signed yet is
// not sent (no peer would accept it); once signed, it is.
func TestUnsignedDeltasStay(t *testing.T) {
	a, b := store.New(), store.New()
	d := crdt.Delta{Key: "bl/l/1", Stamp: crdt.Stamp{HLC: 1, Node: "n"}, Op: crdt.OpPut}
	a.Apply(d)
	sa, _ := exchange(t, replica{a}, replica{b})
	if sa.Sent != 0 || b.Len() != 0 {
		t.Fatalf("an unsigned delta travelled: %+v", sa)
	}
	a.Attach(sign(d))
	exchange(t, replica{a}, replica{b})
	if b.Len() != 1 {
		t.Fatal("the delta did not travel once signed")
	}
}

// rw reads from one buffer and writes to another.
type rw struct {
	io.Reader
	io.Writer
}

func TestBadFramesAreRefused(t *testing.T) {
	for name, in := range map[string][]byte{
		"wrong frame type": {frameDone, 0},
		"oversized frame":  {frameDigest, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"garbage digest":   {frameDigest, 3, 'a', 'b', 'c'},
		"short digest":     append([]byte{frameDigest, 2}, 0x81, 0x80),
		"truncated":        {frameDigest, 10, 1},
	} {
		var out bytes.Buffer
		_, err := Respond(rw{bytes.NewReader(in), &out}, replica{store.New()})
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if name != "truncated" && !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err %v, want ErrProtocol", name, err)
		}
	}
	for name, in := range map[string][]byte{
		"no digest":     {frameDigest, 3, 0x82, 0x01, 0x80},
		"not a cutoff":  {frameDigest, 3, 0x82, 0x61, 'x', 0x80},
		"short digest2": {frameDigest, 4, 0x82, 0x01, 0x81, 0x80},
	} {
		var out bytes.Buffer
		if _, err := Respond(rw{bytes.NewReader(in), &out}, replica{store.New()}); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err %v, want ErrProtocol", name, err)
		}
	}
}

// TestUnsignedEntriesAreRefused: entries in an envelope of an older
// version (unsigned deltas) end the session as a protocol error and
// change nothing.
func TestUnsignedEntriesAreRefused(t *testing.T) {
	var in bytes.Buffer
	if err := writeFrame(&in, frameDigest, digestFrame{Digest: digest.Of(nil)}); err != nil {
		t.Fatal(err)
	}
	// [2, ["n"], [["bl/l/1", 1, 0, 1, 0, 0, 0, h'']]]: version 2, unsigned.
	v2 := []byte{0x83, 0x02, 0x81, 0x61, 'n', 0x81, 0x88, 0x66, 'b', 'l', '/', 'l', '/', '1', 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x40}
	if err := writeRaw(&in, frameEntries, v2); err != nil {
		t.Fatal(err)
	}
	st := store.New()
	if _, err := Respond(rw{&in, &bytes.Buffer{}}, replica{st}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v, want ErrProtocol", err)
	}
	if st.Len() != 0 {
		t.Fatal("unsigned entries changed the state")
	}
}

// FuzzRespond feeds arbitrary bytes to a responder: it must never panic
// and must refuse or complete without touching state it was not sent.
func FuzzRespond(f *testing.F) {
	f.Add([]byte{frameDone, 0})
	f.Add([]byte{frameDigest, 3, 'a', 'b', 'c'})
	f.Add([]byte{frameDigest, 4, 0x82, 0x01, 0x81, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = Respond(rw{bytes.NewReader(in), &bytes.Buffer{}}, replica{store.New()})
	})
}
