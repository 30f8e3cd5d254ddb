package store

import (
	"strings"

	"github.com/rumor-dev/rumor/crdt"
)

// Collect removes state that can no longer matter, as judged at nowMS with
// the tombstone horizon horizonMS (DESIGN.md: default 24 h):
//
//   - a register entry (svc, bl, task, node) whose winner is a delete
//     stamped before nowMS-horizonMS: the tombstone;
//   - a register entry whose TTL (Delta.Expiry, when not 0) ran out before
//     nowMS-horizonMS;
//   - in a kernel entry whose winning claim (crdt.Resolve) was stamped
//     before nowMS-horizonMS, the records of lower epochs, and the claims of
//     the winning epoch stamped before the winner (claims that were denied).
//     The kernel entry itself stays, with its winning epoch, so the next
//     claim still takes a higher fencing token. Records are pruned only if
//     crdt.Resolve gives the same lease afterwards.
//
// It returns the number of keys and records removed. Removed keys are
// deleted from the data file at the next flush. Collect fires no watch
// events: nothing changed in what readers can see, only history went.
//
// Why this is safe: a tombstone exists so that a replica still holding the
// value it deleted cannot bring it back when the two merge. Every delta
// reaches every connected replica within seconds (gossip, then
// anti-entropy), so a replica that has not seen a delete stamped more than
// the horizon ago has been out of contact for longer than the horizon. Such
// a replica is reset from a peer's state and never merged (the daemon
// compares its last-running time, kept with SetMeta, with the horizon, and
// calls Reset), so nothing it holds can resurrect a collected key. The same
// argument covers entries expired for longer than the horizon and lease
// epochs superseded for longer than it. Replicas collect at slightly
// different moments; until all have, anti-entropy may hand a collected
// tombstone back, which is harmless: it merges as before and is collected
// again.
func (s *Store) Collect(nowMS, horizonMS int64) int {
	cutoff := nowMS - horizonMS
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	x := s.entries
	// Backwards, because removing a packed entry moves the last one into its place.
	for i := x.n - 1; i >= 0; i-- {
		r := x.at(uint32(i))
		tomb := r.op == crdt.OpDelete && r.hlc.WallMS() < cutoff
		expired := r.expiry != 0 && r.expiry < cutoff
		if !tomb && !expired {
			continue
		}
		key := strings.Clone(r.key()) // outlives the packed entry in dirty
		x.Delete(key)
		n++
		if s.dirty != nil {
			s.dirty[key] = struct{}{}
		}
	}
	for key, e := range x.sets {
		if len(e.Deltas) == 0 {
			continue
		}
		if crdt.IsSet(crdt.NamespaceOf(key)) {
			pruned, removed := pruneLease(e, cutoff)
			if removed == 0 {
				continue
			}
			x.sets[key] = pruned
			n += removed
		} else {
			w := e.Winner()
			tomb := w.Op == crdt.OpDelete && w.Stamp.HLC.WallMS() < cutoff
			expired := w.Expiry != 0 && w.Expiry < cutoff
			if !tomb && !expired {
				continue
			}
			delete(x.sets, key)
			n++
		}
		if s.dirty != nil {
			s.dirty[key] = struct{}{}
		}
	}
	if n > 0 && s.dirty != nil {
		s.kickFlusher()
	}
	return n
}

// pruneLease drops a kernel entry's superseded records (see Collect) and
// returns the new entry and how many records went. It returns e and 0 when
// nothing may go.
func pruneLease(e crdt.Entry, cutoff int64) (crdt.Entry, int) {
	l := crdt.Resolve(e)
	if l.Holder == "" || l.Granted.HLC.WallMS() >= cutoff {
		return e, 0
	}
	keep := make([]crdt.Delta, 0, len(e.Deltas))
	for _, d := range e.Deltas {
		switch {
		case d.Epoch < l.Epoch:
		case d.Epoch == l.Epoch && d.Op == crdt.OpClaim && d.Stamp.Less(l.Granted):
		default:
			keep = append(keep, d)
		}
	}
	removed := len(e.Deltas) - len(keep)
	if removed == 0 {
		return e, 0
	}
	pruned := crdt.Entry{Key: e.Key, Deltas: keep} // a new slice: readers may share e
	if crdt.Resolve(pruned) != l {
		return e, 0 // never change a verdict; keep the history instead
	}
	return pruned, removed
}
