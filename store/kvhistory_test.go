package store

import (
	"slices"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store/watch"
)

func kvPut(wall int64, node, value string, version uint64) crdt.Delta {
	return crdt.Delta{
		Key: "kv/config/x", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(wall, 0), Node: node}, Op: crdt.OpPut,
		Value: crdt.Encode(crdt.KVValue{Value: value, Version: version}),
	}
}

// TestKVHistoryAndConflictsInAnyOrder: whatever order the writes arrive
// in, the history holds the newest n by stamp, and a write that lost to a
// concurrent one makes exactly one conflict note.
func TestKVHistoryAndConflictsInAnyOrder(t *testing.T) {
	v1 := kvPut(10, "a", "one", 1)
	v2 := kvPut(20, "a", "two", 2)
	v2b := kvPut(25, "b", "two-b", 2) // concurrent with v2, later: wins
	v3 := kvPut(30, "b", "three", 3)
	all := []crdt.Delta{v1, v2, v2b, v3}
	want := []crdt.Delta{v3, v2b, v2, v1}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 0, 2}} {
		s := New()
		s.SetKVHistory(4)
		f, _ := s.Hub().Follow("kv/", watch.Cursor{})
		for _, i := range order {
			s.Apply(all[i])
			s.Apply(all[i]) // a duplicate changes nothing
		}
		if got := s.KVHistory("kv/config/x"); !slices.EqualFunc(got, want, crdt.Delta.Equal) {
			t.Errorf("order %v: history %v, want %v", order, got, want)
		}
		evs, _, err := f.Next(100)
		if err != nil {
			t.Fatal(err)
		}
		var conflicts []crdt.Delta
		for _, ev := range evs {
			if ev.Note == NoteConflict {
				conflicts = append(conflicts, ev.Data.(crdt.Delta))
			}
		}
		// v2 is a conflict only if it met v2b as the winner (v3 replaced
		// v2b before v2 arrived: v2's version 2 is below v3's 3).
		for _, c := range conflicts {
			if !c.Equal(v2) {
				t.Errorf("order %v: conflict note for %v", order, c)
			}
		}
		if len(conflicts) > 1 {
			t.Errorf("order %v: %d conflict notes, want at most 1", order, len(conflicts))
		}
		f.Close()
	}
	s := New()
	s.SetKVHistory(2)
	s.Apply(all...)
	if got := s.KVHistory("kv/config/x"); !slices.EqualFunc(got, want[:2], crdt.Delta.Equal) {
		t.Errorf("history bounded to 2: %v", got)
	}
	s.SetKVHistory(1)
	if got := s.KVHistory("kv/config/x"); len(got) != 1 || !got[0].Equal(v3) {
		t.Errorf("history cut to 1: %v", got)
	}
}

// TestKVConflictNoteBothWays: a concurrent write makes a conflict note
// whether it arrives after the winner (and loses) or before it (and is
// replaced).
func TestKVConflictNoteBothWays(t *testing.T) {
	early, late := kvPut(10, "a", "mine", 2), kvPut(20, "b", "theirs", 2)
	for _, order := range [][]crdt.Delta{{early, late}, {late, early}} {
		s := New()
		f, _ := s.Hub().Follow("", watch.Cursor{})
		s.Apply(order...)
		evs, _, _ := f.Next(10)
		var n int
		for _, ev := range evs {
			if ev.Note == NoteConflict {
				n++
				if !ev.Delta.Equal(late) || !ev.Data.(crdt.Delta).Equal(early) {
					t.Errorf("note: winner %v, lost %v", ev.Delta, ev.Data)
				}
			}
		}
		if n != 1 {
			t.Errorf("order %v: %d conflict notes, want 1", order[0].Stamp.Node, n)
		}
	}
}
