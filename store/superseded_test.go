package store

import (
	"testing"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store/superseded"
)

func TestSupersededRemembersLosers(t *testing.T) {
	s := New()
	at := func(wall int64, node string) crdt.Delta {
		return crdt.Delta{Key: "svc/web/1", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(wall, 0), Node: node}, Op: crdt.OpPut}
	}
	first, second, late := at(10, "n1"), at(20, "n2"), at(15, "n3")
	s.Apply(first, second, second, late) // second replaces first; its duplicate is nothing; late loses on arrival
	got := s.Superseded("svc/web/1")
	if len(got) != 2 || !got[0].Equal(late) || !got[1].Equal(first) {
		t.Fatalf("superseded = %v; want [late, first]", got)
	}
	for i := range 10 {
		s.Apply(at(int64(100+i), "n1"))
	}
	if n := len(s.Superseded("svc/web/1")); n != superseded.PerKey {
		t.Fatalf("kept %d losers, want the bound %d", n, superseded.PerKey)
	}
	claim := crdt.Delta{Key: "kernel/k", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(10, 0), Node: "n1"}, Op: crdt.OpClaim, Epoch: 1, Expiry: 100}
	s.Apply(claim, claim)
	if got := s.Superseded("kernel/k"); len(got) != 0 {
		t.Fatalf("kernel records are all kept in the entry, superseded = %v", got)
	}
}
