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
	"github.com/rumor-dev/rumor/store"
)

// replica adapts a store to State.
type replica struct{ s *store.Store }

func (r replica) Entries(prefix string) []crdt.Entry { return r.s.List(prefix) }
func (r replica) Merge(ds []crdt.Delta) int          { return len(r.s.Apply(ds...)) }

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
	return out
}

// exchange runs one session between a and b over an in-memory pipe.
func exchange(t *testing.T, a, b State) (Stats, Stats) {
	t.Helper()
	return exchangeWith(t, a, b, Initiate, Respond)
}

// exchangeBefore runs one session of protocol version 2 with the given
// cutoff between a and b.
func exchangeBefore(t *testing.T, a, b State, before crdt.HLC) (Stats, Stats) {
	t.Helper()
	return exchangeWith(t, a, b, func(rw io.ReadWriter, st State) (Stats, error) { return InitiateBefore(rw, st, before) }, RespondV2)
}

func exchangeWith(t *testing.T, a, b State, initiate, respond func(io.ReadWriter, State) (Stats, error)) (Stats, Stats) {
	t.Helper()
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	type res struct {
		s   Stats
		err error
	}
	done := make(chan res, 1)
	go func() {
		s, err := respond(cb, b)
		done <- res{s, err}
	}()
	sa, err := initiate(ca, a)
	if err != nil {
		t.Fatalf("initiate: %v", err)
	}
	rb := <-done
	if rb.err != nil {
		t.Fatalf("respond: %v", rb.err)
	}
	return sa, rb.s
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
		if d := Diff(DigestOf(a.List("")), DigestOf(b.List(""))); len(d) != 0 {
			t.Fatalf("seed %d: digests still differ in %d buckets", seed, len(d))
		}
	}
}

func TestOnlyDifferingBucketsTravel(t *testing.T) {
	a, b := store.New(), store.New()
	for i := range 5000 {
		d := crdt.Delta{Key: fmt.Sprintf("bl/l/%d", i), Stamp: crdt.Stamp{HLC: 1, Node: "n"}, Op: crdt.OpPut}
		a.Apply(d)
		b.Apply(d)
	}
	b.Apply(crdt.Delta{Key: "bl/l/new", Stamp: crdt.Stamp{HLC: 2, Node: "n"}, Op: crdt.OpPut})
	sa, sb := exchange(t, replica{a}, replica{b})
	if sa.Buckets != 1 || sb.Buckets != 1 {
		t.Fatalf("buckets %d/%d, want 1", sa.Buckets, sb.Buckets)
	}
	if sa.Repaired != 1 || sb.Repaired != 0 {
		t.Fatalf("repaired %d/%d, want 1/0", sa.Repaired, sb.Repaired)
	}
	if sb.Sent > 5000/Buckets*3 {
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
		d := crdt.Delta{Key: fmt.Sprintf("bl/l/%d", i), Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1000, 0), Node: "n"}, Op: crdt.OpPut}
		a.Apply(d)
		b.Apply(d)
	}
	// Recent writes, different on each side, in most buckets.
	for i := range 2000 {
		st := crdt.Stamp{HLC: crdt.MakeHLC(5000, uint16(i)), Node: "n"}
		a.Apply(crdt.Delta{Key: fmt.Sprintf("bl/a/%d", i), Stamp: st, Op: crdt.OpPut})
		b.Apply(crdt.Delta{Key: fmt.Sprintf("bl/b/%d", i), Stamp: st, Op: crdt.OpPut})
	}
	// One old write that b lost, and one key a overwrote recently.
	a.Apply(crdt.Delta{Key: "bl/l/lost", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1500, 0), Node: "n"}, Op: crdt.OpPut})
	a.Apply(crdt.Delta{Key: "bl/l/7", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(5000, 9999), Node: "n"}, Op: crdt.OpDelete})

	cutoff := crdt.MakeHLC(2000, 0)
	sa, sb := exchangeBefore(t, replica{a}, replica{b}, cutoff)
	if sa.Buckets > 2 || sb.Buckets > 2 {
		t.Fatalf("buckets %d/%d differ, want at most 2 (the lost key's and the overwritten key's)", sa.Buckets, sb.Buckets)
	}
	if sa.Sent+sb.Sent > 2*(7000/Buckets)*3 {
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
	c.Apply(crdt.Delta{Key: "bl/c/1", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(5000, 1), Node: "m"}, Op: crdt.OpPut})
	exchangeBefore(t, replica{a}, replica{c}, 0)
	if err := equalStores(a, c); err != nil {
		t.Fatalf("after an exchange with no cutoff: %v", err)
	}
}

// TestVersionsDoNotMix: a version 1 responder refuses a version 2 digest
// and the other way round, rather than misreading it.
func TestVersionsDoNotMix(t *testing.T) {
	a, b := store.New(), store.New()
	a.Apply(crdt.Delta{Key: "bl/l/1", Stamp: crdt.Stamp{HLC: 1, Node: "n"}, Op: crdt.OpPut})
	for _, tc := range []struct {
		name     string
		initiate func(io.ReadWriter, State) (Stats, error)
		respond  func(io.ReadWriter, State) (Stats, error)
	}{
		{"v2 to v1", func(rw io.ReadWriter, st State) (Stats, error) { return InitiateBefore(rw, st, 0) }, Respond},
		{"v1 to v2", Initiate, RespondV2},
	} {
		ca, cb := net.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := tc.respond(cb, replica{b})
			cb.Close()
			done <- err
		}()
		_, _ = tc.initiate(ca, replica{a})
		ca.Close()
		if err := <-done; !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: responder err = %v, want ErrProtocol", tc.name, err)
		}
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
		"version 1 digest":   append([]byte{frameDigest, 2}, 0x81, 0x80),
		"garbage digest":     {frameDigestBefore, 3, 'a', 'b', 'c'},
		"no digest":          {frameDigestBefore, 3, 0x82, 0x01, 0x80},
		"not a cutoff":       {frameDigestBefore, 3, 0x82, 0x61, 'x', 0x80},
		"short digest":       {frameDigestBefore, 4, 0x82, 0x01, 0x81, 0x80},
		"oversized frame v2": {frameDigestBefore, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		var out bytes.Buffer
		if _, err := RespondV2(rw{bytes.NewReader(in), &out}, replica{store.New()}); !errors.Is(err, ErrProtocol) {
			t.Errorf("v2 %s: err %v, want ErrProtocol", name, err)
		}
	}
}

// FuzzRespond feeds arbitrary bytes to a responder: it must never panic
// and must refuse or complete without touching state it was not sent.
func FuzzRespond(f *testing.F) {
	f.Add([]byte{frameDone, 0})
	f.Add([]byte{frameDigest, 3, 'a', 'b', 'c'})
	f.Add([]byte{frameDigestBefore, 4, 0x82, 0x01, 0x81, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = Respond(rw{bytes.NewReader(in), &bytes.Buffer{}}, replica{store.New()})
		_, _ = RespondV2(rw{bytes.NewReader(in), &bytes.Buffer{}}, replica{store.New()})
	})
}
