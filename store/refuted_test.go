package store

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

// member is node's announcement of incarnation inc, stamped hlc.
func member(node string, inc uint64, hlc uint64) crdt.Delta {
	return put(crdt.NodeKey(node), hlc, node, fmt.Sprintf(`{"inc":%d}`, inc))
}

// accusation is accuser's accusation of target's incarnation inc.
func accusation(target, accuser string, inc uint64, hlc uint64) crdt.Delta {
	return put(crdt.SuspectKey(target, accuser), hlc, accuser, fmt.Sprintf(`{"inc":%d}`, inc))
}

func TestRefutationDropsAccusations(t *testing.T) {
	s := New()
	w := s.Watch("node/", 16)
	defer w.Close()
	s.Apply(member("t", 1, 1), accusation("t", "a", 1, 2), accusation("t", "b", 1, 3), accusation("u", "a", 1, 4))
	if s.Len() != 4 {
		t.Fatalf("before the refutation: %d keys, want 4", s.Len())
	}
	if got := s.Apply(member("t", 2, 5)); len(got) != 1 {
		t.Fatalf("refutation: changed %d, want 1", len(got))
	}
	for _, k := range []string{crdt.SuspectKey("t", "a"), crdt.SuspectKey("t", "b")} {
		if _, ok := s.Get(k); ok {
			t.Errorf("%s still held after t announced incarnation 2", k)
		}
	}
	if _, ok := s.Get(crdt.SuspectKey("u", "a")); !ok {
		t.Errorf("the accusation of another node went too")
	}
	// A late copy of a refuted accusation is not stored; one of the
	// current incarnation is.
	if got := s.Apply(accusation("t", "c", 1, 6)); len(got) != 0 {
		t.Errorf("a refuted accusation arriving late changed the store: %v", got)
	}
	if got := s.Apply(accusation("t", "c", 2, 7)); len(got) != 1 {
		t.Errorf("an accusation of the announced incarnation was not stored")
	}
	if s.Len() != 3 {
		t.Fatalf("after: %d keys, want 3 (t, u/a, t/c)", s.Len())
	}
	// Watchers saw the writes that changed the state, not the drops.
	n := len(w.C())
	if n != 6 {
		t.Errorf("watch saw %d events, want 6 (4 writes, the refutation, the new accusation)", n)
	}
}

func TestRefutedAccusationsLeaveTheDataFile(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	s.Apply(member("t", 1, 1), accusation("t", "a", 1, 2))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, ok := diskEntries(t, s)[crdt.SuspectKey("t", "a")]; !ok {
		t.Fatal("the accusation was not written to the file")
	}
	s.Apply(member("t", 2, 3))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, ok := diskEntries(t, s)[crdt.SuspectKey("t", "a")]; ok {
		t.Fatal("the refuted accusation is still in the file")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := openT(t, path, never)
	if _, ok := r.Get(crdt.SuspectKey("t", "a")); ok || r.Len() != 1 {
		t.Fatalf("reopened: %d keys, refuted accusation present %v", r.Len(), ok)
	}
}

func TestCollectDropsRefutedAccusations(t *testing.T) {
	s := New()
	s.Apply(member("t", 2, 1))
	// As an older version left them: inserted without the check.
	s.mu.Lock()
	s.entries.Put(crdt.SuspectKey("t", "a"), crdt.Entry{Key: crdt.SuspectKey("t", "a"), Deltas: []crdt.Delta{accusation("t", "a", 1, 2)}})
	s.mu.Unlock()
	if n := s.Collect(10, 5); n != 1 || s.Len() != 1 {
		t.Fatalf("Collect removed %d, %d keys left; want 1 and 1", n, s.Len())
	}
}

// TestRefutedDropConverges applies one history of member announcements and
// accusations (each writer's incarnations grow with its stamps, as the
// failure detector writes them) to stores in random orders, with
// duplicates, and in random batches: they all end in the same state, the
// winners that no announcement refutes.
func TestRefutedDropConverges(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 300 {
		var hist []crdt.Delta
		hlc := uint64(0)
		targets := []string{"t", "u"}
		inc := map[string]uint64{}
		known := map[string]uint64{} // per accuser/target: the incarnation last accused
		for range 4 + rng.IntN(12) {
			hlc++
			tg := targets[rng.IntN(len(targets))]
			if rng.IntN(3) == 0 {
				inc[tg]++
				hist = append(hist, member(tg, inc[tg], hlc))
				continue
			}
			acc := []string{"a", "b", "c"}[rng.IntN(3)]
			i := max(inc[tg], 1)
			if i > 1 && rng.IntN(2) == 0 {
				i-- // it has not heard of the latest announcement yet
			}
			i = max(i, known[acc+tg]) // never lower than its last
			known[acc+tg] = i
			hist = append(hist, accusation(tg, acc, i, hlc))
		}
		var want map[string]crdt.Entry
		for run := range 6 {
			order := append([]crdt.Delta(nil), hist...)
			order = append(order, hist[rng.IntN(len(hist))]) // a duplicate
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			s := New()
			for len(order) > 0 {
				k := 1 + rng.IntN(len(order))
				s.Apply(order[:k]...)
				order = order[k:]
			}
			got := snapshot(s)
			if run == 0 {
				want = got
				continue
			}
			if len(got) != len(want) {
				t.Fatalf("trial %d: order %d holds %d keys, the first %d\nhistory %v", trial, run, len(got), len(want), hist)
			}
			sameState(t, fmt.Sprintf("trial %d order %d", trial, run), got, want)
		}
		// And that state keeps no refuted accusation.
		for k, e := range want {
			if node, acc, _ := crdt.SplitNodeKey(k); acc != "" {
				if m, ok := want[crdt.NodeKey(node)]; ok && crdt.Refuted(e.Winner(), crdt.Announced(m.Winner())) {
					t.Fatalf("trial %d: %s kept though refuted", trial, k)
				}
			}
		}
	}
}
