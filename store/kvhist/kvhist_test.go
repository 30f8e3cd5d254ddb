package kvhist

import (
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

func TestHistoryKeepsTheNewestInStampOrder(t *testing.T) {
	put := func(wall int64) crdt.Delta {
		return crdt.Delta{Key: "kv/k", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(wall, 0), Node: "n"}, Op: crdt.OpPut,
			Proof: crdt.Proof{Cert: &crdt.Cert{}}}
	}
	var h History
	for _, w := range []int64{30, 10, 50, 20, 40, 60, 50} {
		h.Note(put(w))
	}
	got := h.Of("kv/k")
	want := []int64{60, 50, 40, 30, 20}
	if len(got) != len(want) {
		t.Fatalf("kept %d writes, want %d", len(got), len(want))
	}
	for i, d := range got {
		if d.Stamp.HLC.WallMS() != want[i] || d.Proof.Signed() {
			t.Errorf("write %d: wall %d signed %v, want wall %d without a proof", i, d.Stamp.HLC.WallMS(), d.Proof.Signed(), want[i])
		}
	}
	h.Note(put(5)) // older than every kept write: not kept
	if len(h.Of("kv/k")) != DefaultLimit {
		t.Error("an older write than the kept ones was kept")
	}
	h.SetLimit(2)
	if got := h.Of("kv/k"); len(got) != 2 || got[1].Stamp.HLC.WallMS() != 50 {
		t.Errorf("after SetLimit(2): %v", got)
	}
	h.Forget("kv/k")
	if h.Of("kv/k") != nil {
		t.Error("Forget kept the history")
	}
}
