package digest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

func TestCutoffRoundsDownToASecond(t *testing.T) {
	for _, c := range []struct {
		in, want crdt.HLC
	}{
		{crdt.MakeHLC(1999, 5), crdt.MakeHLC(999, math.MaxUint16)},
		{crdt.MakeHLC(2000, 0), crdt.MakeHLC(1999, math.MaxUint16)},
		{crdt.MakeHLC(1999, math.MaxUint16), crdt.MakeHLC(1999, math.MaxUint16)},
		{crdt.MakeHLC(2500, math.MaxUint16), crdt.MakeHLC(1999, math.MaxUint16)},
		{crdt.MakeHLC(500, 1), 0},
		{0, 0},
	} {
		if got := Cutoff(c.in); got != c.want {
			t.Errorf("Cutoff(%v) = %v, want %v", c.in, got, c.want)
		}
		if got := Cutoff(c.in); got > c.in {
			t.Errorf("Cutoff(%v) = %v rounds up", c.in, got)
		}
	}
}

// TestTrackerMatchesBefore changes a set of entries at random (registers of
// every namespace and kernels, written, replaced and removed, with stamps
// spread over minutes) through a Tracker, and checks at random moments
// that its digest equals the one computed from every entry, for no cutoff,
// rounded cutoffs moving forward and back (within the window and beyond
// it) and unrounded ones.
func TestTrackerMatchesBefore(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	keys := []string{"svc/a/1", "svc/a/2", "svc/b/1", "bl/l/x", "bl/l/y", "task/t1", "node/n1", "node/n1/n2", "wait/k/n1.1", "kernel/k1", "kernel/k2"}
	for trial := range 50 {
		state := map[string][]crdt.Delta{}
		var tr Tracker
		var latest int64 // the newest rounded cutoff's first slot
		now := int64(1_000_000 + rng.IntN(1_000_000))
		entries := func() []crdt.Entry {
			var out []crdt.Entry
			for k, ds := range state {
				out = append(out, crdt.Entry{Key: k, Deltas: ds})
			}
			return out
		}
		s0 := func(h crdt.HLC) int64 { s, _ := boundary(h); return s }
		scan := func(visit func(string, []crdt.Delta)) {
			for k, ds := range state {
				visit(k, ds)
			}
		}
		for step := range 400 {
			now += int64(rng.IntN(700))
			k := keys[rng.IntN(len(keys))]
			stamp := crdt.Stamp{HLC: crdt.MakeHLC(now-int64(rng.IntN(90_000)), uint16(rng.IntN(3))), Node: fmt.Sprint("n", rng.IntN(3))}
			d := crdt.Delta{Key: k, Stamp: stamp, Op: crdt.OpPut, Value: []byte(fmt.Sprint(step))}
			tr.Toggle(k, state[k]) // out with the old
			switch {
			case rng.IntN(8) == 0:
				delete(state, k)
			case crdt.IsSet(crdt.NamespaceOf(k)):
				state[k] = append(append([]crdt.Delta(nil), state[k]...), d)
			default:
				state[k] = []crdt.Delta{d}
			}
			tr.Toggle(k, state[k]) // in with the new
			if rng.IntN(5) != 0 {
				continue
			}
			var before crdt.HLC
			switch rng.IntN(5) {
			case 0:
			case 4: // at the edge of the window: as old as the tracker still answers from slots
				if latest > 0 {
					before = crdt.MakeHLC((latest-Window)*SlotMS-1, math.MaxUint16)
				}
			case 1:
				before = crdt.MakeHLC(now-int64(rng.IntN(20_000)), uint16(rng.IntN(5)))
			case 2:
				before = Cutoff(crdt.MakeHLC(now-int64(rng.IntN(20_000)), 0))
			default:
				before = Cutoff(crdt.MakeHLC(now-int64(rng.IntN(200_000)), 0)) // often beyond the window
			}
			if s, ok := boundary(before); ok && s > latest {
				latest = s
			}
			got, ok := tr.Before(before, scan)
			if _, rounded := boundary(before); before == 0 || (rounded && s0(before) >= latest-Window) {
				if !ok {
					t.Fatalf("trial %d step %d: cutoff %v: the tracker could not answer a cutoff it keeps slots for", trial, step, before)
				}
			}
			if !ok {
				continue
			}
			want := Before(entries(), before)
			if d := Diff(got, want); len(d) != 0 {
				t.Fatalf("trial %d step %d: cutoff %v: the tracker's digest differs in %d buckets", trial, step, before, len(d))
			}
		}
	}
}

func TestBeforeLeavesOutRecentRegistersNotKernels(t *testing.T) {
	reg := crdt.Entry{Key: "svc/a/1", Deltas: []crdt.Delta{{Key: "svc/a/1", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(5000, 0), Node: "n"}, Op: crdt.OpPut}}}
	ker := crdt.Entry{Key: "kernel/k", Deltas: []crdt.Delta{{Key: "kernel/k", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(5000, 0), Node: "n"}, Op: crdt.OpClaim}}}
	all, cut := Of([]crdt.Entry{reg, ker}), Before([]crdt.Entry{reg, ker}, crdt.MakeHLC(4000, 0))
	if len(Diff(all, cut)) != 1 {
		t.Fatalf("a cutoff before the register's stamp should change exactly its bucket: %v", Diff(all, cut))
	}
	if len(Diff(cut, Of([]crdt.Entry{ker}))) != 0 {
		t.Fatal("the kernel was left out by the cutoff")
	}
}
