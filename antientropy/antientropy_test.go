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
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	type res struct {
		s   Stats
		err error
	}
	done := make(chan res, 1)
	go func() {
		s, err := Respond(cb, b)
		done <- res{s, err}
	}()
	sa, err := Initiate(ca, a)
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
}

// FuzzRespond feeds arbitrary bytes to a responder: it must never panic
// and must refuse or complete without touching state it was not sent.
func FuzzRespond(f *testing.F) {
	f.Add([]byte{frameDone, 0})
	f.Add([]byte{frameDigest, 3, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = Respond(rw{bytes.NewReader(in), &bytes.Buffer{}}, replica{store.New()})
	})
}
