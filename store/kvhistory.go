package store

import (
	"slices"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store/watch"
)

// DefaultKVHistory is how many writes per kv key a store keeps when
// SetKVHistory was not called.
const DefaultKVHistory = 5

// NoteConflict is the watch note of a kv write that lost to a concurrent
// one (crdt.KVConflict): the event's Delta is the winner, its Data the
// losing crdt.Delta. Every store that sees both writes makes one, on the
// losing writer's node as on the others.
const NoteConflict = "conflict"

// kvHistory keeps, per kv key, the latest writes the store saw, the
// winners and the writes that lost, newest stamp first, at most n each. It
// lives in memory: after a restart a key's history starts at its winner.
// Guarded by the store's mu.
type kvHistory struct {
	n int
	m map[string][]crdt.Delta
}

// note adds d to its key's history (once, in stamp order), without its
// proof: the history is for reading, and a proof would keep its whole
// batch's certificate alive.
func (h *kvHistory) note(d crdt.Delta) {
	d.Proof = crdt.Proof{}
	if h.m == nil {
		h.m = map[string][]crdt.Delta{}
	}
	n := h.n
	if n == 0 {
		n = DefaultKVHistory
	}
	old := h.m[d.Key]
	i, found := slices.BinarySearchFunc(old, d, func(a, b crdt.Delta) int { return -crdt.CompareWrites(a, b) })
	if found || i >= n {
		return
	}
	next := make([]crdt.Delta, 0, min(len(old)+1, n))
	next = append(next, old[:i]...)
	next = append(next, d)
	next = append(next, old[i:]...)
	h.m[d.Key] = next[:min(len(next), n)]
}

// SetKVHistory sets how many writes per kv key the store keeps (kv
// history); n <= 0 means DefaultKVHistory. Keys holding more keep their
// newest n.
func (s *Store) SetKVHistory(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		n = DefaultKVHistory
	}
	s.kvHist.n = n
	for k, ds := range s.kvHist.m {
		if len(ds) > n {
			s.kvHist.m[k] = ds[:n:n]
		}
	}
}

// KVHistory returns the writes to kv key that this store kept, newest
// first: the current winner (if the store holds the key) and the writes
// before it or that lost to it, as this store saw them.
func (s *Store) KVHistory(key string) []crdt.Delta {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ds := s.kvHist.m[key]; len(ds) > 0 {
		return slices.Clone(ds)
	}
	if e, ok := s.entries.Get(key); ok && len(e.Deltas) > 0 {
		return []crdt.Delta{e.Winner()}
	}
	return nil
}

// noteWin records that d became the winner of its key. Called with s.mu
// held.
func (s *Store) noteWin(d crdt.Delta) {
	if crdt.NamespaceOf(d.Key) == crdt.NSKV {
		s.kvHist.note(d)
	}
}

// noteLoss records that loser lost to winner on their key: as a superseded
// write for explanations and, for a kv key, in its history, with a
// conflict note if loser was a concurrent write (crdt.KVConflict). Called
// with s.mu held.
func (s *Store) noteLoss(winner, loser crdt.Delta) {
	s.lost.Remember(loser)
	if crdt.NamespaceOf(loser.Key) != crdt.NSKV {
		return
	}
	s.kvHist.note(winner)
	s.kvHist.note(loser)
	if crdt.KVConflict(winner, loser) {
		s.conflicts = append(s.conflicts, watch.Event{Key: loser.Key, Delta: winner, Note: NoteConflict, Data: loser})
	}
}

// publishConflicts records the conflict notes of the last apply in the
// watch history. Called with s.mu held, after the change's own event.
func (s *Store) publishConflicts() {
	for _, ev := range s.conflicts {
		s.watchers.Publish(ev)
	}
	s.conflicts = s.conflicts[:0]
}
