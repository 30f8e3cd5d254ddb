package store

import (
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store/watch"
)

// NoteConflict is the watch note of a kv write that lost to a concurrent
// one (crdt.KVConflict): the event's Delta is the winner, its Data the
// losing crdt.Delta. Every store that sees both writes makes one, on the
// losing writer's node as on the others.
const NoteConflict = "conflict"

// SetKVHistory sets how many writes per kv key the store keeps (kv
// history); n <= 0 means kvhist.DefaultLimit. Keys holding more keep
// their newest n.
func (s *Store) SetKVHistory(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kvHist.SetLimit(n)
}

// KVHistory returns the writes to kv key that this store kept, newest
// first: the current winner (if the store holds the key) and the writes
// before it or that lost to it, as this store saw them.
func (s *Store) KVHistory(key string) []crdt.Delta {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ds := s.kvHist.Of(key); len(ds) > 0 {
		return ds
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
		s.kvHist.Note(d)
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
	s.kvHist.Note(winner)
	s.kvHist.Note(loser)
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
