package store

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/digest"
)

// TestDigestKeptWithTheEntries changes a store through every path that
// changes an entry (applies of registers and kernel records, replaced
// winners, a register the packed form cannot hold, Collect, accusations dropped by
// a refutation, a reopen of the data file) and checks at random moments
// that the digest it keeps equals the one computed from its entries, for
// no cutoff, rounded cutoffs and unrounded ones.
func TestDigestKeptWithTheEntries(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	path := dataPath(t)
	s := openT(t, path, never)
	now := int64(1_000_000_000)
	check := func(step int) {
		t.Helper()
		for _, before := range []crdt.HLC{
			0,
			digest.Cutoff(crdt.MakeHLC(now-int64(rng.IntN(15_000)), 0)),
			crdt.MakeHLC(now-int64(rng.IntN(15_000)), 3),
			digest.Cutoff(crdt.MakeHLC(now-int64(rng.IntN(300_000)), 0)),
		} {
			if d := digest.Diff(s.Digest(before), digest.Before(s.ListUnordered(""), before)); len(d) != 0 {
				t.Fatalf("step %d, cutoff %v: the kept digest differs in %d buckets", step, before, len(d))
			}
		}
	}
	for step := range 1500 {
		now += int64(rng.IntN(400))
		st := crdt.MakeHLC(now-int64(rng.IntN(30_000)), 0)
		node := fmt.Sprint("n", rng.IntN(4))
		switch r := rng.IntN(20); {
		case r < 8:
			d := put(fmt.Sprintf("svc/a/%d", rng.IntN(40)), uint64(st), node, fmt.Sprint(step))
			if rng.IntN(6) == 0 {
				d.Epoch = 7 // a register the packed form cannot hold: kept as an entry
				if rng.IntN(2) == 0 {
					d.Op = crdt.OpDelete // a tombstone that Collect removes from the entries
				}
			}
			s.Apply(d)
		case r < 10:
			d := put(fmt.Sprintf("bl/l/%d", rng.IntN(20)), uint64(st), node, "")
			if rng.IntN(2) == 0 {
				d.Op = crdt.OpDelete
			}
			s.Apply(d)
		case r < 13:
			d := at(fmt.Sprintf("kernel/k%d", rng.IntN(3)), st, node, crdt.OpClaim)
			d.Epoch, d.Expiry = uint64(1+rng.IntN(3)), st.WallMS()+5_000
			s.Apply(d)
		case r < 16:
			target := fmt.Sprint("m", rng.IntN(3))
			if rng.IntN(2) == 0 {
				s.Apply(member(target, uint64(1+step/100), uint64(st)))
			} else {
				s.Apply(accusation(target, node, uint64(1+step/150), uint64(st)))
			}
		case r < 17:
			s.Collect(now, int64(rng.IntN(20_000)))
		case r < 18 && step%5 == 0:
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, path, never)
		}
		if rng.IntN(4) == 0 {
			check(step)
		}
	}
}
