package digest

import (
	"math"

	"github.com/rumor-dev/rumor/crdt"
)

// SlotMS is the span of wall-clock time (of a register winner's stamp) that
// one of a Tracker's slots covers.
const SlotMS = 1000

// Window is how many slots before the latest cutoff a Tracker keeps: a
// cutoff up to this many seconds older than the latest one is still
// answered from the slots; an older one by a full scan.
const Window = 60

// Cutoff rounds before down to a slot boundary: the latest stamp of the
// last whole second before it. A Tracker answers a rounded cutoff from its
// slots; Before gives the same digest for it as for any other.
func Cutoff(before crdt.HLC) crdt.HLC {
	if _, ok := boundary(before); ok {
		return before
	}
	start := before.WallMS() / SlotMS * SlotMS // the first ms of before's second
	if start <= 0 {
		return 0
	}
	return crdt.MakeHLC(start-1, math.MaxUint16)
}

// boundary returns the first slot a rounded cutoff leaves out.
func boundary(before crdt.HLC) (slot int64, ok bool) {
	if before.Logical() != math.MaxUint16 || (before.WallMS()+1)%SlotMS != 0 {
		return 0, false
	}
	return (before.WallMS() + 1) / SlotMS, true
}

// Tracker keeps the digest of a changing set of entries up to date as
// each changes: Toggle an entry out before it changes and in after. For
// the cutoff of a periodic exchange (Before), it also keeps, per slot of
// SlotMS of recent stamps, the digest of the registers whose winner is
// stamped in it, so the registers stamped after a rounded cutoff (Cutoff)
// are left out without visiting a single entry. The zero value is an empty
// tracker. Not safe for concurrent use.
type Tracker struct {
	all   Digest
	slots map[int64]Digest // slot → the digest of the register winners stamped in it, for slot >= floor
	floor int64            // slots below it are not kept; valid once slots is not nil
}

// Toggle folds the entry key with deltas ds into the digest, or out of it
// if it is in: call it with an entry's old deltas before the entry changes
// or goes, and with its new ones after it changes or comes.
func (t *Tracker) Toggle(key string, ds []crdt.Delta) {
	ns, ok := Namespace(key)
	if !ok || len(ds) == 0 {
		return
	}
	if t.all == nil {
		t.all = New()
	}
	b, h := BucketOf(key), Hash(key, ds)
	t.all[ns][b] ^= h
	if t.slots == nil || crdt.IsSet(crdt.Namespaces[ns]) {
		return
	}
	if s := ds[len(ds)-1].Stamp.HLC.WallMS() / SlotMS; s >= t.floor {
		d, ok := t.slots[s]
		if !ok {
			d = New()
			t.slots[s] = d
		}
		d[ns][b] ^= h
	}
}

// Before returns the digest of the entries with the registers whose winner
// is stamped after before left out (the package's Before), and true; or
// false if it cannot tell from what it keeps: a cutoff that Cutoff did not
// round, or one more than Window slots older than the latest. The caller
// then computes it from the entries (the package's Before), outside any
// lock it holds. A cutoff of 0 leaves nothing out. The first rounded
// cutoff visits every entry once through scan (which must call its
// argument once per entry) to fill the slots, and each later one lets go
// of the slots that fell out of the window.
func (t *Tracker) Before(before crdt.HLC, scan func(visit func(key string, ds []crdt.Delta))) (Digest, bool) {
	out := New()
	if before == 0 {
		if t.all != nil {
			out.xor(t.all)
		}
		return out, true
	}
	first, ok := boundary(before)
	if !ok || (t.slots != nil && first < t.floor) {
		return nil, false
	}
	if floor := first - Window; t.slots == nil {
		t.slots, t.floor = make(map[int64]Digest), floor
		scan(func(key string, ds []crdt.Delta) {
			if ns, ok := Namespace(key); ok && len(ds) > 0 && !crdt.IsSet(crdt.Namespaces[ns]) {
				if s := ds[len(ds)-1].Stamp.HLC.WallMS() / SlotMS; s >= floor {
					d, ok := t.slots[s]
					if !ok {
						d = New()
						t.slots[s] = d
					}
					d[ns][BucketOf(key)] ^= Hash(key, ds)
				}
			}
		})
	} else if floor > t.floor {
		for s := range t.slots {
			if s < floor {
				delete(t.slots, s)
			}
		}
		t.floor = floor
	}
	if t.all != nil {
		out.xor(t.all)
	}
	for s, d := range t.slots {
		if s >= first {
			out.xor(d)
		}
	}
	return out, true
}
