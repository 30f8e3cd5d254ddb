package store

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/crdt"
)

// randomDelta returns a delta over a small key space, so that writes meet:
// every namespace, registers with and without an epoch (which the packed
// form cannot hold), nil, empty and filled values, and the empty node id.
func randomDelta(rng *rand.Rand, keys int, wall int64) crdt.Delta {
	ns := crdt.Namespaces[rng.IntN(len(crdt.Namespaces))]
	d := crdt.Delta{
		Key:   fmt.Sprintf("%s/k/%d", ns, rng.IntN(keys)),
		Stamp: crdt.Stamp{HLC: crdt.MakeHLC(wall+rng.Int64N(50), uint16(rng.IntN(3))), Node: []string{"", "n1", "n2", "n3"}[rng.IntN(4)]},
	}
	switch v := rng.IntN(4); v {
	case 0:
	case 1:
		d.Value = []byte{}
	default:
		d.Value = []byte(strings.Repeat("v", rng.IntN(3)+v))
	}
	if rng.IntN(4) == 0 {
		d.Expiry = wall + rng.Int64N(40)
	}
	switch ns {
	case crdt.NSKernel:
		d.Op = []crdt.Op{crdt.OpClaim, crdt.OpRenew, crdt.OpRelease}[rng.IntN(3)]
		d.Epoch = uint64(rng.IntN(3) + 1)
	default:
		d.Op = []crdt.Op{crdt.OpPut, crdt.OpDelete}[rng.IntN(2)]
		if rng.IntN(8) == 0 {
			d.Epoch = 7 // not a register field, but a delta may carry it
		}
		if ns == crdt.NSTask {
			d.Task = crdt.TaskState(rng.IntN(6) + 1)
		}
	}
	return d
}

// referenceCollect is Collect on a plain map of entries.
func referenceCollect(ref map[string]crdt.Entry, nowMS, horizonMS int64) int {
	cutoff := nowMS - horizonMS
	n := 0
	for key, e := range ref {
		if crdt.IsSet(crdt.NamespaceOf(key)) {
			continue // kernels are never collected
		}
		w := e.Winner()
		if (w.Op == crdt.OpDelete && w.Stamp.HLC.WallMS() < cutoff) || (w.Expiry != 0 && w.Expiry < cutoff) {
			delete(ref, key)
			n++
		}
	}
	return n
}

// checkIndex verifies the index's own invariants: every packed entry is
// found through the slots, no key is both packed and in sets, and the node
// table counts exactly the packed entries that use each id.
func checkIndex(t *testing.T, x *index) {
	t.Helper()
	used := 0
	for _, v := range x.slots {
		if v != 0 {
			used++
		}
	}
	if used != x.n {
		t.Fatalf("%d slots used, %d packed entries", used, x.n)
	}
	refs := make([]uint32, len(x.nodes.refs))
	for i := range x.n {
		p := x.at(uint32(i))
		pos, ok := x.find(p.key())
		if !ok || x.slots[pos] != uint32(i)+1 {
			t.Fatalf("packed entry %d (%q) not found through the slots", i, p.key())
		}
		if _, ok := x.sets[p.key()]; ok {
			t.Fatalf("key %q both packed and in sets", p.key())
		}
		refs[p.node]++
	}
	refs[0] = 0
	if !slices.Equal(refs, x.nodes.refs) {
		t.Fatalf("node refs %v, counted %v", x.nodes.refs, refs)
	}
	for name, id := range x.nodes.ids {
		if x.nodes.names[id] != name || refs[id] == 0 {
			t.Fatalf("node %q -> id %d named %q with %d refs", name, id, x.nodes.names[id], refs[id])
		}
	}
	if want := x.n>>chunkBits + min(x.n&chunkMask, 1); len(x.chunks) != want {
		t.Fatalf("%d chunks for %d packed entries, want %d", len(x.chunks), x.n, want)
	}
}

// TestStoreMatchesEntryMerge applies random deltas to a store and to a plain
// map of crdt.Entry merged with Entry.Apply, and requires the same answers
// from both: changes, Get (nil values included), List, Len, Collect.
func TestStoreMatchesEntryMerge(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	for _, keys := range []int{3, 40, 500} {
		t.Run(fmt.Sprint(keys, "keys"), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(keys)))
			s := New()
			ref := make(map[string]crdt.Entry)
			wall := int64(1000)
			for round := range 40 {
				batch := make([]crdt.Delta, rng.IntN(4*keys)+1)
				for i := range batch {
					batch[i] = randomDelta(rng, keys, wall)
				}
				var want []crdt.Delta
				for _, d := range batch {
					if e, ok := ref[d.Key].Apply(d); ok {
						ref[d.Key] = e
						want = append(want, d)
					}
				}
				if got := s.Apply(batch...); !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d round %d: Apply changed %d deltas, want %d", seed, round, len(got), len(want))
				}
				if round%5 == 4 {
					now, horizon := wall+rng.Int64N(60), rng.Int64N(20)
					if got, want := s.Collect(now, horizon), referenceCollect(ref, now, horizon); got != want {
						t.Fatalf("seed %d round %d: Collect removed %d, want %d", seed, round, got, want)
					}
				}
				wall += rng.Int64N(20)
				if s.Len() != len(ref) {
					t.Fatalf("seed %d round %d: Len %d, want %d", seed, round, s.Len(), len(ref))
				}
				for k, e := range ref {
					got, ok := s.Get(k)
					if !ok || !reflect.DeepEqual(got, e) {
						t.Fatalf("seed %d round %d: Get(%q) = %+v, %v; want %+v", seed, round, k, got, ok, e)
					}
				}
				all := s.List("")
				if len(all) != len(ref) || !slices.IsSortedFunc(all, func(a, b crdt.Entry) int { return strings.Compare(a.Key, b.Key) }) {
					t.Fatalf("seed %d round %d: List gave %d entries (sorted: %v), want %d", seed, round, len(all), slices.IsSortedFunc(all, func(a, b crdt.Entry) int { return strings.Compare(a.Key, b.Key) }), len(ref))
				}
				for _, e := range all {
					if !reflect.DeepEqual(e, ref[e.Key]) {
						t.Fatalf("seed %d round %d: List has %+v, want %+v", seed, round, e, ref[e.Key])
					}
				}
				checkIndex(t, s.entries)
			}
		})
	}
}

// TestIndexDeleteKeepsProbeRuns fills an index past several doublings,
// deletes most keys in random order and checks after each step that every
// remaining key is found and no deleted one is.
func TestIndexDeleteKeepsProbeRuns(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	x := newIndex(0)
	const n = 3000
	for i := range n {
		x.putWinner(crdt.Delta{Key: fmt.Sprintf("svc/a/%d", i), Op: crdt.OpPut, Stamp: crdt.Stamp{HLC: 1, Node: fmt.Sprint("n", i%7)}, Value: []byte{byte(i)}})
	}
	live := make(map[string]bool, n)
	for i := range n {
		live[fmt.Sprintf("svc/a/%d", i)] = true
	}
	order := rng.Perm(n)
	for step, i := range order[:n-10] {
		k := fmt.Sprintf("svc/a/%d", i)
		x.Delete(k)
		delete(live, k)
		if step%97 != 0 {
			continue
		}
		for j := range n {
			k := fmt.Sprintf("svc/a/%d", j)
			e, ok := x.Get(k)
			if ok != live[k] || (ok && e.Winner().Value[0] != byte(j)) {
				t.Fatalf("seed %d step %d: Get(%q) = %+v, %v; live %v", seed, step, k, e, ok, live[k])
			}
		}
		checkIndex(t, x)
	}
	if x.Len() != 10 {
		t.Fatalf("Len = %d, want 10", x.Len())
	}
	checkIndex(t, x)
}

// TestEntriesDoNotAliasAppliedValues checks that the store copies a value
// it keeps, and that entries it hands out stay unchanged when the key gets
// a new winner.
func TestEntriesDoNotAliasAppliedValues(t *testing.T) {
	s := New()
	v := []byte("first")
	s.Apply(put("svc/a/1", 1, "n1", ""), crdt.Delta{Key: "svc/a/1", Stamp: crdt.Stamp{HLC: 2, Node: "n1"}, Op: crdt.OpPut, Value: v})
	copy(v, "XXXXX")
	before, _ := s.Get("svc/a/1")
	if got := string(before.Winner().Value); got != "first" {
		t.Fatalf("value %q after the caller changed its slice, want first", got)
	}
	s.Apply(put("svc/a/1", 3, "n2", "second"))
	if got := string(before.Winner().Value); got != "first" {
		t.Fatalf("an entry read earlier changed to %q", got)
	}
	if e, _ := s.Get("svc/a/1"); string(e.Winner().Value) != "second" || e.Winner().Stamp.Node != "n2" {
		t.Fatalf("Get = %+v, want the second write", e)
	}
}
