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
//   - an accusation its target has refuted (crdt.Refuted). Apply drops
//     those as the refutation arrives; this catches any written by an
//     older version.
//
// Kernel entries are not collected: crdt.Entry.Apply already drops every
// lease record that can no longer matter, as records arrive, so a kernel
// holds a few records of its winning epoch however long it is renewed. The
// entry stays for good, with its epoch, so that the next claim still takes
// a higher fencing token. Certs that no record uses any more are deleted
// from the data file.
//
// It returns the number of keys removed. Removed keys are deleted from the
// data file at the next flush. Collect fires no watch events: nothing
// changed in what readers can see, only history went.
//
// Why this is safe: a tombstone exists so that a replica still holding the
// value it deleted cannot bring it back when the two merge. Every delta
// reaches every connected replica within seconds (gossip, then
// anti-entropy), so a replica that has not seen a delete stamped more than
// the horizon ago has been out of contact for longer than the horizon. Such
// a replica is reset from a peer's state and never merged (the daemon
// compares its last-running time, kept with SetMeta, with the horizon, and
// calls Reset), so nothing it holds can resurrect a collected key. The same
// argument covers entries expired for longer than the horizon. Replicas collect at slightly
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
		refuted := strings.HasPrefix(r.key(), "node/") && s.refutedLocked(x.delta(r))
		if !tomb && !expired && !refuted {
			continue
		}
		key := strings.Clone(r.key()) // outlives the packed entry in dirty
		x.Delete(key)
		s.kvHist.Forget(key)
		n++
		if s.dirty != nil {
			s.dirty[key] = struct{}{}
		}
	}
	for key, e := range x.sets {
		if len(e.Deltas) == 0 || crdt.IsSet(crdt.NamespaceOf(key)) {
			continue
		}
		w := e.Winner()
		tomb := w.Op == crdt.OpDelete && w.Stamp.HLC.WallMS() < cutoff
		expired := w.Expiry != 0 && w.Expiry < cutoff
		if !tomb && !expired {
			continue
		}
		x.Delete(key)
		s.kvHist.Forget(key)
		n++
		if s.dirty != nil {
			s.dirty[key] = struct{}{}
		}
	}
	if s.dirty != nil {
		s.collectCertsLocked()
		if n > 0 || len(s.deadCerts) > 0 {
			s.kickFlusher()
		}
	}
	return n
}
